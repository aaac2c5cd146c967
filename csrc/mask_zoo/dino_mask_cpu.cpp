// DINOv2 / DINOv3 collate masks on the CPU: the slot plan (dino_mask.h) sorted by shuffle key, then one row per
// sample on an OpenMP loop, each with the shared body dino_mask_row on a team of one lane.
#include "dino_mask.h"

#include <omp.h>

#include <algorithm>
#include <vector>

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
                      bool v3, bool circular_shift, uint64_t seed, int num_threads) {
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  const float* bounds = reinterpret_cast<const float*>(probs);
  const int64_t cells = height * width;
  std::vector<DinoSlot> slots(static_cast<size_t>(batch));
  for (int64_t j = 0; j < batch; ++j)
    slots[j] = dino_slot(bounds, j, n_masked, height, width, v3, circular_shift, seed);
  std::sort(slots.begin(), slots.end(),
            [](const DinoSlot& a, const DinoSlot& b) { return a.shuffle_key < b.shuffle_key; });
  const BlockMaskParams p{height, width, 0, min_num_patches, max_num_patches, log_aspect_min, log_aspect_max, false};
  auto row = [&](DinoScratch& scratch, int64_t b) {
    BlockMaskDraws draws{seed, static_cast<uint32_t>(b), 0u};
    dino_mask_row(OneLane{}, masks + b * cells, scratch.mask.data(), scratch.keys.data(), p, slots[b], v3, seed, b,
                  draws);
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
}  // namespace mimkernels
