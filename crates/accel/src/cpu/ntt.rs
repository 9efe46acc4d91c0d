//! Fr NTT: in-cache radix-2 sub-transforms composed by the four-step (Bailey) algorithm.
//!
//! A transform of `n = R * C` points (`R = 2^ceil(log n / 2)`, `C = n / R`) is done as
//! `C` column transforms of size `R`, a twiddle `omega^(j2 k1)` per element, and `R` row
//! transforms of size `C` (Bailey, "FFTs in external or hierarchical memory", 1990). Each
//! sub-transform works on a contiguous buffer that fits the core's L2 cache: a tile of
//! several columns (or rows) is gathered from the large vector, with the bit-reversal
//! permutation folded into the gather, transformed there, and written out. The whole
//! transform therefore reads and writes the large vector twice (once through a scratch
//! vector), where a radix-2 transform streams it once per stage pair and permutes it at
//! random once. Tiles run in parallel on rayon. Sub-transforms take their twiddles from
//! one small per-stage table (`omega_{2m}^j` at index `m + j`), read in order, and skip the
//! multiplications by one.
//!
//! The result is exactly halo2's: the same `omega` for every size (each sub-transform's
//! root is a power of it), exact field arithmetic.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use ff::Field;
use halo2curves::bn256::Fr;
use rayon::prelude::*;

use crate::backend::omega_for;

/// Transforms of at most 2^DIRECT_MAX_LOG points are done in place in one piece.
const DIRECT_MAX_LOG: u32 = 10;
/// Largest sub-transform the stage tables serve: `ceil(28 / 2)`, i.e. every size the
/// backend accepts (2^28, [`crate::MAX_NTT_LOG`]).
const STAGE_TABLE_LOG: u32 = 14;
/// Elements a tile may hold (2^14 * 32 B = 512 KiB, half the L2 cache of the 2-core VM).
const TILE_ELEMS: usize = 1 << 14;
/// At most this many columns (rows) per tile, so that even small transforms make enough
/// tiles to keep every thread busy.
const TILE_MAX_WIDTH: usize = 16;
/// Elements per parallel task in the element-wise passes.
const TASK: usize = 1 << 11;

/// `omega^j` for `j < n/2` (omega inverted for the inverse transform): the table the CUDA
/// backend uploads.
pub(crate) fn twiddle_table(log_n: u32, inverse: bool) -> Vec<Fr> {
    let half = (1usize << log_n) / 2;
    powers(root(log_n, inverse), Fr::ONE, half)
}

/// The primitive 2^log_n-th root of unity halo2 uses, or its inverse.
fn root(log_n: u32, inverse: bool) -> Fr {
    let omega = omega_for(log_n);
    if inverse {
        omega.invert().unwrap_or(Fr::ONE) // a root of unity: never zero
    } else {
        omega
    }
}

/// `scale * g^i` for `i < len`, computed in parallel.
fn powers(g: Fr, scale: Fr, len: usize) -> Vec<Fr> {
    let mut out = vec![Fr::ZERO; len];
    out.par_chunks_mut(TASK).enumerate().for_each(|(k, chunk)| {
        let mut cur = scale * g.pow_vartime([(k * TASK) as u64]);
        for v in chunk {
            *v = cur;
            cur *= g;
        }
    });
    out
}

/// `a[i] *= scale * g^i`, in parallel.
fn distribute_powers(a: &mut [Fr], g: Fr, scale: Fr) {
    a.par_chunks_mut(TASK).enumerate().for_each(|(k, chunk)| {
        let mut cur = scale * g.pow_vartime([(k * TASK) as u64]);
        for v in chunk {
            *v *= cur;
            cur *= g;
        }
    });
}

/// Per-stage twiddles of every sub-transform up to 2^STAGE_TABLE_LOG points: index `m + j`
/// (`m` a power of two, `j < m`) holds `omega_{2m}^j`, the twiddles of the stage that
/// joins halves of size `m`, in the order that stage reads them.
struct StageTables {
    forward: Vec<Fr>,
    inverse: Vec<Fr>,
}

/// [`StageTables`] in one direction.
pub(super) fn stage_table(inverse: bool) -> &'static [Fr] {
    let tables = stage_tables();
    if inverse {
        &tables.inverse
    } else {
        &tables.forward
    }
}

