//! The host side of the kernels' data: how values are laid out in device memory, how an MSM
//! is split into windows and buckets, and how results come back. Pure functions, shared by
//! [`super::CudaBackend`] and by the kernel emulation test (`tests/kernel_emu.rs`), which
//! runs the same kernels compiled as host C++ on the same words.

use ff::{Field, PrimeField};
use group::Group;
use halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use halo2curves::serde::SerdeObject;
use halo2curves::CurveAffine;

use crate::AccelError;

/// Words per Fr / Fp element (eight little-endian u32 limbs).
pub const FIELD_WORDS: usize = 8;
/// Words per affine base (x, y in Montgomery form).
pub const AFFINE_WORDS: usize = 16;
/// Words per XYZZ point (X, Y, ZZ, ZZZ in Montgomery form).
pub const XYZZ_WORDS: usize = 32;

/// How one MSM of `n` scalars is bucketed: window width `c`, `windows` windows of
/// `buckets_per_window` = 2^(c-1) signed-digit buckets each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsmShape {
    /// Window width in bits.
    pub c: usize,
    /// Number of windows covering 255 scalar bits.
    pub windows: usize,
    /// Buckets per window (signed digits: 2^(c-1)).
    pub buckets_per_window: usize,
}

impl MsmShape {
    /// The shape for `n` scalars: `window_bits` when given, else the GPU default,
    /// `floor(log2 n) / 2 + 3` bits (4..=16). That rule comes from a sweep of every width
    /// from 11 to 17 at 2^16..2^24 points on an H100 (docs/benchmarks.md): it picks the
    /// fastest width, or one within 5% of it, at each size. Wider windows leave more
    /// buckets per window for the window reduction than its threads can sum quickly.
    pub fn new(n: usize, window_bits: Option<u32>) -> Self {
        let c = window_bits.map_or_else(
            || {
                let log = (usize::BITS - 1 - n.max(1).leading_zeros()) as usize;
                (log / 2 + 3).clamp(4, 16)
            },
            |c| c as usize,
        );
        Self {
            c,
            windows: 255usize.div_ceil(c),
            buckets_per_window: 1 << (c - 1),
        }
    }

    /// Buckets over all windows.
    pub fn total_buckets(&self) -> usize {
        self.windows * self.buckets_per_window
    }
}

/// Entries per chunk in the MSM's bucket sums: one GPU thread sums one chunk, so no bucket,
/// however full, is summed by one thread alone.
pub const BUCKET_CHUNK: u32 = 16;

/// The levels of an MSM's bucket sums (`msm.cu`, step 4): for each level, an upper bound on
/// the chunks it produces (its buffer size and grid). Level 0 sums the buckets' entries in
/// chunks of [`BUCKET_CHUNK`]; each later level sums the previous level's chunk sums, until
/// no bucket can span two chunks. A bucket holds at most `n` entries (one digit per scalar
/// and window), so there are `ceil(log_16(n))` levels, at least one.
pub fn chunk_levels(n: usize, shape: &MsmShape) -> Vec<usize> {
    let total = shape.total_buckets();
    let chunk = BUCKET_CHUNK as usize;
    let mut items = n * shape.windows;
    let mut largest = n.max(1);
    let mut levels = Vec::new();
    loop {
        // sum over buckets of ceil(items_b / chunk) <= items / chunk + buckets
        let chunks = (items.div_ceil(chunk) + total).max(1);
        levels.push(chunks);
        largest = largest.div_ceil(chunk);
        if largest <= 1 {
            return levels;
        }
        items = chunks;
    }
}

fn u32s_to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Below this many values a conversion runs on the calling thread alone.
const SCOPED_MIN_ITEMS: usize = 1 << 14;

