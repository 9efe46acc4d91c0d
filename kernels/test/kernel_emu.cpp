// The MSM and NTT kernels (kernels/msm.cu, kernels/ntt.cu) compiled as host C++ and run
// under a small CUDA emulation: every block of a launch runs its threads, and a kernel that
// synchronises (__syncthreads) runs each thread of a block on its own OS thread with a
// barrier, so shared-memory protocols are exercised for real. Launch shapes and the kernel
// sequence mirror crates/accel/src/cuda.rs; crates/accel/tests/kernel_emu.rs builds this
// with g++, feeds it words laid out by proofmill_accel::cuda::layout and compares the
// results with halo2curves. It checks the kernels' logic without a GPU; it cannot check
// what only a GPU does (inline PTX, the memory model, the driver).
//
// Usage:
//   kernel_emu msm C N BASES SCALARS OUT CHUNK LEVEL_BOUND...
//              (the chunk size and each level's chunk bound: cuda::layout::chunk_levels)
//   kernel_emu ntt LOG_N BATCH INVERSE DATA TWIDDLES OUT [PRE_LO PRE_HI PRE_BITS]
//              [POST_LO POST_HI POST_BITS]    (a file named "-" means: no such scaling)
//   kernel_emu gates PROGRAM SCALARS COLUMNS ROTATIONS N VALUES OUT SLOTS GRID
//              (GRID blocks of THREADS threads stride over the N rows, as cuda.rs launches)
// Files are little-endian u32 words.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

// One block runs at a time, so a function-local static is the block's shared memory.
#define __shared__ static
#define __syncthreads() pm_block_barrier->arrive_and_wait()

#include "common.cuh"

struct pm_dim3 {
    u32 x, y, z;
};

static thread_local pm_dim3 threadIdx;
static thread_local pm_dim3 blockIdx;
static pm_dim3 blockDim;
static pm_dim3 gridDim;
static std::barrier<>* pm_block_barrier = nullptr;

