//! Signed-digit (Booth) Pippenger with batch-affine bucket accumulation.
//!
//! Per window: every scalar's digit is computed independently (Booth recoding, digits in
//! `[-2^(c-1), 2^(c-1)]`, so `2^(c-1)` buckets and free negation of affine points), point
//! indices are counting-sorted by bucket, the bases are gathered in that order (prefetched
//! ahead, from memory backed by huge pages where Linux allows), and each bucket is summed by
//! a tree of affine additions whose denominators are inverted together (Montgomery's trick)
//! across all the buckets of a cache-sized chunk. The bucket sums are folded by running
//! sums, also in batch-affine coordinates (many chains side by side), and the windows are
//! combined by Horner's rule. Windows run in parallel on rayon.

use ff::{Field, PrimeField};
use group::{prime::PrimeCurveAffine, Curve, Group};
use halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use rayon::prelude::*;

/// Below this many points a window is summed with projective mixed additions: the batch
/// inversions would not amortise.
const BATCH_AFFINE_MIN_POINTS: usize = 1 << 10;
/// Points gathered per batch-affine chunk (64 B each: about 1 MiB).
const CHUNK_POINTS: usize = 1 << 14;
/// A tree round with fewer pairs than this finishes the chunk in projective coordinates.
const MIN_PAIRS_PER_INVERSION: usize = 16;
/// Below this many scalars the MSM is a plain sum of scalar multiplications.
const TINY_MSM: usize = 8;

/// Bases as the CPU backend keeps them: the points plus a mask of identities, which are
/// skipped (they would break the affine formulas and contribute nothing).
pub(crate) struct CpuBases {
    points: Vec<G1Affine>,
    identity: Option<Vec<bool>>,
}

impl CpuBases {
    pub(crate) fn new(bases: &[G1Affine]) -> Self {
        let mask: Vec<bool> = bases
            .par_iter()
            .map(|p| bool::from(p.is_identity()))
            .collect();
        let identity = if mask.iter().any(|&b| b) {
            Some(mask)
        } else {
            None
        };
        Self {
            points: huge_page_copy(bases),
            identity,
        }
    }

    fn is_identity(&self, i: usize) -> bool {
        self.identity.as_ref().is_some_and(|m| m[i])
    }
}

/// A copy of `bases` in memory that Linux is asked to back with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)` before the first write). Every window gathers the bases in
/// bucket order, i.e. at random: with 4 KiB pages each of those reads of a large SRS also
/// misses the TLB. Where the kernel says no (THP off, other systems), it is a plain copy.
fn huge_page_copy(bases: &[G1Affine]) -> Vec<G1Affine> {
    let mut points: Vec<G1Affine> = Vec::with_capacity(bases.len());
    advise_huge_pages(points.spare_capacity_mut());
    points.extend_from_slice(bases);
    points
}

/// Below this size the bases fit the TLB's reach anyway.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages<T>(region: &mut [T]) {
    const PAGE: usize = 4096;
    let bytes = std::mem::size_of_val(region);
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    let start = region.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(PAGE);
    let len = (start + bytes).saturating_sub(aligned) / PAGE * PAGE;
    // SAFETY: [aligned, aligned + len) lies inside `region`, memory this function borrows
    // mutably and nothing else uses; MADV_HUGEPAGE only changes how the kernel backs the
    // pages (their contents and validity are unchanged), and a refusal is harmless.
    let _ = unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_region: &mut [T]) {}

/// Canonical little-endian 64-bit limbs of a scalar.
pub(crate) fn scalar_limbs(s: &Fr) -> [u64; 4] {
    let repr = s.to_repr();
    let bytes = repr.as_ref();
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(b);
    }
    limbs
}

/// `len` bits of `s` starting at bit `bit` (bits past 255 read as zero), `len <= 32`.
fn bits(s: &[u64; 4], bit: usize, len: usize) -> u64 {
    let limb = bit / 64;
    if limb >= 4 {
        return 0;
    }
    let off = bit % 64;
    let mut v = s[limb] >> off;
    if off + len > 64 && limb + 1 < 4 {
        v |= s[limb + 1] << (64 - off);
    }
    v & ((1u64 << len) - 1)
}