/// Runs `f` on matching pieces of `out` and `input`, one piece per core, on scoped OS
/// threads, and returns each piece's result in order. The slices are cut at whole units:
/// `out_per` items of `out` and `in_per` items of `input` per unit, `units` units in all.
/// Not rayon: the CUDA backend converts while it holds its locks, and a rayon worker that
/// waits there for its own tasks may take up another job that asks for the same lock and
/// deadlock (rayon-rs/rayon#592).
fn split_scoped<A: Send, B: Sync, R: Send>(
    out: &mut [A],
    out_per: usize,
    input: &[B],
    in_per: usize,
    units: usize,
    f: impl Fn(&mut [A], &[B]) -> R + Sync,
) -> Vec<R> {
    let (out, input) = (&mut out[..units * out_per], &input[..units * in_per]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(units / SCOPED_MIN_ITEMS).max(1);
    if threads == 1 {
        return vec![f(out, input)];
    }
    let piece = units.div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = out
            .chunks_mut(piece * out_per)
            .zip(input.chunks(piece * in_per))
            .map(|(o, i)| scope.spawn(move || f(o, i)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn write_le_words(bytes: &[u8], out: &mut [u32]) {
    for (w, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// Writes `values` in Montgomery form (halo2curves' raw layout), as the NTT kernels read
/// them, into `out` (`FIELD_WORDS` words per value; `out` may be longer), in parallel.
pub fn fr_words_into(values: &[Fr], out: &mut [u32]) {
    split_scoped(out, FIELD_WORDS, values, 1, values.len(), |out, values| {
        for (w, v) in out.chunks_exact_mut(FIELD_WORDS).zip(values) {
            write_limb_words(&crate::limbs::limbs(v), w);
        }
    });
}

/// Four little-endian u64 limbs as eight little-endian u32 words.
#[inline]
fn write_limb_words(limbs: &[u64; 4], out: &mut [u32]) {
    for (pair, limb) in out.chunks_exact_mut(2).zip(limbs) {
        pair[0] = *limb as u32;
        pair[1] = (*limb >> 32) as u32;
    }
}

/// Fr values in Montgomery form (halo2curves' raw layout), as the NTT kernels read them.
pub fn fr_to_words(values: &[Fr]) -> Vec<u32> {
    let mut out = vec![0; values.len() * FIELD_WORDS];
    fr_words_into(values, &mut out);
    out
}

/// One element from its eight words, or `None` when they are not a reduced field element.
#[inline]
fn fr_from_words(words: &[u32]) -> Option<Fr> {
    let limb = |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
    crate::limbs::from_limbs([limb(0), limb(1), limb(2), limb(3)])
}

/// The inverse of [`fr_words_into`]: fills `out` from the first `out.len()` values of
/// `words`, in parallel. Every element is checked before any is written, so an invalid
/// device result (an element that is not reduced, or too few words) leaves `out` as it was.
pub fn words_into_fr(words: &[u32], out: &mut [Fr]) -> Result<(), AccelError> {
    let n = out.len();
    if words.len() < n * FIELD_WORDS {
        return Err(AccelError::InvalidDeviceResult {
            what: "Fr vector length",
        });
    }
    let valid = split_scoped(out, 1, words, FIELD_WORDS, n, |_, words| {
        words
            .chunks_exact(FIELD_WORDS)
            .all(|w| fr_from_words(w).is_some())
    });
    if !valid.into_iter().all(|ok| ok) {
        return Err(AccelError::InvalidDeviceResult { what: "Fr element" });
    }
    split_scoped(out, 1, words, FIELD_WORDS, n, |out, words| {
        for (v, w) in out.iter_mut().zip(words.chunks_exact(FIELD_WORDS)) {
            if let Some(x) = fr_from_words(w) {
                *v = x; // always Some: every element was checked above
            }
        }
    });
    Ok(())
}

/// The inverse of [`fr_to_words`], rejecting words that are not a reduced field element.
pub fn words_to_fr(words: &[u32]) -> Result<Vec<Fr>, AccelError> {
    let mut out = vec![Fr::ZERO; words.len() / FIELD_WORDS];
    words_into_fr(words, &mut out)?;
    Ok(out)
}

/// Writes scalars in canonical form (not Montgomery), as the MSM kernels read them, into
/// `out` (`FIELD_WORDS` words per scalar; `out` may be longer), in parallel.
pub fn scalar_words_into(scalars: &[Fr], out: &mut [u32]) {
    split_scoped(
        out,
        FIELD_WORDS,
        scalars,
        1,
        scalars.len(),
        |out, scalars| {
            for (w, s) in out.chunks_exact_mut(FIELD_WORDS).zip(scalars) {
                write_le_words(s.to_repr().as_ref(), w);
            }
        },
    );
}

/// Scalars in canonical form (not Montgomery), as the MSM kernels read them.
pub fn scalars_to_words(scalars: &[Fr]) -> Vec<u32> {
    let mut out = vec![0; scalars.len() * FIELD_WORDS];
    scalar_words_into(scalars, &mut out);
    out
}

/// Affine bases (Montgomery x, y; the identity is (0, 0)), as the MSM kernels read them.
pub fn bases_to_words(bases: &[G1Affine]) -> Vec<u32> {
    let mut out = vec![0u32; bases.len() * AFFINE_WORDS];
    split_scoped(
        &mut out,
        AFFINE_WORDS,
        bases,
        1,
        bases.len(),
        |out, bases| {
            for (w, p) in out.chunks_exact_mut(AFFINE_WORDS).zip(bases) {
                let (x, y) = w.split_at_mut(FIELD_WORDS);
                write_limb_words(&crate::limbs::limbs(&p.x), x);
                write_limb_words(&crate::limbs::limbs(&p.y), y);
            }
        },
    );
    out
}

/// One XYZZ point from the device, validated on the curve.
fn xyzz_to_g1(words: &[u32]) -> Result<G1, AccelError> {
    let bytes = u32s_to_bytes(words);
    let invalid = AccelError::InvalidDeviceResult { what: "G1 point" };
    let f = |i: usize| Fq::from_raw_bytes(&bytes[32 * i..32 * (i + 1)]);
    let (x, y, zz, zzz) = match (f(0), f(1), f(2), f(3)) {
        (Some(x), Some(y), Some(zz), Some(zzz)) => (x, y, zz, zzz),
        _ => return Err(invalid),
    };
    if bool::from(zz.is_zero()) {
        return Ok(G1::identity());
    }
    let zz_inv = Option::<Fq>::from(zz.invert())
        .ok_or(AccelError::InvalidDeviceResult { what: "G1 point" })?;
    let zzz_inv = Option::<Fq>::from(zzz.invert())
        .ok_or(AccelError::InvalidDeviceResult { what: "G1 point" })?;
    let p = Option::<G1Affine>::from(G1Affine::from_xy(x * zz_inv, y * zzz_inv)).ok_or(invalid)?;
    Ok(G1::from(p))
}

/// Combines the per-window sums (`shape.windows` XYZZ points) by Horner's rule: the MSM.
pub fn combine_window_sums(words: &[u32], shape: &MsmShape) -> Result<G1, AccelError> {
    if words.len() < shape.windows * XYZZ_WORDS {
        return Err(AccelError::InvalidDeviceResult {
            what: "window sums",
        });
    }
    let mut acc = G1::identity();
    for w in (0..shape.windows).rev() {
        for _ in 0..shape.c {
            acc = acc.double();
        }
        acc += xyzz_to_g1(&words[XYZZ_WORDS * w..XYZZ_WORDS * (w + 1)])?;
    }
    Ok(acc)
}

/// The twiddle table of a size-2^log_n transform (`omega^j`, j < n/2; inverse omega for the
/// inverse transform), at least one element long.
pub fn twiddle_words(log_n: u32, inverse: bool) -> Vec<u32> {
    let mut words = fr_to_words(&crate::cpu::twiddle_table(log_n, inverse));
    if words.is_empty() {
        words.resize(FIELD_WORDS, 0);
    }
    words
}

/// Tables for `ntt_scale`, which computes `a[i] *= lo[i mod 2^lo_bits] * hi[i >> lo_bits]`
/// = `a[i] * scale * g^i`: returns (lo, hi, lo_bits).
pub fn scale_tables(log_n: u32, g: Fr, scale: Fr) -> (Vec<u32>, Vec<u32>, u32) {
    let lo_bits = log_n.div_ceil(2);
    let hi_bits = log_n - lo_bits;
    let mut lo = Vec::with_capacity(1 << lo_bits);
    let mut p = scale;
    for _ in 0..(1u64 << lo_bits) {
        lo.push(p);
        p *= g;
    }
    let step = g.pow_vartime([1u64 << lo_bits]);
    let mut hi = Vec::with_capacity(1 << hi_bits);
    let mut q = Fr::ONE;
    for _ in 0..(1u64 << hi_bits) {
        hi.push(q);
        q *= step;
    }
    (fr_to_words(&lo), fr_to_words(&hi), lo_bits)
}

/// `(g, scale)` for the `ntt_scale` that ends an inverse transform: the inverse coset
/// generator (one without a coset) and n^-1.
pub fn inverse_scaling(log_n: u32, coset: Option<Fr>) -> (Fr, Fr) {
    let n_inv = Fr::from(1u64 << log_n).invert().unwrap_or(Fr::ONE);
    let g_inv = coset.map_or(Fr::ONE, |g| g.invert().unwrap_or(Fr::ONE));
    (g_inv, n_inv)
}

/// Threads per block of `gates_evaluate` (kernels/gates.cu).
pub const GATE_THREADS: u32 = 256;
/// Most threads one `gates_evaluate` launch strides with: its scratch holds a program's slots
/// for each thread, so this bounds the scratch at `slots * 2^16` field elements.
pub const GATE_MAX_THREADS: usize = 1 << 16;

/// Blocks of [`GATE_THREADS`] for a `gates_evaluate` launch over `rows` rows.
pub fn gate_grid(rows: usize) -> u32 {
    rows.clamp(1, GATE_MAX_THREADS)
        .div_ceil(GATE_THREADS as usize) as u32
}

/// The device buffers of one MSM of `n` scalars (`msm_unchecked` allocates exactly these),
/// in u32 words: the scalars, the digit histogram and its offsets, the sorted entries, the
/// buckets, the window sums, and the chunked bucket sums' two alternating levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsmBuffers {
    /// The scalars in device form.
    pub scalars: usize,
    /// Per-bucket counters (histogram counts, cursors, chunk counts): one buffer each.
    pub per_bucket: usize,
    /// Per-bucket offsets (`total + 1`): the entries' and both chunk levels'.
    pub offsets: usize,
    /// The digit entries, one per scalar and window.
    pub entries: usize,
    /// The buckets (XYZZ).
    pub buckets: usize,
    /// The window sums (XYZZ).
    pub sums: usize,
    /// The two alternating levels of chunk sums (XYZZ), each sized for its widest level.
    pub chunk_sums: [usize; 2],
}

impl MsmBuffers {
    /// The buffers of an MSM of `n` scalars in `shape`.
    pub fn new(n: usize, shape: &MsmShape) -> Self {
        let total = shape.total_buckets();
        let levels = chunk_levels(n, shape);
        let widest = |parity: usize| {
            levels
                .iter()
                .skip(parity)
                .step_by(2)
                .copied()
                .max()
                .unwrap_or(1)
        };
        Self {
            scalars: n * FIELD_WORDS,
            per_bucket: total,
            offsets: total + 1,
            entries: n * shape.windows,
            buckets: total * XYZZ_WORDS,
            sums: shape.windows * XYZZ_WORDS,
            chunk_sums: [widest(0) * XYZZ_WORDS, widest(1) * XYZZ_WORDS],
        }
    }

    /// All of them, in bytes (three per-bucket counters and three offset buffers).
    pub fn bytes(&self) -> u64 {
        let words = self.scalars
            + 3 * self.per_bucket
            + 3 * self.offsets
            + self.entries
            + self.buckets
            + self.sums
            + self.chunk_sums[0]
            + self.chunk_sums[1];
        4 * words as u64
    }
}

/// Device bytes of an MSM of `n` scalars with the default window (the bases are resident
/// and counted by [`bases_device_bytes`]).
pub fn msm_device_bytes(n: usize, window_bits: Option<u32>) -> u64 {
    MsmBuffers::new(n, &MsmShape::new(n, window_bits)).bytes()
}

/// Device bytes of `n` resident bases.
pub fn bases_device_bytes(n: usize) -> u64 {
    4 * (n * AFFINE_WORDS).max(16) as u64
}

/// Device bytes of one cached twiddle table of a `2^log_n` NTT ([`twiddle_words`]).
pub fn twiddle_device_bytes(log_n: u32) -> u64 {
    4 * (((1usize << log_n) / 2).max(1) * FIELD_WORDS) as u64
}

/// Device bytes of one NTT call of `batch` vectors of `2^log_n` (the data and the coset and
/// inverse scaling tables; the twiddles are cached, [`twiddle_device_bytes`]).
pub fn ntt_device_bytes(log_n: u32, batch: usize) -> u64 {
    let lo = 1usize << log_n.div_ceil(2);
    let hi = 1usize << (log_n - log_n.div_ceil(2));
    let data = (batch << log_n) * FIELD_WORDS;
    4 * (data + 2 * (lo + hi) * FIELD_WORDS) as u64
}

/// Device bytes of one `gates_evaluate` call over `rows` rows reading `columns` columns with
/// `slots` intermediate slots (the program, scalars and rotations are a few KB, not counted).
pub fn gates_device_bytes(rows: usize, columns: usize, slots: usize) -> u64 {
    let threads = gate_grid(rows) as usize * GATE_THREADS as usize;
    let words = (columns.max(1) * rows + rows + slots.max(1) * threads) * FIELD_WORDS;
    4 * words as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_levels_cover_the_largest_bucket() {
        let levels = |n: usize| chunk_levels(n, &MsmShape::new(n, Some(8))).len();
        // A bucket holds at most n entries; each level divides that by 16.
        assert_eq!(levels(0), 1);
        assert_eq!(levels(1), 1);
        assert_eq!(levels(16), 1);
        assert_eq!(levels(17), 2);
        assert_eq!(levels(256), 2);
        assert_eq!(levels(257), 3);
        assert_eq!(levels(4097), 4);
        assert_eq!(levels(1 << 24), 6);
        // Level 0's bound covers every entry in full chunks plus one partial chunk per bucket.
        let shape = MsmShape::new(1000, Some(8));
        let first = chunk_levels(1000, &shape)[0];
        assert_eq!(
            first,
            (1000 * shape.windows).div_ceil(16) + shape.total_buckets()
        );
    }

    #[test]
    fn default_gpu_windows_follow_the_measured_sweep() {
        let c = |n: usize| MsmShape::new(n, None).c;
        // The fastest widths measured on an H100 (or within 5% of them).
        assert_eq!(
            [16, 18, 20, 22, 24].map(|l| c(1 << l)),
            [11, 12, 13, 14, 15]
        );
        assert_eq!(c((1 << 17) - 1), 11);
        assert_eq!(c(0), 4);
        assert_eq!(c(1), 4);
        assert_eq!(c(1 << 40), 16);
        assert_eq!(MsmShape::new(1 << 20, Some(7)).c, 7);
    }

    #[test]
    fn word_conversions_round_trip_across_task_boundaries() {
        let mut x = Fr::from(0x1234_5678_9abc_def0u64);
        for n in [
            0,
            1,
            7,
            SCOPED_MIN_ITEMS,
            SCOPED_MIN_ITEMS + 3,
            3 * SCOPED_MIN_ITEMS - 1,
        ] {
            let values: Vec<Fr> = (0..n)
                .map(|_| {
                    x = x.square() + Fr::ONE;
                    x
                })
                .collect();
            let words = fr_to_words(&values);
            assert_eq!(words.len(), n * FIELD_WORDS);
            for (v, w) in values.iter().zip(words.chunks_exact(FIELD_WORDS)) {
                let bytes: Vec<u8> = w.iter().flat_map(|w| w.to_le_bytes()).collect();
                assert_eq!(bytes, v.to_raw_bytes());
            }
            assert_eq!(words_to_fr(&words).unwrap(), values);
            // A longer buffer (the pinned staging buffer) converts only its prefix.
            let mut staging = vec![u32::MAX; words.len() + 2 * FIELD_WORDS];
            fr_words_into(&values, &mut staging);
            assert_eq!(staging[..words.len()], words[..]);
            assert!(staging[words.len()..].iter().all(|w| *w == u32::MAX));
            let mut back = vec![Fr::ZERO; n];
            words_into_fr(&staging, &mut back).unwrap();
            assert_eq!(back, values);
            let canonical: Vec<u32> = values
                .iter()
                .flat_map(|s| {
                    let r = s.to_repr();
                    let b = r.as_ref().to_vec();
                    b.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(scalars_to_words(&values), canonical);
        }
    }

    #[test]
    fn unreduced_or_short_device_words_are_rejected_and_change_nothing() {
        // Large enough to be converted on several threads; the bad element in the last piece.
        let n = 4 * SCOPED_MIN_ITEMS + 5;
        let mut words = fr_to_words(&vec![Fr::ONE; n]);
        words[(n - 2) * FIELD_WORDS..(n - 1) * FIELD_WORDS].fill(u32::MAX);
        assert!(words_to_fr(&words).is_err());
        let before: Vec<Fr> = (0..n as u64).map(Fr::from).collect();
        let mut out = before.clone();
        assert!(words_into_fr(&words, &mut out).is_err());
        assert_eq!(
            out, before,
            "a rejected result must leave the caller's values alone"
        );
        let mut out = vec![Fr::ZERO; 3];
        assert!(words_into_fr(&[0; 2 * FIELD_WORDS], &mut out).is_err());
    }
}
