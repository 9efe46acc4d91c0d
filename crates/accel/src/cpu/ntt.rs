//! Radix-2 decimation-in-time NTT over Fr with precomputed twiddles.
//!
//! After the bit-reversal permutation, the first stages run inside cache-sized blocks
//! (each block is an independent sub-transform), and the remaining stages are done two at a
//! time (radix-4 butterflies) so the large vector is streamed half as often. All of it is
//! rayon-parallel. The result is exactly halo2's: the same omega, exact field arithmetic.

use ff::Field;
use halo2curves::bn256::Fr;
use rayon::prelude::*;

use crate::backend::omega_for;

/// log2 of the block size handled entirely in cache (2^12 * 32 B = 128 KiB).
const BLOCK_LOG: u32 = 12;
/// Elements per parallel task in the streaming stages.
const TASK: usize = 1 << 11;

/// `omega^j` for `j < n/2` (omega inverted for the inverse transform).
pub(crate) fn twiddle_table(log_n: u32, inverse: bool) -> Vec<Fr> {
    let mut omega = omega_for(log_n);
    if inverse {
        omega = omega.invert().unwrap_or(Fr::ONE); // omega is a root of unity: never zero
    }
    let half = (1usize << log_n) / 2;
    powers(omega, Fr::ONE, half)
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

/// Reverses the order of the low `log_n` bits of every index.
pub(crate) fn bit_reverse_permute<T>(a: &mut [T], log_n: u32) {
    if log_n == 0 {
        return;
    }
    let shift = usize::BITS - log_n;
    for i in 0..a.len() {
        let r = i.reverse_bits() >> shift;
        if i < r {
            a.swap(i, r);
        }
    }
}

pub(crate) fn ntt_batch(
    values: &mut [Fr],
    log_n: u32,
    twiddles: &[Fr],
    inverse: bool,
    coset: Option<Fr>,
) {
    let n = 1usize << log_n;
    values.par_chunks_mut(n).for_each(|a| {
        if !inverse {
            if let Some(g) = coset {
                distribute_powers(a, g, Fr::ONE);
            }
        }
        ntt_in_place(a, log_n, twiddles);
        if inverse {
            let n_inv = Fr::from(n as u64).invert().unwrap_or(Fr::ONE);
            match coset {
                Some(g) => distribute_powers(a, g.invert().unwrap_or(Fr::ONE), n_inv),
                None => a
                    .par_chunks_mut(TASK)
                    .for_each(|c| c.iter_mut().for_each(|v| *v *= n_inv)),
            }
        }
    });
}

fn ntt_in_place(a: &mut [Fr], log_n: u32, tw: &[Fr]) {
    if log_n == 0 {
        return;
    }
    bit_reverse_permute(a, log_n);
    let block_log = log_n.min(BLOCK_LOG);
    a.par_chunks_mut(1 << block_log).for_each(|block| {
        for s in 0..block_log {
            let m = 1usize << s;
            let stride = 1usize << (log_n - s - 1);
            for group in block.chunks_exact_mut(2 * m) {
                let (lo, hi) = group.split_at_mut(m);
                butterflies(lo, hi, tw, 0, stride);
            }
        }
    });
    let mut s = block_log;
    while s < log_n {
        if s + 1 < log_n {
            radix4_stage(a, log_n, s, tw);
            s += 2;
        } else {
            radix2_stage(a, log_n, s, tw);
            s += 1;
        }
    }
}

/// DIT butterflies `(lo[j], hi[j]) <- (lo[j] + w hi[j], lo[j] - w hi[j])` with
/// `w = tw[(j0 + j) * stride]`.
#[inline]
fn butterflies(lo: &mut [Fr], hi: &mut [Fr], tw: &[Fr], j0: usize, stride: usize) {
    for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let idx = (j0 + j) * stride;
        let t = if idx == 0 { *y } else { *y * tw[idx] };
        *y = *x - t;
        *x += t;
    }
}

fn radix2_stage(a: &mut [Fr], log_n: u32, s: u32, tw: &[Fr]) {
    let m = 1usize << s;
    let stride = 1usize << (log_n - s - 1);
    a.par_chunks_mut(2 * m).for_each(|group| {
        let (lo, hi) = group.split_at_mut(m);
        let task = TASK.min(m);
        lo.par_chunks_mut(task)
            .zip(hi.par_chunks_mut(task))
            .enumerate()
            .for_each(|(k, (l, h))| butterflies(l, h, tw, k * task, stride));
    });
}

/// Stages `s` and `s+1` at once: four quarters `q0..q3` of each group of size `4m`.
fn radix4_stage(a: &mut [Fr], log_n: u32, s: u32, tw: &[Fr]) {
    let m = 1usize << s;
    let stride1 = 1usize << (log_n - s - 1); // stage s twiddles (half size m)
    let stride2 = 1usize << (log_n - s - 2); // stage s+1 twiddles (half size 2m)
    a.par_chunks_mut(4 * m).for_each(|group| {
        let (g01, g23) = group.split_at_mut(2 * m);
        let (q0, q1) = g01.split_at_mut(m);
        let (q2, q3) = g23.split_at_mut(m);
        let task = TASK.min(m);
        q0.par_chunks_mut(task)
            .zip(q1.par_chunks_mut(task))
            .zip(q2.par_chunks_mut(task).zip(q3.par_chunks_mut(task)))
            .enumerate()
            .for_each(|(k, ((c0, c1), (c2, c3)))| {
                let j0 = k * task;
                for j in 0..c0.len() {
                    let jj = j0 + j;
                    // stage s: pairs (q0, q1) and (q2, q3) with w1 = tw[jj * stride1]
                    let w1 = tw[jj * stride1];
                    let t1 = c1[j] * w1;
                    let t3 = c3[j] * w1;
                    let (x0, x1) = (c0[j] + t1, c0[j] - t1);
                    let (x2, x3) = (c2[j] + t3, c2[j] - t3);
                    // stage s+1: pairs (q0, q2) with tw[jj * stride2] and (q1, q3) with
                    // tw[(jj + m) * stride2]
                    let u2 = x2 * tw[jj * stride2];
                    let u3 = x3 * tw[(jj + m) * stride2];
                    c0[j] = x0 + u2;
                    c2[j] = x0 - u2;
                    c1[j] = x1 + u3;
                    c3[j] = x1 - u3;
                }
            });
    });
}
