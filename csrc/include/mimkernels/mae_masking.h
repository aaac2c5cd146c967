// MAE random_mask_indices (masking/SPEC.md §2, rng.md stream 1), shared by the CPU and CUDA builds.
// Sort key of patch l: x0 of draw(seed, l, sample, kStreamMaeMasking), ascending as uint32, ties by
// index, i.e. ascending order of the packed uint64 (x0 << 32) | l.
#pragma once
#include <cstdint>

#include "mimkernels/common.h"
#include "mimkernels/rng.h"

namespace mimkernels {
MK_HD uint32_t mae_key(uint64_t seed, int64_t l, int64_t sample) {
  return draw(seed, static_cast<uint32_t>(l), static_cast<uint32_t>(sample), kStreamMaeMasking).x0;
}

MK_HD uint64_t mae_packed_key(uint32_t x0, int64_t l) {
  return (static_cast<uint64_t>(x0) << 32) | static_cast<uint64_t>(static_cast<uint32_t>(l));
}

// The kept count of sample b: K for one ratio, keep_counts[b] with per-sample ratios (the host computed
// them; any value is safe: the mask is pos >= kept, the ids_keep row is K wide whatever kept is).
MK_HD int64_t mae_kept_count(const int64_t* keep_counts, int64_t b, int64_t K) {
  return keep_counts != nullptr ? keep_counts[b] : K;
}

// Patch l sits at sorted position pos of one sample (rows already offset to that sample): ids_keep holds
// the first K positions of the sorted order (K = the row's width), the mask marks positions >= kept.
MK_HD void mae_write_position(int64_t* ids_keep_row, int64_t* ids_restore_row, float* mask_row, int64_t l,
                              int64_t pos, int64_t K, int64_t kept) {
  ids_restore_row[l] = pos;
  if (pos < K) ids_keep_row[pos] = l;
  mask_row[l] = pos >= kept ? 1.0f : 0.0f;
}
}  // namespace mimkernels
