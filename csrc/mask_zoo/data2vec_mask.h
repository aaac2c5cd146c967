// Host entry points of data2vec 2.0's block mask (mimkernels/data2vec_mask.h; bindings.cpp binds them).
// out: (batch * clone_batch, side^2) bool as bytes, contiguous; cpu: OpenMP over rows on num_threads.
// seed_step: 0, or the address of the (seed, step) int64 pair of a seed tensor on the entry's device, whose key
// (rng.h resolve_key) replaces seed: resolved once before the loop (cpu) or at the top of the kernel (cuda).
#pragma once
#include <cstdint>

namespace mimkernels {
void data2vec_mask_cpu(uintptr_t out, int64_t batch, int64_t clone_batch, int64_t side, int64_t mask_length,
                       int64_t centres, int64_t target, int64_t calls_per_clone, bool inverse_mask,
                       bool require_same_masks, bool non_overlapping, uint64_t seed, uintptr_t seed_step,
                       int64_t sample_offset, int num_threads);
#ifdef MIMKERNELS_WITH_CUDA
void data2vec_mask_cuda(uintptr_t out, int64_t batch, int64_t clone_batch, int64_t side, int64_t mask_length,
                        int64_t centres, int64_t target, int64_t calls_per_clone, bool inverse_mask,
                        bool require_same_masks, bool non_overlapping, uint64_t seed, uintptr_t seed_step,
                        int64_t sample_offset, uintptr_t stream);
#endif
}  // namespace mimkernels
