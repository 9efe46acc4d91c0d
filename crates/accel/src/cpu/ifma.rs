//! The four-step NTT's tiles on AVX-512 IFMA: eight transforms side by side, one per lane.
//!
//! A tile of eight columns (rows) is held as vectors of eight Fr elements, lane `b` being
//! column `b`, each element in five 52-bit limbs (`vpmadd52luq`/`vpmadd52huq` multiply
//! 52-bit limbs). All eight transforms of a tile run the same butterflies with the same
//! twiddle, so every stage is whole-vector arithmetic with a broadcast twiddle and no
//! shuffles.
//!
//! Arithmetic. The data keeps halo2's Montgomery form (`x * 2^256 mod p`); twiddles are
//! stored as `w * 2^260 mod p`, so the radix-2^52 Montgomery product (`a b / 2^260`) of the
//! two is again `x w` in halo2's form. The product is left unreduced: for `a < 2^260` and
//! `b < 2p` it is below `a b / 2^260 + p`. Butterflies are lazy (Harvey, "Faster
//! arithmetic for number-theoretic transforms", 2014): `X = x + t`, `Y = x + 4p - t` with
//! `t = w y < 2p`, so a value grows by at most `4p` per stage and after the 14 stages of the
//! largest sub-transform is below `57p < 2^260`, which five limbs hold. The last
//! multiplication of each element (the four-step twiddle, or the scale) brings it below
//! `1.7p`, and one conditional subtraction makes it canonical before it is stored.
//!
//! Only used where the CPU has AVX-512F and AVX-512 IFMA (checked at run time, and off with
//! `PROOFMILL_CPU_SIMD=off`); the results are bit for bit those of the scalar code.

// std::arch intrinsics and pointer loads and stores, each justified where it is used.
#![allow(unsafe_code)]
// Limb loops index several arrays of five at once; written as such they read as the maths.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use ff::Field;
use halo2curves::bn256::{Fq, Fr};
use rayon::prelude::*;

use super::ntt::{bit_reverse, stage_table, OutPtr};
use crate::limbs::{limbs, StoredField};

/// Lanes per vector, i.e. columns (rows) per tile.
pub(super) const LANES: usize = 8;
const MASK: u64 = (1 << 52) - 1;
/// A 254-bit prime modulus for the radix-2^52 arithmetic; everything else derives from
/// its four little-endian 64-bit limbs.
pub(super) trait Modulus {
    /// The modulus, little-endian 64-bit limbs (below 2^254).
    const P64: [u64; 4];
    /// The modulus in 52-bit limbs.
    const P: [u64; 5] = to52(Self::P64);
    /// `4p`, as five limbs each made at least `2^52 - 1` (except the top one) by borrowing
    /// from the limb above: subtracting a normalised value below `2p` limb by limb from it
    /// never goes negative.
    const FOUR_P_BIASED: [u64; 5] = biased(to52(shl(Self::P64, 2)));
    /// `-p^-1 mod 2^52`.
    const P_INV: u64 = neg_inv52(Self::P64[0]);
    /// `16p, 8p, 4p, 2p`, normalised (the first two do not fit 256 bits).
    const MULTIPLES: [[u64; 5]; 4] = [
        times52(Self::P, 16),
        times52(Self::P, 8),
        times52(Self::P, 4),
        times52(Self::P, 2),
    ];
}

/// BN254's scalar field Fr.
pub(super) struct FrMod;
impl Modulus for FrMod {
    const P64: [u64; 4] = <Fr as StoredField>::MODULUS_LIMBS;
}

/// BN254's base field Fq (the curve's coordinates).
pub(super) struct FqMod;
impl Modulus for FqMod {
    const P64: [u64; 4] = <Fq as StoredField>::MODULUS_LIMBS;
}

/// `w << k` for `0 < k < 64` (the caller keeps it below 2^256).
pub(super) const fn shl(w: [u64; 4], k: u32) -> [u64; 4] {
    [
        w[0] << k,
        (w[1] << k) | (w[0] >> (64 - k)),
        (w[2] << k) | (w[1] >> (64 - k)),
        (w[3] << k) | (w[2] >> (64 - k)),
    ]
}

