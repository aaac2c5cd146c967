// CUDA entry points of the multi-block masks (multiblock.h): one launch per batch, one thread per sample
// running multiblock_mask.h's body (a sample is a short sequential loop of placements; B = 256 samples
// make 2 blocks of 128 threads). The block sizes are drawn on the host from the seed (no device read).
#include "mimkernels/cuda_check.h"
#include "mimkernels/multiblock_mask.h"
#include "multiblock.h"

namespace mimkernels {
namespace {
constexpr int kMultiblockThreads = 128;

__global__ void multiblock_2d_kernel(uint8_t* blocks, int64_t* ids, int64_t* counts, int64_t batch, int64_t cells,
                                     MultiblockParams p, uint64_t seed, int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const int64_t nblocks = p.num_enc + p.num_pred;
  multiblock_sample(blocks + b * nblocks * cells, ids + b * nblocks * cells, counts + b * nblocks, p, seed,
                    sample_offset + b);
}

__global__ void multiblock_3d_kernel(uint8_t* blocks, int64_t* ids, int64_t* counts, int64_t batch, int64_t cells,
                                     Multiblock3dParams p, uint64_t seed, int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  multiblock_3d_sample(blocks + b * 2 * cells, ids + b * 2 * cells, counts + b * 2, p, seed, sample_offset + b);
}
}  // namespace

void multiblock_mask_cuda(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t height,
                          int64_t width, double enc_scale_min, double enc_scale_max, double pred_scale_min,
                          double pred_scale_max, double aspect_min, double aspect_max, int64_t num_enc,
                          int64_t num_pred, int64_t min_keep, bool allow_overlap, bool official, uint64_t seed,
                          int64_t sample_offset, uintptr_t stream) {
  if (batch == 0) return;
  const MultiblockParams p = multiblock_params(height, width, enc_scale_min, enc_scale_max, pred_scale_min,
                                               pred_scale_max, aspect_min, aspect_max, num_enc, num_pred, min_keep,
                                               allow_overlap, official, seed);
  const unsigned grid = grid_for(batch, kMultiblockThreads, "multiblock_2d_kernel");
  multiblock_2d_kernel<<<grid, kMultiblockThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(blocks), reinterpret_cast<int64_t*>(ids), reinterpret_cast<int64_t*>(counts), batch,
      height * width, p, seed, sample_offset);
  MK_CHECK_LAUNCH("multiblock_2d_kernel");
}

void multiblock_mask_3d_cuda(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t frames,
                             int64_t height, int64_t width, double temporal_min, double temporal_max,
                             double spatial_min, double spatial_max, double aspect_min, double aspect_max,
                             int64_t num_blocks, double max_temporal_keep, bool official, uint64_t seed,
                             int64_t sample_offset, uintptr_t stream) {
  if (batch == 0) return;
  const Multiblock3dParams p = multiblock_3d_params(frames, height, width, temporal_min, temporal_max, spatial_min,
                                                    spatial_max, aspect_min, aspect_max, num_blocks,
                                                    max_temporal_keep, official, seed);
  const unsigned grid = grid_for(batch, kMultiblockThreads, "multiblock_3d_kernel");
  multiblock_3d_kernel<<<grid, kMultiblockThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(blocks), reinterpret_cast<int64_t*>(ids), reinterpret_cast<int64_t*>(counts), batch,
      frames * height * width, p, seed, sample_offset);
  MK_CHECK_LAUNCH("multiblock_3d_kernel");
}
}  // namespace mimkernels
