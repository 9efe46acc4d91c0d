//! The development SRS: a public, fixed `tau` (from [`super::DEV_SRS_SEED`]), and fast
//! generation of its parameters: the powers of `tau` and the Lagrange values `L_i(tau)` in the
//! scalar field, then every point from one fixed-base multiplication of the generator with a
//! precomputed window table. Byte-for-byte what `ParamsKZG::setup` makes for the same `tau`.

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine, G2Affine, G1};
use halo2_base::halo2_proofs::halo2curves::ff::{BatchInvert, Field, FromUniformBytes, PrimeField};
use halo2_base::halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_base::halo2_proofs::halo2curves::group::{Curve, Group};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use rand::SeedableRng;
use rayon::prelude::*;
use sha2::{Digest, Sha512};

use super::DEV_SRS_SEED;

/// The development `tau`: SHA-512 of [`DEV_SRS_SEED`] reduced into the scalar field
/// (uniform up to a negligible bias), hence the same everywhere.
pub(super) fn dev_tau() -> Fr {
    let digest: [u8; 64] = Sha512::digest(DEV_SRS_SEED).into();
    Fr::from_uniform_bytes(&digest)
}

/// `tau_dev·G1`: the `g[1]` that marks a development SRS.
pub(super) fn dev_g1_tau() -> G1Affine {
    (G1Affine::generator() * dev_tau()).to_affine()
}

/// Builds `ParamsKZG` from its parts through the public `from_parts` (it needs an
/// existing instance as receiver, so a trivial k=0 one is made first).
pub(super) fn params_from_parts(
    k: u32,
    g: Vec<G1Affine>,
    g_lagrange: Vec<G1Affine>,
    g2: G2Affine,
    s_g2: G2Affine,
) -> ParamsKZG<Bn256> {
    let stub = ParamsKZG::<Bn256>::setup(0, rand_chacha::ChaCha20Rng::seed_from_u64(0));
    stub.from_parts(k, g, Some(g_lagrange), g2, s_g2)
}

/// The parameters `ParamsKZG::setup` would produce for this `tau`, fast.
///
/// `tau` must not be a `2^k`-th root of unity (the Lagrange formula divides by
/// `tau - omega^i`); the development `tau` is not one for any `k <= MAX_K` (tested).
pub(super) fn generate_params(k: u32, tau: Fr) -> ParamsKZG<Bn256> {
    let n = 1usize << k;
    let mut scalars = power_scalars(n, tau);
    scalars.extend(lagrange_scalars(k, tau));
    let mut g = fixed_base_g1(&scalars);
    drop(scalars);
    let g_lagrange = g.split_off(n);
    let g2 = G2Affine::generator();
    let s_g2 = (g2 * tau).to_affine();
    params_from_parts(k, g, g_lagrange, g2, s_g2)
}

/// Scalars per parallel task in the field computations.
pub(super) const SCALAR_CHUNK: usize = 1 << 12;

/// `[1, tau, tau^2, ..., tau^(n-1)]`.
pub(super) fn power_scalars(n: usize, tau: Fr) -> Vec<Fr> {
    let mut out = vec![Fr::ZERO; n];
    out.par_chunks_mut(SCALAR_CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut cur = tau.pow_vartime([(c * SCALAR_CHUNK) as u64]);
            for x in chunk {
                *x = cur;
                cur *= tau;
            }
        });
    out
}

/// `L_i(tau) = omega^i (tau^n - 1) / (n (tau - omega^i))` for the size-`2^k` domain, with
/// `omega` exactly as halo2's `ParamsKZG::setup` and `EvaluationDomain` pick it.
pub(super) fn lagrange_scalars(k: u32, tau: Fr) -> Vec<Fr> {
    let n = 1usize << k;
    let mut omega = Fr::ROOT_OF_UNITY;
    for _ in k..Fr::S {
        omega = omega.square();
    }
    let n_inv = Fr::TWO_INV.pow_vartime([u64::from(k)]);
    let multiplier = (tau.pow_vartime([n as u64]) - Fr::ONE) * n_inv;
    let mut out = vec![Fr::ZERO; n];
    out.par_chunks_mut(SCALAR_CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut w = omega.pow_vartime([(c * SCALAR_CHUNK) as u64]);
            let mut den = Vec::with_capacity(chunk.len());
            for x in chunk.iter_mut() {
                *x = w;
                den.push(tau - w);
                w *= omega;
            }
            den.iter_mut().batch_invert();
            for (x, d) in chunk.iter_mut().zip(den) {
                *x *= multiplier * d;
            }
        });
    out
}

/// Scalars per batched-affine block: big enough to amortise one field inversion per window.
pub(super) const MUL_BLOCK: usize = 1 << 10;

/// Number of signed `w`-bit windows that cover any scalar below 2^254 (with a carry bit).
pub(super) fn windows(w: usize) -> usize {
    255usize.div_ceil(w)
}

/// Window width minimising total point additions for `count` scalars: `count·windows`
/// batched affine additions plus about twice `windows·2^(w-1)` to build the table.
///
/// Capped at 13: one window's table is then 256 KiB and stays in L2 while a block walks
/// it. Measured on a 2-core EPYC (1 MiB L2), 2^21 points: w=13 4.2 s, w=14 4.3 s, w=15
/// 4.7 s, w=16 7.9 s (cache misses outweigh the fewer additions).
pub(super) fn pick_window(count: usize) -> usize {
    (2..=13usize)
        .min_by_key(|&w| count * windows(w) + 2 * windows(w) * (1usize << (w - 1)))
        .unwrap_or(8)
}

