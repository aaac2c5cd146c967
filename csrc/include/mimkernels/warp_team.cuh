// A warp as the team of the shared mask bodies (block_mask.h's StridedTeam: lane-strided loops), for the
// CUDA builds of the mask generators (csrc/masking/mask_generators.cu, csrc/mask_zoo/*.cu): integer sums by
// a butterfly of shuffles (every lane gets the total), __syncwarp between writes and reads of the sample's
// cells. The callers keep the warp converged: every branch depends on warp-uniform values only.
#pragma once
#include "mimkernels/block_mask.h"

namespace mimkernels {
constexpr int kWarpSize = 32;

struct WarpGroup {
  static constexpr int64_t kLanes = kWarpSize;
  unsigned lane_;
  __device__ __forceinline__ unsigned lane() const { return lane_; }
  __device__ __forceinline__ int64_t sum(int64_t v) const {
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
  }
  __device__ __forceinline__ void barrier() const { __syncwarp(); }
};
using WarpTeam = StridedTeam<WarpGroup>;
}  // namespace mimkernels
