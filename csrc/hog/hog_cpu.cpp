// CPU build of the HOG target: OpenMP over bands (image, channel, row of cells). A band is walked
// one pixel row at a time, in phases the compiler vectorizes: gradients of the whole row, magnitudes
// (windowed), bins (the folded boundary count of hog.h), then the votes: each bin's column sums
// acc[k][j] += (bin[j] == k ? m[j] : 0), a compare-and-add over the row (no scatter). At the band's end
// each cell's bin is the sum of its pool column sums in column order (hog_cell_sum's order, which the
// CUDA kernel follows: the two builds are bit-identical), normalized and stored.
// The per-pixel math is mimkernels/hog.h's, shared with the CUDA kernel.
#include "hog.h"

#include <omp.h>

#include <type_traits>
#include <vector>

#include "mimkernels/hog.h"
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

// fmaf must be the FMA instruction to vectorize (it is a libm call without -mfma): x86-64-v4 (AVX-512) and
// x86-64-v3 (AVX2 + FMA) clones of the row loops are picked at load time where the CPU has them.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MK_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MK_CPU_CLONES
#endif

namespace mimkernels {
namespace {

struct HogCpuArgs {
  const float* cot;
  const float* window_rows;  // (gw, cols): window[i % gw][j % gw] tiled along the row, or nullptr
  float* out;
  index_t channels, height, width, cells_h, cells_w, patch_cells;
  int nbins, pool, gw;
  bool norm_out;
};

// Scratch of one thread: three converted input rows (slot = row % 3), one pixel row of votes and the
// band's column sums (nbins, cols).
struct HogCpuScratch {
  explicit HogCpuScratch(index_t width, index_t cols, index_t hist_size, index_t nbins)
      : rows(3 * width), gx(cols), gy(cols), magnitude(cols), v(cols), us(cols), bin(cols), hist(hist_size),
        acc(nbins * cols) {}
  std::vector<float> rows, gx, gy, magnitude, v, us;
  std::vector<int> bin;
  std::vector<float> hist, acc;
  index_t row_in_slot[3] = {-1, -1, -1};
};

// x[j] = sqrtf(x[j]), j < n, without the errno branch that keeps g++ from vectorizing sqrtf (x >= 0 here).
void sqrt_in_place(float* x, index_t n) {
  index_t j = 0;
#if defined(__SSE__)
  for (; j + 4 <= n; j += 4) _mm_storeu_ps(x + j, _mm_sqrt_ps(_mm_loadu_ps(x + j)));
#endif
  for (; j < n; ++j) x[j] = sqrtf(x[j]);
}

template <typename T>
const float* input_row(const T* plane, index_t r, index_t width, HogCpuScratch& s) {
  if constexpr (std::is_same_v<T, float>) {
    return plane + r * width;
  } else {
    float* slot = s.rows.data() + (r % 3) * width;
    if (s.row_in_slot[r % 3] != r) {
      const T* src = plane + r * width;
      for (index_t j = 0; j < width; ++j) slot[j] = to_float(src[j]);
      s.row_in_slot[r % 3] = r;
    }
    return slot;
  }
}

// Gradients, windowed magnitudes and bins of pixel row i, columns [0, cols).
MK_CPU_CLONES void hog_row_votes(const float* up, const float* mid, const float* down, index_t i, index_t cols,
                                 const HogCpuArgs& a, HogCpuScratch& s) {
  float* gx = s.gx.data();
  float* gy = s.gy.data();
  float* magnitude = s.magnitude.data();
  int* bin = s.bin.data();
  const index_t w = a.width;
  const index_t last = cols < w ? cols : w - 1;  // interior columns: [1, last)
  for (index_t j = 1; j < last; ++j) {
    gx[j] = hog_gradient(up[j - 1], up[j + 1], mid[j - 1], mid[j + 1], down[j - 1], down[j + 1]);
    gy[j] = hog_gradient(up[j - 1], down[j - 1], up[j], down[j], up[j + 1], down[j + 1]);
  }
  for (index_t j : {index_t{0}, w - 1}) {  // reflected columns
    if (j >= cols) continue;
    const index_t l = hog_reflect(j - 1, w), r = hog_reflect(j + 1, w);
    gx[j] = hog_gradient(up[l], up[r], mid[l], mid[r], down[l], down[r]);
    gy[j] = hog_gradient(up[l], down[l], up[j], down[j], up[r], down[r]);
  }
  for (index_t j = 0; j < cols; ++j) magnitude[j] = hog_squared_magnitude(gx[j], gy[j]);
  sqrt_in_place(magnitude, cols);
  if (a.window_rows != nullptr) {
    const float* weights = a.window_rows + (i % a.gw) * cols;
    for (index_t j = 0; j < cols; ++j) magnitude[j] *= weights[j];
  }
  // hog_orientation_bin (hog.h), boundary-outer so that it vectorizes: the same count, the same tests
  float* v = s.v.data();
  float* us = s.us.data();
  const int half = (a.nbins - 1) / 2;
  const int passed = a.nbins - 1 - half;  // v <= 0 passes every boundary up to pi/2 (a NaN v none)
  for (index_t j = 0; j < cols; ++j) v[j] = gx[j] > 0.0f ? gy[j] : -gy[j];
  for (index_t j = 0; j < cols; ++j) us[j] = v[j] > 0.0f ? fabsf(gx[j]) : -fabsf(gx[j]);
  for (index_t j = 0; j < cols; ++j) bin[j] = v[j] <= 0.0f ? passed : 0;
  for (int k = 0; k < half; ++k) {
    const float hi = a.cot[2 * k], lo = a.cot[2 * k + 1];
    for (index_t j = 0; j < cols; ++j) bin[j] += hog_past_boundary(us[j], v[j], hi, lo);
  }
  for (index_t j = 0; j < cols; ++j) bin[j] = fabsf(gx[j]) > 0.0f ? bin[j] : 0;
}

// The votes of one pixel row into the band's column sums: acc[k][j] += m[j] where bin[j] == k (+0 elsewhere,
// which leaves every sum as it was: m >= 0 or NaN); the first row of the band writes the sums (0 + x = x).
// A compare and an add per (bin, pixel), vectorized.
MK_CPU_CLONES void hog_row_accumulate(const int* __restrict__ bin, const float* __restrict__ magnitude,
                                      float* __restrict__ acc, index_t cols, int nbins, bool first) {
  int k = 0;
  if (!first) {  // three bins a pass: the row's bins and magnitudes loaded once for three column sums
    for (; k + 3 <= nbins; k += 3) {
      float* __restrict__ c0 = acc + k * cols;
      float* __restrict__ c1 = c0 + cols;
      float* __restrict__ c2 = c1 + cols;
      for (index_t j = 0; j < cols; ++j) {
        c0[j] += bin[j] == k ? magnitude[j] : 0.0f;
        c1[j] += bin[j] == k + 1 ? magnitude[j] : 0.0f;
        c2[j] += bin[j] == k + 2 ? magnitude[j] : 0.0f;
      }
    }
  }
  for (; k < nbins; ++k) {
    float* __restrict__ column = acc + k * cols;
    if (first) {
      for (index_t j = 0; j < cols; ++j) column[j] = bin[j] == k ? magnitude[j] : 0.0f;
    } else {
      for (index_t j = 0; j < cols; ++j) column[j] += bin[j] == k ? magnitude[j] : 0.0f;
    }
  }
}

template <typename T>
void hog_band(const T* plane, index_t b, index_t c, index_t cy, const HogCpuArgs& a, HogCpuScratch& s) {
  const index_t cols = a.cells_w * a.pool;
  float* hist = s.hist.data();  // (cells_w, nbins)
  float* acc = s.acc.data();    // (nbins, cols): column sums over the band's pixel rows
  s.row_in_slot[0] = s.row_in_slot[1] = s.row_in_slot[2] = -1;
  for (index_t i = cy * a.pool; i < (cy + 1) * a.pool; ++i) {
    const float* up = input_row(plane, hog_reflect(i - 1, a.height), a.width, s);
    const float* mid = input_row(plane, i, a.width, s);
    const float* down = input_row(plane, hog_reflect(i + 1, a.height), a.width, s);
    hog_row_votes(up, mid, down, i, cols, a, s);
    hog_row_accumulate(s.bin.data(), s.magnitude.data(), acc, cols, a.nbins, i == cy * a.pool);
  }
  for (index_t cx = 0; cx < a.cells_w; ++cx) {
    for (int k = 0; k < a.nbins; ++k) hist[cx * a.nbins + k] = hog_cell_sum(acc + k * cols + cx * a.pool, a.pool);
    hog_store_cell(a.out, hist + cx * a.nbins, a.norm_out, b, c, cy, cx, a.channels, a.nbins, a.cells_h, a.cells_w,
                   a.patch_cells);
  }
}

template <typename T>
void hog_cpu_typed(const T* imgs, const HogCpuArgs& a, index_t batch, int num_threads) {
  const index_t bands = batch * a.channels * a.cells_h;
  const index_t cols = a.cells_w * a.pool;
  // Allocated here, not in the parallel region: a failed allocation raises MemoryError in Python
  // instead of terminating the process from an OpenMP thread.
  const HogCpuScratch one(a.width, cols, a.cells_w * a.nbins, a.nbins);
  auto run_band = [&](index_t band, HogCpuScratch& s) {
    const index_t cy = band % a.cells_h;
    const index_t bc = band / a.cells_h;
    hog_band(imgs + bc * a.height * a.width, bc / a.channels, bc % a.channels, cy, a, s);
  };
  if (num_threads <= 1) {  // no OpenMP team for one thread (a forked child, tiny work: issue 20)
    HogCpuScratch s = one;
    for (index_t band = 0; band < bands; ++band) run_band(band, s);
    return;
  }
  std::vector<HogCpuScratch> scratch(static_cast<size_t>(num_threads), one);
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (index_t band = 0; band < bands; ++band) run_band(band, scratch[omp_get_thread_num()]);
}
}  // namespace

void hog_cpu(uintptr_t imgs, int dtype, uintptr_t cot, uintptr_t window, uintptr_t out, int64_t batch,
             int64_t channels, int64_t height, int64_t width, int nbins, int pool, int gaussian_window,
             int64_t patch_cells, bool norm_out, int num_threads) {
  HogCpuArgs a{reinterpret_cast<const float*>(cot), nullptr, reinterpret_cast<float*>(out), channels, height, width,
               height / pool, width / pool, patch_cells, nbins, pool, gaussian_window, norm_out};
  const index_t cols = a.cells_w * pool;
  std::vector<float> window_rows;
  if (gaussian_window > 0) {
    const float* g = reinterpret_cast<const float*>(window);
    window_rows.resize(static_cast<size_t>(gaussian_window * cols));
    for (index_t r = 0; r < gaussian_window; ++r) {
      for (index_t j = 0; j < cols; ++j) window_rows[r * cols + j] = g[r * gaussian_window + j % gaussian_window];
    }
    a.window_rows = window_rows.data();
  }
  hog_with_dtype(dtype, "hog_cpu", [&](auto tag) {
    hog_cpu_typed(reinterpret_cast<const decltype(tag)*>(imgs), a, batch, num_threads);
  });
}
}  // namespace mimkernels