/// `k p` in normalised 52-bit limbs, for `k p < 2^260` (16p does not fit 256 bits, so it
/// cannot come from [`shl`]).
const fn times52(p: [u64; 5], k: u64) -> [u64; 5] {
    let mut out = [0u64; 5];
    let mut carry = 0u64;
    let mut i = 0;
    while i < 5 {
        let v = p[i] * k + carry;
        out[i] = if i < 4 { v & MASK } else { v };
        carry = v >> 52;
        i += 1;
    }
    out
}

/// The same value with every limb but the top one raised by 2^52 (borrowed from above).
const fn biased(q: [u64; 5]) -> [u64; 5] {
    [
        q[0] + (1 << 52),
        q[1] + (1 << 52) - 1,
        q[2] + (1 << 52) - 1,
        q[3] + (1 << 52) - 1,
        q[4] - 1,
    ]
}

/// `-p0^-1 mod 2^52` for odd `p0`.
const fn neg_inv52(p0: u64) -> u64 {
    // Newton's iteration doubles the correct low bits each step: 1 -> 64 in six steps.
    let mut inv: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(p0.wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg() & MASK
}

/// 256 bits in four 64-bit limbs to five 52-bit limbs.
pub(super) const fn to52(w: [u64; 4]) -> [u64; 5] {
    [
        w[0] & MASK,
        ((w[0] >> 52) | (w[1] << 12)) & MASK,
        ((w[1] >> 40) | (w[2] << 24)) & MASK,
        ((w[2] >> 28) | (w[3] << 36)) & MASK,
        w[3] >> 16,
    ]
}

/// Whether the tiles run on AVX-512 IFMA here.
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var("PROOFMILL_CPU_SIMD").map_or(true, |v| v != "off")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512ifma")
            && crate::limbs::stored_as_limbs()
    })
}

/// `x` as a twiddle: `x * 2^260 mod p`, in 52-bit limbs.
fn twiddle_limbs(x: &Fr) -> [u64; 5] {
    to52(limbs(&(*x * Fr::from(16))))
}

/// The stage twiddles of [`stage_table`] as IFMA twiddles, by direction.
fn stage_table52(inverse: bool) -> &'static [[u64; 5]] {
    static TABLES: OnceLock<[Vec<[u64; 5]>; 2]> = OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        let convert = |inverse: bool| stage_table(inverse).iter().map(twiddle_limbs).collect();
        [convert(false), convert(true)]
    });
    &tables[usize::from(inverse)]
}

/// Eight field elements, limb `i` of lane `b` in `self.0[i]`.
#[derive(Clone, Copy)]
pub(super) struct V(pub(super) [__m512i; 5]);

#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn splat(x: u64) -> __m512i {
    _mm512_set1_epi64(x as i64)
}

#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn splat5(x: &[u64; 5]) -> V {
    V([
        splat(x[0]),
        splat(x[1]),
        splat(x[2]),
        splat(x[3]),
        splat(x[4]),
    ])
}

/// Carries every limb's excess into the next one (the value must be below 2^260).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn normalise(mut v: V) -> V {
    let mask = splat(MASK);
    for i in 0..4 {
        let carry = _mm512_srli_epi64::<52>(v.0[i]);
        v.0[i] = _mm512_and_si512(v.0[i], mask);
        v.0[i + 1] = _mm512_add_epi64(v.0[i + 1], carry);
    }
    v
}

/// Montgomery product `a b / 2^260` (normalised, below `a b / 2^260 + p`), for normalised
/// `a`, `b` below 2^260.
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) fn mont<M: Modulus>(a: &V, b: &V) -> V {
    let zero = _mm512_setzero_si512();
    let p = [
        splat(M::P[0]),
        splat(M::P[1]),
        splat(M::P[2]),
        splat(M::P[3]),
        splat(M::P[4]),
    ];
    let p_inv = splat(M::P_INV);
    let mut t = [zero; 6];
    for i in 0..5 {
        let bi = b.0[i];
        for j in 0..5 {
            t[j] = _mm512_madd52lo_epu64(t[j], a.0[j], bi);
            t[j + 1] = _mm512_madd52hi_epu64(t[j + 1], a.0[j], bi);
        }
        let m = _mm512_madd52lo_epu64(zero, t[0], p_inv);
        for j in 0..5 {
            t[j] = _mm512_madd52lo_epu64(t[j], m, p[j]);
            t[j + 1] = _mm512_madd52hi_epu64(t[j + 1], m, p[j]);
        }
        // The low 52 bits of t[0] are now zero: divide by 2^52.
        let carry = _mm512_srli_epi64::<52>(t[0]);
        t = [_mm512_add_epi64(t[1], carry), t[2], t[3], t[4], t[5], zero];
    }
    normalise(V([t[0], t[1], t[2], t[3], t[4]]))
}

