//! Batch-affine point additions on AVX-512 IFMA, eight per vector.
//!
//! One call adds many independent pairs of affine points `(x1, y1) + (x2, y2)` with
//! `x1 != x2`, as the MSM's bucket trees do round after round. Each vector holds eight
//! pairs (one per lane, gathered from wherever the points are); the slopes' denominators
//! `x2 - x1` are inverted together by Montgomery's trick run as [`CHAINS`] independent
//! chains of vectors (so that consecutive multiplications do not wait for each other),
//! whose `8 * CHAINS` lane products are inverted by the scalar code with one field
//! inversion. Then `lambda = (y2 - y1) / (x2 - x1)`, `x3 = lambda^2 - x1 - x2`,
//! `y3 = lambda (x1 - x3) - y1`: six vector multiplications per eight additions in all.
//!
//! Values are in halo2's Montgomery form (`x 2^256`) in memory; a value times 16 (a shift)
//! is the same element in the multiplier's form (`x 2^260`), and the product of one of each
//! is again in halo2's form. Every intermediate stays below `32q < 2^260` (bounds at each
//! step below), and what is stored is reduced to canonical.

#![allow(unsafe_code)] // std::arch intrinsics and raw limb access, each justified below

use std::arch::x86_64::*;
use std::mem::{align_of, offset_of, size_of};

use ff::Field;
use halo2curves::bn256::{Fq, G1Affine};

use super::ifma::{
    available, load_words, mont, reduce32, splat5, store_words, sub_lazy, times16, to52, FqMod, V,
};
use crate::limbs::{from_limbs, limbs};

/// Independent inversion chains (vectors of eight) run side by side.
const CHAINS: usize = 4;
/// Below this many pairs a round is left to the scalar code: the vector batch would be
/// mostly its fixed cost (the lane inversions).
pub(super) const MIN_PAIRS: usize = 64;

const _: () =
    assert!(size_of::<G1Affine>() == 64 && align_of::<G1Affine>() == 8 && size_of::<Fq>() == 32);
/// Word offsets of the coordinates inside a point (the struct's field order is the
/// compiler's choice, so it is asked).
const X_WORD: i64 = (offset_of!(G1Affine, x) / 8) as i64;
const Y_WORD: i64 = (offset_of!(G1Affine, y) / 8) as i64;
const POINT_WORDS: i64 = (size_of::<G1Affine>() / 8) as i64;

/// Buffers one call's vectors live in (kept between calls).
#[derive(Default)]
pub(super) struct PairScratch {
    denominators: Vec<V>,
    inverses: Vec<V>,
}

/// `out[dst] = pts[a] + pts[b]` for every `[a, b, dst]` in `pairs`. No pair may have
/// `pts[a].x == pts[b].x` (doublings and cancellations are the caller's), neither point is
/// the identity, and every index must be in range (checked).
pub(super) fn add_pairs(
    pts: &[G1Affine],
    pairs: &[[u32; 3]],
    out: &mut [G1Affine],
    scratch: &mut PairScratch,
) {
    assert!(available(), "vector point additions need AVX-512 IFMA");
    for &[a, b, dst] in pairs {
        assert!((a as usize) < pts.len() && (b as usize) < pts.len());
        assert!((dst as usize) < out.len());
        debug_assert!(pts[a as usize].x != pts[b as usize].x);
    }
    if pairs.is_empty() {
        return;
    }
    // SAFETY: the CPU features were checked by available(); every index is in range.
    unsafe { add_pairs_ifma(pts, pairs, out, scratch) }
}

/// Lane offsets (in words) of coordinate `word` of point `pair[which]` for each pair of
/// `group` (at most eight; missing lanes repeat the first pair).
#[inline]
#[target_feature(enable = "avx512f")]
fn lane_offsets(group: &[[u32; 3]], which: usize, word: i64) -> __m512i {
    let at = |b: usize| group.get(b).unwrap_or(&group[0])[which] as i64 * POINT_WORDS + word;
    _mm512_set_epi64(at(7), at(6), at(5), at(4), at(3), at(2), at(1), at(0))
}