/// Booth digit of window `w` (width `c`): in `[-2^(c-1), 2^(c-1)]`, and
/// `sum_w digit_w * 2^(w c) = s` when `windows(c) * c >= 255`.
pub(crate) fn booth_digit(s: &[u64; 4], w: usize, c: usize) -> i64 {
    let t = if w == 0 {
        bits(s, 0, c) << 1
    } else {
        bits(s, w * c - 1, c + 1)
    };
    let top = (t >> c) & 1;
    ((t + 1) >> 1) as i64 - ((top as i64) << c)
}

/// Number of windows of width `c` that cover a 254-bit scalar with Booth digits.
pub(crate) fn num_windows(c: usize) -> usize {
    255usize.div_ceil(c)
}

/// Window size minimising the time of the windows as they run, `threads` at a time (at
/// most [`MODEL_MAX_THREADS`]): `ceil(windows / threads) * (points + bucket_cost *
/// buckets)`. The batch-affine bucket fold costs about 2 point additions per bucket; the
/// projective one of small MSMs about 4.5. Checked against `proofmill bench --msm-windows` on the 2-core VM (2026-11-26).
pub(crate) fn default_window(n: usize) -> usize {
    window_for(n, rayon::current_num_threads().clamp(1, MODEL_MAX_THREADS))
}

/// The window model counts at most this many threads. With more, "every window in one
/// round" would pick ever narrower windows, i.e. more windows and more total work, while
/// halo2 runs several commitments at once on the same pool.
const MODEL_MAX_THREADS: usize = 4;

fn window_for(n: usize, threads: usize) -> usize {
    let (per_point, per_bucket) = if n >= BATCH_AFFINE_MIN_POINTS {
        (1.0, 2.0)
    } else {
        (2.0, 4.5)
    };
    let mut best = (f64::INFINITY, 1usize);
    for c in 1..=20usize {
        let rounds = num_windows(c).div_ceil(threads) as f64;
        let cost = rounds * (n as f64 * per_point + per_bucket * (1u64 << (c - 1)) as f64);
        if cost < best.0 {
            best = (cost, c);
        }
    }
    best.1
}

pub(crate) fn msm(bases: &CpuBases, scalars: &[Fr], window: Option<u32>) -> G1 {
    msm_with(bases, scalars, window, super::simd_available())
}

/// [`msm`] with the vector additions on or off (on only where available).
fn msm_with(bases: &CpuBases, scalars: &[Fr], window: Option<u32>, simd: bool) -> G1 {
    let simd = simd && super::simd_available();
    let n = scalars.len();
    let points = &bases.points[..n];
    if n < TINY_MSM && window.is_none() {
        return points
            .iter()
            .zip(scalars)
            .fold(G1::identity(), |acc, (p, s)| acc + p * s);
    }
    let c = window.map_or_else(|| default_window(n), |c| c as usize);
    let limbs: Vec<[u64; 4]> = scalars.par_iter().map(scalar_limbs).collect();
    let windows = num_windows(c);
    let sums: Vec<G1> = (0..windows)
        .into_par_iter()
        .map(|w| {
            if n >= BATCH_AFFINE_MIN_POINTS {
                window_sum_batch_affine(bases, &limbs, w, c, simd)
            } else {
                window_sum_projective(bases, &limbs, w, c)
            }
        })
        .collect();
    let mut acc = G1::identity();
    for s in sums.iter().rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        acc += s;
    }
    acc
}

fn window_sum_projective(bases: &CpuBases, limbs: &[[u64; 4]], w: usize, c: usize) -> G1 {
    let mut buckets = vec![G1::identity(); 1 << (c - 1)];
    for (i, s) in limbs.iter().enumerate() {
        let d = booth_digit(s, w, c);
        if d == 0 || bases.is_identity(i) {
            continue;
        }
        let p = bases.points[i];
        let b = (d.unsigned_abs() - 1) as usize;
        if d > 0 {
            buckets[b] += p;
        } else {
            buckets[b] -= p;
        }
    }
    fold_buckets(buckets.iter().rev())
}

/// `sum_b (b+1) * bucket[b]` given the buckets from the highest down.
fn fold_buckets<'a>(buckets_desc: impl Iterator<Item = &'a G1>) -> G1 {
    let mut running = G1::identity();
    let mut total = G1::identity();
    for b in buckets_desc {
        running += b;
        total += running;
    }
    total
}