/// `(x + y, x + 4p - y)`, normalised, for normalised `y < 2p`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn add_sub<M: Modulus>(x: &V, y: &V) -> (V, V) {
    let mut s = *x;
    for i in 0..5 {
        s.0[i] = _mm512_add_epi64(x.0[i], y.0[i]);
    }
    (normalise(s), sub_lazy::<M>(x, y))
}

/// `v mod p` for normalised `v < 2p`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn reduce_once<M: Modulus>(v: &V) -> V {
    cond_sub(v, &M::P)
}

/// Word offsets of eight elements `stride` elements apart.
#[inline]
#[target_feature(enable = "avx512f")]
fn offsets(stride: usize) -> __m512i {
    let s = (4 * stride) as i64;
    _mm512_set_epi64(7 * s, 6 * s, 5 * s, 4 * s, 3 * s, 2 * s, s, 0)
}

/// Loads eight Fr elements `stride` apart from `base`.
///
/// # Safety
/// `base.add(b * stride)` must be a valid Fr for `b < 8`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load(base: *const Fr, stride: usize) -> V {
    // SAFETY: lane b's four words are those of element b * stride, valid by the contract.
    unsafe { load_words(base.cast(), offsets(stride)) }
}

/// Stores eight canonical elements `stride` apart from `base`.
///
/// # Safety
/// `base.add(b * stride)` must be valid for writing an Fr for `b < 8`, and `v` canonical
/// (every lane below p), so that what is written is a valid Fr.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store(base: *mut Fr, stride: usize, v: &V) {
    // SAFETY: lane b's four words are those of element b * stride, valid by the contract.
    unsafe { store_words(base.cast(), offsets(stride), v) }
}

/// Loads eight 256-bit little-endian values, lane `b`'s four words at word offsets
/// `offs[b] + 0..4` from `base`, into 52-bit limbs.
///
/// # Safety
/// Those words must be readable.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn load_words(base: *const i64, offs: __m512i) -> V {
    let one = splat(1);
    let o1 = _mm512_add_epi64(offs, one);
    let o2 = _mm512_add_epi64(o1, one);
    let o3 = _mm512_add_epi64(o2, one);
    // SAFETY: each lane reads its words 0..4, readable by the contract.
    let w = unsafe {
        [
            _mm512_i64gather_epi64::<8>(offs, base),
            _mm512_i64gather_epi64::<8>(o1, base),
            _mm512_i64gather_epi64::<8>(o2, base),
            _mm512_i64gather_epi64::<8>(o3, base),
        ]
    };
    let mask = splat(MASK);
    V([
        _mm512_and_si512(w[0], mask),
        _mm512_and_si512(
            _mm512_or_si512(_mm512_srli_epi64::<52>(w[0]), _mm512_slli_epi64::<12>(w[1])),
            mask,
        ),
        _mm512_and_si512(
            _mm512_or_si512(_mm512_srli_epi64::<40>(w[1]), _mm512_slli_epi64::<24>(w[2])),
            mask,
        ),
        _mm512_and_si512(
            _mm512_or_si512(_mm512_srli_epi64::<28>(w[2]), _mm512_slli_epi64::<36>(w[3])),
            mask,
        ),
        _mm512_srli_epi64::<16>(w[3]),
    ])
}

