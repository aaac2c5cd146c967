// Host entry points of the HOG family (bindings.cpp binds them). imgs (B, C, H, W) contiguous, dtype
// code HogDtype (mimkernels/hog.h); cot (nbins - 1, 2) and window (gw, gw) fp32 tables; out fp32, the
// per-patch rows (B, L, C*nbins*u*u) when patch_cells u > 0, else the map (B, C, nbins, H/pool, W/pool).
#pragma once
#include <cstdint>

namespace mimkernels {
void hog_cpu(uintptr_t imgs, int dtype, uintptr_t cot, uintptr_t window, uintptr_t out, int64_t batch,
             int64_t channels, int64_t height, int64_t width, int nbins, int pool, int gaussian_window,
             int64_t patch_cells, bool norm_out, int num_threads);
#ifdef MIMKERNELS_WITH_CUDA
void hog_cuda(uintptr_t imgs, int dtype, uintptr_t cot, uintptr_t window, uintptr_t out, int64_t batch,
              int64_t channels, int64_t height, int64_t width, int nbins, int pool, int gaussian_window,
              int64_t patch_cells, bool norm_out, uintptr_t stream);
#endif
}  // namespace mimkernels
