// BN254 base field Fp and scalar field Fr in Montgomery form, eight 32-bit limbs,
// little-endian. The in-memory layout is exactly halo2curves' internal representation
// (four little-endian u64 Montgomery limbs), so values cross the host/device boundary as raw
// bytes (`SerdeObject::to_raw_bytes`) with no conversion.
//
// Addition and subtraction are portable 64-bit carry propagation, the same code on the host
// (where crates/accel's tests check it against halo2curves) and on the device. PTX carry
// chains (add.cc/addc, sub.cc/subc) replace them on the device only when PM_ENABLE_PTX is
// defined (PROOFMILL_CUDA_PTX=1). Each chain statement is `asm volatile`: the carry flag
// lives outside the compiler's view, so a plain `asm` may be reordered, hoisted or merged
// with an identical one (the first GPU run, 2026-11-26 on an H200, returned garbage for
// every MSM and NTT with plain `asm`). Multiplication is CIOS Montgomery with 64-bit
// products (NVCC/NVRTC map these to mad.wide.u32).
#pragma once
#include "common.cuh"

namespace pm {

struct FpParams {
    static PM_HD u32 p(int i) {
        switch (i) {
            case 0: return 0xd87cfd47u; case 1: return 0x3c208c16u;
            case 2: return 0x6871ca8du; case 3: return 0x97816a91u;
            case 4: return 0x8181585du; case 5: return 0xb85045b6u;
            case 6: return 0xe131a029u; default: return 0x30644e72u;
        }
    }
    // R = 2^256 mod p (Montgomery one)
    static PM_HD u32 r(int i) {
        switch (i) {
            case 0: return 0xc58f0d9du; case 1: return 0xd35d438du;
            case 2: return 0xf5c70b3du; case 3: return 0x0a78eb28u;
            case 4: return 0x7879462cu; case 5: return 0x666ea36fu;
            case 6: return 0x9a07df2fu; default: return 0x0e0a77c1u;
        }
    }
    // R^2 mod p
    static PM_HD u32 r2(int i) {
        switch (i) {
            case 0: return 0x538afa89u; case 1: return 0xf32cfc5bu;
            case 2: return 0xd44501fbu; case 3: return 0xb5e71911u;
            case 4: return 0x0a417ff6u; case 5: return 0x47ab1effu;
            case 6: return 0xcab8351fu; default: return 0x06d89f71u;
        }
    }
    static PM_HD u32 inv() { return 0xe4866389u; } // -p^-1 mod 2^32
};

struct FrParams {
    static PM_HD u32 p(int i) {
        switch (i) {
            case 0: return 0xf0000001u; case 1: return 0x43e1f593u;
            case 2: return 0x79b97091u; case 3: return 0x2833e848u;
            case 4: return 0x8181585du; case 5: return 0xb85045b6u;
            case 6: return 0xe131a029u; default: return 0x30644e72u;
        }
    }
    static PM_HD u32 r(int i) {
        switch (i) {
            case 0: return 0x4ffffffbu; case 1: return 0xac96341cu;
            case 2: return 0x9f60cd29u; case 3: return 0x36fc7695u;
            case 4: return 0x7879462eu; case 5: return 0x666ea36fu;
            case 6: return 0x9a07df2fu; default: return 0x0e0a77c1u;
        }
    }
    static PM_HD u32 r2(int i) {
        switch (i) {
            case 0: return 0xae216da7u; case 1: return 0x1bb8e645u;
            case 2: return 0xe35c59e3u; case 3: return 0x53fe3ab1u;
            case 4: return 0x53bb8085u; case 5: return 0x8c49833du;
            case 6: return 0x7f4e44a5u; default: return 0x0216d0b1u;
        }
    }
    static PM_HD u32 inv() { return 0xefffffffu; }
};

// r = a + b over 8 limbs; returns the carry out.
static PM_HD u32 add8(u32* r, const u32* a, const u32* b) {
#if PM_USE_PTX
    u32 carry;
    asm volatile("add.cc.u32 %0, %1, %2;" : "=r"(r[0]) : "r"(a[0]), "r"(b[0]));
    asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(r[1]) : "r"(a[1]), "r"(b[1]));
    asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(r[2]) : "r"(a[2]), "r"(b[2]));
    asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(r[3]) : "r"(a[3]), "r"(b[3]));
    asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(r[4]) : "r"(a[4]), "r"(b[4]));
    asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(r[5]) : "r"(a[5]), "r"(b[5]));
    asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(r[6]) : "r"(a[6]), "r"(b[6]));
    asm volatile("addc.cc.u32 %0, %1, %2;" : "=r"(r[7]) : "r"(a[7]), "r"(b[7]));
    asm volatile("addc.u32 %0, 0, 0;" : "=r"(carry));
    return carry;
#else
    u64 c = 0;
    for (int i = 0; i < 8; i++) {
        u64 s = (u64)a[i] + b[i] + c;
        r[i] = (u32)s;
        c = s >> 32;
    }
    return (u32)c;
#endif
}

