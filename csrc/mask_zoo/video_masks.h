// Host entry points of the tube, running-cell and uniform masks (mask_zoo/SPEC.md §4-6; the bodies:
// mimkernels/video_masks.h). Outputs contiguous bytes, 1 = masked: tube and running cell
// (batch, frames * cells), uniform mask and secondary (batch, height * width) each. cpu entries run an
// OpenMP loop over samples on num_threads threads (>= 1); cuda entries take the stream handle last. seed_step: 0,
// or the address of the (seed, step) int64 pair of a seed tensor on the entry's device, whose key (rng.h
// resolve_key) replaces seed: resolved once before the loop (cpu) or at the top of the kernel (cuda).
#pragma once
#include <cstdint>

namespace mimkernels {
void tube_mask_cpu(uintptr_t out, int64_t batch, int64_t frames, int64_t cells, int64_t masked, uint64_t seed,
                   uintptr_t seed_step, int64_t sample_offset, int num_threads);
void running_cell_mask_cpu(uintptr_t out, int64_t batch, int64_t frames, int64_t height, int64_t width,
                           int64_t masked_slots, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                           int num_threads);
void uniform_mask_cpu(uintptr_t mask, uintptr_t secondary, int64_t batch, int64_t height, int64_t width,
                      int64_t keep_final, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                      int num_threads);
#ifdef MIMKERNELS_WITH_CUDA
void tube_mask_cuda(uintptr_t out, int64_t batch, int64_t frames, int64_t cells, int64_t masked, uint64_t seed,
                    uintptr_t seed_step, int64_t sample_offset, uintptr_t stream);
void running_cell_mask_cuda(uintptr_t out, int64_t batch, int64_t frames, int64_t height, int64_t width,
                            int64_t masked_slots, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                            uintptr_t stream);
// workspace: (batch, uniform_candidate_rows(height * width)) bytes.
void uniform_mask_cuda(uintptr_t mask, uintptr_t secondary, uintptr_t workspace, int64_t batch, int64_t height,
                       int64_t width, int64_t keep_final, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                       uintptr_t stream);
#endif
}  // namespace mimkernels