/// How many entries ahead the gather of a chunk's points asks for the point it will need.
const PREFETCH_AHEAD: usize = 16;

/// Asks the CPU to start loading `p` into cache (a hint: no effect on results).
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(p: &G1Affine) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no memory; SSE is part of x86-64's
    // baseline, so the instruction exists on every x86-64 CPU.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (p as *const G1Affine).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Point index with the digit's sign in the top bit.
const NEG: u32 = 1 << 31;

fn window_sum_batch_affine(
    bases: &CpuBases,
    limbs: &[[u64; 4]],
    w: usize,
    c: usize,
    simd: bool,
) -> G1 {
    let nb = 1usize << (c - 1);
    // Counting sort of point indices by bucket.
    let mut digits: Vec<u32> = Vec::with_capacity(limbs.len());
    let mut offsets = vec![0u32; nb + 1];
    for (i, s) in limbs.iter().enumerate() {
        let d = booth_digit(s, w, c);
        if d == 0 || bases.is_identity(i) {
            digits.push(0);
            continue;
        }
        let b = d.unsigned_abs() as u32; // bucket + 1
        offsets[b as usize] += 1;
        digits.push(if d < 0 { b | NEG } else { b });
    }
    let mut acc = 0u32;
    for o in offsets.iter_mut() {
        let count = *o;
        *o = acc;
        acc += count;
    }
    // offsets[b] = start of bucket b (0-based bucket index b-1 lives at offsets[b]..)
    let total = acc as usize;
    let mut sorted = vec![0u32; total];
    {
        let mut cursor = offsets.clone();
        for (i, &d) in digits.iter().enumerate() {
            if d == 0 {
                continue;
            }
            let b = (d & !NEG) as usize;
            sorted[cursor[b] as usize] = i as u32 | (d & NEG);
            cursor[b] += 1;
        }
    }
    drop(digits);
    // bucket j (0-based) occupies sorted[offsets[j+1] .. offsets[j+2]] (offsets[nb+1] = total)
    let start = |j: usize| offsets[j + 1] as usize;
    let end = |j: usize| {
        if j + 1 < nb {
            offsets[j + 2] as usize
        } else {
            total
        }
    };

    let mut pts: Vec<G1Affine> = Vec::with_capacity(CHUNK_POINTS);
    let mut segs: Vec<(u32, u32)> = Vec::new();
    let mut scratch = BatchScratch {
        simd,
        ..BatchScratch::default()
    };
    // Each bucket's sum, affine (None: the identity).
    let mut sums: Vec<Option<G1Affine>> = vec![None; nb];
    let mut hi = nb; // buckets [lo, hi) form the current chunk, processed from the top
    while hi > 0 {
        let mut lo = hi - 1;
        let chunk_end = end(hi - 1);
        while lo > 0 && chunk_end - start(lo - 1) <= CHUNK_POINTS {
            lo -= 1;
        }
        let chunk_start = start(lo);
        pts.clear();
        segs.clear();
        let chunk = &sorted[chunk_start..chunk_end];
        for (k, &e) in chunk.iter().enumerate() {
            if let Some(&ahead) = chunk.get(k + PREFETCH_AHEAD) {
                prefetch(&bases.points[(ahead & !NEG) as usize]);
            }
            let p = bases.points[(e & !NEG) as usize];
            pts.push(if e & NEG != 0 { -p } else { p });
        }
        for j in lo..hi {
            segs.push(((start(j) - chunk_start) as u32, (end(j) - start(j)) as u32));
        }
        reduce_segments(&mut pts, &mut segs, &mut scratch);
        for (j, &(s, len)) in (lo..hi).zip(segs.iter()) {
            let (s, len) = (s as usize, len as usize);
            sums[j] = match len {
                0 => None,
                1 => Some(pts[s]),
                // Rare: the last rounds were too small to pay for an inversion.
                _ => Some(
                    pts[s..s + len]
                        .iter()
                        .fold(G1::identity(), |a, p| a + p)
                        .to_affine(),
                )
                .filter(|p| !bool::from(p.is_identity())),
            };
        }
        hi = lo;
    }
    fold_buckets_batch_affine(&sums, &mut scratch)
}

/// Chains the bucket fold runs side by side (a power of two): more chains share each
/// inversion, fewer leave less to combine at the end.
const FOLD_CHAINS: usize = 128;

