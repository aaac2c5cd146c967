// Host entry points of the score-guided mask (mimkernels/score_mask.h; bindings.cpp binds them).
// scores: (batch, tokens) contiguous, float32 (double_scores false) or float64; out: (batch, tokens) bool as
// bytes. cuda: order is a (batch, tokens) int32 workspace. cpu: OpenMP over samples on num_threads.
// seed_step: 0, or the address of the (seed, step) int64 pair of a seed tensor on the entry's device, whose key
// (rng.h resolve_key) replaces seed: resolved once before the loop (cpu) or at the top of the kernel (cuda).
#pragma once
#include <cstdint>

namespace mimkernels {
void score_mask_cpu(uintptr_t out, uintptr_t scores, bool double_scores, int64_t batch, int64_t tokens,
                    int64_t num_masked, int64_t num_guided, int64_t hint_pool, int64_t num_hints, bool largest,
                    uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads);
#ifdef MIMKERNELS_WITH_CUDA
void score_mask_cuda(uintptr_t out, uintptr_t order, uintptr_t scores, bool double_scores, int64_t batch,
                     int64_t tokens, int64_t num_masked, int64_t num_guided, int64_t hint_pool, int64_t num_hints,
                     bool largest, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, uintptr_t stream);
#endif
}  // namespace mimkernels