// r = a - b over 8 limbs; returns 1 on borrow.
static PM_HD u32 sub8(u32* r, const u32* a, const u32* b) {
#if PM_USE_PTX
    u32 borrow;
    asm volatile("sub.cc.u32 %0, %1, %2;" : "=r"(r[0]) : "r"(a[0]), "r"(b[0]));
    asm volatile("subc.cc.u32 %0, %1, %2;" : "=r"(r[1]) : "r"(a[1]), "r"(b[1]));
    asm volatile("subc.cc.u32 %0, %1, %2;" : "=r"(r[2]) : "r"(a[2]), "r"(b[2]));
    asm volatile("subc.cc.u32 %0, %1, %2;" : "=r"(r[3]) : "r"(a[3]), "r"(b[3]));
    asm volatile("subc.cc.u32 %0, %1, %2;" : "=r"(r[4]) : "r"(a[4]), "r"(b[4]));
    asm volatile("subc.cc.u32 %0, %1, %2;" : "=r"(r[5]) : "r"(a[5]), "r"(b[5]));
    asm volatile("subc.cc.u32 %0, %1, %2;" : "=r"(r[6]) : "r"(a[6]), "r"(b[6]));
    asm volatile("subc.cc.u32 %0, %1, %2;" : "=r"(r[7]) : "r"(a[7]), "r"(b[7]));
    asm volatile("subc.u32 %0, 0, 0;" : "=r"(borrow));
    return borrow & 1u; // subc of 0 - 0 - borrow gives 0xffffffff on borrow
#else
    u64 brw = 0;
    for (int i = 0; i < 8; i++) {
        u64 d = (u64)a[i] - b[i] - brw;
        r[i] = (u32)d;
        brw = (d >> 63) & 1;
    }
    return (u32)brw;
#endif
}

template <class P>
struct Field {
    u32 v[8];

    static PM_HD Field zero() {
        Field r;
        for (int i = 0; i < 8; i++) r.v[i] = 0;
        return r;
    }
    // Montgomery one (R mod p).
    static PM_HD Field one() {
        Field r;
        for (int i = 0; i < 8; i++) r.v[i] = P::r(i);
        return r;
    }
    static PM_HD Field modulus() {
        Field r;
        for (int i = 0; i < 8; i++) r.v[i] = P::p(i);
        return r;
    }
    PM_HD bool is_zero() const {
        u32 acc = 0;
        for (int i = 0; i < 8; i++) acc |= v[i];
        return acc == 0;
    }
    PM_HD bool operator==(const Field& o) const {
        u32 acc = 0;
        for (int i = 0; i < 8; i++) acc |= v[i] ^ o.v[i];
        return acc == 0;
    }
    PM_HD bool operator!=(const Field& o) const { return !(*this == o); }

    static PM_HD Field add(const Field& a, const Field& b) {
        Field s, t;
        add8(s.v, a.v, b.v); // p < 2^254: no carry out
        Field m = modulus();
        u32 borrow = sub8(t.v, s.v, m.v);
        return borrow ? s : t;
    }
    static PM_HD Field sub(const Field& a, const Field& b) {
        Field s, t;
        u32 borrow = sub8(s.v, a.v, b.v);
        if (!borrow) return s;
        Field m = modulus();
        add8(t.v, s.v, m.v);
        return t;
    }
    static PM_HD Field neg(const Field& a) {
        if (a.is_zero()) return a;
        Field r;
        Field m = modulus();
        sub8(r.v, m.v, a.v);
        return r;
    }
    static PM_HD Field dbl(const Field& a) { return add(a, a); }

    // CIOS Montgomery multiplication: a * b * 2^-256 mod p.
    static PM_HD Field mul(const Field& a, const Field& b) {
        u32 t[10];
        for (int i = 0; i < 10; i++) t[i] = 0;
#if PM_DEVICE_COMPILER
#pragma unroll
#endif
        for (int i = 0; i < 8; i++) {
            u64 c = 0;
#if PM_DEVICE_COMPILER
#pragma unroll
#endif
            for (int j = 0; j < 8; j++) {
                u64 s = (u64)t[j] + (u64)a.v[j] * b.v[i] + c;
                t[j] = (u32)s;
                c = s >> 32;
            }
            u64 s = (u64)t[8] + c;
            t[8] = (u32)s;
            t[9] = (u32)(s >> 32);
            u32 m = t[0] * P::inv();
            s = (u64)t[0] + (u64)m * P::p(0);
            c = s >> 32;
#if PM_DEVICE_COMPILER
#pragma unroll
#endif
            for (int j = 1; j < 8; j++) {
                s = (u64)t[j] + (u64)m * P::p(j) + c;
                t[j - 1] = (u32)s;
                c = s >> 32;
            }
            s = (u64)t[8] + c;
            t[7] = (u32)s;
            t[8] = t[9] + (u32)(s >> 32);
        }
        Field r, d;
        for (int i = 0; i < 8; i++) r.v[i] = t[i];
        Field m = modulus();
        u32 borrow = sub8(d.v, r.v, m.v);
        return (t[8] != 0 || !borrow) ? d : r;
    }
    static PM_HD Field sqr(const Field& a) { return mul(a, a); }

    // a^e for an exponent given as 8 little-endian limbs (square-and-multiply, MSB first).
    static PM_HD_CALL Field pow(const Field& a, const u32* e) {
        Field r = one();
        for (int i = 7; i >= 0; i--) {
            for (int b = 31; b >= 0; b--) {
                r = sqr(r);
                if ((e[i] >> b) & 1u) r = mul(r, a);
            }
        }
        return r;
    }
    // a^(p-2) = a^-1 (Fermat); inverse of zero is zero.
    static PM_HD_CALL Field inverse(const Field& a) {
        u32 e[8];
        for (int i = 0; i < 8; i++) e[i] = P::p(i);
        e[0] -= 2; // p0 >= 2 for both moduli: no borrow
        return pow(a, e);
    }
    // Canonical integer (< p) -> Montgomery form.
    static PM_HD Field to_mont(const Field& a) {
        Field r2;
        for (int i = 0; i < 8; i++) r2.v[i] = P::r2(i);
        return mul(a, r2);
    }
    // Montgomery form -> canonical integer.
    static PM_HD Field from_mont(const Field& a) {
        Field unit = zero();
        unit.v[0] = 1;
        return mul(a, unit);
    }
};

typedef Field<FpParams> Fp;
typedef Field<FrParams> Fr;

} // namespace pm