/// Stores eight normalised values below 2^256 as four little-endian words each, lane
/// `b`'s at word offsets `offs[b] + 0..4` from `base`.
///
/// # Safety
/// Those words must be writable, and what is written must be valid where it lands
/// (canonical field elements, for memory that holds field elements).
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn store_words(base: *mut i64, offs: __m512i, v: &V) {
    let l = &v.0;
    let w = [
        _mm512_or_si512(l[0], _mm512_slli_epi64::<52>(l[1])),
        _mm512_or_si512(_mm512_srli_epi64::<12>(l[1]), _mm512_slli_epi64::<40>(l[2])),
        _mm512_or_si512(_mm512_srli_epi64::<24>(l[2]), _mm512_slli_epi64::<28>(l[3])),
        _mm512_or_si512(_mm512_srli_epi64::<36>(l[3]), _mm512_slli_epi64::<16>(l[4])),
    ];
    let mut o = offs;
    for word in w {
        // SAFETY: each lane writes its words 0..4, writable by the contract.
        unsafe { _mm512_i64scatter_epi64::<8>(base, o, word) };
        o = _mm512_add_epi64(o, splat(1));
    }
}

/// `x - y + 4p` (normalised), for normalised `y < 2p` and `x + 4p < 2^260`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn sub_lazy<M: Modulus>(x: &V, y: &V) -> V {
    let mut d = *x;
    for i in 0..5 {
        d.0[i] = _mm512_sub_epi64(_mm512_add_epi64(x.0[i], splat(M::FOUR_P_BIASED[i])), y.0[i]);
    }
    normalise(d)
}

/// `16 v` (normalised), for normalised `v < 2^256`: moves a value in halo2's Montgomery
/// form (`x 2^256`) to the multiplier form (`x 2^260`) without a multiplication.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn times16(v: &V) -> V {
    let mut d = *v;
    for i in 0..5 {
        d.0[i] = _mm512_slli_epi64::<4>(v.0[i]);
    }
    normalise(d)
}

/// `v - k` where that is not negative, else `v`, for normalised `v` and `k`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn cond_sub(v: &V, k: &[u64; 5]) -> V {
    let mask = splat(MASK);
    let mut d = *v;
    let mut borrow = _mm512_setzero_si512();
    for i in 0..5 {
        let x = _mm512_sub_epi64(_mm512_sub_epi64(v.0[i], splat(k[i])), borrow);
        borrow = _mm512_srli_epi64::<63>(x);
        d.0[i] = if i < 4 { _mm512_and_si512(x, mask) } else { x };
    }
    let keep = _mm512_cmplt_epi64_mask(d.0[4], _mm512_setzero_si512());
    let mut out = d;
    for i in 0..5 {
        out.0[i] = _mm512_mask_blend_epi64(keep, d.0[i], v.0[i]);
    }
    out
}

/// `v mod p` for normalised `v < 32p`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn reduce32<M: Modulus>(v: &V) -> V {
    let v = M::MULTIPLES.iter().fold(*v, |v, k| cond_sub(&v, k));
    cond_sub(&v, &M::P)
}

/// The DIT stages of eight transforms of `v.len() = 2^log` points each (one per lane),
/// input in bit-reversed order and canonical; output in natural order, normalised and
/// below `(1 + 4 log) p`.
#[target_feature(enable = "avx512f,avx512ifma")]
fn dit_stages(v: &mut [V], log: u32, table: &[[u64; 5]]) {
    for pair in v.chunks_exact_mut(2) {
        let (x, y) = add_sub::<FrMod>(&pair[0], &pair[1]);
        pair[0] = x;
        pair[1] = y;
    }
    for s in 1..log {
        let m = 1usize << s;
        let tw = &table[m..2 * m];
        for group in v.chunks_exact_mut(2 * m) {
            let (lo, hi) = group.split_at_mut(m);
            for ((x, y), w) in lo.iter_mut().zip(hi.iter_mut()).zip(tw) {
                let t = mont::<FrMod>(y, &splat5(w));
                let (a, b) = add_sub::<FrMod>(x, &t);
                *x = a;
                *y = b;
            }
        }
    }
}

