// CPU entry of data2vec 2.0's block mask: data2vec_mask_row (mimkernels/data2vec_mask.h) per row, a plain
// loop on one thread, OpenMP over rows otherwise. Counts the catalogue op can be handed directly are
// clamped to their ranges (never an access outside the output, never a division by zero).
#include "data2vec_mask.h"

#include <omp.h>

#include <algorithm>

#include "mimkernels/data2vec_mask.h"

namespace mimkernels {

void data2vec_mask_cpu(uintptr_t out, int64_t batch, int64_t clone_batch, int64_t side, int64_t mask_length,
                       int64_t centres, int64_t target, int64_t calls_per_clone, bool inverse_mask,
                       bool require_same_masks, bool non_overlapping, uint64_t seed, uintptr_t seed_step,
                       int64_t sample_offset, int num_threads) {
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  const int64_t cells = side * side;
  const Data2vecMaskParams p{side, std::max<int64_t>(mask_length, 1), std::max<int64_t>(clone_batch, 1),
                             std::max<int64_t>(centres, 0), std::clamp<int64_t>(target, 0, cells), calls_per_clone,
                             inverse_mask, require_same_masks, non_overlapping};
  const int64_t rows = batch * clone_batch;
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  if (num_threads <= 1 || rows <= 1) {
    for (int64_t r = 0; r < rows; ++r) data2vec_mask_row(masks + r * cells, p, key, r, sample_offset);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t r = 0; r < rows; ++r) data2vec_mask_row(masks + r * cells, p, key, r, sample_offset);
}

}  // namespace mimkernels
