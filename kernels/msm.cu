// BN254 G1 multi-scalar multiplication: signed-digit (Booth) Pippenger.
//
// Pipeline (host code: crates/accel/src/cuda.rs):
//   1. msm_histogram   per (scalar, window): Booth digit d in [-2^(c-1), 2^(c-1)];
//                      non-zero digits count into bucket (w, |d|-1).
//   2. msm_scan        exclusive prefix sum of the counts (one block).
//   3. msm_scatter     counting sort: entries[offset[bucket] + k] = index | sign << 31.
//   4. bucket sums, parallel over points rather than buckets (a bucket may hold most of
//      the points: small or repeated scalars, or a short top window):
//      msm_chunk_counts      chunks of at most `chunk` entries per bucket;
//      msm_scan              exclusive prefix sum of the chunk counts;
//      msm_sum_chunks_affine one thread per chunk: XYZZ sum of its (signed) affine points;
//      then, while a bucket may still span several chunks, the same over the chunk sums
//      (msm_chunk_counts, msm_scan, msm_sum_chunks_xyzz), each level dividing the largest
//      bucket by `chunk`; msm_gather_buckets finally takes each bucket's single sum.
//   5. msm_reduce      one block per window: running-sum reduction of its buckets, split
//                      in per-thread segments and combined in shared memory.
//   The host combines the window sums by Horner's rule (c doublings per window).
//
// Scalars arrive canonical (not Montgomery), 8 little-endian u32 limbs each. Bases are
// affine, Montgomery form (halo2curves' raw layout), 16 u32 each; (0, 0) is the identity.
#include "curve/g1.cuh"

using namespace pm;

// `len` (<= 21) bits of the scalar starting at bit `bit`; bits past 255 read as zero.
static __device__ __forceinline__ u32 scalar_bits(const u32* s, u32 bit, u32 len) {
    u32 limb = bit >> 5;
    if (limb >= 8) return 0;
    u32 off = bit & 31;
    u64 v = s[limb];
    if (limb + 1 < 8) v |= ((u64)s[limb + 1]) << 32;
    return (u32)((v >> off) & ((1ull << len) - 1));
}

// Booth digit of window w (width c): ((t + 1) >> 1) - top * 2^c over bits [wc-1, wc+c-1].
static __device__ __forceinline__ i32 booth_digit(const u32* s, u32 w, u32 c) {
    u32 t = (w == 0) ? (scalar_bits(s, 0, c) << 1) : scalar_bits(s, w * c - 1, c + 1);
    u32 top = (t >> c) & 1u;
    return (i32)((t + 1) >> 1) - (i32)(top << c);
}

extern "C" __global__ void msm_histogram(const u32* scalars, u32 n, u32 c, u32 windows,
                                         u32* counts) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const u32* s = scalars + 8 * (u64)i;
    u32 nb = 1u << (c - 1);
    for (u32 w = 0; w < windows; w++) {
        i32 d = booth_digit(s, w, c);
        if (d != 0) {
            u32 b = (u32)(d < 0 ? -d : d) - 1;
            atomicAdd(&counts[w * nb + b], 1u);
        }
    }
}

// Exclusive scan of `len` counts into offsets[0..len], offsets[len] = total.
// One block of 1024 threads; each thread scans a contiguous segment.
extern "C" __global__ void msm_scan(const u32* counts, u32 len, u32* offsets) {
    __shared__ u32 partial[1024];
    u32 t = threadIdx.x;
    u32 per = (len + blockDim.x - 1) / blockDim.x;
    u32 lo = t * per;
    u32 hi = lo + per < len ? lo + per : len;
    u32 sum = 0;
    for (u32 k = lo; k < hi; k++) sum += counts[k];
    partial[t] = sum;
    __syncthreads();
    // Hillis-Steele inclusive scan over the per-thread sums.
    for (u32 stride = 1; stride < blockDim.x; stride <<= 1) {
        u32 add = t >= stride ? partial[t - stride] : 0;
        __syncthreads();
        partial[t] += add;
        __syncthreads();
    }
    u32 run = partial[t] - sum; // exclusive prefix of this segment
    for (u32 k = lo; k < hi; k++) {
        offsets[k] = run;
        run += counts[k];
    }
    if (t == blockDim.x - 1) offsets[len] = partial[t];
}

extern "C" __global__ void msm_scatter(const u32* scalars, u32 n, u32 c, u32 windows,
                                       const u32* offsets, u32* cursors, u32* entries) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const u32* s = scalars + 8 * (u64)i;
    u32 nb = 1u << (c - 1);
    for (u32 w = 0; w < windows; w++) {
        i32 d = booth_digit(s, w, c);
        if (d != 0) {
            u32 b = w * nb + (u32)(d < 0 ? -d : d) - 1;
            u32 pos = offsets[b] + atomicAdd(&cursors[b], 1u);
            entries[pos] = i | (d < 0 ? 0x80000000u : 0u);
        }
    }
}