fn stage_tables() -> &'static StageTables {
    static TABLES: OnceLock<StageTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let build = |inverse: bool| {
            let mut table = vec![Fr::ZERO; 1 << STAGE_TABLE_LOG];
            for s in 0..STAGE_TABLE_LOG {
                let m = 1usize << s;
                let w = root(s + 1, inverse);
                let mut cur = Fr::ONE;
                for t in &mut table[m..2 * m] {
                    *t = cur;
                    cur *= w;
                }
            }
            table
        };
        StageTables {
            forward: build(false),
            inverse: build(true),
        }
    })
}

/// Reverses the low `bits` bits of `i`.
#[inline(always)]
pub(super) fn bit_reverse(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

/// Reverses the order of the low `log_n` bits of every index.
fn bit_reverse_permute<T>(a: &mut [T], log_n: u32) {
    for i in 0..a.len() {
        let r = bit_reverse(i, log_n);
        if i < r {
            a.swap(i, r);
        }
    }
}

/// The radix-2 decimation-in-time stages of a transform of `a.len() = 2^log_n` points
/// whose input is already in bit-reversed order; the output is in natural order.
fn dit_stages(a: &mut [Fr], log_n: u32, table: &[Fr]) {
    if log_n == 0 {
        return;
    }
    for pair in a.chunks_exact_mut(2) {
        let t = pair[1];
        pair[1] = pair[0] - t;
        pair[0] += t;
    }
    for s in 1..log_n {
        let m = 1usize << s;
        let tw = &table[m..2 * m];
        for group in a.chunks_exact_mut(2 * m) {
            let (lo, hi) = group.split_at_mut(m);
            let t = hi[0];
            hi[0] = lo[0] - t;
            lo[0] += t;
            for ((x, y), w) in lo[1..].iter_mut().zip(&mut hi[1..]).zip(&tw[1..]) {
                let t = *y * w;
                *y = *x - t;
                *x += t;
            }
        }
    }
}

/// Everything one transform of the batch needs.
struct Plan<'t> {
    log_n: u32,
    inverse: bool,
    coset: Option<Fr>,
    /// Per-stage twiddles in the transform's direction.
    table: &'t [Fr],
    /// `omega_n^j` (or its inverse) for `j < C`: the four-step twiddles' bases.
    column_roots: Vec<Fr>,
    /// Whether the tiles run on AVX-512 IFMA.
    simd: bool,
}

impl Plan<'_> {
    /// Whether this transform runs as IFMA four-step tiles (which also fold a forward
    /// coset's twist into their gathers): sizes above the direct ones have `C >= 32`,
    /// more than the eight lanes a tile needs.
    fn ifma_tiles(&self) -> bool {
        cfg!(target_arch = "x86_64") && self.simd && self.log_n > DIRECT_MAX_LOG
    }
}

pub(crate) fn ntt_batch(values: &mut [Fr], log_n: u32, inverse: bool, coset: Option<Fr>) {
    ntt_batch_with(values, log_n, inverse, coset, super::simd_available());
}

/// [`ntt_batch`], with the IFMA tiles on or off (on only where available).
fn ntt_batch_with(values: &mut [Fr], log_n: u32, inverse: bool, coset: Option<Fr>, simd: bool) {
    let table = stage_table(inverse);
    let (_, log_c) = split(log_n);
    let column_roots = if log_n > DIRECT_MAX_LOG {
        powers(root(log_n, inverse), Fr::ONE, 1 << log_c)
    } else {
        Vec::new()
    };
    let plan = Plan {
        log_n,
        inverse,
        coset,
        table,
        column_roots,
        simd: simd && super::simd_available(),
    };
    let n = 1usize << log_n;
    values.par_chunks_mut(n).for_each(|a| transform(a, &plan));
}

/// `log R` and `log C` of the four-step split, `R >= C`.
fn split(log_n: u32) -> (u32, u32) {
    (log_n.div_ceil(2), log_n / 2)
}

fn transform(a: &mut [Fr], plan: &Plan) {
    let n = a.len();
    if !plan.inverse && !plan.ifma_tiles() {
        if let Some(g) = plan.coset {
            distribute_powers(a, g, Fr::ONE);
        }
    }
    let n_inv = || Fr::from(n as u64).invert().unwrap_or(Fr::ONE); // n is a power of two < r
    if plan.log_n <= DIRECT_MAX_LOG {
        bit_reverse_permute(a, plan.log_n);
        dit_stages(a, plan.log_n, plan.table);
        if plan.inverse && plan.coset.is_none() {
            let scale = n_inv();
            a.iter_mut().for_each(|v| *v *= scale);
        }
    } else {
        let scale = (plan.inverse && plan.coset.is_none()).then(n_inv);
        four_step(a, plan, scale);
    }
    if plan.inverse {
        if let Some(g) = plan.coset {
            distribute_powers(a, g.invert().unwrap_or(Fr::ONE), n_inv());
        }
    }
}