/// The four-step transform of `a` (`R = 2^log_r` by `C = 2^log_c`, both at least 8), as
/// [`super::ntt`]'s scalar version computes it; `column_roots[j] = omega_n^j` for `j < C`
/// and `scale` multiplies every output. With `twist = Some(g)` the input is first taken as
/// `a[j] g^j` (a forward coset transform), folded into the column gathers.
pub(super) fn four_step(
    a: &mut [Fr],
    log_r: u32,
    log_c: u32,
    inverse: bool,
    column_roots: &[Fr],
    scale: Fr,
    twist: Option<Fr>,
) {
    assert!(available(), "the IFMA NTT needs AVX-512 IFMA");
    let (r, c) = (1usize << log_r, 1usize << log_c);
    let n = r * c;
    assert!(a.len() == n && r >= LANES && c >= LANES && column_roots.len() >= c);
    let table = stage_table52(inverse);
    let one = twiddle_limbs(&Fr::ONE);
    let scale = twiddle_limbs(&scale);
    // The twist's column factors g^j2 (j2 < C) and its row step g^C.
    let twist = twist.map(|g| {
        let mut cols = Vec::with_capacity(c);
        let mut cur = Fr::ONE;
        for _ in 0..c {
            cols.push(twiddle_limbs(&cur));
            cur *= g;
        }
        (cols, twiddle_limbs(&cur))
    });

    // Step 1: tiles of 8 columns; lane b of vector j1 is column j2_0 + b, row j1.
    let mut scratch: Vec<Fr> = Vec::with_capacity(n);
    {
        let src: &[Fr] = a;
        scratch.spare_capacity_mut()[..n]
            .par_chunks_mut(LANES * r)
            .enumerate()
            .for_each_init(
                || Vec::with_capacity(r),
                |local: &mut Vec<V>, (t, tile)| {
                    let j2_0 = t * LANES;
                    let roots: Vec<[u64; 5]> = column_roots[j2_0..j2_0 + LANES]
                        .iter()
                        .map(twiddle_limbs)
                        .collect();
                    let twist = twist
                        .as_ref()
                        .map(|(cols, step)| (&cols[j2_0..j2_0 + LANES], step));
                    // SAFETY: available() checked the CPU features; src has n = r c
                    // elements, and row j1's columns j2_0..j2_0+8 are in it; the tile
                    // holds 8 r elements (columns j2_0.. of the scratch, r apart).
                    unsafe {
                        column_tile(src, local, tile, j2_0, log_r, c, &roots, &one, table, twist)
                    };
                },
            );
    }
    // SAFETY: the tiles cover scratch[0..n] (8 r divides n) and each wrote all of its
    // elements (every lane at every k1 < r), canonical values, i.e. valid Frs.
    unsafe { scratch.set_len(n) };

    // Step 2: tiles of 8 rows k1_0..k1_0+8; lane b of vector j2 is row k1_0 + b.
    let out = OutPtr(a.as_mut_ptr());
    let scratch = &scratch;
    (0..r / LANES).into_par_iter().for_each_init(
        || Vec::with_capacity(c),
        |local: &mut Vec<V>, t| {
            // SAFETY: available() checked the CPU features; rows k1_0..k1_0+8 of every
            // column are in the scratch (k1_0 + 8 <= r); the tile writes a[k1 + R k2]
            // for its own k1 only (disjoint from the other tiles'), all below n, in `a`,
            // which this function borrows mutably and does not otherwise touch meanwhile.
            unsafe { row_tile(scratch, local, out, t * LANES, log_r, log_c, &scale, table) };
        },
    );
}