/// `[s_i]·G1` for every scalar, in affine form.
pub(super) fn fixed_base_g1(scalars: &[Fr]) -> Vec<G1Affine> {
    fixed_base_g1_with_window(scalars, pick_window(scalars.len()))
}

/// Fixed-base multiplication of the G1 generator: signed `w`-bit windows, a table of
/// `d·2^(w·j)·G` for `d = 1..=2^(w-1)` per window `j`, and accumulation in affine
/// coordinates with one batched inversion per block and window (about 6 field
/// multiplications per addition instead of ~13 for mixed projective addition, and no
/// final normalisation).
pub(super) fn fixed_base_g1_with_window(scalars: &[Fr], w: usize) -> Vec<G1Affine> {
    let table = WindowTable::new(w);
    let mut out = vec![G1Affine::identity(); scalars.len()];
    out.par_chunks_mut(MUL_BLOCK)
        .zip(scalars.par_chunks(MUL_BLOCK))
        .for_each(|(out, scalars)| table.mul_block(scalars, out));
    out
}

pub(super) struct WindowTable {
    w: usize,
    windows: usize,
    /// `2^(w-1)` points per window, window-major: entry `j·h + (d-1)` is `d·2^(w·j)·G`.
    points: Vec<G1Affine>,
}

impl WindowTable {
    fn new(w: usize) -> Self {
        let windows = windows(w);
        let h = 1usize << (w - 1);
        let mut bases = Vec::with_capacity(windows);
        let mut base = G1::generator();
        for _ in 0..windows {
            bases.push(base);
            for _ in 0..w {
                base = base.double();
            }
        }
        let mut proj = vec![G1::identity(); windows * h];
        proj.par_chunks_mut(h)
            .zip(bases.par_iter())
            .for_each(|(chunk, base)| {
                let mut acc = *base;
                for p in chunk {
                    *p = acc;
                    acc += base;
                }
            });
        let mut points = vec![G1Affine::identity(); windows * h];
        points
            .par_chunks_mut(h)
            .zip(proj.par_chunks(h))
            .for_each(|(a, p)| G1::batch_normalize(p, a));
        Self { w, windows, points }
    }

    /// Signed digits of `s`, least significant window first, each in `[-2^(w-1), 2^(w-1)]`.
    fn digits(&self, s: &Fr, out: &mut [i32]) {
        let repr = s.to_repr();
        let mut limbs = [0u64; 4];
        for (limb, bytes) in limbs.iter_mut().zip(repr.as_ref().chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            *limb = u64::from_le_bytes(b);
        }
        let w = self.w;
        let half = 1i64 << (w - 1);
        let mut carry = 0i64;
        for (j, d) in out.iter_mut().enumerate() {
            let start = j * w;
            let (limb, off) = (start / 64, start % 64);
            let mut v = limbs.get(limb).map_or(0, |l| l >> off);
            if off + w > 64 {
                v |= limbs.get(limb + 1).map_or(0, |l| l << (64 - off));
            }
            let v = (v & ((1u64 << w) - 1)) as i64 + carry;
            if v > half {
                *d = (v - (1i64 << w)) as i32;
                carry = 1;
            } else {
                *d = v as i32;
                carry = 0;
            }
        }
        debug_assert_eq!(carry, 0, "scalar does not fit the windows");
    }

    fn entry(&self, window: usize, digit: i32) -> G1Affine {
        let h = 1usize << (self.w - 1);
        let p = self.points[window * h + digit.unsigned_abs() as usize - 1];
        if digit < 0 {
            -p
        } else {
            p
        }
    }

    fn mul_block(&self, scalars: &[Fr], out: &mut [G1Affine]) {
        let m = self.windows;
        let mut digits = vec![0i32; scalars.len() * m];
        for (s, d) in scalars.iter().zip(digits.chunks_exact_mut(m)) {
            self.digits(s, d);
        }
        let mut is_id = vec![true; out.len()];
        let mut pending: Vec<(usize, G1Affine)> = Vec::with_capacity(out.len());
        let mut den: Vec<_> = Vec::with_capacity(out.len());
        for j in 0..m {
            pending.clear();
            den.clear();
            for (i, acc) in out.iter_mut().enumerate() {
                let d = digits[i * m + j];
                if d == 0 {
                    continue;
                }
                let p = self.entry(j, d);
                if is_id[i] {
                    *acc = p;
                    is_id[i] = false;
                } else if acc.x == p.x {
                    // Doubling or cancellation. Signed digits keep the partial sum below
                    // the next window's entry, so this needs a wrap-around mod r: kept for
                    // completeness, through the complete projective formula.
                    *acc = (acc.to_curve() + p).to_affine();
                    is_id[i] = bool::from(acc.is_identity());
                } else {
                    den.push(p.x - acc.x);
                    pending.push((i, p));
                }
            }
            den.iter_mut().batch_invert();
            for (&(i, p), inv) in pending.iter().zip(&den) {
                let acc = &mut out[i];
                let lambda = (p.y - acc.y) * inv;
                let x3 = lambda.square() - acc.x - p.x;
                let y3 = lambda * (acc.x - x3) - acc.y;
                acc.x = x3;
                acc.y = y3;
            }
        }
    }
}
