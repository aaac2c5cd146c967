#include "mask_generators.h"

#include <omp.h>

#include <vector>

#include "mimkernels/avg_dist.h"
#include "mimkernels/block_mask.h"
#include "mimkernels/simmim_mask.h"

namespace mimkernels {
void simmim_mask_cpu(uintptr_t out, int64_t batch, int64_t rand_size, int64_t scale, int64_t mask_count,
                     uint64_t seed, int64_t sample_offset, int num_threads) {
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  const int64_t n = rand_size * scale;
  const int64_t tokens = rand_size * rand_size;
  std::vector<uint64_t> keys(static_cast<size_t>(num_threads * tokens));  // per thread, outside the parallel region
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) {
    uint64_t* own_keys = keys.data() + omp_get_thread_num() * tokens;
    simmim_mask_sample(masks + b * n * n, own_keys, rand_size, scale, mask_count, seed, sample_offset + b);
  }
}

void block_mask_cpu(uintptr_t out, int64_t batch, int64_t height, int64_t width, int64_t num_masking_patches,
                    int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                    bool mmpretrain, uint64_t seed, int64_t sample_offset, int num_threads) {
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  const BlockMaskParams p{height, width, num_masking_patches, min_num_patches, max_num_patches,
                          log_aspect_min, log_aspect_max, mmpretrain};
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) block_mask_sample(masks + b * height * width, p, seed, sample_offset + b);
}

void mask_avg_dist_cpu(uintptr_t out, uintptr_t mask, int64_t batch, int64_t h, int64_t w, int64_t patch_size,
                       int num_threads) {
  float* dist = reinterpret_cast<float*>(out);
  const uint8_t* masks = reinterpret_cast<const uint8_t*>(mask);
  const int64_t H = h * patch_size, W = w * patch_size;
  // Per-thread scratch, outside the parallel region (MemoryError, not a crash, when too big):
  // above and below (h * w each), the envelope s and t (W each), gu (W).
  const int64_t ints = 2 * h * w + 2 * W;
  std::vector<int32_t> int_scratch(static_cast<size_t>(num_threads * ints));
  std::vector<int64_t> gu_scratch(static_cast<size_t>(num_threads * W));
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) {
    const int thread = omp_get_thread_num();
    int32_t* above = int_scratch.data() + thread * ints;
    int32_t* below = above + h * w;
    int32_t* s = below + h * w;
    int64_t* gu = gu_scratch.data() + thread * W;
    const uint8_t* m = masks + b * h * w;
    for (int64_t j = 0; j < w; ++j) avg_dist_column(m, above, below, h, w, j);
    const AvgDistGrid grid{m, above, below, h, w, patch_size};
    double total = 0.0;
    for (int64_t y = 0; y < H; ++y) total += avg_dist_row_sum(grid, y, gu, s, s + W);
    dist[b] = avg_dist_finish(total, count_nonzero(m, h * w), h * w, patch_size);
  }
}
}  // namespace mimkernels
