#include "mask_generators.h"
#include "mimkernels/avg_dist.h"
#include "mimkernels/block_mask.h"
#include "mimkernels/cuda_check.h"
#include "mimkernels/simmim_mask.h"
#include "mimkernels/warp_team.cuh"

namespace mimkernels {
namespace {
constexpr int kAvgDistThreads = 64;

// The mask generators run one sample per warp: blocks of kWarpsPerBlock warps, so B = 256 samples make
// 128 blocks (one per SM of an H100's 132) instead of the 2 blocks of one thread per sample. The
// sample's sequential algorithm (the draws and every accept/stop decision) is the shared body of
// block_mask.h / simmim_mask.h, run by every lane alike; the lanes split the per-cell work (WarpTeam,
// warp_team.cuh).
constexpr int kWarpsPerBlock = 2;
constexpr int kGeneratorThreads = kWarpSize * kWarpsPerBlock;
// Dynamic shared memory per block without the opt-in attribute: a sample's mask (block mask) or keys
// (SimMIM) live in shared memory when kWarpsPerBlock of them fit, else in global memory (the output,
// the workspace): the same code on either.
constexpr int64_t kSharedBudget = 48 * 1024;

MK_HD int64_t round_up16(int64_t n) { return (n + 15) / 16 * 16; }

// dst[0, n) = src[0, n) by the warp, 4-byte words when both are aligned (consecutive lanes, consecutive
// words: coalesced), bytes otherwise.
__device__ __forceinline__ void warp_copy_bytes(const WarpTeam& team, uint8_t* dst, const uint8_t* src, int64_t n) {
  if (((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src) | static_cast<uintptr_t>(n)) & 3) == 0) {
    team.each(n / 4, [&](int64_t k) {
      reinterpret_cast<uint32_t*>(dst)[k] = reinterpret_cast<const uint32_t*>(src)[k];
    });
  } else {
    team.each(n, [&](int64_t k) { dst[k] = src[k]; });
  }
}

int64_t block_mask_shared_bytes(int64_t cells) {
  const int64_t bytes = kWarpsPerBlock * round_up16(cells);
  return bytes <= kSharedBudget ? bytes : 0;
}

// Largest SimMIM grid ranked in shared memory: keys (8 B) and marks (1 B) per cell for each warp, and
// the rank's tokens² / 32 compares per lane stay small (2048 cells: 64 K compares).
constexpr int64_t kSimmimRankMaxTokens = 2048;

int64_t simmim_shared_bytes(int64_t tokens) {
  if (tokens > kSimmimRankMaxTokens) return 0;
  const int64_t bytes = kWarpsPerBlock * round_up16(tokens * 9);
  return bytes <= kSharedBudget ? bytes : 0;
}

// One warp per sample. Shared path (shared_bytes > 0): the keys and the marks in shared memory, the cells
// ranked by the lanes (simmim_rank: exact selection of the mask_count smallest, as the sort). Global
// path (grids past kSimmimRankMaxTokens): the cpp build's sort and marks on the sample's workspace row,
// by lane 0. Then the lanes expand the cells to the n x n mask, coalesced byte stores.
// kShared (a template argument, so shared accesses compile to LDS/STS, not generic loads): the keys in
// shared memory, shared_bytes per block.
template <bool kShared>
__global__ void simmim_mask_kernel(uint8_t* out, uint64_t* workspace, int64_t batch, int64_t rand_size, int64_t scale,
                                   int64_t mask_count, uint64_t seed, const int64_t* seed_step, int64_t sample_offset,
                                   int64_t shared_bytes) {
  extern __shared__ __align__(16) uint8_t shared[];
  const uint64_t key = resolve_key(seed, seed_step);  // every lane alike (seed_step: nullptr or a seed tensor)
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (b >= batch) return;  // the whole warp: b is warp-uniform
  const WarpTeam team{WarpGroup{threadIdx.x % kWarpSize}};
  const int64_t tokens = rand_size * rand_size;
  const int64_t n = rand_size * scale;
  if constexpr (kShared) {
    uint64_t* keys = reinterpret_cast<uint64_t*>(shared + warp * (shared_bytes / kWarpsPerBlock));
    simmim_mask_sample_ranked(team, out + b * n * n, keys, reinterpret_cast<uint8_t*>(keys + tokens), rand_size,
                              scale, mask_count, key, sample_offset + b);
  } else {
    uint64_t* keys = workspace + b * tokens;
    team.each(tokens, [&](int64_t t) { keys[t] = simmim_packed_key(key, t, sample_offset + b); });
    team.sync();
    if (team.group.lane() == 0) simmim_mark_sorted(keys, tokens, simmim_bounded_count(mask_count, tokens));
    team.sync();
    uint8_t* mask = out + b * n * n;
    team.each_rect(n, n, [&](int64_t y, int64_t x) {
      mask[y * n + x] = (keys[(y / scale) * rand_size + x / scale] & kSimmimMarked) ? 1 : 0;
    });
  }
}

// One warp per sample: the mask in shared memory (or, past the budget, in the output), then one
// coalesced copy to the output.
template <bool kShared>
__global__ void block_mask_kernel(uint8_t* out, int64_t batch, BlockMaskParams params, const int64_t* counts,
                                  bool max_is_count, uint64_t seed, const int64_t* seed_step, int64_t sample_offset,
                                  int64_t shared_bytes) {
  extern __shared__ __align__(16) uint8_t shared[];
  const uint64_t key = resolve_key(seed, seed_step);  // every lane alike (seed_step: nullptr or a seed tensor)
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (b >= batch) return;  // the whole warp
  const BlockMaskParams p = block_mask_sample_params(params, counts, b, max_is_count);
  const WarpTeam team{WarpGroup{threadIdx.x % kWarpSize}};
  const int64_t cells = p.height * p.width;
  uint8_t* dst = out + b * cells;
  uint8_t* mask = kShared ? shared + warp * (shared_bytes / kWarpsPerBlock) : dst;
  block_mask_sample_team(team, mask, p, key, sample_offset + b);
  if constexpr (kShared) {
    team.sync();
    warp_copy_bytes(team, dst, mask, cells);
  }
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
                      int64_t mask_count, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                      uintptr_t stream) {
  if (batch == 0) return;
  const int64_t shared_bytes = simmim_shared_bytes(rand_size * rand_size);
  const unsigned grid = grid_for(batch, kWarpsPerBlock, "simmim_mask_kernel");
  const auto kernel = shared_bytes > 0 ? simmim_mask_kernel<true> : simmim_mask_kernel<false>;
  kernel<<<grid, kGeneratorThreads, static_cast<size_t>(shared_bytes), as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(out), reinterpret_cast<uint64_t*>(workspace), batch, rand_size, scale, mask_count,
      seed, reinterpret_cast<const int64_t*>(seed_step), sample_offset, shared_bytes);
  MK_CHECK_LAUNCH("simmim_mask_kernel");
}

