// CUDA entry points of the tube, running-cell and uniform masks (video_masks.h): one launch per batch,
// the bodies of mimkernels/video_masks.h, bit-identical to the cpp build.
// - tube: a warp per sample; lane 0 draws frame 0 (Floyd's picks are sequential), the lanes copy it to
//   the other frames (consecutive lanes, consecutive bytes);
// - running cell: a thread per output byte (its sample's map is one Philox call);
// - uniform: a thread per sample (the shuffle and the picks are sequential), its candidate rows in the
//   workspace.
#include "video_masks.h"

#include "mimkernels/cuda_check.h"
#include "mimkernels/video_masks.h"

namespace mimkernels {
namespace {
constexpr int kWarpSize = 32;
constexpr int kWarpsPerBlock = 4;
constexpr int kThreads = 128;

__global__ void tube_mask_kernel(uint8_t* out, int64_t batch, int64_t frames, int64_t cells, int64_t masked,
                                 uint64_t seed, const int64_t* seed_step, int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (b >= batch) return;  // the whole warp: b is warp-uniform
  const int lane = threadIdx.x % kWarpSize;
  uint8_t* sample = out + b * frames * cells;
  if (lane == 0) tube_mask_first_frame(sample, cells, masked, resolve_key(seed, seed_step), sample_offset + b);
  __syncwarp();
  for (int64_t k = cells + lane; k < frames * cells; k += kWarpSize) sample[k] = sample[k % cells];
}

__global__ void running_cell_mask_kernel(uint8_t* out, int64_t batch, int64_t frames, int64_t height, int64_t width,
                                         int64_t masked_slots, uint64_t seed, const int64_t* seed_step,
                                         int64_t sample_offset) {
  const uint64_t key = resolve_key(seed, seed_step);
  const int64_t per_sample = frames * height * width;
  const int64_t total = batch * per_sample;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < total;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = k / per_sample, r = k % per_sample;
    const int64_t t = r / (height * width), y = (r / width) % height, x = r % width;
    out[k] = running_cell_value(running_cell_map(key, sample_offset + b), t, y, x, masked_slots);
  }
}

__global__ void uniform_mask_kernel(uint8_t* mask, uint8_t* secondary, uint8_t* workspace, int64_t batch,
                                    int64_t height, int64_t width, int64_t rows, int64_t keep_final, uint64_t seed,
                                    const int64_t* seed_step, int64_t sample_offset) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const int64_t cells = height * width;
  uniform_mask_sample(mask + b * cells, secondary + b * cells, workspace + b * rows, height, width, rows, keep_final,
                      resolve_key(seed, seed_step), sample_offset + b);
}
}  // namespace

void tube_mask_cuda(uintptr_t out, int64_t batch, int64_t frames, int64_t cells, int64_t masked, uint64_t seed,
                    uintptr_t seed_step, int64_t sample_offset, uintptr_t stream) {
  if (batch == 0 || frames <= 0 || cells <= 0) return;
  tube_mask_kernel<<<grid_for(batch, kWarpsPerBlock, "tube_mask_kernel"), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(out), batch, frames, cells, masked, seed,
      reinterpret_cast<const int64_t*>(seed_step), sample_offset);
  MK_CHECK_LAUNCH("tube_mask_kernel");
}

void running_cell_mask_cuda(uintptr_t out, int64_t batch, int64_t frames, int64_t height, int64_t width,
                            int64_t masked_slots, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                            uintptr_t stream) {
  const int64_t total = batch * frames * height * width;
  if (total == 0) return;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const unsigned grid = grid_x(blocks < 65536 ? blocks : 65536, "running_cell_mask_kernel");  // grid-stride past
  running_cell_mask_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(out), batch, frames, height, width, masked_slots, seed,
      reinterpret_cast<const int64_t*>(seed_step), sample_offset);
  MK_CHECK_LAUNCH("running_cell_mask_kernel");
}

void uniform_mask_cuda(uintptr_t mask, uintptr_t secondary, uintptr_t workspace, int64_t batch, int64_t height,
                       int64_t width, int64_t keep_final, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                       uintptr_t stream) {
  if (batch == 0 || height * width <= 0) return;
  uniform_mask_kernel<<<grid_for(batch, kThreads, "uniform_mask_kernel"), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<uint8_t*>(mask), reinterpret_cast<uint8_t*>(secondary), reinterpret_cast<uint8_t*>(workspace),
      batch, height, width, uniform_candidate_rows(height * width), keep_final, seed,
      reinterpret_cast<const int64_t*>(seed_step), sample_offset);
  MK_CHECK_LAUNCH("uniform_mask_kernel");
}
}  // namespace mimkernels
