// CUDA build of the HOG target: one block per (image, channel, tile of cells), in four phases over
// shared memory — the tile's pixels plus a 1-pixel reflected halo (loaded once, upcast to fp32); the
// vote (bin, windowed magnitude) of every pixel; the sum of each (cell, bin) over its pixels in a
// fixed order (one thread each: deterministic, no atomics); the normalization and store of each cell.
// The per-pixel and per-cell math is mimkernels/hog.h's, shared with the CPU build.
#include "hog.h"

#include <stdexcept>
#include <string>

#include "mimkernels/cuda_check.h"
#include "mimkernels/hog.h"

namespace mimkernels {
namespace {
constexpr int kHogThreads = 256;
constexpr int kHogTilePixels = 32;                // tile side in pixels (rounded down to whole cells, >= 1 cell)
constexpr size_t kHogDefaultSharedBytes = 48 * 1024;  // above this a kernel must opt in

struct HogTile {
  int cells;  // cells per tile side
  size_t shared_bytes;
};

HogTile hog_tile(int pool, int nbins) {
  const int cells = pool < kHogTilePixels ? kHogTilePixels / pool : 1;
  const size_t side = static_cast<size_t>(cells) * pool;
  const size_t floats = (side + 2) * (side + 2) + side * side + static_cast<size_t>(cells) * cells * nbins;
  return {cells, floats * sizeof(float) + side * side * sizeof(int)};
}

template <typename T>
__global__ void hog_kernel(const T* __restrict__ imgs, const float* __restrict__ cot,
                           const float* __restrict__ window, float* __restrict__ out, index_t channels,
                           index_t height, index_t width, index_t cells_h, index_t cells_w, int nbins, int pool,
                           int gw, int tile, index_t tiles_w, index_t tiles, index_t patch_cells, bool norm_out) {
  extern __shared__ float shared[];
  const index_t block = blockIdx.x;
  const index_t t = block % tiles;
  const index_t bc = block / tiles;
  const index_t cy0 = (t / tiles_w) * tile;
  const index_t cx0 = (t % tiles_w) * tile;
  const int tile_h = static_cast<int>(cells_h - cy0 < tile ? cells_h - cy0 : tile);  // cells of this tile
  const int tile_w = static_cast<int>(cells_w - cx0 < tile ? cells_w - cx0 : tile);
  const int ph = tile_h * pool, pw = tile_w * pool;  // pixels
  const int hw = pw + 2;                             // halo row length
  const int side = tile * pool;
  float* halo = shared;                              // (side + 2)^2
  float* magnitude = halo + (side + 2) * (side + 2);  // side^2
  float* hist = magnitude + side * side;             // tile^2 * nbins
  int* bin = reinterpret_cast<int*>(hist + tile * tile * nbins);  // side^2

  const T* plane = imgs + bc * height * width;
  const index_t i0 = cy0 * pool - 1, j0 = cx0 * pool - 1;
  for (int n = threadIdx.x; n < (ph + 2) * hw; n += blockDim.x) {
    const index_t i = hog_reflect(i0 + n / hw, height), j = hog_reflect(j0 + n % hw, width);
    halo[n] = to_float(plane[i * width + j]);
  }
  __syncthreads();

  for (int n = threadIdx.x; n < ph * pw; n += blockDim.x) {
    const int r = n / pw, s = n % pw;
    const float* up = halo + r * hw + s;
    const float* mid = up + hw;
    const float* down = mid + hw;
    const HogVote vote = hog_vote(up[0], up[1], up[2], mid[0], mid[2], down[0], down[1], down[2], cot, nbins);
    float m = vote.magnitude;
    if (gw > 0) m *= window[((cy0 * pool + r) % gw) * gw + (cx0 * pool + s) % gw];
    magnitude[n] = m;
    bin[n] = vote.bin;
  }
  __syncthreads();

  const int cells = tile_h * tile_w;
  for (int n = threadIdx.x; n < cells * nbins; n += blockDim.x) {
    const int q = n / nbins, k = n % nbins;
    const int first = (q / tile_w) * pool * pw + (q % tile_w) * pool;
    float sum = 0.0f;
    for (int py = 0; py < pool; ++py) {
      for (int px = 0; px < pool; ++px) {
        const int p = first + py * pw + px;
        sum += bin[p] == k ? magnitude[p] : 0.0f;
      }
    }
    hist[n] = sum;
  }
  __syncthreads();

  for (int q = threadIdx.x; q < cells; q += blockDim.x) {
    hog_store_cell(out, hist + q * nbins, norm_out, bc / channels, bc % channels, cy0 + q / tile_w, cx0 + q % tile_w,
                   channels, nbins, cells_h, cells_w, patch_cells);
  }
}

template <typename T>
void launch(uintptr_t imgs, uintptr_t cot, uintptr_t window, uintptr_t out, int64_t batch, int64_t channels,
            int64_t height, int64_t width, int nbins, int pool, int gw, int64_t patch_cells, bool norm_out,
            const HogTile& tile, cudaStream_t stream) {
  const index_t cells_h = height / pool, cells_w = width / pool;
  const index_t tiles_w = (cells_w + tile.cells - 1) / tile.cells;
  const index_t tiles = ((cells_h + tile.cells - 1) / tile.cells) * tiles_w;
  if (tile.shared_bytes > kHogDefaultSharedBytes) {
    check_cuda(cudaFuncSetAttribute(hog_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(tile.shared_bytes)),
               "hog_kernel (shared memory opt-in)");
  }
  hog_kernel<T><<<grid_x(batch * channels * tiles, "hog_kernel"), kHogThreads, tile.shared_bytes, stream>>>(
      reinterpret_cast<const T*>(imgs), reinterpret_cast<const float*>(cot), reinterpret_cast<const float*>(window),
      reinterpret_cast<float*>(out), channels, height, width, cells_h, cells_w, nbins, pool, gw, tile.cells, tiles_w,
      tiles, patch_cells, norm_out);
  MK_CHECK_LAUNCH("hog_kernel");
}
}  // namespace

void hog_cuda(uintptr_t imgs, int dtype, uintptr_t cot, uintptr_t window, uintptr_t out, int64_t batch,
              int64_t channels, int64_t height, int64_t width, int nbins, int pool, int gaussian_window,
              int64_t patch_cells, bool norm_out, uintptr_t stream) {
  const HogTile tile = hog_tile(pool, nbins);
  int device = 0, max_shared = 0;
  check_cuda(cudaGetDevice(&device), "hog_cuda (cudaGetDevice)");
  check_cuda(cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
             "hog_cuda (shared memory per block)");
  if (tile.shared_bytes > static_cast<size_t>(max_shared)) {
    throw std::invalid_argument("hog: the cuda backend holds at least one cell in shared memory: pool " +
                                std::to_string(pool) + " with nbins " + std::to_string(nbins) + " needs " +
                                std::to_string(tile.shared_bytes) + " bytes, this GPU allows " +
                                std::to_string(max_shared) + "; use backend='triton'");
  }
  const cudaStream_t s = as_stream(stream);
  hog_with_dtype(dtype, "hog_cuda", [&](auto tag) {
    launch<decltype(tag)>(imgs, cot, window, out, batch, channels, height, width, nbins, pool, gaussian_window,
                          patch_cells, norm_out, tile, s);
  });
}
}  // namespace mimkernels
