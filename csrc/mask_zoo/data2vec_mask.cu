// CUDA entry of data2vec 2.0's block mask: one thread per mask row runs data2vec_mask_row
// (mimkernels/data2vec_mask.h), one launch per batch; the same clamps as the cpu entry.
#include <algorithm>

#include "data2vec_mask.h"
#include "mimkernels/cuda_check.h"
#include "mimkernels/data2vec_mask.h"

namespace mimkernels {
namespace {
constexpr int kThreads = 128;

__global__ void data2vec_mask_kernel(uint8_t* out, int64_t rows, Data2vecMaskParams p, uint64_t seed,
                                     const int64_t* seed_step, int64_t sample_offset) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= rows) return;
  data2vec_mask_row(out + r * p.side * p.side, p, resolve_key(seed, seed_step), r, sample_offset);
}
}  // namespace

void data2vec_mask_cuda(uintptr_t out, int64_t batch, int64_t clone_batch, int64_t side, int64_t mask_length,
                        int64_t centres, int64_t target, int64_t calls_per_clone, bool inverse_mask,
                        bool require_same_masks, bool non_overlapping, uint64_t seed, uintptr_t seed_step,
                        int64_t sample_offset, uintptr_t stream) {
  const int64_t rows = batch * clone_batch;
  if (rows <= 0) return;
  const Data2vecMaskParams p{side, std::max<int64_t>(mask_length, 1), std::max<int64_t>(clone_batch, 1),
                             std::max<int64_t>(centres, 0), std::clamp<int64_t>(target, 0, side * side),
                             calls_per_clone, inverse_mask, require_same_masks, non_overlapping};
  const unsigned grid = grid_for(rows, kThreads, "data2vec_mask_kernel");
  data2vec_mask_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(reinterpret_cast<uint8_t*>(out), rows, p, seed,
                                                                 reinterpret_cast<const int64_t*>(seed_step),
                                                                 sample_offset);
  MK_CHECK_LAUNCH("data2vec_mask_kernel");
}

}  // namespace mimkernels