namespace {
// One launch for the batch; counts: nullptr or the per-sample counts (block_mask_sample_params).
void launch_block_mask(uintptr_t out, int64_t batch, const BlockMaskParams& p, const int64_t* counts,
                       bool max_is_count, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                       uintptr_t stream) {
  if (batch == 0) return;
  const int64_t shared_bytes = block_mask_shared_bytes(p.height * p.width);
  const unsigned grid = grid_for(batch, kWarpsPerBlock, "block_mask_kernel");
  const auto kernel = shared_bytes > 0 ? block_mask_kernel<true> : block_mask_kernel<false>;
  kernel<<<grid, kGeneratorThreads, static_cast<size_t>(shared_bytes), as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(out), batch, p, counts, max_is_count, seed,
      reinterpret_cast<const int64_t*>(seed_step), sample_offset, shared_bytes);
  MK_CHECK_LAUNCH("block_mask_kernel");
}
}  // namespace

void block_mask_cuda(uintptr_t out, int64_t batch, int64_t height, int64_t width, int64_t num_masking_patches,
                     int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                     bool mmpretrain, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, uintptr_t stream) {
  const BlockMaskParams p{height, width, num_masking_patches, min_num_patches, max_num_patches,
                          log_aspect_min, log_aspect_max, mmpretrain};
  launch_block_mask(out, batch, p, nullptr, false, seed, seed_step, sample_offset, stream);
}

void block_mask_counts_cuda(uintptr_t out, uintptr_t counts, int64_t batch, int64_t height, int64_t width,
                            int64_t min_num_patches, int64_t max_num_patches, bool max_is_count,
                            double log_aspect_min, double log_aspect_max, bool mmpretrain, uint64_t seed,
                            uintptr_t seed_step, int64_t sample_offset, uintptr_t stream) {
  const BlockMaskParams p{height, width, 0, min_num_patches, max_num_patches, log_aspect_min, log_aspect_max,
                          mmpretrain};
  launch_block_mask(out, batch, p, reinterpret_cast<const int64_t*>(counts), max_is_count, seed, seed_step,
                    sample_offset, stream);
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
