// DINOv2 / DINOv3 collate masks on the CPU: the slot plan (dino_mask.h) sorted by shuffle key, then one row per
// sample on an OpenMP loop: the masking family's CPU block mask (its draws computed ahead), then the shared
// dino_finish_row on a team of one lane.
#include "dino_mask.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "../masking/mask_generators.h"
#include "mimkernels/dino_mask.h"

namespace mimkernels {
namespace {
// Per-thread scratch of one row: the unrolled mask and v3's completion keys.
struct DinoScratch {
  std::vector<uint8_t> mask;
  std::vector<uint64_t> keys;
  explicit DinoScratch(int64_t cells) : mask(static_cast<size_t>(cells)), keys(static_cast<size_t>(cells)) {}
};
}  // namespace

void dino_collate_cpu(uintptr_t out, uintptr_t probs, int64_t batch, int64_t n_masked, int64_t height, int64_t width,
                      int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                      bool v3, bool circular_shift, uint64_t seed, uintptr_t seed_step, int num_threads) {
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  const float* bounds = reinterpret_cast<const float*>(probs);
  const int64_t cells = height * width;
  std::vector<DinoSlot> slots(static_cast<size_t>(batch));
  for (int64_t j = 0; j < batch; ++j)
    slots[j] = dino_slot(bounds, j, n_masked, height, width, v3, circular_shift, key);
  std::sort(slots.begin(), slots.end(),
            [](const DinoSlot& a, const DinoSlot& b) { return a.shuffle_key < b.shuffle_key; });
  const BlockMaskParams p{height, width, 0, min_num_patches, max_num_patches, log_aspect_min, log_aspect_max, false};
  auto row = [&](DinoScratch& scratch, int64_t b) {
    BlockMaskParams row_params = p;
    row_params.num_masking_patches = slots[b].count;
    const int64_t masked = block_mask_sample_cpu(scratch.mask.data(), row_params, key, b);
    dino_finish_row(OneLane{}, masks + b * cells, scratch.mask.data(), scratch.keys.data(), height, width, slots[b],
                    masked, v3, key, b);
  };
  if (num_threads <= 1 || batch <= 1) {
    DinoScratch scratch(cells);
    for (int64_t b = 0; b < batch; ++b) row(scratch, b);
    return;
  }
  // Per-thread scratch, allocated outside the parallel region (MemoryError, not a crash, when too big).
  std::vector<DinoScratch> scratch(static_cast<size_t>(num_threads), DinoScratch(cells));
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) row(scratch[omp_get_thread_num()], b);
}

void dino_index_lists_cpu(uintptr_t masks, int64_t batch, int64_t cells, int64_t upperbound, uintptr_t indices,
                          uintptr_t weights, uintptr_t n_masked) {
  const uint8_t* m = reinterpret_cast<const uint8_t*>(masks);
  int64_t* index = reinterpret_cast<int64_t*>(indices);
  float* weight = reinterpret_cast<float*>(weights);
  int64_t k = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const uint8_t* row = m + b * cells;
    int64_t count = 0;
    for (int64_t t = 0; t < cells; ++t) count += row[t] != 0;
    // upstream: 1 / collated_masks.sum(-1).clamp(min=1.0), a float32 division
    const float row_weight = 1.0f / static_cast<float>(count > 0 ? count : 1);
    for (int64_t t = 0; t < cells && count > 0; ++t) {
      if (!row[t]) continue;
      if (k < upperbound) {
        index[k] = b * cells + t;
        weight[k] = row_weight;
      }
      ++k;
    }
  }
  for (int64_t pad = k; pad < upperbound; ++pad) {
    index[pad] = 0;
    weight[pad] = 0.0f;
  }
  *reinterpret_cast<int64_t*>(n_masked) = k;
}
}  // namespace mimkernels
