// Common definitions for proofmill kernels.
//
// NVRTC ships no standard headers (<cstdint> fails), so we define our own fixed-width
// types. When the headers are compiled as host C++ (the g++ tests in crates/accel), the CUDA
// qualifiers are defined away so the same field and curve code runs on the CPU.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define PM_DEVICE_COMPILER 1
#else
#define PM_DEVICE_COMPILER 0
#ifndef __device__
#define __device__
#endif
#ifndef __host__
#define __host__
#endif
#ifndef __global__
#define __global__
#endif
#ifndef __forceinline__
#define __forceinline__ inline __attribute__((always_inline))
#endif
#ifndef __shared__
#define __shared__
#endif
#endif

#define PM_HD __host__ __device__ __forceinline__
// Large routines (curve formulas, exponentiation) are called, not inlined, on the device:
// inlining them at every call site makes the PTX huge and NVRTC slow.
#if PM_DEVICE_COMPILER
#define PM_HD_CALL __host__ __device__ __noinline__
#else
#define PM_HD_CALL inline
#endif

typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;
typedef long long i64;

// Inline PTX is used only when compiling device code and asked for (PM_ENABLE_PTX): the
// portable code is the one the host tests check.
#if defined(__CUDA_ARCH__) && defined(PM_ENABLE_PTX)
#define PM_USE_PTX 1
#else
#define PM_USE_PTX 0
#endif
