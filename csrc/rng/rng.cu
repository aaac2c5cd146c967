#include "rng.h"

#include "mimkernels/cuda_check.h"
#include "mimkernels/rng.h"

namespace mimkernels {
namespace {
__global__ void philox_fill_kernel(uint4* out, int64_t n, uint32_t c0_start, uint32_t c1, uint32_t c2,
                                   uint32_t c3, uint64_t seed) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n) return;
  const Philox4 r = philox4x32_10(c0_start + static_cast<uint32_t>(k), c1, c2, c3, seed);
  out[k] = make_uint4(r.x0, r.x1, r.x2, r.x3);
}
}  // namespace

void philox_fill_cuda(uintptr_t out, int64_t n, uint32_t c0_start, uint32_t c1, uint32_t c2, uint32_t c3,
                      uint64_t seed, uintptr_t stream) {
  if (n == 0) return;
  const int threads = 256;
  philox_fill_kernel<<<grid_for(n, threads, "philox_fill_kernel"), threads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint4*>(out), n, c0_start, c1, c2, c3, seed);
  MK_CHECK_LAUNCH("philox_fill_kernel");
}
}  // namespace mimkernels
