// Host entry points of the DINOv2 / DINOv3 collate masks (bindings.cpp binds them; mask_zoo/SPEC.md §9).
// out: (batch, height * width) bool as bytes, contiguous; probs: the n_masked + 1 float32 stratum bounds
// (upstream's linspace; on the device for the cuda entry). The cpu entry runs an OpenMP loop over rows on
// num_threads threads (>= 1). seed_step: 0, or the address of the (seed, step) int64 pair of a seed tensor on the
// entry's device, whose key (rng.h resolve_key) replaces seed: resolved once before the slots (cpu) or at the top
// of each kernel (cuda).
#pragma once
#include <cstdint>

namespace mimkernels {
void dino_collate_cpu(uintptr_t out, uintptr_t probs, int64_t batch, int64_t n_masked, int64_t height, int64_t width,
                      int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                      bool v3, bool circular_shift, uint64_t seed, uintptr_t seed_step, int num_threads);
// Upstream's lists from the masks (batch, cells) bytes in one pass: indices (upperbound,) int64 = the flat
// positions of the masked cells then 0, weights (upperbound,) float32 = 1 / (masked cells of the row) then 0,
// n_masked (1,) int64 = the masked cells (those past upperbound are counted, not written).
void dino_index_lists_cpu(uintptr_t masks, int64_t batch, int64_t cells, int64_t upperbound, uintptr_t indices,
                          uintptr_t weights, uintptr_t n_masked);
#ifdef MIMKERNELS_WITH_CUDA
// workspace: dino_collate_workspace_bytes(batch, height, width) bytes.
int64_t dino_collate_workspace_bytes(int64_t batch, int64_t height, int64_t width);
void dino_collate_cuda(uintptr_t out, uintptr_t probs, uintptr_t workspace, int64_t batch, int64_t n_masked,
                       int64_t height, int64_t width, int64_t min_num_patches, int64_t max_num_patches,
                       double log_aspect_min, double log_aspect_max, bool v3, bool circular_shift, uint64_t seed,
                       uintptr_t seed_step, uintptr_t stream);
#endif
}  // namespace mimkernels
