// Host entry points of the I-JEPA and V-JEPA multi-block masks (bindings.cpp binds them). Outputs are
// contiguous: blocks (batch, nblocks, cells) bool as bytes, ids (batch, nblocks, cells) int64, counts
// (batch, nblocks) int64 (multiblock_mask.h). cpu entries run an OpenMP loop over samples on num_threads
// threads (>= 1); cuda entries launch once on `stream`, one thread per sample. seed_step: 0, or the address of
// the (seed, step) int64 pair of a seed tensor on the entry's device, whose key (rng.h resolve_key) replaces seed:
// resolved once before the loop (cpu) or at the top of the kernel (cuda), never in the per-sample bodies.
#pragma once
#include <cstdint>

namespace mimkernels {
void multiblock_mask_cpu(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t height,
                         int64_t width, double enc_scale_min, double enc_scale_max, double pred_scale_min,
                         double pred_scale_max, double aspect_min, double aspect_max, int64_t num_enc,
                         int64_t num_pred, int64_t min_keep, bool allow_overlap, bool official, uint64_t seed,
                         uintptr_t seed_step, int64_t sample_offset, int num_threads);
void multiblock_mask_3d_cpu(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t frames,
                            int64_t height, int64_t width, double temporal_min, double temporal_max,
                            double spatial_min, double spatial_max, double aspect_min, double aspect_max,
                            int64_t num_blocks, double max_temporal_keep, bool official, uint64_t seed,
                            uintptr_t seed_step, int64_t sample_offset, int num_threads);
#ifdef MIMKERNELS_WITH_CUDA
void multiblock_mask_cuda(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t height,
                          int64_t width, double enc_scale_min, double enc_scale_max, double pred_scale_min,
                          double pred_scale_max, double aspect_min, double aspect_max, int64_t num_enc,
                          int64_t num_pred, int64_t min_keep, bool allow_overlap, bool official, uint64_t seed,
                          uintptr_t seed_step, int64_t sample_offset, uintptr_t stream);
void multiblock_mask_3d_cuda(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t frames,
                             int64_t height, int64_t width, double temporal_min, double temporal_max,
                             double spatial_min, double spatial_max, double aspect_min, double aspect_max,
                             int64_t num_blocks, double max_temporal_keep, bool official, uint64_t seed,
                             uintptr_t seed_step, int64_t sample_offset, uintptr_t stream);
#endif
}  // namespace mimkernels
