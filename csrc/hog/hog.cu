// CUDA build of the HOG target: one block per (image, channel, tile of cells), in five phases over
// shared memory — the tile's pixels plus a 1-pixel reflected halo (read once, vector loads, upcast to
// fp32); the vote (bin, windowed magnitude) of every pixel; the column sums of each (cell row, bin);
// each (cell, bin) from its column sums (a fixed order, the CPU build's: deterministic, no atomics,
// bit-identical); the normalization and store of each cell.
// The per-pixel and per-cell math is mimkernels/hog.h's, shared with the CPU build.
#include "hog.h"

#include <stdexcept>
#include <string>

#include "mimkernels/cuda_check.h"
#include "mimkernels/hog.h"

namespace mimkernels {
namespace {
constexpr int kHogThreads = 256;
constexpr int kHogMinBlocks = 5;                  // per SM: <= 48 registers per thread (40 spills)
constexpr int kHogTilePixels = 32;                // tile side in pixels (rounded down to whole cells, >= 1 cell)
constexpr size_t kHogDefaultSharedBytes = 48 * 1024;  // above this a kernel must opt in

// Elements per vector load of the halo: 16 bytes of fp32 / fp16 / bf16, 8 of uint8 (a cell of 8 pixels).
template <typename T>
constexpr int hog_vector() { return sizeof(T) == 1 ? 8 : 16 / static_cast<int>(sizeof(T)); }

struct HogTile {
  int cells;  // cells per tile side
  size_t shared_bytes;
};

// Shared memory of a block: the halo tile (then, once the votes are cast, the column sums in the same
// floats), the magnitudes, the cell histograms, the bins and the bin boundaries (cot).
HogTile hog_tile(int pool, int nbins) {
  const int cells = pool < kHogTilePixels ? kHogTilePixels / pool : 1;
  const size_t side = static_cast<size_t>(cells) * pool;
  const size_t halo = (side + 2) * (side + 2), column_sums = static_cast<size_t>(cells) * nbins * side;
  const size_t floats = (halo > column_sums ? halo : column_sums) + side * side + static_cast<size_t>(cells) * cells * nbins;
  return {cells, (floats + 2 * static_cast<size_t>(nbins)) * sizeof(float) + side * side * sizeof(int)};
}

template <typename T, int N>
struct alignas(N * sizeof(T)) HogVector {
  T v[N];
};

// Phases, every thread busy in each: (1) the tile and its 1-pixel reflected halo into shared memory, upcast
// to fp32 — the interior of each row in aligned vector loads when `vector_rows` (the launcher's check), the
// two halo columns and the rest scalar; (2) the vote of each pixel (hog_vote); (3) the column sums: for each
// (cell row, bin, pixel column), the votes of the column's pool pixels top to bottom; (4) each (cell, bin)
// from its pool column sums (hog_cell_sum); (5) per cell, normalize and store (hog_store_cell). (3) and (4)
// are hog_cpu.cpp's order: the two builds give the same bits.
template <typename T>
__global__ void __launch_bounds__(kHogThreads, kHogMinBlocks)
hog_kernel(const T* __restrict__ imgs, const float* __restrict__ cot, const float* __restrict__ window,
           float* __restrict__ out, int channels, index_t height, index_t width, int cells_h, int cells_w,
           int nbins, int pool, int gw, int tile, int tiles_w, int tiles, int patch_cells, bool norm_out,
           bool vector_rows) {
  extern __shared__ float shared[];
  // The block index, and with it the tile, image and channel, is below CUDA's grid limit 2^31 (grid_x checks):
  // int. In-tile indices are below the tile's shared memory: int. Offsets into the image: index_t.
  const int block = static_cast<int>(blockIdx.x);
  const int t = block % tiles;
  const int bc = block / tiles;
  const int cy0 = (t / tiles_w) * tile;
  const int cx0 = (t % tiles_w) * tile;
  const int tile_h = cells_h - cy0 < tile ? cells_h - cy0 : tile;  // cells of this tile
  const int tile_w = cells_w - cx0 < tile ? cells_w - cx0 : tile;
  const int ph = tile_h * pool, pw = tile_w * pool;  // pixels
  const int hw = pw + 2;                             // halo row length
  const int side = tile * pool;
  const int halo_floats = (side + 2) * (side + 2), column_floats = tile * nbins * side;
  float* halo = shared;                              // (side + 2)^2, then the column sums
  float* column_sums = shared;                       // (tile_h, nbins, pw) once the votes are cast
  float* magnitude = shared + (halo_floats > column_floats ? halo_floats : column_floats);  // side^2
  float* hist = magnitude + side * side;             // tile^2 * nbins
  int* bin = reinterpret_cast<int*>(hist + tile * tile * nbins);  // side^2
  float* cot_shared = reinterpret_cast<float*>(bin + side * side);  // 2 (nbins - 1): read by every pixel
  for (int n = threadIdx.x; n < nbins - 1; n += blockDim.x) {  // (hi, lo) pairs: 8-byte loads
    reinterpret_cast<float2*>(cot_shared)[n] = reinterpret_cast<const float2*>(cot)[n];
  }

  const T* plane = imgs + static_cast<index_t>(bc) * height * width;
  const index_t i0 = static_cast<index_t>(cy0) * pool - 1, j0 = static_cast<index_t>(cx0) * pool;  // the halo's first row, the tile's first column
  const int rows = ph + 2;
  if (vector_rows) {
    constexpr int kVec = hog_vector<T>();
    const int vectors = pw / kVec;                   // pool % kVec == 0 (launcher)
#pragma unroll 2
    for (int n = threadIdx.x; n < rows * vectors; n += blockDim.x) {
      const int r = n / vectors, v = n % vectors;
      const index_t i = hog_reflect(i0 + r, height);
      const HogVector<T, kVec> x = *reinterpret_cast<const HogVector<T, kVec>*>(plane + i * width + j0 + v * kVec);
      float* dst = halo + r * hw + 1 + v * kVec;
#pragma unroll
      for (int e = 0; e < kVec; ++e) dst[e] = to_float(x.v[e]);
    }
    #pragma unroll 1
    for (int n = threadIdx.x; n < rows * 2; n += blockDim.x) {
      const int r = n >> 1, right = n & 1;
      const index_t i = hog_reflect(i0 + r, height);
      const index_t j = hog_reflect(right ? j0 + pw : j0 - 1, width);
      halo[r * hw + (right ? pw + 1 : 0)] = to_float(plane[i * width + j]);
    }
  } else {
    #pragma unroll 1
    for (int n = threadIdx.x; n < rows * hw; n += blockDim.x) {
      const index_t i = hog_reflect(i0 + n / hw, height), j = hog_reflect(j0 - 1 + n % hw, width);
      halo[n] = to_float(plane[i * width + j]);
    }
  }
  __syncthreads();

  #pragma unroll 1
  for (int n = threadIdx.x; n < ph * pw; n += blockDim.x) {
    const int r = n / pw, s = n % pw;
    const float* up = halo + r * hw + s;
    const float* mid = up + hw;
    const float* down = mid + hw;
    const HogVote vote = hog_vote(up[0], up[1], up[2], mid[0], mid[2], down[0], down[1], down[2], cot_shared,
                                     nbins);
    float m = vote.magnitude;
    if (gw > 0) m *= window[((i0 + 1 + r) % gw) * gw + (j0 + s) % gw];
    magnitude[n] = m;
    bin[n] = vote.bin;
  }
  __syncthreads();

  // column sums (the halo is dead): consecutive threads, consecutive columns
  #pragma unroll 1
  for (int n = threadIdx.x; n < tile_h * nbins * pw; n += blockDim.x) {
    const int s = n % pw, k = (n / pw) % nbins, qy = n / (pw * nbins);
    float sum = 0.0f;
    for (int py = 0, p = qy * pool * pw + s; py < pool; ++py, p += pw) sum += bin[p] == k ? magnitude[p] : 0.0f;
    column_sums[n] = sum;
  }
  __syncthreads();

  const int cells = tile_h * tile_w;
  #pragma unroll 1
  for (int n = threadIdx.x; n < cells * nbins; n += blockDim.x) {
    const int q = n / nbins, k = n % nbins;
    hist[n] = hog_cell_sum(column_sums + ((q / tile_w) * nbins + k) * pw + (q % tile_w) * pool, pool);
  }
  __syncthreads();

  #pragma unroll 1
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
  if (cells_h > INT32_MAX / 2 || cells_w > INT32_MAX / 2) {  // the kernel's cell indices are int
    throw std::invalid_argument("hog_cuda: " + std::to_string(cells_h) + " x " + std::to_string(cells_w) +
                                " cells (at most 2^30 a side)");
  }
  // aligned vector loads of each halo row's interior: every row start, every tile's first column and every
  // tile's width a whole number of vectors
  constexpr int kVec = hog_vector<T>();
  const bool vector_rows = imgs % (kVec * sizeof(T)) == 0 && width % kVec == 0 && pool % kVec == 0;
  if (tile.shared_bytes > kHogDefaultSharedBytes) {
    check_cuda(cudaFuncSetAttribute(hog_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(tile.shared_bytes)),
               "hog_kernel (shared memory opt-in)");
  }
  hog_kernel<T><<<grid_x(batch * channels * tiles, "hog_kernel"), kHogThreads, tile.shared_bytes, stream>>>(
      reinterpret_cast<const T*>(imgs), reinterpret_cast<const float*>(cot), reinterpret_cast<const float*>(window),
      reinterpret_cast<float*>(out), static_cast<int>(channels), height, width, static_cast<int>(cells_h),
      static_cast<int>(cells_w), nbins, pool, gw, tile.cells, static_cast<int>(tiles_w), static_cast<int>(tiles),
      static_cast<int>(patch_cells), norm_out, vector_rows);
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
