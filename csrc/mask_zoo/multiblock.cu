// CUDA entry points of the multi-block masks (multiblock.h): one launch per batch, one thread per sample
// running multiblock_mask.h's body (a sample is a short sequential loop of placements; B = 256 samples
// make 2 blocks of 128 threads). Each thread resolves the call's key (a seed tensor's is in device memory) and
// draws the batch's block sizes from it (multiblock_params, one Philox call): nothing is read on the host.
#include "mimkernels/cuda_check.h"
#include "mimkernels/multiblock_mask.h"
#include "multiblock.h"

namespace mimkernels {
namespace {
constexpr int kMultiblockThreads = 128;

// The launchers' settings, from which each thread derives MultiblockParams / Multiblock3dParams under its key.
struct Multiblock2dSettings {
  int64_t height, width;
  double enc_scale_min, enc_scale_max, pred_scale_min, pred_scale_max, aspect_min, aspect_max;
  int64_t num_enc, num_pred, min_keep;
  bool allow_overlap, official;
};

struct Multiblock3dSettings {
  int64_t frames, height, width;
  double temporal_min, temporal_max, spatial_min, spatial_max, aspect_min, aspect_max;
  int64_t num_blocks;
  double max_temporal_keep;
  bool official;
};

__global__ void multiblock_2d_kernel(uint8_t* blocks, int64_t* ids, int64_t* counts, int64_t batch,
                                     Multiblock2dSettings s, uint64_t seed, const int64_t* seed_step,
                                     int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const uint64_t key = resolve_key(seed, seed_step);
  const MultiblockParams p = multiblock_params(s.height, s.width, s.enc_scale_min, s.enc_scale_max, s.pred_scale_min,
                                               s.pred_scale_max, s.aspect_min, s.aspect_max, s.num_enc, s.num_pred,
                                               s.min_keep, s.allow_overlap, s.official, key);
  const int64_t nblocks = p.num_enc + p.num_pred, cells = p.height * p.width;
  multiblock_sample(blocks + b * nblocks * cells, ids + b * nblocks * cells, counts + b * nblocks, p, key,
                    sample_offset + b);
}

__global__ void multiblock_3d_kernel(uint8_t* blocks, int64_t* ids, int64_t* counts, int64_t batch,
                                     Multiblock3dSettings s, uint64_t seed, const int64_t* seed_step,
                                     int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const uint64_t key = resolve_key(seed, seed_step);
  const Multiblock3dParams p = multiblock_3d_params(s.frames, s.height, s.width, s.temporal_min, s.temporal_max,
                                                    s.spatial_min, s.spatial_max, s.aspect_min, s.aspect_max,
                                                    s.num_blocks, s.max_temporal_keep, s.official, key);
  const int64_t cells = p.frames * p.height * p.width;
  multiblock_3d_sample(blocks + b * 2 * cells, ids + b * 2 * cells, counts + b * 2, p, key, sample_offset + b);
}
}  // namespace

void multiblock_mask_cuda(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t height,
                          int64_t width, double enc_scale_min, double enc_scale_max, double pred_scale_min,
                          double pred_scale_max, double aspect_min, double aspect_max, int64_t num_enc,
                          int64_t num_pred, int64_t min_keep, bool allow_overlap, bool official, uint64_t seed,
                          uintptr_t seed_step, int64_t sample_offset, uintptr_t stream) {
  if (batch == 0) return;
  const Multiblock2dSettings s{height, width, enc_scale_min, enc_scale_max, pred_scale_min, pred_scale_max,
                               aspect_min, aspect_max, num_enc, num_pred, min_keep, allow_overlap, official};
  const unsigned grid = grid_for(batch, kMultiblockThreads, "multiblock_2d_kernel");
  multiblock_2d_kernel<<<grid, kMultiblockThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(blocks), reinterpret_cast<int64_t*>(ids), reinterpret_cast<int64_t*>(counts), batch,
      s, seed, reinterpret_cast<const int64_t*>(seed_step), sample_offset);
  MK_CHECK_LAUNCH("multiblock_2d_kernel");
}

void multiblock_mask_3d_cuda(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t frames,
                             int64_t height, int64_t width, double temporal_min, double temporal_max,
                             double spatial_min, double spatial_max, double aspect_min, double aspect_max,
                             int64_t num_blocks, double max_temporal_keep, bool official, uint64_t seed,
                             uintptr_t seed_step, int64_t sample_offset, uintptr_t stream) {
  if (batch == 0) return;
  const Multiblock3dSettings s{frames, height, width, temporal_min, temporal_max, spatial_min, spatial_max,
                               aspect_min, aspect_max, num_blocks, max_temporal_keep, official};
  const unsigned grid = grid_for(batch, kMultiblockThreads, "multiblock_3d_kernel");
  multiblock_3d_kernel<<<grid, kMultiblockThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(blocks), reinterpret_cast<int64_t*>(ids), reinterpret_cast<int64_t*>(counts), batch,
      s, seed, reinterpret_cast<const int64_t*>(seed_step), sample_offset);
  MK_CHECK_LAUNCH("multiblock_3d_kernel");
}
}  // namespace mimkernels
