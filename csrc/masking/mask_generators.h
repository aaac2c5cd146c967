// Host entry points of the SimMIM mask, the block mask and AvgDist (bindings.cpp binds them).
// Outputs are contiguous: masks (batch, n, n) / (batch, H, W) bool as bytes, AvgDist (batch,) float32.
// cpu entries run an OpenMP loop over samples on num_threads threads (>= 1). seed_step: 0, or the address of
// the (seed, step) int64 pair of a seed tensor on the entry's device, whose key (rng.h resolve_key) replaces seed:
// resolved once before the loop (cpu) or at the top of the kernel (cuda), never in the per-sample bodies.
#pragma once
#include <cstdint>

#include "mimkernels/block_mask.h"

namespace mimkernels {
// One block mask on the CPU (block_mask.h's block_mask_sample, its Philox calls computed ahead), for the
// cpp builds of generators built on it (csrc/mask_zoo/dino_mask_cpu.cpp). Returns the masked cells.
int64_t block_mask_sample_cpu(uint8_t* mask, const BlockMaskParams& p, uint64_t seed, int64_t sample);

void simmim_mask_cpu(uintptr_t out, int64_t batch, int64_t rand_size, int64_t scale, int64_t mask_count,
                     uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads);
void block_mask_cpu(uintptr_t out, int64_t batch, int64_t height, int64_t width, int64_t num_masking_patches,
                    int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                    bool mmpretrain, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads);
// Per-sample counts: counts (batch,) int64, the num_masking_patches of each sample; max_is_count: each
// sample's max_num_patches is its count (the caller passed none), else max_num_patches for all.
void block_mask_counts_cpu(uintptr_t out, uintptr_t counts, int64_t batch, int64_t height, int64_t width,
                           int64_t min_num_patches, int64_t max_num_patches, bool max_is_count, double log_aspect_min,
                           double log_aspect_max, bool mmpretrain, uint64_t seed, uintptr_t seed_step,
                           int64_t sample_offset, int num_threads);
// mask: (batch, h, w) bytes, nonzero = masked.
void mask_avg_dist_cpu(uintptr_t out, uintptr_t mask, int64_t batch, int64_t h, int64_t w, int64_t patch_size,
                       int num_threads);
#ifdef MIMKERNELS_WITH_CUDA
// workspace: (batch, rand_size^2) uint64 sort keys.
void simmim_mask_cuda(uintptr_t out, uintptr_t workspace, int64_t batch, int64_t rand_size, int64_t scale,
                      int64_t mask_count, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                      uintptr_t stream);
void block_mask_cuda(uintptr_t out, int64_t batch, int64_t height, int64_t width, int64_t num_masking_patches,
                     int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                     bool mmpretrain, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, uintptr_t stream);
void block_mask_counts_cuda(uintptr_t out, uintptr_t counts, int64_t batch, int64_t height, int64_t width,
                            int64_t min_num_patches, int64_t max_num_patches, bool max_is_count,
                            double log_aspect_min, double log_aspect_max, bool mmpretrain, uint64_t seed,
                            uintptr_t seed_step, int64_t sample_offset, uintptr_t stream);
// workspace: mask_avg_dist_workspace_bytes(batch, h, w, patch_size) bytes.
void mask_avg_dist_cuda(uintptr_t out, uintptr_t mask, uintptr_t workspace, int64_t batch, int64_t h, int64_t w,
                        int64_t patch_size, uintptr_t stream);
int64_t mask_avg_dist_workspace_bytes(int64_t batch, int64_t h, int64_t w, int64_t patch_size);
#endif
}  // namespace mimkernels
