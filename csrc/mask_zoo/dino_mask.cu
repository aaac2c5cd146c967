// DINOv2 / DINOv3 collate masks on the GPU: three launches on the caller's stream. (1) one thread per slot
// computes its plan (dino_mask.h); (2) one thread per slot finds its row, the rank of its shuffle key among
// the batch's (O(B) compares per slot: collate batches are small), and writes its plan there; (3) one warp
// per row runs block_mask.h's body and dino_finish_row (WarpTeam), the row's scratch in the workspace.
#include "dino_mask.h"
#include "mimkernels/cuda_check.h"
#include "mimkernels/dino_mask.h"
#include "mimkernels/warp_team.cuh"

namespace mimkernels {
namespace {
constexpr int kSlotThreads = 128;
constexpr int kRowWarps = 2;

// Workspace carving (8-byte arrays first): slots by index, slots by row, completion keys (batch x cells),
// mask scratch (batch x cells bytes).
struct DinoWorkspace {
  DinoSlot* by_index;
  DinoSlot* by_row;
  uint64_t* keys;
  uint8_t* masks;
};

DinoWorkspace carve(uint8_t* base, int64_t batch, int64_t cells) {
  DinoWorkspace w;
  w.by_index = reinterpret_cast<DinoSlot*>(base);
  w.by_row = w.by_index + batch;
  w.keys = reinterpret_cast<uint64_t*>(w.by_row + batch);
  w.masks = reinterpret_cast<uint8_t*>(w.keys + batch * cells);
  return w;
}

__global__ void dino_slot_kernel(DinoSlot* slots, const float* probs, int64_t batch, int64_t n_masked, int64_t height,
                                 int64_t width, bool v3, bool circular_shift, uint64_t seed, const int64_t* seed_step) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < batch)
    slots[j] = dino_slot(probs, j, n_masked, height, width, v3, circular_shift, resolve_key(seed, seed_step));
}

__global__ void dino_shuffle_kernel(DinoSlot* by_row, const DinoSlot* by_index, int64_t batch) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= batch) return;
  const uint64_t mine = by_index[j].shuffle_key;
  int64_t rank = 0;
  for (int64_t k = 0; k < batch; ++k) rank += by_index[k].shuffle_key < mine ? 1 : 0;
  by_row[rank] = by_index[j];
}

__global__ void dino_row_kernel(uint8_t* out, DinoWorkspace w, int64_t batch, BlockMaskParams p, bool v3,
                                uint64_t seed, const int64_t* seed_step) {
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kRowWarps + warp;
  if (b >= batch) return;  // the whole warp
  const uint64_t key = resolve_key(seed, seed_step);
  const WarpTeam team{WarpGroup{threadIdx.x % kWarpSize}};
  const int64_t cells = p.height * p.width;
  const DinoSlot slot = w.by_row[b];
  BlockMaskParams row_params = p;
  row_params.num_masking_patches = slot.count;
  uint8_t* mask = w.masks + b * cells;
  const int64_t masked = block_mask_sample_team(team, mask, row_params, key, b);
  dino_finish_row(team, out + b * cells, mask, w.keys + b * cells, p.height, p.width, slot, masked, v3, key, b);
}
}  // namespace

int64_t dino_collate_workspace_bytes(int64_t batch, int64_t height, int64_t width) {
  const int64_t cells = height * width;
  return 2 * batch * static_cast<int64_t>(sizeof(DinoSlot)) + batch * cells * 9;
}

void dino_collate_cuda(uintptr_t out, uintptr_t probs, uintptr_t workspace, int64_t batch, int64_t n_masked,
                       int64_t height, int64_t width, int64_t min_num_patches, int64_t max_num_patches,
                       double log_aspect_min, double log_aspect_max, bool v3, bool circular_shift, uint64_t seed,
                       uintptr_t seed_step, uintptr_t stream) {
  if (batch == 0) return;
  const int64_t* step = reinterpret_cast<const int64_t*>(seed_step);
  const DinoWorkspace w = carve(reinterpret_cast<uint8_t*>(workspace), batch, height * width);
  const unsigned slot_grid = grid_for(batch, kSlotThreads, "dino_slot_kernel");
  dino_slot_kernel<<<slot_grid, kSlotThreads, 0, as_stream(stream)>>>(
      w.by_index, reinterpret_cast<const float*>(probs), batch, n_masked, height, width, v3, circular_shift, seed,
      step);
  MK_CHECK_LAUNCH("dino_slot_kernel");
  dino_shuffle_kernel<<<slot_grid, kSlotThreads, 0, as_stream(stream)>>>(w.by_row, w.by_index, batch);
  MK_CHECK_LAUNCH("dino_shuffle_kernel");
  const BlockMaskParams p{height, width, 0, min_num_patches, max_num_patches, log_aspect_min, log_aspect_max, false};
  dino_row_kernel<<<grid_for(batch, kRowWarps, "dino_row_kernel"), kRowWarps * kWarpSize, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(out), w, batch, p, v3, seed, step);
  MK_CHECK_LAUNCH("dino_row_kernel");
}
}  // namespace mimkernels