/// Step 1 for the 8 columns `j2_0..j2_0+8`: gather (bit-reversed; times `g^(j1 C + j2)`
/// when `twist` gives the lanes' `g^j2` and the row step `g^C`), transform, twiddle by
/// `omega_n^(j2 k1)`, store canonical into `tile` (column `b` at `tile[b r..]`).
///
/// # Safety
/// The CPU has AVX-512F and IFMA; `src` is the `r x c` matrix, `j2_0 + 8 <= c`, and `tile`
/// holds `8 r` elements.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn column_tile(
    src: &[Fr],
    local: &mut Vec<V>,
    tile: &mut [MaybeUninit<Fr>],
    j2_0: usize,
    log_r: u32,
    c: usize,
    roots: &[[u64; 5]],
    one: &[u64; 5],
    table: &[[u64; 5]],
    twist: Option<(&[[u64; 5]], &[u64; 5])>,
) {
    let r = 1usize << log_r;
    local.clear();
    local.resize(r, splat5(&[0; 5]));
    match twist {
        None => {
            for j1 in 0..r {
                // SAFETY: elements j1 c + j2_0 + b, b < 8, are in src (j2_0 + 8 <= c, j1 < r).
                local[bit_reverse(j1, log_r)] = unsafe { load(src.as_ptr().add(j1 * c + j2_0), 1) };
            }
        }
        Some((cols, row_step)) => {
            let cols = lanes_of(cols);
            let row_step = splat5(row_step);
            let mut row = splat5(one); // g^(j1 C), canonical
            for j1 in 0..r {
                // SAFETY: as above.
                let x = unsafe { load(src.as_ptr().add(j1 * c + j2_0), 1) };
                let factor = mont::<FrMod>(&cols, &row); // g^(j1 C + j2), below 1.1p
                local[bit_reverse(j1, log_r)] = reduce_once::<FrMod>(&mont::<FrMod>(&x, &factor));
                row = reduce_once::<FrMod>(&mont::<FrMod>(&row, &row_step));
            }
        }
    }
    dit_stages(local, log_r, table);
    // Lane b: cur = omega_n^((j2_0 + b) k1), advanced by step = omega_n^(j2_0 + b).
    let step = lanes_of(roots);
    let mut cur = splat5(one);
    let base = tile.as_mut_ptr().cast::<Fr>();
    for (k1, v) in local.iter().enumerate() {
        let x = reduce_once::<FrMod>(&mont::<FrMod>(v, &cur));
        // SAFETY: element b r + k1 of the tile, b < 8, k1 < r: inside its 8 r elements;
        // x is canonical.
        unsafe { store(base.add(k1), r, &x) };
        cur = reduce_once::<FrMod>(&mont::<FrMod>(&cur, &step));
    }
}

/// Eight values in multiplier form, one per lane.
#[target_feature(enable = "avx512f")]
fn lanes_of(values: &[[u64; 5]]) -> V {
    let mut lanes = [[0u64; 8]; 5];
    for (b, value) in values.iter().take(LANES).enumerate() {
        for i in 0..5 {
            lanes[i][b] = value[i];
        }
    }
    let mut v = splat5(&[0; 5]);
    for (limb, lane) in v.0.iter_mut().zip(&lanes) {
        // SAFETY: an unaligned load of 8 initialised u64s.
        *limb = unsafe { _mm512_loadu_si512(lane.as_ptr().cast()) };
    }
    v
}

