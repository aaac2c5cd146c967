// SimMIM's AvgDist (mask_avg_dist, masking/SPEC.md §8): the mean, over masked pixels, of the Euclidean distance to
// the nearest visible pixel, with every mask cell expanded to patch x patch pixels. Exact squared
// distances in integers by the separable transform of Meijster, Roerdink and Hesselink (2000):
//   column pass: g(y, u) = vertical distance from pixel (y, u) to the nearest visible pixel of column u.
//     Columns inside one patch column j are equal, so it is read from two (h x w) tables: the nearest
//     visible patch row at or above / at or below each cell of column j.
//   row pass: d²(y, x) = min_u (x - u)² + g(y, u)², the lower envelope of parabolas, O(W) per row.
// Shared by the CPU (cpp) and CUDA builds; rows are summed in double in ascending row order by both,
// so the result is bit-identical.
#pragma once
#include <cmath>
#include <cstdint>

#include "mimkernels/common.h"

namespace mimkernels {
struct AvgDistGrid {
  const uint8_t* mask;  // (h, w) of one sample, nonzero = masked
  const int32_t* above;  // (h, w): nearest visible patch row <= i in column j, -1 if none
  const int32_t* below;  // (h, w): nearest visible patch row >= i in column j, h if none
  int64_t h, w, patch;
};

// Column pass of patch column j: fills above/below for every row of that column.
MK_HD void avg_dist_column(const uint8_t* mask, int32_t* above, int32_t* below, int64_t h, int64_t w, int64_t j) {
  int32_t last = -1;
  for (int64_t i = 0; i < h; ++i) {
    if (!mask[i * w + j]) last = static_cast<int32_t>(i);
    above[i * w + j] = last;
  }
  last = static_cast<int32_t>(h);
  for (int64_t i = h - 1; i >= 0; --i) {
    if (!mask[i * w + j]) last = static_cast<int32_t>(i);
    below[i * w + j] = last;
  }
}

// g(y, u)² of pixel row y and any pixel column u of patch column j; 0 exactly when the pixel is
// visible. "No visible pixel in the column" is (H + W)², larger than any real squared distance, so
// it never wins the row pass where a visible pixel exists.
MK_HD int64_t avg_dist_vertical_sq(const AvgDistGrid& g, int64_t y, int64_t j) {
  const int64_t i = y / g.patch;
  const int64_t a = g.above[i * g.w + j], b = g.below[i * g.w + j];
  if (a == i) return 0;
  int64_t d = g.h * g.patch + g.w * g.patch;
  if (a >= 0) d = y - (a * g.patch + g.patch - 1);
  if (b < g.h && b * g.patch - y < d) d = b * g.patch - y;
  return d * d;
}

// Row pass of pixel row y: the sum of sqrt(d²) over the masked pixels of the row. Scratch of
// W = w * patch entries each: gu (g² per pixel column), s and t (the envelope's parabola apexes and
// the columns where each starts).
MK_HD double avg_dist_row_sum(const AvgDistGrid& g, int64_t y, int64_t* gu, int32_t* s, int32_t* t) {
  const int64_t W = g.w * g.patch;
  bool any_masked = false;
  for (int64_t j = 0, u = 0; j < g.w; ++j) {
    const int64_t gj = avg_dist_vertical_sq(g, y, j);
    any_masked |= gj > 0;
    for (int64_t k = 0; k < g.patch; ++k, ++u) gu[u] = gj;
  }
  if (!any_masked) return 0.0;
  int64_t q = 0;
  s[0] = 0;
  t[0] = 0;
  for (int64_t u = 1; u < W; ++u) {
    // Pop the parabolas that u beats where they start: f(t, s) = (t - s)² + g(s)².
    while (q >= 0) {
      const int64_t tq = t[q], sq = s[q];
      if ((tq - sq) * (tq - sq) + gu[sq] <= (tq - u) * (tq - u) + gu[u]) break;
      --q;
    }
    if (q < 0) {
      q = 0;
      s[0] = static_cast<int32_t>(u);
    } else {
      // First column where u is strictly better than s[q] (the numerator is >= 0 here, so / floors).
      const int64_t sq = s[q];
      const int64_t start = 1 + (u * u - sq * sq + gu[u] - gu[sq]) / (2 * (u - sq));
      if (start < W) {
        ++q;
        s[q] = static_cast<int32_t>(u);
        t[q] = static_cast<int32_t>(start);
      }
    }
  }
  double sum = 0.0;
  for (int64_t x = W - 1; x >= 0; --x) {
    const int64_t sq = s[q];
    if (gu[x] > 0) sum += sqrt(static_cast<double>((x - sq) * (x - sq) + gu[sq]));
    if (x == t[q]) --q;
  }
  return sum;
}

// AvgDist of one sample from the sum over all masked pixels: NaN without masked cells, +inf
// without visible cells.
MK_HD float avg_dist_finish(double total, int64_t masked_cells, int64_t cells, int64_t patch) {
  if (masked_cells == 0) return static_cast<float>(NAN);
  if (masked_cells == cells) return static_cast<float>(INFINITY);
  return static_cast<float>(total / static_cast<double>(masked_cells * patch * patch));
}

MK_HD int64_t count_nonzero(const uint8_t* mask, int64_t n) {
  int64_t c = 0;
  for (int64_t k = 0; k < n; ++k) c += mask[k] != 0;
  return c;
}
}  // namespace mimkernels
