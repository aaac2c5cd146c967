"""HOG family: the MaskFeat target (SPEC.md), in mmpretrain's per-patch layout (`hog`) or as
SlowFast HOGLayerC's cell map (`hog_map`).

Per image and channel: reflect-pad by 1, Sobel gradients gx = left − right column, gy = top − bottom
row, magnitude |g|, a hard vote into the unsigned orientation bin floor(nbins·θ/π) with θ the angle
of atan2(gx, gy), magnitudes weighted by a Gaussian window tiled from the origin with period
`gaussian_window` (0: none, SlowFast's MaskFeat; 16: mmpretrain's), summed over pool×pool cells,
each (channel, cell) nbins-vector L2-normalized (eps 1e-12, zero cells stay zero).

Backends: "torch" (the eager official computation, reference.py), "triton" (one fused kernel,
triton.py), "cpp" (OpenMP, csrc/hog/hog_cpu.cpp) and "cuda" (shared-memory tile per block,
csrc/hog/hog.cu), registered in ops.py as torch.ops.mimkernels.{hog,hog_map}.<backend> (outside torch.compile the
cpp overload's body is called directly, `_library.call`: the dispatcher's round trip costs ~50 µs); cpp and cuda
share the per-pixel body csrc/include/mimkernels/hog.h, whose formulas are the Triton kernel's, operation for
operation. All compute in fp32 from the exactly upcast input.
The kernels bin by a sign test against split fp32 cotangents instead of atan2 (SPEC.md §5): on
integer-valued inputs with odd nbins they equal the official fp32 result; elsewhere pixels within
~1e-7 of a bin boundary may vote differently (SPEC.md §5 — so does the official code between CPU and
GPU). With even nbins, integer gradients hit the 45°/90°/135° boundaries exactly: the kernels take the
exact bin, while torch's vectorized CPU atan2 can round below it (atan2(g, g)·4/π = 0.99999994).

No gradient: the official target is computed under no_grad; so are ours, on every backend, and the
outputs never require grad, whatever the input (a target, never a path for gradients).

A NaN or Inf pixel poisons the whole vector of every (channel, cell) its 3×3 stencil reaches, as in the
official code (no value checks: they would synchronize the host). The cuda backend holds a tile of at
least one cell in shared memory: it raises ValueError when one cell does not fit the GPU's shared memory
per block (pool > ~138 at 9 bins); triton has no such limit.
"""
from __future__ import annotations

import torch

from mimkernels import _backends, _library
from mimkernels.checks import check_int, check_patch_grid, check_tensor
from mimkernels.hog import ops, reference
from mimkernels.hog.nn import HOG

__all__ = ["hog", "hog_map", "HOG"]

IMAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.uint8)


def hog(imgs: torch.Tensor, *, nbins: int = 9, pool: int = 8, gaussian_window: int = 16, norm_out: bool = True,
        patch_size: int = 16, backend: str = "auto") -> torch.Tensor:
    """MaskFeat HOG target per patch: imgs (B, C, H, W) float32/float16/bfloat16/uint8, any strides ->
    (B, L, C·nbins·u²) float32, u = patch_size // pool, L = (H/patch_size)(W/patch_size), patch l
    row-major; entry ((c·nbins + k)·u + cy)·u + cx is bin k of cell (cy, cx) of the patch, channel c
    (mmpretrain HOGGenerator's layout: (B, 196, 108) at 224 px with the defaults).

    norm_out=False returns the raw window-weighted sums (not official). No gradient (module docstring).
    """
    _check_common(imgs, nbins, pool, gaussian_window, norm_out)
    check_int(patch_size, "patch_size", minimum=1)
    if patch_size % pool:
        raise ValueError(f"patch_size {patch_size} must be a multiple of pool {pool}")
    check_patch_grid(imgs.shape[2], imgs.shape[3], patch_size)
    be = _backends.resolve("hog", backend, imgs.device)
    with torch.no_grad():
        if be == "torch":
            return reference.to_patches(reference.hog_map(imgs, nbins, pool, gaussian_window, norm_out),
                                        patch_size // pool)
        cot, window = ops.tables(nbins, gaussian_window, imgs.device)
        return _library.call("hog", be, imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out)


def hog_map(imgs: torch.Tensor, *, nbins: int = 9, pool: int = 8, gaussian_window: int = 16, norm_out: bool = True,
            backend: str = "auto") -> torch.Tensor:
    """HOG cell map: imgs (B, C, H, W) float32/float16/bfloat16/uint8, any strides ->
    (B, C, nbins, H // pool, W // pool) float32 (SlowFast HOGLayerC's output). The last H mod pool rows
    and W mod pool columns form no cell (they still serve as stencil neighbours). No gradient."""
    _check_common(imgs, nbins, pool, gaussian_window, norm_out)
    be = _backends.resolve("hog_map", backend, imgs.device)
    with torch.no_grad():
        if be == "torch":
            return reference.hog_map(imgs, nbins, pool, gaussian_window, norm_out)
        cot, window = ops.tables(nbins, gaussian_window, imgs.device)
        return _library.call("hog_map", be, imgs, cot, window, nbins, pool, gaussian_window, norm_out)


def _check_common(imgs, nbins, pool, gaussian_window, norm_out) -> None:
    check_tensor(imgs, "imgs", ndim=4, dtypes=IMAGE_DTYPES, what="(B, C, H, W)")
    check_int(nbins, "nbins", minimum=1)
    if nbins > ops.MAX_NBINS:
        raise ValueError(f"nbins must be <= {ops.MAX_NBINS} (each pixel tests (nbins - 1) // 2 bin boundaries), "
                         f"got {nbins}")
    check_int(pool, "pool", minimum=1)
    check_int(gaussian_window, "gaussian_window", minimum=0)
    if gaussian_window == 1:
        raise ValueError("gaussian_window must be 0 (none) or >= 2: a window of 1 has std 1 // 2 = 0 "
                         "(the official code returns an all-NaN target)")
    if not isinstance(norm_out, bool):
        raise TypeError(f"norm_out must be a bool, got {type(norm_out).__name__}")
    _, channels, height, width = imgs.shape
    if channels < 1:
        raise ValueError(f"imgs must have C >= 1 channels, got shape {tuple(imgs.shape)}")
    if min(height, width) < max(2, pool):
        raise ValueError(f"imgs height {height} and width {width} must be >= 2 (reflect padding) and >= pool {pool}")
    if gaussian_window and (height % gaussian_window or width % gaussian_window):
        raise ValueError(f"imgs height {height} and width {width} must be multiples of gaussian_window "
                         f"{gaussian_window} (the window tiles the image); pass gaussian_window=0 for none")

