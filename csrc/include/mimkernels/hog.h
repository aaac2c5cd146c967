// MaskFeat HOG target (mimkernels/hog/SPEC.md §2, §5), per pixel and per cell, shared by the CPU and CUDA builds.
// The formulas are the Triton kernel's (mimkernels/hog/triton.py), operation for operation:
//   gx = ((tl - tr) + 2(ml - mr)) + (bl - br)        left column minus right column, pairwise first
//   gy = ((tl - bl) + 2(tm - bm)) + (tr - br)        top row minus bottom row (2d computed as d + d)
//   m  = sqrt(fma(gx, gx, gy * gy))                  (explicit fmaf: nvcc would contract, g++ not)
//   bin = #{k in 1..nbins-1 : fma(u, lo_k, fma(u, hi_k, -v)) >= 0}, u = |gx|, v = gx > 0 ? gy : -gy,
//         cot(k pi / nbins) = hi_k + lo_k; gx == 0 (and NaN) -> bin 0        (sign test, no atan2;
//         evaluated folded: the (nbins - 1) / 2 tests before pi/2, with -u when v <= 0)
//   a (channel, cell) nbins-vector h -> h / max(||h||_2, 1e-12)
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "mimkernels/common.h"

// Loops of the per-cell epilogue (a few cells a block, one warp of eight busy): not unrolled on the GPU, so
// that the code one warp runs once does not grow the kernel.
#if defined(__CUDA_ARCH__)
#define MK_HOG_NO_UNROLL _Pragma("unroll 1")
#else
#define MK_HOG_NO_UNROLL
#endif

