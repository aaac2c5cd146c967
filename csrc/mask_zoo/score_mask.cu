// CUDA entry of the score-guided mask: one thread per sample sorts its tokens into the int32 workspace
// (score_sort, a heap sort) and runs score_mask_sample (mimkernels/score_mask.h); one launch per batch,
// the same clamps as the cpu entry.
#include <algorithm>

#include "mimkernels/cuda_check.h"
#include "mimkernels/score_mask.h"
#include "score_mask.h"

namespace mimkernels {
namespace {
constexpr int kThreads = 64;

template <class T>
__global__ void score_mask_kernel(uint8_t* out, int32_t* order, const T* scores, int64_t batch, ScoreMaskParams p,
                                  uint64_t seed, const int64_t* seed_step, int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= batch) return;
  const uint64_t key = resolve_key(seed, seed_step);
  const int64_t n = p.tokens;
  score_sort(order + b * n, scores + b * n, n, p.largest);
  score_mask_sample(out + b * n, order + b * n, p, key, sample_offset + b);
}
}  // namespace

void score_mask_cuda(uintptr_t out, uintptr_t order, uintptr_t scores, bool double_scores, int64_t batch,
                     int64_t tokens, int64_t num_masked, int64_t num_guided, int64_t hint_pool, int64_t num_hints,
                     bool largest, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, uintptr_t stream) {
  if (batch <= 0) return;
  const int64_t masked = std::clamp<int64_t>(num_masked, 0, tokens);
  const int64_t pool = std::clamp<int64_t>(hint_pool, 0, tokens);
  const ScoreMaskParams p{tokens, masked, std::clamp<int64_t>(num_guided, 0, masked), pool,
                          std::clamp<int64_t>(num_hints, 0, pool), largest};
  const unsigned grid = grid_for(batch, kThreads, "score_mask_kernel");
  uint8_t* o = reinterpret_cast<uint8_t*>(out);
  int32_t* w = reinterpret_cast<int32_t*>(order);
  const int64_t* step = reinterpret_cast<const int64_t*>(seed_step);
  if (double_scores)
    score_mask_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(o, w, reinterpret_cast<const double*>(scores), batch,
                                                                p, seed, step, sample_offset);
  else
    score_mask_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(o, w, reinterpret_cast<const float*>(scores), batch,
                                                                p, seed, step, sample_offset);
  MK_CHECK_LAUNCH("score_mask_kernel");
}

}  // namespace mimkernels