// Chunks of at most `chunk` items for each of the `len` segments given by offsets[0..len].
extern "C" __global__ void msm_chunk_counts(const u32* offsets, u32 len, u32 chunk,
                                            u32* counts) {
    u32 b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= len) return;
    u32 items = offsets[b + 1] - offsets[b];
    counts[b] = (items + chunk - 1) / chunk;
}

// The segment holding item q: the largest b with offsets[b] <= q (offsets non-decreasing,
// offsets[0] = 0 <= q < offsets[len]); empty segments are skipped by construction.
static __device__ __forceinline__ u32 segment_of(const u32* offsets, u32 len, u32 q) {
    u32 lo = 0, hi = len; // offsets[lo] <= q < offsets[hi]
    while (hi - lo > 1) {
        u32 mid = lo + (hi - lo) / 2;
        if (offsets[mid] <= q) lo = mid;
        else hi = mid;
    }
    return lo;
}

// Level 0: chunk q of its bucket, summed from the sorted (signed) base indices.
extern "C" __global__ void msm_sum_chunks_affine(const G1Affine* bases, const u32* entries,
                                                 const u32* offsets, const u32* chunk_offsets,
                                                 u32 len, u32 chunk, G1Xyzz* sums) {
    u32 q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= chunk_offsets[len]) return;
    u32 b = segment_of(chunk_offsets, len, q);
    u32 start = offsets[b] + (q - chunk_offsets[b]) * chunk;
    u32 end = start + chunk < offsets[b + 1] ? start + chunk : offsets[b + 1];
    G1Xyzz acc = G1Xyzz::identity();
    for (u32 k = start; k < end; k++) {
        u32 e = entries[k];
        G1Affine p = bases[e & 0x7fffffffu];
        if (p.is_identity()) continue;
        if (e & 0x80000000u) p = p.neg();
        acc = G1Xyzz::add_mixed(acc, p);
    }
    sums[q] = acc;
}

// Level >= 1: chunk q of its bucket, summed from the previous level's chunk sums.
extern "C" __global__ void msm_sum_chunks_xyzz(const G1Xyzz* points, const u32* offsets,
                                               const u32* chunk_offsets, u32 len, u32 chunk,
                                               G1Xyzz* sums) {
    u32 q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= chunk_offsets[len]) return;
    u32 b = segment_of(chunk_offsets, len, q);
    u32 start = offsets[b] + (q - chunk_offsets[b]) * chunk;
    u32 end = start + chunk < offsets[b + 1] ? start + chunk : offsets[b + 1];
    G1Xyzz acc = points[start];
    for (u32 k = start + 1; k < end; k++) acc = G1Xyzz::add(acc, points[k]);
    sums[q] = acc;
}

// Each bucket's sum once every bucket has at most one chunk (the identity when it has none).
extern "C" __global__ void msm_gather_buckets(const G1Xyzz* sums, const u32* chunk_offsets,
                                              u32 len, G1Xyzz* buckets) {
    u32 b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= len) return;
    buckets[b] = chunk_offsets[b + 1] > chunk_offsets[b] ? sums[chunk_offsets[b]]
                                                         : G1Xyzz::identity();
}

// k * p for a small non-negative integer k (double-and-add).
static __device__ G1Xyzz mul_small(G1Xyzz p, u32 k) {
    G1Xyzz r = G1Xyzz::identity();
    while (k) {
        if (k & 1u) r = G1Xyzz::add(r, p);
        p = G1Xyzz::dbl(p);
        k >>= 1;
    }
    return r;
}

#define REDUCE_THREADS 128

// Window w's sum: sum_b (b + 1) * bucket[w][b]. Thread t takes buckets [lo, hi):
// its running sum R and local weighted sum T = sum (b - lo + 1) B_b give T + lo * R.
extern "C" __global__ void msm_reduce(const G1Xyzz* buckets, u32 nb, G1Xyzz* window_sums) {
    __shared__ G1Xyzz part[REDUCE_THREADS];
    u32 w = blockIdx.x;
    u32 t = threadIdx.x;
    const G1Xyzz* wb = buckets + (u64)w * nb;
    u32 per = (nb + REDUCE_THREADS - 1) / REDUCE_THREADS;
    u32 lo = t * per;
    u32 hi = lo + per < nb ? lo + per : nb;
    G1Xyzz running = G1Xyzz::identity();
    G1Xyzz total = G1Xyzz::identity();
    for (u32 b = hi; b > lo; b--) {
        running = G1Xyzz::add(running, wb[b - 1]);
        total = G1Xyzz::add(total, running);
    }
    if (lo < hi) total = G1Xyzz::add(total, mul_small(running, lo));
    part[t] = total;
    __syncthreads();
    for (u32 stride = REDUCE_THREADS / 2; stride > 0; stride >>= 1) {
        if (t < stride) part[t] = G1Xyzz::add(part[t], part[t + stride]);
        __syncthreads();
    }
    if (t == 0) window_sums[w] = part[0];
}
