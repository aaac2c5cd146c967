// CPU build of the HOG target: OpenMP over bands (image, channel, row of cells). A band is walked
// one pixel row at a time: the gradients of the whole row, then one pass over the row in chunks of kLanes
// pixels (one AVX-512 vector) that the compiler vectorizes: magnitudes (windowed), bins (the folded boundary
// count of hog.h, branch-free) and the votes, each bin's column sums acc[k][j] += (bin[j] == k ? m[j] : 0), a
// compare-and-add over the chunk (no scatter). At the band's end each cell's bin is the sum of its pool column
// sums in column order (hog_cell_sum's order, which the CUDA kernel follows: the two builds are bit-identical),
// normalized and stored at offsets computed once per call (hog_out_offset is separable).
// The per-pixel math is mimkernels/hog.h's, shared with the CUDA kernel.
#include "hog.h"

#include <omp.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "mimkernels/hog.h"

// fmaf must be the FMA instruction to vectorize (it is a libm call without -mfma): x86-64-v4 (AVX-512) and
// x86-64-v3 (AVX2 + FMA) clones of the row and cell loops are picked at load time where the CPU has them.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MK_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MK_CPU_CLONES
#endif

namespace mimkernels {
namespace {

// Pixels of one chunk of the vote pass: the row's scratch is padded to a multiple of it (the padding's
// gradients are 0: they vote 0 into padding columns no cell reads).
constexpr index_t kLanes = 16;
// Before each loop over the lanes of a chunk: kept a loop (not unrolled into 16 scalars, which g++ then
// vectorizes across the enclosing loop over bins instead), so that it is vectorized: one AVX-512 vector.
#define MK_LANES _Pragma("GCC unroll 1")

struct HogCpuArgs {
  const float* cot;
  const float* window_rows;     // (max(gw, 1), padded_cols): window[i % gw][j % gw] tiled along the row; ones for gw 0
  const index_t* cell_offsets;  // (cells_w): hog_out_offset of cell (0, cx), bin 0
  float* out;
  index_t channels, height, width, cells_h, cells_w, patch_cells, cols, padded_cols, step, stored_cells_w;
  int nbins, pool, window_period;
  bool norm_out;
};

// Scratch of one thread: three converted input rows (slot = row % 3), the gradients of one pixel row, the band's
// column sums (nbins, padded_cols), its cells' histograms and norms (hog_band_cells).
struct HogCpuScratch {
  explicit HogCpuScratch(const HogCpuArgs& a)
      : rows(3 * a.width), gx(a.padded_cols), gy(a.padded_cols), acc(a.nbins * a.padded_cols),
        hist(a.nbins * a.stored_cells_w), divisor(a.stored_cells_w) {}
  std::vector<float> rows, gx, gy, acc, hist, divisor;
  index_t row_in_slot[3] = {-1, -1, -1};
};

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

// Gradients of pixel row i (its rows up, mid, down), columns [0, cols).
MK_CPU_CLONES void hog_row_gradients(const float* up, const float* mid, const float* down, const HogCpuArgs& a,
                                     float* __restrict__ gx, float* __restrict__ gy) {
  const index_t w = a.width;
  const index_t last = a.cols < w ? a.cols : w - 1;  // interior columns: [1, last)
  for (index_t j = 1; j < last; ++j) {
    gx[j] = hog_gradient(up[j - 1], up[j + 1], mid[j - 1], mid[j + 1], down[j - 1], down[j + 1]);
    gy[j] = hog_gradient(up[j - 1], down[j - 1], up[j], down[j], up[j + 1], down[j + 1]);
  }
  for (index_t j : {index_t{0}, w - 1}) {  // reflected columns
    if (j >= a.cols) continue;
    const index_t l = hog_reflect(j - 1, w), r = hog_reflect(j + 1, w);
    gx[j] = hog_gradient(up[l], up[r], mid[l], mid[r], down[l], down[r]);
    gy[j] = hog_gradient(up[l], down[l], up[j], down[j], up[r], down[r]);
  }
}

// The votes of one pixel row (gradients gx, gy, window row `weights`) into the band's column sums: acc[k][j] +=
// m[j] where bin[j] == k (+0 elsewhere, which leaves every sum as it was: m >= 0 or NaN); the first row of the
// band writes the sums (0 + x = x). The bin is hog_orientation_bin's folded count, with no branch (g++
// if-converts a loop only when no float compare sits under a condition): (nbins - 1 - half) when v <= 0, plus the
// boundaries of the first half passed, fma(us, lo, fma(us, hi, -v)) >= 0 with us = v > 0 ? u : -u; then 0
// where gx == 0 or NaN. The same count, the same tests. kBins: nbins when it is 9 (the vote loop unrolled),
// else 0 (a.nbins).
template <int kBins>
__attribute__((always_inline)) inline void hog_row_votes_bins(const float* __restrict__ gx,
                                                              const float* __restrict__ gy,
                                                              const float* __restrict__ weights, const HogCpuArgs& a,
                                                              float* __restrict__ acc, bool first) {
  const index_t stride = a.padded_cols;
  const int nbins = kBins ? kBins : a.nbins;
  const int half = (nbins - 1) / 2;
  const int passed = nbins - 1 - half;  // v <= 0 passes every boundary up to pi/2 (a NaN v none)
  for (index_t j0 = 0; j0 < stride; j0 += kLanes) {
    float m[kLanes], us[kLanes], v[kLanes];
    int bin[kLanes];
    MK_LANES
    for (index_t l = 0; l < kLanes; ++l) {
      const float x = gx[j0 + l], y = gy[j0 + l];
      const float u = fabsf(x);
      const float signed_v = x > 0.0f ? y : -y;
      m[l] = hog_magnitude(x, y) * weights[j0 + l];
      us[l] = signed_v > 0.0f ? u : -u;
      v[l] = signed_v;
      bin[l] = signed_v <= 0.0f ? passed : 0;
    }
    for (int k = 0; k < half; ++k) {
      const float hi = a.cot[2 * k], lo = a.cot[2 * k + 1];
      MK_LANES
      for (index_t l = 0; l < kLanes; ++l) bin[l] += hog_past_boundary(us[l], v[l], hi, lo);
    }
    MK_LANES
    for (index_t l = 0; l < kLanes; ++l) bin[l] = fabsf(gx[j0 + l]) > 0.0f ? bin[l] : 0;  // gx == 0 or NaN: bin 0
    float* column = acc + j0;
    if (first) {
      for (int k = 0; k < nbins; ++k, column += stride) {
        MK_LANES
        for (index_t l = 0; l < kLanes; ++l) column[l] = bin[l] == k ? m[l] : 0.0f;
      }
    } else {
      for (int k = 0; k < nbins; ++k, column += stride) {
        MK_LANES
        for (index_t l = 0; l < kLanes; ++l) column[l] += bin[l] == k ? m[l] : 0.0f;
      }
    }
  }
}

MK_CPU_CLONES void hog_row_votes(const float* gx, const float* gy, const float* weights, const HogCpuArgs& a,
                                 float* acc, bool first) {
  if (a.nbins == 9) {
    hog_row_votes_bins<9>(gx, gy, weights, a, acc, first);
  } else {
    hog_row_votes_bins<0>(gx, gy, weights, a, acc, first);
  }
}

// hist (nbins, cells): each cell's pool column sums added left to right from 0 (hog_cell_sum's order), the cells
// side by side. kPool: the pool when it is 8 (a constant stride, which g++ vectorizes as loads and shuffles), else 0
// (a.pool).
template <int kPool>
__attribute__((always_inline)) inline void hog_cell_sums(const float* __restrict__ acc, const HogCpuArgs& a,
                                                         float* __restrict__ hist) {
  const index_t cells = a.stored_cells_w, pool = kPool ? kPool : a.pool;
  for (int k = 0; k < a.nbins; ++k) {
    const float* __restrict__ columns = acc + k * a.padded_cols;
    float* __restrict__ h = hist + k * cells;
    for (index_t cx = 0; cx < cells; ++cx) h[cx] = 0.0f;
    for (index_t px = 0; px < pool; ++px) {
      for (index_t cx = 0; cx < cells; ++cx) h[cx] += columns[cx * pool + px];
    }
  }
}

// The band's cells from its column sums, side by side (cell cx in lane cx of `hist` (nbins, stored_cells_w) and
// `divisor` (stored_cells_w), so that the loops over cells vectorize): each (cell, bin) the sum of its pool column
// sums (hog_cell_sums), normalized as hog_normalize does (the squares summed by fmaf from 0 in bin order, divided
// by hog_norm_divisor) and stored from `out_band` (the offset of cell (cy, 0), bin 0).
MK_CPU_CLONES void hog_band_cells(const float* __restrict__ acc, float* out_band, const HogCpuArgs& a,
                                  float* __restrict__ hist, float* __restrict__ divisor) {
  const index_t cells = a.stored_cells_w;
  const int nbins = a.nbins;
  if (a.pool == 8) {
    hog_cell_sums<8>(acc, a, hist);
  } else {
    hog_cell_sums<0>(acc, a, hist);
  }
  if (a.norm_out) {
    for (index_t cx = 0; cx < cells; ++cx) divisor[cx] = 0.0f;
    for (int k = 0; k < nbins; ++k) {
      const float* __restrict__ h = hist + k * cells;
      for (index_t cx = 0; cx < cells; ++cx) divisor[cx] = fmaf(h[cx], h[cx], divisor[cx]);
    }
    for (index_t cx = 0; cx < cells; ++cx) divisor[cx] = hog_norm_divisor(divisor[cx]);
    for (int k = 0; k < nbins; ++k) {
      float* __restrict__ h = hist + k * cells;
      for (index_t cx = 0; cx < cells; ++cx) h[cx] /= divisor[cx];
    }
  }
  for (index_t cx = 0; cx < cells; ++cx) {
    float* first = out_band + a.cell_offsets[cx];
    for (int k = 0; k < nbins; ++k) first[k * a.step] = hist[k * cells + cx];
  }
}

template <typename T>
void hog_band(const T* plane, index_t b, index_t c, index_t cy, const HogCpuArgs& a, HogCpuScratch& s) {
  if (!hog_cell_stored(cy, 0, a.cells_h, a.cells_w, a.patch_cells)) return;  // no entry: nothing to compute
  s.row_in_slot[0] = s.row_in_slot[1] = s.row_in_slot[2] = -1;
  for (index_t i = cy * a.pool; i < (cy + 1) * a.pool; ++i) {
    const float* up = input_row(plane, hog_reflect(i - 1, a.height), a.width, s);
    const float* mid = input_row(plane, i, a.width, s);
    const float* down = input_row(plane, hog_reflect(i + 1, a.height), a.width, s);
    hog_row_gradients(up, mid, down, a, s.gx.data(), s.gy.data());
    hog_row_votes(s.gx.data(), s.gy.data(), a.window_rows + (i % a.window_period) * a.padded_cols, a, s.acc.data(),
                  i == cy * a.pool);
  }
  float* out_band = a.out + hog_out_offset(b, c, 0, cy, 0, a.channels, a.nbins, a.cells_h, a.cells_w, a.patch_cells);
  hog_band_cells(s.acc.data(), out_band, a, s.hist.data(), s.divisor.data());
}

template <typename T>
void hog_cpu_typed(const T* imgs, const HogCpuArgs& a, index_t batch, int num_threads) {
  const index_t bands = batch * a.channels * a.cells_h;
  // Allocated here, not in the parallel region: a failed allocation raises MemoryError in Python
  // instead of terminating the process from an OpenMP thread.
  const HogCpuScratch one(a);
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
  const index_t cells_h = height / pool, cells_w = width / pool, cols = cells_w * pool;
  const index_t padded_cols = (cols + kLanes - 1) / kLanes * kLanes;
  const int window_period = gaussian_window > 0 ? gaussian_window : 1;
  std::vector<float> window_rows(static_cast<size_t>(window_period * padded_cols), 1.0f);
  if (gaussian_window > 0) {
    const float* g = reinterpret_cast<const float*>(window);
    for (index_t r = 0; r < gaussian_window; ++r) {  // j0: the first column of each period (no division)
      for (index_t j0 = 0; j0 < cols; j0 += gaussian_window) {
        for (index_t j = j0; j < cols && j < j0 + gaussian_window; ++j) {
          window_rows[r * padded_cols + j] = g[r * gaussian_window + (j - j0)];
        }
      }
    }
  }
  index_t stored_cells_w = 0;
  std::vector<index_t> cell_offsets(static_cast<size_t>(cells_w));
  for (index_t cx = 0; cx < cells_w && hog_cell_stored(0, cx, cells_h, cells_w, patch_cells); ++cx, ++stored_cells_w) {
    cell_offsets[cx] = hog_out_offset(0, 0, 0, 0, cx, channels, nbins, cells_h, cells_w, patch_cells);
  }
  const HogCpuArgs a{reinterpret_cast<const float*>(cot), window_rows.data(), cell_offsets.data(),
                     reinterpret_cast<float*>(out), channels, height, width, cells_h, cells_w, patch_cells, cols,
                     padded_cols, hog_out_step(cells_h, cells_w, patch_cells), stored_cells_w, nbins, pool,
                     window_period, norm_out};
  hog_with_dtype(dtype, "hog_cpu", [&](auto tag) {
    hog_cpu_typed(reinterpret_cast<const decltype(tag)*>(imgs), a, batch, num_threads);
  });
}
}  // namespace mimkernels