#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn add_pairs_ifma(
    pts: &[G1Affine],
    pairs: &[[u32; 3]],
    out: &mut [G1Affine],
    scratch: &mut PairScratch,
) {
    let groups = pairs.len().div_ceil(8);
    let src = pts.as_ptr().cast::<i64>();
    // 2^260 mod q: one, in the multiplier's form.
    let one = splat5(&to52(limbs(&Fq::from(16))));

    // Forward: d = 16 (x2 - x1 + 4q) < 80q (the denominator, multiplier form); the
    // exclusive prefix product of its chain is kept, the chain's product advances.
    // Chain products stay below 19q: B' < B 80q / 2^260 + q with 2^260 / q > 84.
    scratch.denominators.clear();
    scratch.inverses.clear();
    let mut acc = [one; CHAINS];
    for (g, group) in pairs.chunks(8).enumerate() {
        // SAFETY: the indices are in range (checked by add_pairs), so each lane reads the
        // four words of a coordinate of a point of `pts`.
        let (x1, x2) = unsafe {
            (
                load_words(src, lane_offsets(group, 0, X_WORD)),
                load_words(src, lane_offsets(group, 1, X_WORD)),
            )
        };
        let d = times16(&sub_lazy::<FqMod>(&x2, &x1));
        let c = g % CHAINS;
        scratch.inverses.push(acc[c]);
        acc[c] = mont::<FqMod>(&acc[c], &d);
        scratch.denominators.push(d);
    }

    // The 8 * CHAINS lane products, canonical: stored limbs r = P 2^260, i.e. the Fq
    // element P * 16. Its inverse times 256 has stored limbs P^-1 2^260: the inverse in
    // the multiplier form. All are inverted with one field inversion.
    let mut words = [0i64; 4 * 8 * CHAINS];
    let lane_words = _mm512_set_epi64(28, 24, 20, 16, 12, 8, 4, 0);
    for (c, a) in acc.iter().enumerate() {
        // SAFETY: lane b writes words 32 c + 4 b .. + 4 of `words` (within its 128); the
        // value is canonical (below q) and below 2^256.
        unsafe {
            store_words(
                words.as_mut_ptr().add(32 * c),
                lane_words,
                &reduce32::<FqMod>(a),
            )
        };
    }
    let products: Vec<Fq> = words
        .chunks_exact(4)
        .map(|w| {
            from_limbs([w[0] as u64, w[1] as u64, w[2] as u64, w[3] as u64])
                .expect("reduce32 leaves every lane below q")
        })
        .collect();
    let inverses = batch_invert(&products);
    let scale = Fq::from(256);
    for (w, inv) in words.chunks_exact_mut(4).zip(&inverses) {
        for (word, limb) in w.iter_mut().zip(limbs(&(*inv * scale))) {
            *word = limb as i64;
        }
    }
    let mut running = [one; CHAINS];
    for (c, r) in running.iter_mut().enumerate() {
        // SAFETY: reads the words just written for chain c's eight lanes.
        *r = unsafe { load_words(words.as_ptr().add(32 * c), lane_words) };
    }

    // Backward: inverse of d = prefix * running (below 5.3q), then running *= d (below 19q).
    for g in (0..groups).rev() {
        let c = g % CHAINS;
        let prefix = scratch.inverses[g];
        scratch.inverses[g] = mont::<FqMod>(&prefix, &running[c]);
        running[c] = mont::<FqMod>(&running[c], &scratch.denominators[g]);
    }

    // The additions; bounds in units of q.
    let dst = out.as_mut_ptr().cast::<i64>();
    for (g, group) in pairs.chunks(8).enumerate() {
        // SAFETY: as in the forward pass.
        let (x1, y1, x2, y2) = unsafe {
            (
                load_words(src, lane_offsets(group, 0, X_WORD)),
                load_words(src, lane_offsets(group, 0, Y_WORD)),
                load_words(src, lane_offsets(group, 1, X_WORD)),
                load_words(src, lane_offsets(group, 1, Y_WORD)),
            )
        };
        let dy = sub_lazy::<FqMod>(&y2, &y1); // < 5
        let lambda = mont::<FqMod>(&dy, &scratch.inverses[g]); // < 5 * 5.3 / 84 + 1 < 1.4
        let lambda16 = times16(&lambda); // < 22.4, multiplier form
        let lambda_sq = mont::<FqMod>(&lambda, &lambda16); // < 1.4 * 22.4 / 84 + 1 < 1.4
        let x3 = sub_lazy::<FqMod>(&sub_lazy::<FqMod>(&lambda_sq, &x1), &x2); // < 9.4
        let x3 = reduce32::<FqMod>(&x3);
        let e = sub_lazy::<FqMod>(&x1, &x3); // < 5
        let y3 = sub_lazy::<FqMod>(&mont::<FqMod>(&lambda16, &e), &y1); // < 22.4 * 5 / 84 + 1 + 4 < 6.4
        let y3 = reduce32::<FqMod>(&y3);
        // SAFETY: every dst index is in `out` (checked by add_pairs); the values are
        // canonical, so each lane writes a valid point's coordinates (a padded lane
        // repeats lane 0's pair and writes the same values to the same place).
        unsafe {
            store_words(dst, lane_offsets(group, 2, X_WORD), &x3);
            store_words(dst, lane_offsets(group, 2, Y_WORD), &y3);
        }
    }
}

/// Inverses of non-zero field elements, with one inversion.
fn batch_invert(values: &[Fq]) -> Vec<Fq> {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = Fq::ONE;
    for v in values {
        prefix.push(acc);
        acc *= v;
    }
    // Every value is a product of non-zero denominators (x1 != x2 for every pair).
    let mut inv = acc.invert().unwrap_or(Fq::ZERO);
    let mut out = vec![Fq::ZERO; values.len()];
    for ((o, v), p) in out.iter_mut().zip(values).zip(&prefix).rev() {
        *o = inv * p;
        inv *= v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use group::Curve;
    use halo2curves::bn256::{Fr, G1};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn vector_additions_match_the_group_law() {
        if !crate::cpu::simd_or_skip("IFMA point additions") {
            return;
        }
        assert!(
            available(),
            "IFMA is usable but Fq's memory is not its four limbs"
        );
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let pts: Vec<G1Affine> = (0..300)
            .map(|_| (G1::generator() * Fr::random(&mut rng)).to_affine())
            .collect();
        let mut scratch = PairScratch::default();
        // Sizes around the vector width and the chain count, unaligned tails included.
        for count in [1usize, 7, 8, 9, 31, 32, 33, 100, 149] {
            let pairs: Vec<[u32; 3]> = (0..count)
                .map(|k| {
                    let a = rng.gen_range(0..pts.len());
                    let mut b = rng.gen_range(0..pts.len());
                    while pts[b].x == pts[a].x {
                        b = rng.gen_range(0..pts.len());
                    }
                    [a as u32, b as u32, k as u32]
                })
                .collect();
            let mut out = vec![G1Affine::generator(); count];
            add_pairs(&pts, &pairs, &mut out, &mut scratch);
            for (k, &[a, b, _]) in pairs.iter().enumerate() {
                let want = (G1::from(pts[a as usize]) + pts[b as usize]).to_affine();
                assert_eq!(out[k], want, "count {count}, pair {k}");
            }
        }
    }
}
