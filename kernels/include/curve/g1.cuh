// BN254 G1 (y^2 = x^3 + 3 over Fp) in affine, Jacobian and XYZZ coordinates.
//
// Affine points use halo2curves' encoding: the identity is (0, 0). Jacobian (X, Y, Z)
// represents (X/Z^2, Y/Z^3), identity Z = 0. XYZZ (X, Y, ZZ, ZZZ) represents
// (X/ZZ, Y/ZZZ) with ZZ^3 = ZZZ^2, identity ZZ = 0; it makes mixed additions cheap
// (8M + 2S) and is what MSM buckets accumulate in. Formulas from the Explicit-Formulas
// Database (a = 0): dbl-2009-l, add-2007-bl, madd-2007-bl, add-2008-s, madd-2008-s,
// dbl-2008-s-1, mdbl-2008-s-1. All functions handle identities and P = +-Q.
#pragma once
#include "field/bn254.cuh"

namespace pm {

struct G1Affine {
    Fp x, y;
    PM_HD bool is_identity() const { return x.is_zero() && y.is_zero(); }
    static PM_HD G1Affine identity() {
        G1Affine r;
        r.x = Fp::zero();
        r.y = Fp::zero();
        return r;
    }
    PM_HD G1Affine neg() const {
        G1Affine r;
        r.x = x;
        r.y = Fp::neg(y);
        return r;
    }
};

struct G1Jacobian {
    Fp X, Y, Z;
    PM_HD bool is_identity() const { return Z.is_zero(); }
    static PM_HD G1Jacobian identity() {
        G1Jacobian r;
        r.X = Fp::one();
        r.Y = Fp::one();
        r.Z = Fp::zero();
        return r;
    }
    static PM_HD G1Jacobian from_affine(const G1Affine& a) {
        if (a.is_identity()) return identity();
        G1Jacobian r;
        r.X = a.x;
        r.Y = a.y;
        r.Z = Fp::one();
        return r;
    }

    static PM_HD_CALL G1Jacobian dbl(const G1Jacobian& p) {
        if (p.is_identity()) return p;
        Fp A = Fp::sqr(p.X);
        Fp B = Fp::sqr(p.Y);
        Fp C = Fp::sqr(B);
        Fp t = Fp::sqr(Fp::add(p.X, B));
        Fp D = Fp::dbl(Fp::sub(Fp::sub(t, A), C));
        Fp E = Fp::add(Fp::dbl(A), A);
        Fp F = Fp::sqr(E);
        G1Jacobian r;
        r.X = Fp::sub(F, Fp::dbl(D));
        Fp C8 = Fp::dbl(Fp::dbl(Fp::dbl(C)));
        r.Y = Fp::sub(Fp::mul(E, Fp::sub(D, r.X)), C8);
        r.Z = Fp::dbl(Fp::mul(p.Y, p.Z));
        return r;
    }

    static PM_HD_CALL G1Jacobian add(const G1Jacobian& p, const G1Jacobian& q) {
        if (p.is_identity()) return q;
        if (q.is_identity()) return p;
        Fp Z1Z1 = Fp::sqr(p.Z);
        Fp Z2Z2 = Fp::sqr(q.Z);
        Fp U1 = Fp::mul(p.X, Z2Z2);
        Fp U2 = Fp::mul(q.X, Z1Z1);
        Fp S1 = Fp::mul(Fp::mul(p.Y, q.Z), Z2Z2);
        Fp S2 = Fp::mul(Fp::mul(q.Y, p.Z), Z1Z1);
        Fp H = Fp::sub(U2, U1);
        Fp rr = Fp::dbl(Fp::sub(S2, S1));
        if (H.is_zero()) {
            if (rr.is_zero()) return dbl(p);
            return identity();
        }
        Fp I = Fp::sqr(Fp::dbl(H));
        Fp J = Fp::mul(H, I);
        Fp V = Fp::mul(U1, I);
        G1Jacobian r;
        r.X = Fp::sub(Fp::sub(Fp::sqr(rr), J), Fp::dbl(V));
        r.Y = Fp::sub(Fp::mul(rr, Fp::sub(V, r.X)), Fp::dbl(Fp::mul(S1, J)));
        Fp zz = Fp::sqr(Fp::add(p.Z, q.Z));
        r.Z = Fp::mul(Fp::sub(Fp::sub(zz, Z1Z1), Z2Z2), H);
        return r;
    }

    static PM_HD_CALL G1Jacobian add_mixed(const G1Jacobian& p, const G1Affine& q) {
        if (q.is_identity()) return p;
        if (p.is_identity()) return from_affine(q);
        Fp Z1Z1 = Fp::sqr(p.Z);
        Fp U2 = Fp::mul(q.x, Z1Z1);
        Fp S2 = Fp::mul(Fp::mul(q.y, p.Z), Z1Z1);
        Fp H = Fp::sub(U2, p.X);
        Fp rr = Fp::dbl(Fp::sub(S2, p.Y));
        if (H.is_zero()) {
            if (rr.is_zero()) return dbl(p);
            return identity();
        }
        Fp HH = Fp::sqr(H);
        Fp I = Fp::dbl(Fp::dbl(HH));
        Fp J = Fp::mul(H, I);
        Fp V = Fp::mul(p.X, I);
        G1Jacobian r;
        r.X = Fp::sub(Fp::sub(Fp::sqr(rr), J), Fp::dbl(V));
        r.Y = Fp::sub(Fp::mul(rr, Fp::sub(V, r.X)), Fp::dbl(Fp::mul(p.Y, J)));
        r.Z = Fp::sub(Fp::sub(Fp::sqr(Fp::add(p.Z, H)), Z1Z1), HH);
        return r;
    }