static inline u32 atomicAdd(u32* p, u32 v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

static inline u32 __brev(u32 x) {
    u32 r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}

#include "../msm.cu"
#include "../ntt.cu"
#include "../gates.cu"

// Runs `kernel` over grid x block. `syncs`: the kernel calls __syncthreads, so each thread
// of a block gets its own OS thread; otherwise a block's threads run one after another.
static void launch(pm_dim3 grid, pm_dim3 block, bool syncs, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = block;
    for (u32 by = 0; by < grid.y; by++) {
        for (u32 bx = 0; bx < grid.x; bx++) {
            if (!syncs) {
                for (u32 t = 0; t < block.x; t++) {
                    blockIdx = {bx, by, 0};
                    threadIdx = {t, 0, 0};
                    kernel();
                }
                continue;
            }
            std::barrier<> barrier((std::ptrdiff_t)block.x);
            pm_block_barrier = &barrier;
            std::vector<std::thread> threads;
            threads.reserve(block.x);
            for (u32 t = 0; t < block.x; t++) {
                threads.emplace_back([=, &kernel] {
                    blockIdx = {bx, by, 0};
                    threadIdx = {t, 0, 0};
                    kernel();
                });
            }
            for (auto& th : threads) th.join();
            pm_block_barrier = nullptr;
        }
    }
}

static const u32 THREADS = 256;       // cuda.rs THREADS
static const u32 SHARED_LOG = NTT_SHARED_LOG;

static pm_dim3 grid_for(u64 n, u32 y) { return {(u32)((n + THREADS - 1) / THREADS), y, 1}; }

static std::vector<u32> read_words(const char* path) {
    std::vector<u32> out;
    if (std::strcmp(path, "-") == 0) return out;
    FILE* f = std::fopen(path, "rb");
    if (!f) {
        std::fprintf(stderr, "cannot open %s\n", path);
        std::exit(2);
    }
    u32 w;
    while (std::fread(&w, 4, 1, f) == 1) out.push_back(w);
    std::fclose(f);
    return out;
}

static void write_words(const char* path, const std::vector<u32>& words) {
    FILE* f = std::fopen(path, "wb");
    if (!f || std::fwrite(words.data(), 4, words.size(), f) != words.size()) {
        std::fprintf(stderr, "cannot write %s\n", path);
        std::exit(2);
    }
    std::fclose(f);
}

static void scan(std::vector<u32>& counts, u32 len, std::vector<u32>& offsets) {
    launch({1, 1, 1}, {1024, 1, 1}, true, [&] { msm_scan(counts.data(), len, offsets.data()); });
}

static int run_msm(u32 c, u32 n, const char* bases_path, const char* scalars_path,
                   const char* out_path, u32 chunk, const std::vector<u64>& levels) {
    std::vector<u32> bases = read_words(bases_path);
    std::vector<u32> scalars = read_words(scalars_path);
    if (scalars.size() != 8ull * n || bases.size() < 16ull * n) {
        std::fprintf(stderr, "msm: input sizes do not match n=%u\n", n);
        return 2;
    }
    u32 windows = (255 + c - 1) / c;
    u32 nb = 1u << (c - 1);
    u32 total = windows * nb;
    // cuda.rs allocates every buffer zeroed and at least one word long.
    std::vector<u32> counts(total), offsets(total + 1), cursors(total);
    std::vector<u32> entries(std::max<u64>(1, (u64)n * windows));
    std::vector<u32> buckets((u64)total * 32), sums((u64)windows * 32);
    launch(grid_for(n, 1), {THREADS, 1, 1}, false,
           [&] { msm_histogram(scalars.data(), n, c, windows, counts.data()); });
    scan(counts, total, offsets);
    launch(grid_for(n, 1), {THREADS, 1, 1}, false, [&] {
        msm_scatter(scalars.data(), n, c, windows, offsets.data(), cursors.data(), entries.data());
    });
    // Bucket sums level by level, with buffers sized by the host's bounds (as cuda.rs does).
    // Two buffers, alternating by level, each sized for its widest level (as cuda.rs).
    u64 widest[2] = {1, 1};
    for (size_t l = 0; l < levels.size(); l++) widest[l % 2] = std::max(widest[l % 2], levels[l]);
    std::vector<u32> chunk_counts(total);
    std::vector<u32> chunk_offsets[2] = {std::vector<u32>(total + 1), std::vector<u32>(total + 1)};
    std::vector<u32> chunk_sums[2] = {std::vector<u32>(widest[0] * 32), std::vector<u32>(widest[1] * 32)};
    for (size_t level = 0; level < levels.size(); level++) {
        std::vector<u32>& cur_off = chunk_offsets[level % 2];
        std::vector<u32>& prev_off = chunk_offsets[(level + 1) % 2];
        std::vector<u32>& cur_sums = chunk_sums[level % 2];
        std::vector<u32>& prev_sums = chunk_sums[(level + 1) % 2];
        const std::vector<u32>& segments = level == 0 ? offsets : prev_off;
        launch(grid_for(total, 1), {THREADS, 1, 1}, false, [&] {
            msm_chunk_counts(segments.data(), total, chunk, chunk_counts.data());
        });
        scan(chunk_counts, total, cur_off);
        if (cur_off[total] > levels[level]) {
            std::fprintf(stderr, "level %zu: %u chunks exceed the bound %llu\n", level,
                         cur_off[total], (unsigned long long)levels[level]);
            return 3;
        }
        if (level == 0) {
            launch(grid_for(levels[level], 1), {THREADS, 1, 1}, false, [&] {
                msm_sum_chunks_affine(reinterpret_cast<const G1Affine*>(bases.data()),
                                      entries.data(), offsets.data(), cur_off.data(), total, chunk,
                                      reinterpret_cast<G1Xyzz*>(cur_sums.data()));
            });
        } else {
            launch(grid_for(levels[level], 1), {THREADS, 1, 1}, false, [&] {
                msm_sum_chunks_xyzz(reinterpret_cast<const G1Xyzz*>(prev_sums.data()),
                                    prev_off.data(), cur_off.data(), total, chunk,
                                    reinterpret_cast<G1Xyzz*>(cur_sums.data()));
            });
        }
    }
    size_t last = (levels.size() - 1) % 2;
    launch(grid_for(total, 1), {THREADS, 1, 1}, false, [&] {
        msm_gather_buckets(reinterpret_cast<const G1Xyzz*>(chunk_sums[last].data()),
                           chunk_offsets[last].data(), total,
                           reinterpret_cast<G1Xyzz*>(buckets.data()));
    });
    launch({windows, 1, 1}, {REDUCE_THREADS, 1, 1}, true, [&] {
        msm_reduce(reinterpret_cast<const G1Xyzz*>(buckets.data()), nb,
                   reinterpret_cast<G1Xyzz*>(sums.data()));
    });
    write_words(out_path, sums);
    return 0;
}

static void scale(std::vector<u32>& data, u32 log_n, u32 batch, const char* lo_path,
                  const char* hi_path, u32 lo_bits) {
    std::vector<u32> lo = read_words(lo_path), hi = read_words(hi_path);
    if (lo.empty()) return;
    launch(grid_for(1ull << log_n, batch), {THREADS, 1, 1}, false, [&] {
        ntt_scale(reinterpret_cast<Fr*>(data.data()), log_n, reinterpret_cast<const Fr*>(lo.data()),
                  reinterpret_cast<const Fr*>(hi.data()), lo_bits);
    });
}

static int run_ntt(int argc, char** argv) {
    u32 log_n = (u32)std::atoi(argv[2]);
    u32 batch = (u32)std::atoi(argv[3]);
    bool inverse = std::atoi(argv[4]) != 0;
    std::vector<u32> data = read_words(argv[5]);
    std::vector<u32> tw = read_words(argv[6]);
    const char* out_path = argv[7];
    u64 n = 1ull << log_n;
    if (log_n == 0 || data.size() != 8 * n * batch) {
        std::fprintf(stderr, "ntt: input size does not match log_n=%u batch=%u\n", log_n, batch);
        return 2;
    }
    if (argc >= 11 && !inverse) scale(data, log_n, batch, argv[8], argv[9], (u32)std::atoi(argv[10]));
    Fr* a = reinterpret_cast<Fr*>(data.data());
    const Fr* t = reinterpret_cast<const Fr*>(tw.data());
    launch(grid_for(n, batch), {THREADS, 1, 1}, false, [&] { ntt_bit_reverse(a, log_n); });
    u32 block_log = log_n < SHARED_LOG ? log_n : SHARED_LOG;
    launch({(u32)(n >> block_log), batch, 1}, {1u << (block_log - 1), 1, 1}, true,
           [&] { ntt_shared_stages(a, t, log_n, block_log); });
    for (u32 s = block_log; s < log_n; s++) {
        launch(grid_for(n / 2, batch), {THREADS, 1, 1}, false,
               [&] { ntt_global_stage(a, t, log_n, s); });
    }
    if (argc >= 14 && inverse) scale(data, log_n, batch, argv[11], argv[12], (u32)std::atoi(argv[13]));
    write_words(out_path, data);
    return 0;
}

static int run_gates(char** argv) {
    std::vector<u32> program = read_words(argv[2]);
    std::vector<u32> scalars = read_words(argv[3]);
    std::vector<u32> columns = read_words(argv[4]);
    std::vector<u32> rotations = read_words(argv[5]);
    u32 n = (u32)std::strtoul(argv[6], nullptr, 10);
    std::vector<u32> values = read_words(argv[7]);
    const char* out_path = argv[8];
    u64 slots = std::strtoull(argv[9], nullptr, 10);
    u32 grid = (u32)std::strtoul(argv[10], nullptr, 10);
    if (values.size() != 8ull * n || columns.size() % (8ull * n) != 0 || program.size() < 3) {
        std::fprintf(stderr, "gates: input sizes do not match n=%u\n", n);
        return 2;
    }
    u64 stride = (u64)grid * THREADS;
    // cuda.rs allocates the slots zeroed and at least one element long.
    std::vector<u32> scratch(8 * std::max<u64>(1, slots * stride));
    launch({grid, 1, 1}, {THREADS, 1, 1}, false, [&] {
        gates_evaluate(program.data(), reinterpret_cast<const Fr*>(scalars.data()),
                       reinterpret_cast<const Fr*>(columns.data()),
                       reinterpret_cast<const i32*>(rotations.data()), n,
                       reinterpret_cast<Fr*>(values.data()), reinterpret_cast<Fr*>(scratch.data()));
    });
    write_words(out_path, values);
    return 0;
}

int main(int argc, char** argv) {
    if (argc >= 9 && std::strcmp(argv[1], "msm") == 0) {
        std::vector<u64> levels;
        for (int i = 8; i < argc; i++) levels.push_back(std::strtoull(argv[i], nullptr, 10));
        return run_msm((u32)std::atoi(argv[2]), (u32)std::atoi(argv[3]), argv[4], argv[5], argv[6],
                       (u32)std::atoi(argv[7]), levels);
    }
    if (argc >= 8 && std::strcmp(argv[1], "ntt") == 0) return run_ntt(argc, argv);
    if (argc == 11 && std::strcmp(argv[1], "gates") == 0) return run_gates(argv);
    std::fprintf(stderr, "usage: kernel_emu msm C N BASES SCALARS OUT CHUNK LEVEL_BOUND... | ntt LOG_N BATCH INVERSE DATA TW OUT [PRE_LO PRE_HI PRE_BITS] [POST_LO POST_HI POST_BITS] | gates PROGRAM SCALARS COLUMNS ROTATIONS N VALUES OUT SLOTS GRID\n");
    return 2;
}