/// `sum_b (b+1) * sums[b]` for a power-of-two number of buckets, with batch-affine
/// additions. The buckets are cut into `K` chains of `L` consecutive buckets, each folded
/// from its top with a running sum (`running += B; total += running`), all chains in
/// lockstep so that each step's additions share one inversion. Chain `k` then holds
/// `total_k = sum_t (t+1) B_{kL+t}` and `running_k = sum_t B_{kL+t}`, and
/// `sum_b (b+1) B_b = sum_k total_k + L * sum_k k * running_k`; the last sum is one more
/// running sum, over the `K` chains.
fn fold_buckets_batch_affine(sums: &[Option<G1Affine>], scratch: &mut BatchScratch) -> G1 {
    let nb = sums.len();
    assert!(nb.is_power_of_two(), "Booth buckets come in powers of two");
    let chains = FOLD_CHAINS.min(nb);
    let len = nb / chains;
    let mut running: Vec<Option<G1Affine>> = vec![None; chains];
    let mut total: Vec<Option<G1Affine>> = vec![None; chains];
    let mut step: Vec<Option<G1Affine>> = vec![None; chains];
    for t in (0..len).rev() {
        for (k, s) in step.iter_mut().enumerate() {
            *s = sums[k * len + t];
        }
        batch_add_assign(&mut running, &step, scratch);
        batch_add_assign(&mut total, &running, scratch);
    }
    let mut acc = total.iter().flatten().fold(G1::identity(), |a, p| a + p);
    // sum_k k * running_k: the same fold over the chains (chain k is "bucket" k - 1).
    let chain_sums: Vec<G1> = running[1..]
        .iter()
        .map(|r| r.map_or(G1::identity(), G1::from))
        .collect();
    let mut weighted = fold_buckets(chain_sums.iter().rev());
    for _ in 0..len.trailing_zeros() {
        weighted = weighted.double();
    }
    acc += weighted;
    acc
}

/// `acc[i] += add[i]` for every `i`, in affine coordinates with one shared inversion;
/// `None` is the identity. Handles equal points (doubling) and opposite points.
fn batch_add_assign(
    acc: &mut [Option<G1Affine>],
    add: &[Option<G1Affine>],
    scratch: &mut BatchScratch,
) {
    scratch.denoms.clear();
    for (a, b) in acc.iter().zip(add) {
        if let (Some(a), Some(b)) = (a, b) {
            scratch.denoms.push(add_denominator(a, b));
        }
    }
    if !scratch.denoms.is_empty() {
        batch_invert(&mut scratch.denoms, &mut scratch.prefix);
    }
    let mut idx = 0;
    for (a, b) in acc.iter_mut().zip(add) {
        match (&*a, b) {
            (_, None) => {}
            (None, Some(b)) => *a = Some(*b),
            (Some(p), Some(q)) => {
                *a = affine_add(p, q, scratch.denoms[idx]);
                idx += 1;
            }
        }
    }
}

#[derive(Default)]
struct BatchScratch {
    denoms: Vec<Fq>,
    prefix: Vec<Fq>,
    /// Whether the bucket-tree rounds use the vector additions (AVX-512 IFMA).
    simd: bool,
    /// The next round's points, and the pairs that make them (vector rounds).
    next: Vec<G1Affine>,
    pairs: Vec<[u32; 3]>,
    #[cfg(target_arch = "x86_64")]
    vector: super::msm_ifma::PairScratch,
}

/// Sums each segment of `pts` in place with rounds of pairwise affine additions sharing one
/// inversion per round. Afterwards a segment has length 1 (its sum), 0 (identity), or more
/// when the rounds got too small to pay for an inversion (the caller adds those up).
fn reduce_segments(pts: &mut Vec<G1Affine>, segs: &mut [(u32, u32)], scratch: &mut BatchScratch) {
    loop {
        #[cfg(target_arch = "x86_64")]
        if scratch.simd {
            let pairs: usize = segs.iter().map(|&(_, len)| len as usize / 2).sum();
            if pairs >= super::msm_ifma::MIN_PAIRS {
                vector_round(pts, segs, scratch);
                continue;
            }
        }
        scratch.denoms.clear();
        for &(s, len) in segs.iter() {
            let s = s as usize;
            for k in 0..(len as usize) / 2 {
                scratch
                    .denoms
                    .push(add_denominator(&pts[s + 2 * k], &pts[s + 2 * k + 1]));
            }
        }
        if scratch.denoms.len() < MIN_PAIRS_PER_INVERSION {
            return;
        }
        batch_invert(&mut scratch.denoms, &mut scratch.prefix);
        let mut idx = 0;
        for seg in segs.iter_mut() {
            let s = seg.0 as usize;
            let len = seg.1 as usize;
            if len < 2 {
                continue;
            }
            let mut out = 0;
            for k in 0..len / 2 {
                let sum = affine_add(&pts[s + 2 * k], &pts[s + 2 * k + 1], scratch.denoms[idx]);
                idx += 1;
                if let Some(sum) = sum {
                    pts[s + out] = sum; // an identity is dropped from the segment
                    out += 1;
                }
            }
            if len % 2 == 1 {
                pts[s + out] = pts[s + len - 1];
                out += 1;
            }
            seg.1 = out as u32;
        }
    }
}

