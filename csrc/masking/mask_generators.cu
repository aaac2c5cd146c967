#include "mask_generators.h"
#include "mimkernels/avg_dist.h"
#include "mimkernels/block_mask.h"
#include "mimkernels/cuda_check.h"
#include "mimkernels/simmim_mask.h"

namespace mimkernels {
namespace {
constexpr int kThreadsPerBlock = 128;
constexpr int kAvgDistThreads = 64;

// One thread per sample.
__global__ void simmim_mask_kernel(uint8_t* out, uint64_t* keys, int64_t batch, int64_t rand_size, int64_t scale,
                                   int64_t mask_count, uint64_t seed, int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const int64_t n = rand_size * scale;
  simmim_mask_sample(out + b * n * n, keys + b * rand_size * rand_size, rand_size, scale, mask_count, seed,
                     sample_offset + b);
}

// One thread per sample.
__global__ void block_mask_kernel(uint8_t* out, int64_t batch, BlockMaskParams p, uint64_t seed,
                                  int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  block_mask_sample(out + b * p.height * p.width, p, seed, sample_offset + b);
}

// Workspace of the AvgDist kernel, carved from one byte buffer (8-byte arrays first): row sums
// (batch, H) double, per-thread row scratch gu (batch, kAvgDistThreads, W) int64 and s/t
// (batch, kAvgDistThreads, 2W) int32, above/below (batch, h, w) int32.
struct AvgDistWorkspace {
  double* row_sums;
  int64_t* gu;
  int32_t* envelope;
  int32_t* above;
  int32_t* below;
};

AvgDistWorkspace carve(uint8_t* base, int64_t batch, int64_t h, int64_t w, int64_t patch) {
  const int64_t W = w * patch;
  AvgDistWorkspace ws;
  ws.row_sums = reinterpret_cast<double*>(base);
  ws.gu = reinterpret_cast<int64_t*>(ws.row_sums + batch * h * patch);
  ws.envelope = reinterpret_cast<int32_t*>(ws.gu + batch * kAvgDistThreads * W);
  ws.above = ws.envelope + batch * kAvgDistThreads * 2 * W;
  ws.below = ws.above + batch * h * w;
  return ws;
}

// One block per sample: threads over patch columns (column pass), then over pixel rows (row pass,
// one envelope scratch per thread), then thread 0 sums the rows in order.
__global__ void mask_avg_dist_kernel(float* out, const uint8_t* masks, AvgDistWorkspace ws, int64_t h, int64_t w,
                                     int64_t patch) {
  const int64_t b = blockIdx.x;
  const int64_t H = h * patch, W = w * patch;
  const uint8_t* m = masks + b * h * w;
  int32_t* above = ws.above + b * h * w;
  int32_t* below = ws.below + b * h * w;
  for (int64_t j = threadIdx.x; j < w; j += blockDim.x) avg_dist_column(m, above, below, h, w, j);
  __syncthreads();
  const AvgDistGrid grid{m, above, below, h, w, patch};
  const int64_t thread = b * blockDim.x + threadIdx.x;
  int64_t* gu = ws.gu + thread * W;
  int32_t* s = ws.envelope + thread * 2 * W;
  double* rows = ws.row_sums + b * H;
  for (int64_t y = threadIdx.x; y < H; y += blockDim.x) rows[y] = avg_dist_row_sum(grid, y, gu, s, s + W);
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int64_t y = 0; y < H; ++y) total += rows[y];
    out[b] = avg_dist_finish(total, count_nonzero(m, h * w), h * w, patch);
  }
}
}  // namespace

void simmim_mask_cuda(uintptr_t out, uintptr_t workspace, int64_t batch, int64_t rand_size, int64_t scale,
                      int64_t mask_count, uint64_t seed, int64_t sample_offset, uintptr_t stream) {
  if (batch == 0) return;
  const unsigned grid = grid_for(batch, kThreadsPerBlock, "simmim_mask_kernel");
  simmim_mask_kernel<<<grid, kThreadsPerBlock, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(out), reinterpret_cast<uint64_t*>(workspace), batch, rand_size, scale, mask_count,
      seed, sample_offset);
  MK_CHECK_LAUNCH("simmim_mask_kernel");
}

void block_mask_cuda(uintptr_t out, int64_t batch, int64_t height, int64_t width, int64_t num_masking_patches,
                     int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                     bool mmpretrain, uint64_t seed, int64_t sample_offset, uintptr_t stream) {
  if (batch == 0) return;
  const BlockMaskParams p{height, width, num_masking_patches, min_num_patches, max_num_patches,
                          log_aspect_min, log_aspect_max, mmpretrain};
  const unsigned grid = grid_for(batch, kThreadsPerBlock, "block_mask_kernel");
  block_mask_kernel<<<grid, kThreadsPerBlock, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(out), batch, p, seed, sample_offset);
  MK_CHECK_LAUNCH("block_mask_kernel");
}

int64_t mask_avg_dist_workspace_bytes(int64_t batch, int64_t h, int64_t w, int64_t patch_size) {
  const int64_t H = h * patch_size, W = w * patch_size;
  return (batch * H + batch * kAvgDistThreads * W) * 8 +
         (batch * kAvgDistThreads * 2 * W + 2 * batch * h * w) * static_cast<int64_t>(sizeof(int32_t));
}

void mask_avg_dist_cuda(uintptr_t out, uintptr_t mask, uintptr_t workspace, int64_t batch, int64_t h, int64_t w,
                        int64_t patch_size, uintptr_t stream) {
  if (batch == 0) return;
  mask_avg_dist_kernel<<<grid_x(batch, "mask_avg_dist_kernel"), kAvgDistThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<float*>(out), reinterpret_cast<const uint8_t*>(mask),
      carve(reinterpret_cast<uint8_t*>(workspace), batch, h, w, patch_size), h, w, patch_size);
  MK_CHECK_LAUNCH("mask_avg_dist_kernel");
}
}  // namespace mimkernels