namespace mimkernels {

// Input dtypes of the native kernels (codes shared with mimkernels/hog/__init__.py).
enum HogDtype : int { kHogFloat32 = 0, kHogFloat16 = 1, kHogBFloat16 = 2, kHogUInt8 = 3 };
struct Half16 { uint16_t bits; };    // IEEE binary16, as stored
struct BFloat16 { uint16_t bits; };  // bfloat16, as stored

// Host: calls run(T{}) with T the element type of dtype code `dtype`; ValueError (in Python) otherwise.
template <typename Run>
void hog_with_dtype(int dtype, const char* who, Run&& run) {
  switch (dtype) {
    case kHogFloat32: return run(float{});
    case kHogFloat16: return run(Half16{});
    case kHogBFloat16: return run(BFloat16{});
    case kHogUInt8: return run(uint8_t{});
    default: throw std::invalid_argument(std::string(who) + ": unknown dtype code " + std::to_string(dtype));
  }
}

MK_HD float bits_as_float(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

// Exact upcasts to fp32.
MK_HD float to_float(float x) { return x; }
MK_HD float to_float(uint8_t x) { return static_cast<float>(x); }
MK_HD float to_float(BFloat16 x) { return bits_as_float(static_cast<uint32_t>(x.bits) << 16); }
MK_HD float to_float(Half16 x) {
  const uint32_t sign = static_cast<uint32_t>(x.bits & 0x8000u) << 16;
  const uint32_t exponent = (x.bits >> 10) & 0x1fu;
  const uint32_t mantissa = x.bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in fp32
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bits_as_float(sign | 0x7f800000u | (mantissa << 13));  // inf, nan
  return bits_as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// Reflect padding by one: -1 -> 1, n -> n - 2 (needs n >= 2).
MK_HD index_t hog_reflect(index_t i, index_t n) { return i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i); }

struct HogVote {
  int bin;
  float magnitude;  // |g|, not yet windowed
};

// One Sobel component from its three differences, pairwise first: ((a0 - b0) + 2 (a1 - b1)) + (a2 - b2).
// gx = hog_gradient(tl, tr, ml, mr, bl, br), gy = hog_gradient(tl, bl, tm, bm, tr, br).
// 2d is written d + d (the same value, overflow included): a compiler that contracts 2.0f * d + e into
// an FMA (nvcc; g++ where the target has FMA) would keep a finite sum where 2d overflows.
MK_HD float hog_gradient(float a0, float b0, float a1, float b1, float a2, float b2) {
  const float middle = a1 - b1;
  return ((a0 - b0) + (middle + middle)) + (a2 - b2);
}

MK_HD float hog_squared_magnitude(float gx, float gy) { return fmaf(gx, gx, gy * gy); }
MK_HD float hog_magnitude(float gx, float gy) { return sqrtf(hog_squared_magnitude(gx, gy)); }

// 1 when the direction (u, v) = (|gx|, gx > 0 ? gy : -gy) lies at or past the boundary whose cotangent is
// hi + lo, i.e. v <= u (hi + lo); one rounding per fma keeps the sign exact for the stored constant.
MK_HD int hog_past_boundary(float u, float v, float hi, float lo) { return fmaf(u, lo, fmaf(u, hi, -v)) >= 0.0f; }

// Unsigned orientation bin of atan2(gx, gy); cot holds nbins - 1 (hi, lo) pairs, antisymmetric
// (pair nbins - k = -pair k: mimkernels/hog/ops.py bin_cotangents). The count of the nbins - 1 sign tests,
// folded (SPEC.md §5): for v > 0 only the boundaries before pi/2 can be passed, for v <= 0 all of those are
// (and pi/2 itself) and a boundary past pi/2 is passed iff the test of its mirror with -u is, since
// fma(u, -lo, fma(u, -hi, -v)) = fma(-u, lo, fma(-u, hi, -v)) exactly. The same count, half the tests.
MK_HD int hog_orientation_bin(float gx, float gy, const float* cot, int nbins) {
  const float u = fabsf(gx);
  if (!(u > 0.0f)) return 0;  // gx == 0 (either sign) and NaN
  const float v = gx > 0.0f ? gy : -gy;
  const int half = (nbins - 1) / 2;
  const float us = v > 0.0f ? u : -u;
  int count = v > 0.0f ? 0 : (v <= 0.0f ? nbins - 1 - half : 0);  // a NaN v passes no test
  for (int k = 0; k < half; ++k) count += hog_past_boundary(us, v, cot[2 * k], cot[2 * k + 1]);
  return count;
}

// The vote of one pixel from its 8 stencil neighbours (t/m/b = row above/same/below, l/m/r = column).
MK_HD HogVote hog_vote(float tl, float tm, float tr, float ml, float mr, float bl, float bm, float br,
                       const float* cot, int nbins) {
  const float gx = hog_gradient(tl, tr, ml, mr, bl, br);
  const float gy = hog_gradient(tl, bl, tm, bm, tr, br);
  return {hog_orientation_bin(gx, gy, cot, nbins), hog_magnitude(gx, gy)};
}

// One (cell, bin) of the histogram from its pool column sums (each the sum of the column's votes, top row
// first): added left to right. The order of both builds (hog_cpu.cpp, hog.cu): bit-identical sums.
MK_HD float hog_cell_sum(const float* column_sums, int pool) {
  float sum = 0.0f;
  MK_HOG_NO_UNROLL
  for (int px = 0; px < pool; ++px) sum += column_sums[px];
  return sum;
}

// The divisor of a histogram whose squares sum (fmaf(h_k, h_k, .) from 0, k ascending) to sumsq:
// max(||h||_2, 1e-12) (F.normalize(p=2, eps=1e-12)).
MK_HD float hog_norm_divisor(float sumsq) {
  const float norm = sqrtf(sumsq);
  return norm < 1e-12f ? 1e-12f : norm;  // not fmaxf: a NaN norm must stay NaN
}

// hist[k * stride], k < nbins: divided by hog_norm_divisor of its squares' sum.
MK_HD void hog_normalize(float* hist, int nbins, int stride) {
  float sumsq = 0.0f;
  MK_HOG_NO_UNROLL
  for (int k = 0; k < nbins; ++k) sumsq = fmaf(hist[k * stride], hist[k * stride], sumsq);
  const float divisor = hog_norm_divisor(sumsq);
  MK_HOG_NO_UNROLL
  for (int k = 0; k < nbins; ++k) hist[k * stride] /= divisor;
}

// Offset of bin k of cell (cy, cx), channel c, image b in the output: the per-patch rows
// (B, L, C*nbins*u*u), entry ((c*nbins + k)*u + cy%u)*u + cx%u of patch (cy/u)*(cells_w/u) + cx/u,
// when patch_cells u > 0; else the map (B, C, nbins, cells_h, cells_w). Separable: the offset of (b, c, k, cy, cx)
// is that of (b, c, 0, cy, 0) plus that of (0, 0, 0, 0, cx) plus k * hog_out_step (the CPU build adds the parts).
MK_HD index_t hog_out_offset(index_t b, index_t c, index_t k, index_t cy, index_t cx, index_t channels, index_t nbins,
                             index_t cells_h, index_t cells_w, index_t patch_cells) {
  if (patch_cells == 0) return (((b * channels + c) * nbins + k) * cells_h + cy) * cells_w + cx;
  const index_t u = patch_cells;
  const index_t patches = (cells_h / u) * (cells_w / u);
  const index_t patch = (cy / u) * (cells_w / u) + cx / u;
  return (b * patches + patch) * (channels * nbins * u * u) + ((c * nbins + k) * u + cy % u) * u + cx % u;
}

// The distance from bin k to bin k + 1 of a cell in the output: u^2 (patch rows) or cells_h * cells_w (map).
MK_HD index_t hog_out_step(index_t cells_h, index_t cells_w, index_t patch_cells) {
  return patch_cells ? patch_cells * patch_cells : cells_h * cells_w;
}

// Whether cell (cy, cx) has an entry in the output: in the per-patch layout a cell outside the whole patches
// (cells_h or cells_w not a multiple of u: the front door rejects it, the op reached directly does not) has none.
MK_HD bool hog_cell_stored(index_t cy, index_t cx, index_t cells_h, index_t cells_w, index_t patch_cells) {
  return patch_cells == 0 || (cy < cells_h / patch_cells * patch_cells && cx < cells_w / patch_cells * patch_cells);
}

// Normalizes (when norm_out) the nbins-vector hist of cell (cy, cx), channel c, image b and stores it, when the
// cell has an entry (hog_cell_stored).
MK_HD void hog_store_cell(float* out, float* hist, bool norm_out, index_t b, index_t c, index_t cy, index_t cx,
                          index_t channels, int nbins, index_t cells_h, index_t cells_w, index_t patch_cells) {
  if (!hog_cell_stored(cy, cx, cells_h, cells_w, patch_cells)) return;
  if (norm_out) hog_normalize(hist, nbins, 1);
  float* first = out + hog_out_offset(b, c, 0, cy, cx, channels, nbins, cells_h, cells_w, patch_cells);
  const index_t step = hog_out_step(cells_h, cells_w, patch_cells);
  MK_HOG_NO_UNROLL
  for (int k = 0; k < nbins; ++k) first[k * step] = hist[k];
}

}  // namespace mimkernels