/// Step 2 for the 8 rows `k1_0..k1_0+8`: gather from the scratch (bit-reversed),
/// transform, scale, store canonical to `a[k1 + R k2]`.
///
/// # Safety
/// The CPU has AVX-512F and IFMA; `scratch` is the `c x r` matrix of step 1, `k1_0 + 8 <=
/// r`, and `out` points at `r c` elements the caller lets this tile write at its indices.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn row_tile(
    scratch: &[Fr],
    local: &mut Vec<V>,
    out: OutPtr,
    k1_0: usize,
    log_r: u32,
    log_c: u32,
    scale: &[u64; 5],
    table: &[[u64; 5]],
) {
    let (r, c) = (1usize << log_r, 1usize << log_c);
    local.clear();
    local.resize(c, splat5(&[0; 5]));
    for j2 in 0..c {
        // SAFETY: elements j2 r + k1_0 + b, b < 8, are in the scratch.
        local[bit_reverse(j2, log_c)] = unsafe { load(scratch.as_ptr().add(j2 * r + k1_0), 1) };
    }
    dit_stages(local, log_c, table);
    let scale = splat5(scale);
    for (k2, v) in local.iter().enumerate() {
        let x = reduce_once::<FrMod>(&mont::<FrMod>(v, &scale));
        // SAFETY: indices k1_0 + b + r k2 (b < 8, k2 < c) are this tile's, below r c; x
        // is canonical.
        unsafe { store(out.at(k1_0 + r * k2), 1, &x) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn to_v(xs: &[Fr; 8]) -> V {
        // SAFETY: only called after available(); eight consecutive valid Frs.
        unsafe { load(xs.as_ptr(), 1) }
    }

    fn from_v(v: &V) -> [Fr; 8] {
        let mut out = [Fr::ZERO; 8];
        // SAFETY: only called after available(), with canonical v; eight Frs to write.
        unsafe { store(out.as_mut_ptr(), 1, v) };
        out
    }

    #[test]
    fn constants() {
        // p * (-p^-1) = -1 mod 2^52.
        check_constants::<FrMod>();
        check_constants::<FqMod>();
    }

    fn check_constants<M: Modulus>() {
        let (p64, p, p_inv, four_p_biased) = (M::P64, M::P, M::P_INV, M::FOUR_P_BIASED);
        assert_eq!(p[0].wrapping_mul(p_inv) & MASK, MASK);
        // The biased limbs carry out to exactly 4p's limbs.
        let four_p = to52(shl(p64, 2));
        let mut carry: i128 = 0;
        for i in 0..5 {
            let v = four_p_biased[i] as i128 + carry;
            let limb = if i < 4 { v & MASK as i128 } else { v };
            assert_eq!(limb, four_p[i] as i128, "limb {i}");
            carry = if i < 4 { v >> 52 } else { 0 };
        }
        // Limb by limb, the bias is at least any normalised value below 2p.
        // The multiples reduce32 subtracts, against the same multiples in 64-bit limbs
        // where those fit (k p < 2^256 for k <= 4).
        for k in [1u64, 2, 4] {
            let want = if k == 1 {
                p
            } else {
                to52(shl(p64, k.trailing_zeros()))
            };
            assert_eq!(times52(p, k), want, "{k} p");
        }
        let sixteen = times52(p, 16);
        assert!(sixteen.iter().take(4).all(|&l| l <= MASK));
        assert_eq!(sixteen[0], (p[0] << 4) & MASK);
        let two_p_top = to52(shl(p64, 1))[4];
        assert!(four_p_biased[..4].iter().all(|&l| l >= MASK));
        assert!(four_p_biased[4] >= two_p_top);
    }

    #[test]
    fn vector_arithmetic_matches_fr() {
        if !crate::cpu::simd_or_skip("IFMA field arithmetic") {
            return;
        }
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for round in 0..200 {
            let xs: [Fr; 8] = std::array::from_fn(|b| match (round + b) % 9 {
                0 => Fr::ZERO,
                1 => -Fr::ONE,
                _ => Fr::random(&mut rng),
            });
            let ws: [Fr; 8] = std::array::from_fn(|_| Fr::random(&mut rng));
            let w_limbs: [[u64; 5]; 8] = std::array::from_fn(|b| twiddle_limbs(&ws[b]));
            // SAFETY: available() was checked above.
            unsafe {
                let x = to_v(&xs);
                let w = V(std::array::from_fn(|i| {
                    _mm512_set_epi64(
                        w_limbs[7][i] as i64,
                        w_limbs[6][i] as i64,
                        w_limbs[5][i] as i64,
                        w_limbs[4][i] as i64,
                        w_limbs[3][i] as i64,
                        w_limbs[2][i] as i64,
                        w_limbs[1][i] as i64,
                        w_limbs[0][i] as i64,
                    )
                }));
                let prod = from_v(&reduce_once::<FrMod>(&mont::<FrMod>(&x, &w)));
                for b in 0..8 {
                    assert_eq!(prod[b], xs[b] * ws[b], "product, lane {b}");
                }
                // A value grown by 14 lazy stages (below 57p) still multiplies correctly.
                let mut big = x;
                let y = to_v(&ws);
                let mut want = xs;
                for _ in 0..14 {
                    let (_, d) = add_sub::<FrMod>(&big, &y);
                    big = d;
                    for b in 0..8 {
                        want[b] -= ws[b];
                    }
                }
                let got = from_v(&reduce_once::<FrMod>(&mont::<FrMod>(&big, &w)));
                for b in 0..8 {
                    assert_eq!(got[b], want[b] * ws[b], "lazy product, lane {b}");
                }
            }
        }
    }
}