/// One round of [`reduce_segments`] with the vector additions: the pairs of every segment
/// are added into a new point list (doublings and cancellations, which the vector formula
/// does not cover, on the spot), which then replaces `pts`.
#[cfg(target_arch = "x86_64")]
fn vector_round(pts: &mut Vec<G1Affine>, segs: &mut [(u32, u32)], scratch: &mut BatchScratch) {
    let next = &mut scratch.next;
    let pairs = &mut scratch.pairs;
    next.clear();
    pairs.clear();
    for seg in segs.iter_mut() {
        let (s, len) = (seg.0 as usize, seg.1 as usize);
        let start = next.len();
        for k in 0..len / 2 {
            let (a, b) = (&pts[s + 2 * k], &pts[s + 2 * k + 1]);
            if a.x != b.x {
                pairs.push([
                    (s + 2 * k) as u32,
                    (s + 2 * k + 1) as u32,
                    next.len() as u32,
                ]);
                next.push(*a); // overwritten by the sum
            } else if a.y == b.y {
                next.push(G1::from(*a).double().to_affine()); // never the identity: no 2-torsion
            } // else a = -b: the identity, dropped from the segment
        }
        if len % 2 == 1 {
            next.push(pts[s + len - 1]);
        }
        *seg = (start as u32, (next.len() - start) as u32);
    }
    super::msm_ifma::add_pairs(pts, pairs, next, &mut scratch.vector);
    std::mem::swap(pts, next);
}

/// The denominator whose inverse [`affine_add`] needs for `a + b` (neither the identity):
/// `b.x - a.x`, or `2 a.y` to double, or 1 when `a = -b` (no inverse is needed).
#[inline(always)]
fn add_denominator(a: &G1Affine, b: &G1Affine) -> Fq {
    if a.x != b.x {
        b.x - a.x
    } else if a.y == b.y {
        a.y.double()
    } else {
        Fq::ONE
    }
}

/// `a + b` (neither the identity) given `inv`, the inverse of [`add_denominator`]`(a, b)`;
/// `None` when the sum is the identity (`a = -b`).
#[inline(always)]
fn affine_add(a: &G1Affine, b: &G1Affine, inv: Fq) -> Option<G1Affine> {
    let lambda = if a.x != b.x {
        (b.y - a.y) * inv
    } else if a.y == b.y {
        let xx = a.x.square();
        (xx + xx.double()) * inv
    } else {
        return None;
    };
    let x3 = lambda.square() - a.x - b.x;
    let y3 = lambda * (a.x - x3) - a.y;
    Some(G1Affine { x: x3, y: y3 })
}

