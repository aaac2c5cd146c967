// Host entry points of the I-JEPA and V-JEPA multi-block masks (bindings.cpp binds them). Outputs are
// contiguous: blocks (batch, nblocks, cells) bool as bytes, ids (batch, nblocks, cells) int64, counts
// (batch, nblocks) int64 (multiblock_mask.h); cpu entries leave ids past the counts unwritten when
// pad_lists is false (the collators' cut lists read the counts only). cpu entries run an OpenMP loop over
// samples on num_threads threads (>= 1); cuda entries launch once on `stream`, one thread per sample.
// seed_step: 0, or the address of the (seed, step) int64 pair of a seed tensor on the entry's device, whose key
// (rng.h resolve_key) replaces seed: resolved once before the loop (cpu) or at the top of the kernel (cuda),
// never in the per-sample bodies.
#pragma once
#include <cstdint>
#include <utility>

namespace mimkernels {
void multiblock_mask_cpu(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t height,
                         int64_t width, double enc_scale_min, double enc_scale_max, double pred_scale_min,
                         double pred_scale_max, double aspect_min, double aspect_max, int64_t num_enc,
                         int64_t num_pred, int64_t min_keep, bool allow_overlap, bool official, uint64_t seed,
                         uintptr_t seed_step, int64_t sample_offset, bool pad_lists, int num_threads);
void multiblock_mask_3d_cpu(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t frames,
                            int64_t height, int64_t width, double temporal_min, double temporal_max,
                            double spatial_min, double spatial_max, double aspect_min, double aspect_max,
                            int64_t num_blocks, double max_temporal_keep, bool official, uint64_t seed,
                            uintptr_t seed_step, int64_t sample_offset, bool pad_lists, int num_threads);
// Upstream's collated index lists from the outputs above (blocks [0, num_pred) are the targets, the rest the
// context blocks; MultiBlockMasks.to_upstream): list_widths returns the batch minimum count of the targets and
// of the context blocks (0 for a kind without blocks); cut_lists copies the first keep_pred (keep_enc) ids of
// each target (context block) to pred (enc), laid out (num_pred, batch, keep_pred) ((nblocks - num_pred,
// batch, keep_enc)) int64. keep_* <= the widths.
std::pair<int64_t, int64_t> multiblock_list_widths_cpu(uintptr_t counts, int64_t batch, int64_t nblocks,
                                                        int64_t num_pred);
void multiblock_cut_lists_cpu(uintptr_t ids, int64_t batch, int64_t nblocks, int64_t cells, int64_t num_pred,
                              int64_t keep_pred, int64_t keep_enc, uintptr_t pred, uintptr_t enc);
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