/// Columns (rows) per tile for sub-transforms of `len` points out of `count`.
fn tile_width(len: usize, count: usize) -> usize {
    (TILE_ELEMS / len)
        .clamp(1, TILE_MAX_WIDTH)
        .min(count / 8)
        .max(1)
}

/// A pointer the row tiles write their outputs through: each tile writes its own columns
/// of the output matrix, which are not one contiguous slice.
#[derive(Clone, Copy)]
pub(super) struct OutPtr(pub(super) *mut Fr);

impl OutPtr {
    /// The address of element `i` (a method, so that closures capture the whole `OutPtr`,
    /// which is `Send`, rather than its raw pointer field).
    pub(super) fn at(self, i: usize) -> *mut Fr {
        self.0.wrapping_add(i)
    }
}
// SAFETY: tiles write disjoint index sets (see `four_step`) and the owner of the slice
// waits for all of them (rayon's for_each returns after every task).
#[allow(unsafe_code)]
unsafe impl Send for OutPtr {}
#[allow(unsafe_code)]
unsafe impl Sync for OutPtr {}

/// The four-step transform of `a` (natural order in and out), each output multiplied by
/// `scale` when given.
///
/// With `j = j1 C + j2` and `k = k1 + R k2`:
/// `X[k] = sum_j2 omega_C^(j2 k2) * omega_n^(j2 k1) * sum_j1 x[j] omega_R^(j1 k1)`.
/// Step 1 transforms each column `j2` (stride `C` in `a`) into column `j2` of the scratch
/// (contiguous there) and applies `omega_n^(j2 k1)`; step 2 transforms each row `k1` of
/// that (stride `R` in the scratch) and writes element `k2` to `a[k1 + R k2]`.
#[allow(unsafe_code)]
fn four_step(a: &mut [Fr], plan: &Plan, scale: Option<Fr>) {
    let n = a.len();
    let (log_r, log_c) = split(plan.log_n);
    let (r, c) = (1usize << log_r, 1usize << log_c);
    let table = plan.table;
    #[cfg(target_arch = "x86_64")]
    if plan.ifma_tiles() {
        let scale = scale.unwrap_or(Fr::ONE);
        let twist = plan.coset.filter(|_| !plan.inverse);
        super::ifma::four_step(
            a,
            log_r,
            log_c,
            plan.inverse,
            &plan.column_roots,
            scale,
            twist,
        );
        return;
    }

    let mut scratch: Vec<Fr> = Vec::with_capacity(n);
    // Step 1: tiles of `b1` columns; column j2 of the scratch is scratch[j2 R .. (j2+1) R].
    let b1 = tile_width(r, c);
    {
        let src: &[Fr] = a;
        scratch.spare_capacity_mut()[..n]
            .par_chunks_mut(b1 * r)
            .enumerate()
            .for_each(|(t, tile)| {
                let j2_0 = t * b1;
                for j1 in 0..r {
                    let rev = bit_reverse(j1, log_r);
                    let row = &src[j1 * c + j2_0..j1 * c + j2_0 + b1];
                    for (b, v) in row.iter().enumerate() {
                        tile[b * r + rev] = MaybeUninit::new(*v);
                    }
                }
                // SAFETY: the loop above wrote every element of the tile (for each column
                // b, every position rev(j1) for j1 < r, a permutation of 0..r), and
                // MaybeUninit<Fr> has Fr's layout.
                let tile: &mut [Fr] =
                    unsafe { std::slice::from_raw_parts_mut(tile.as_mut_ptr().cast(), tile.len()) };
                for (b, col) in tile.chunks_exact_mut(r).enumerate() {
                    dit_stages(col, log_r, table);
                    let j2 = j2_0 + b;
                    if j2 != 0 {
                        let w = plan.column_roots[j2];
                        let mut cur = w;
                        for v in &mut col[1..] {
                            *v *= cur;
                            cur *= w;
                        }
                    }
                }
            });
    }
    // SAFETY: step 1's tiles cover scratch[0..n] (n is a multiple of b1 * r) and each
    // wrote all of its elements.
    unsafe { scratch.set_len(n) };

    // Step 2: tiles of `b2` rows, gathered from the scratch (stride R), transformed, and
    // written to a[k1 + R k2].
    let b2 = tile_width(c, r);
    let out = OutPtr(a.as_mut_ptr());
    let scratch = &scratch;
    (0..r / b2).into_par_iter().for_each_init(
        || vec![Fr::ZERO; b2 * c],
        |local, t| {
            let k1_0 = t * b2;
            for j2 in 0..c {
                let rev = bit_reverse(j2, log_c);
                let col = &scratch[j2 * r + k1_0..j2 * r + k1_0 + b2];
                for (b, v) in col.iter().enumerate() {
                    local[b * c + rev] = *v;
                }
            }
            for row in local.chunks_exact_mut(c) {
                dit_stages(row, log_c, table);
                if let Some(s) = scale {
                    row.iter_mut().for_each(|v| *v *= s);
                }
            }
            for k2 in 0..c {
                for b in 0..b2 {
                    // SAFETY: k1_0 + b < r and k2 < c, so the index is below n = r c, in
                    // `a`, which is borrowed mutably for this whole function and not
                    // otherwise accessed while the tiles run; tile t writes exactly the
                    // indices k1 + R k2 with k1 in [t b2, (t+1) b2), disjoint from every
                    // other tile's.
                    unsafe { *out.at(k1_0 + b + r * k2) = local[b * c + k2] };
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook O(n^2) DFT with halo2's omega.
    fn naive(input: &[Fr], log_n: u32, inverse: bool) -> Vec<Fr> {
        let n = input.len();
        let w = root(log_n, inverse);
        (0..n)
            .map(|k| {
                let wk = w.pow_vartime([k as u64]);
                let mut acc = Fr::ZERO;
                let mut cur = Fr::ONE;
                for x in input {
                    acc += *x * cur;
                    cur *= wk;
                }
                acc
            })
            .collect()
    }

    #[test]
    fn direct_and_four_step_match_the_definition() {
        // Sizes on both sides of DIRECT_MAX_LOG, even and odd (R = 2C) splits.
        for log_n in [0u32, 1, 2, 3, 7, 10, 11, 12] {
            let input: Vec<Fr> = (0..1u64 << log_n)
                .map(|i| Fr::from(i * i + 7 * i + 3))
                .collect();
            for inverse in [false, true] {
                let mut want = naive(&input, log_n, inverse);
                if inverse {
                    let n_inv = Fr::from(1u64 << log_n).invert().unwrap();
                    want.iter_mut().for_each(|v| *v *= n_inv);
                }
                for simd in [false, true] {
                    let mut got = input.clone();
                    ntt_batch_with(&mut got, log_n, inverse, None, simd);
                    assert!(got == want, "log_n={log_n} inverse={inverse} simd={simd}");
                }
            }
        }
    }

    #[test]
    fn scalar_and_simd_tiles_agree_on_every_kind_of_transform() {
        if !crate::cpu::simd_or_skip("IFMA NTT tiles") {
            return;
        }
        let coset = Some(Fr::from(7));
        for log_n in [11u32, 12, 13, 16, 17] {
            let n = 1usize << log_n;
            // Two transforms in one batch; values include 0 and p - 1.
            let input: Vec<Fr> = (0..2 * n as u64)
                .map(|i| match i % 97 {
                    0 => Fr::ZERO,
                    1 => -Fr::ONE,
                    _ => Fr::from(i).pow_vartime([i % 13 + 3]),
                })
                .collect();
            for (inverse, coset) in [(false, None), (true, None), (false, coset), (true, coset)] {
                let mut scalar = input.clone();
                ntt_batch_with(&mut scalar, log_n, inverse, coset, false);
                let mut simd = input.clone();
                ntt_batch_with(&mut simd, log_n, inverse, coset, true);
                assert!(
                    scalar == simd,
                    "log_n={log_n} inverse={inverse} coset={coset:?}"
                );
            }
        }
    }

    #[test]
    fn tiles_cover_every_column_and_row() {
        for log_n in DIRECT_MAX_LOG + 1..=28 {
            let (log_r, log_c) = split(log_n);
            let (r, c) = (1usize << log_r, 1usize << log_c);
            assert!(log_r <= STAGE_TABLE_LOG);
            let (b1, b2) = (tile_width(r, c), tile_width(c, r));
            assert!(b1.is_power_of_two() && c % b1 == 0, "log_n={log_n}");
            assert!(b2.is_power_of_two() && r % b2 == 0, "log_n={log_n}");
        }
    }
}
