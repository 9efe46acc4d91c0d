// Fr number-theoretic transform: radix-2 decimation in time after a bit reversal.
//
// Host sequence (crates/accel/src/cuda.rs), per batch of vectors (blockIdx.y = vector):
//   forward: [ntt_scale by g^i for a coset] -> ntt_bit_reverse -> ntt_shared_stages
//            (the first log2(block) stages inside shared memory) -> ntt_global_stage for
//            each remaining stage.
//   inverse: the same with inverse twiddles, then ntt_scale by n^-1 * g^-i.
// Values are Fr in Montgomery form (halo2curves' raw layout). twiddles[j] = omega^j for
// j < n/2; stage s (half-size m = 2^s) uses twiddles[j << (log_n - s - 1)].
#include "field/bn254.cuh"

using namespace pm;

extern "C" __global__ void ntt_bit_reverse(Fr* data, u32 log_n) {
    u32 n = 1u << log_n;
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    Fr* a = data + (u64)blockIdx.y * n;
    u32 r = __brev(i) >> (32 - log_n);
    if (i < r) {
        Fr t = a[i];
        a[i] = a[r];
        a[r] = t;
    }
}

static __device__ __forceinline__ void butterfly(Fr& x, Fr& y, const Fr& w) {
    Fr t = Fr::mul(y, w);
    y = Fr::sub(x, t);
    x = Fr::add(x, t);
}

#define NTT_SHARED_LOG 10

// Stages 0..block_log-1 for blocks of 2^block_log consecutive values (block_log <= 10);
// blockDim.x = 2^(block_log-1), one butterfly per thread per stage.
extern "C" __global__ void ntt_shared_stages(Fr* data, const Fr* twiddles, u32 log_n,
                                             u32 block_log) {
    __shared__ Fr sh[1 << NTT_SHARED_LOG];
    u32 n = 1u << log_n;
    u32 bsize = 1u << block_log;
    Fr* a = data + (u64)blockIdx.y * n + (u64)blockIdx.x * bsize;
    u32 t = threadIdx.x;
    sh[2 * t] = a[2 * t];
    sh[2 * t + 1] = a[2 * t + 1];
    __syncthreads();
    for (u32 s = 0; s < block_log; s++) {
        u32 m = 1u << s;
        u32 j = t & (m - 1);
        u32 i0 = ((t >> s) << (s + 1)) + j;
        Fr w = twiddles[j << (log_n - s - 1)];
        butterfly(sh[i0], sh[i0 + m], w);
        __syncthreads();
    }
    a[2 * t] = sh[2 * t];
    a[2 * t + 1] = sh[2 * t + 1];
}

// One stage s for all n/2 butterflies.
extern "C" __global__ void ntt_global_stage(Fr* data, const Fr* twiddles, u32 log_n, u32 s) {
    u32 n = 1u << log_n;
    u32 t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n / 2) return;
    Fr* a = data + (u64)blockIdx.y * n;
    u32 m = 1u << s;
    u32 j = t & (m - 1);
    u32 i0 = ((t >> s) << (s + 1)) + j;
    Fr w = twiddles[j << (log_n - s - 1)];
    butterfly(a[i0], a[i0 + m], w);
}

// a[i] *= lo[i & (2^lo_bits - 1)] * hi[i >> lo_bits]; the host folds any constant factor
// (n^-1) into lo, so this computes a[i] *= scale * g^i with two small tables.
extern "C" __global__ void ntt_scale(Fr* data, u32 log_n, const Fr* lo, const Fr* hi,
                                     u32 lo_bits) {
    u32 n = 1u << log_n;
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    Fr* a = data + (u64)blockIdx.y * n;
    Fr f = Fr::mul(lo[i & ((1u << lo_bits) - 1)], hi[i >> lo_bits]);
    a[i] = Fr::mul(a[i], f);
}