    PM_HD_CALL G1Affine to_affine() const {
        if (is_identity()) return G1Affine::identity();
        Fp zi = Fp::inverse(Z);
        Fp zi2 = Fp::sqr(zi);
        G1Affine a;
        a.x = Fp::mul(X, zi2);
        a.y = Fp::mul(Y, Fp::mul(zi2, zi));
        return a;
    }
};

struct G1Xyzz {
    Fp X, Y, ZZ, ZZZ;
    PM_HD bool is_identity() const { return ZZ.is_zero(); }
    static PM_HD G1Xyzz identity() {
        G1Xyzz r;
        r.X = Fp::one();
        r.Y = Fp::one();
        r.ZZ = Fp::zero();
        r.ZZZ = Fp::zero();
        return r;
    }
    static PM_HD G1Xyzz from_affine(const G1Affine& a) {
        if (a.is_identity()) return identity();
        G1Xyzz r;
        r.X = a.x;
        r.Y = a.y;
        r.ZZ = Fp::one();
        r.ZZZ = Fp::one();
        return r;
    }

    // 2 * affine point (mdbl-2008-s-1).
    static PM_HD_CALL G1Xyzz dbl_affine(const G1Affine& a) {
        if (a.is_identity()) return identity();
        Fp U = Fp::dbl(a.y);
        Fp V = Fp::sqr(U);
        Fp W = Fp::mul(U, V);
        Fp S = Fp::mul(a.x, V);
        Fp xx = Fp::sqr(a.x);
        Fp M = Fp::add(Fp::dbl(xx), xx);
        G1Xyzz r;
        r.X = Fp::sub(Fp::sqr(M), Fp::dbl(S));
        r.Y = Fp::sub(Fp::mul(M, Fp::sub(S, r.X)), Fp::mul(W, a.y));
        r.ZZ = V;
        r.ZZZ = W;
        return r;
    }

    // dbl-2008-s-1
    static PM_HD_CALL G1Xyzz dbl(const G1Xyzz& p) {
        if (p.is_identity()) return p;
        Fp U = Fp::dbl(p.Y);
        Fp V = Fp::sqr(U);
        Fp W = Fp::mul(U, V);
        Fp S = Fp::mul(p.X, V);
        Fp xx = Fp::sqr(p.X);
        Fp M = Fp::add(Fp::dbl(xx), xx);
        G1Xyzz r;
        r.X = Fp::sub(Fp::sqr(M), Fp::dbl(S));
        r.Y = Fp::sub(Fp::mul(M, Fp::sub(S, r.X)), Fp::mul(W, p.Y));
        r.ZZ = Fp::mul(V, p.ZZ);
        r.ZZZ = Fp::mul(W, p.ZZZ);
        return r;
    }

    // madd-2008-s: p + affine q.
    static PM_HD_CALL G1Xyzz add_mixed(const G1Xyzz& p, const G1Affine& q) {
        if (q.is_identity()) return p;
        if (p.is_identity()) return from_affine(q);
        Fp U2 = Fp::mul(q.x, p.ZZ);
        Fp S2 = Fp::mul(q.y, p.ZZZ);
        Fp P = Fp::sub(U2, p.X);
        Fp R = Fp::sub(S2, p.Y);
        if (P.is_zero()) {
            if (R.is_zero()) return dbl_affine(q);
            return identity();
        }
        Fp PP = Fp::sqr(P);
        Fp PPP = Fp::mul(P, PP);
        Fp Q = Fp::mul(p.X, PP);
        G1Xyzz r;
        r.X = Fp::sub(Fp::sub(Fp::sqr(R), PPP), Fp::dbl(Q));
        r.Y = Fp::sub(Fp::mul(R, Fp::sub(Q, r.X)), Fp::mul(p.Y, PPP));
        r.ZZ = Fp::mul(p.ZZ, PP);
        r.ZZZ = Fp::mul(p.ZZZ, PPP);
        return r;
    }

    // add-2008-s
    static PM_HD_CALL G1Xyzz add(const G1Xyzz& p, const G1Xyzz& q) {
        if (p.is_identity()) return q;
        if (q.is_identity()) return p;
        Fp U1 = Fp::mul(p.X, q.ZZ);
        Fp U2 = Fp::mul(q.X, p.ZZ);
        Fp S1 = Fp::mul(p.Y, q.ZZZ);
        Fp S2 = Fp::mul(q.Y, p.ZZZ);
        Fp P = Fp::sub(U2, U1);
        Fp R = Fp::sub(S2, S1);
        if (P.is_zero()) {
            if (R.is_zero()) return dbl(p);
            return identity();
        }
        Fp PP = Fp::sqr(P);
        Fp PPP = Fp::mul(P, PP);
        Fp Q = Fp::mul(U1, PP);
        G1Xyzz r;
        r.X = Fp::sub(Fp::sub(Fp::sqr(R), PPP), Fp::dbl(Q));
        r.Y = Fp::sub(Fp::mul(R, Fp::sub(Q, r.X)), Fp::mul(S1, PPP));
        r.ZZ = Fp::mul(Fp::mul(p.ZZ, q.ZZ), PP);
        r.ZZZ = Fp::mul(Fp::mul(p.ZZZ, q.ZZZ), PPP);
        return r;
    }

    PM_HD_CALL G1Affine to_affine() const {
        if (is_identity()) return G1Affine::identity();
        G1Affine a;
        a.x = Fp::mul(X, Fp::inverse(ZZ));
        a.y = Fp::mul(Y, Fp::inverse(ZZZ));
        return a;
    }
};

} // namespace pm