/// Replaces every (non-zero) element by its inverse with a single field inversion.
fn batch_invert(values: &mut [Fq], prefix: &mut Vec<Fq>) {
    prefix.clear();
    let mut acc = Fq::ONE;
    for v in values.iter() {
        prefix.push(acc);
        acc *= v;
    }
    // All denominators are non-zero by construction (distinct x, or 2y with y != 0 on a
    // prime-order curve, or the placeholder 1).
    let mut inv = acc.invert().unwrap_or(Fq::ZERO);
    for (v, p) in values.iter_mut().zip(prefix.iter()).rev() {
        let next = inv * *v;
        *v = inv * p;
        inv = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(k: u64) -> G1Affine {
        (G1Affine::generator() * Fr::from(k)).to_affine()
    }

    #[test]
    fn batch_add_handles_identity_doubling_and_cancellation() {
        let (p, q) = (point(3), point(5));
        let cases = [
            (None, None),
            (None, Some(p)),
            (Some(p), None),
            (Some(p), Some(q)),
            (Some(p), Some(p)),
            (Some(p), Some(-p)),
        ];
        let mut acc: Vec<Option<G1Affine>> = cases.iter().map(|c| c.0).collect();
        let add: Vec<Option<G1Affine>> = cases.iter().map(|c| c.1).collect();
        let mut scratch = BatchScratch::default();
        batch_add_assign(&mut acc, &add, &mut scratch);
        for ((a, b), got) in cases.iter().zip(&acc) {
            let as_g1 = |x: &Option<G1Affine>| x.map_or(G1::identity(), G1::from);
            let want = (as_g1(a) + as_g1(b)).to_affine();
            let want = (!bool::from(want.is_identity())).then_some(want);
            assert_eq!(*got, want, "{a:?} + {b:?}");
        }
    }

    #[test]
    fn batch_affine_fold_weights_each_bucket_by_its_index() {
        let mut scratch = BatchScratch::default();
        for nb in [1usize, 2, 8, 256, 1024] {
            // Empty buckets, repeated and opposite sums: every case of the chains' additions.
            let sums: Vec<Option<G1Affine>> = (0..nb)
                .map(|b| match b % 5 {
                    0 => None,
                    1 => Some(point(7)),
                    2 => Some(-point(7)),
                    _ => Some(point(b as u64 + 1)),
                })
                .collect();
            let want = sums.iter().enumerate().fold(G1::identity(), |acc, (b, s)| {
                acc + s.map_or(G1::identity(), |p| p * Fr::from(b as u64 + 1))
            });
            assert_eq!(
                fold_buckets_batch_affine(&sums, &mut scratch),
                want,
                "nb={nb}"
            );
        }
    }

    #[test]
    fn vector_and_scalar_bucket_trees_agree_with_doublings_and_cancellations() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let fresh: Vec<G1Affine> = (0..4096)
            .map(|_| (G1::generator() * Fr::random(&mut rng)).to_affine())
            .collect();
        let fresh_scalars: Vec<Fr> = (0..4096).map(|_| Fr::random(&mut rng)).collect();
        // Copies of bases with their scalars land in the same buckets as the originals
        // (doublings in the trees); negated copies cancel them.
        let mut points = fresh.clone();
        points.extend_from_slice(&fresh[..1024]);
        points.extend(fresh[1024..2048].iter().map(|p| -*p));
        let mut scalars = fresh_scalars.clone();
        scalars.extend_from_slice(&fresh_scalars[..1024]);
        scalars.extend_from_slice(&fresh_scalars[1024..2048]);
        // Neighbours P, P and P, -P with one scalar: adjacent in every bucket they are in,
        // so the first round of the trees pairs many of them.
        for i in 0..512 {
            let sign = if i % 2 == 0 { fresh[i] } else { -fresh[i] };
            points.extend([fresh[i], sign]);
            scalars.extend([fresh_scalars[i], fresh_scalars[i]]);
        }
        let bases = CpuBases::new(&points);
        let want = halo2curves::msm::msm_best(&scalars, &points);
        for window in [None, Some(8), Some(13)] {
            assert_eq!(
                msm_with(&bases, &scalars, window, false),
                want,
                "scalar {window:?}"
            );
            assert_eq!(
                msm_with(&bases, &scalars, window, true),
                want,
                "vector {window:?}"
            );
        }
    }

    #[test]
    fn window_model_favours_whole_rounds_of_windows() {
        // Two threads: windows run two at a time.
        assert_eq!(window_for(1 << 16, 2), 13);
        assert_eq!(window_for(1 << 20, 2), 16);
        // Small MSMs (projective fold) keep narrow windows.
        assert!(window_for(100, 2) <= 8);
        // Every size gets a usable width.
        for log in 0..=24 {
            assert!((1..=20).contains(&window_for(1 << log, MODEL_MAX_THREADS)));
        }
        // Many threads never push large MSMs to narrow windows (the model caps them).
        assert_eq!(window_for(1 << 20, MODEL_MAX_THREADS), 16);
        assert_eq!(window_for(1 << 16, MODEL_MAX_THREADS), 13);
    }
}
