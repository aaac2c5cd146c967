// Host entry points of the masking family (bindings.cpp binds them). MAE random masking indices:
// ids_keep (batch, K) int64, ids_restore (batch, L) int64, mask (batch, L) float32, contiguous. The cpu
// entry runs an OpenMP loop over samples on num_threads threads (>= 1). seed_step: 0, or the address of the
// (seed, step) int64 pair of a seed tensor on the entry's device, whose key (rng.h resolve_key) replaces seed.
#pragma once
#include <cstdint>

namespace mimkernels {
void mae_mask_indices_cpu(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, int64_t batch, int64_t L,
                          int64_t K, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads);
// Per-sample ratios: keep_counts (batch,) int64, the kept count of each sample; ids_keep is (batch, K) with
// K the caller's bound, the mask marks sorted positions >= keep_counts[b] (masking/SPEC.md §2a).
void mae_mask_indices_counts_cpu(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, uintptr_t keep_counts,
                                 int64_t batch, int64_t L, int64_t K, uint64_t seed, uintptr_t seed_step,
                                 int64_t sample_offset, int num_threads);
#ifdef MIMKERNELS_WITH_CUDA
void mae_mask_indices_cuda(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, int64_t batch, int64_t L,
                           int64_t K, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, uintptr_t stream);
void mae_mask_indices_counts_cuda(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, uintptr_t keep_counts,
                                  int64_t batch, int64_t L, int64_t K, uint64_t seed, uintptr_t seed_step,
                                  int64_t sample_offset, uintptr_t stream);
#endif
}  // namespace mimkernels
