// Shared by the CUDA build (nvcc) and the CPU build (host compiler): one kernel body, two compilers.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define MK_HD __host__ __device__ __forceinline__
#define MK_DEVICE_BUILD 1
#else
#define MK_HD inline
#define MK_DEVICE_BUILD 0
#endif

namespace mimkernels {
// Every index that can pass 2^31 (B*L*D, B*C*H*W) is int64_t.
using index_t = int64_t;
}  // namespace mimkernels
