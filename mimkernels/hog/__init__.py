"""HOG family: the MaskFeat target (spec/hog.md), in mmpretrain's per-patch layout (`hog`) or as
SlowFast HOGLayerC's cell map (`hog_map`).

Per image and channel: reflect-pad by 1, Sobel gradients gx = left − right column, gy = top − bottom
row, magnitude |g|, a hard vote into the unsigned orientation bin floor(nbins·θ/π) with θ the angle
of atan2(gx, gy), magnitudes weighted by a Gaussian window tiled from the origin with period
`gaussian_window` (0: none, SlowFast's MaskFeat; 16: mmpretrain's), summed over pool×pool cells,
each (channel, cell) nbins-vector L2-normalized (eps 1e-12, zero cells stay zero).

Backends: "torch" (the eager official computation, reference.py), "triton" (one fused kernel,
triton.py), "cpp" (OpenMP, csrc/hog/hog_cpu.cpp) and "cuda" (shared-memory tile per block,
csrc/hog/hog.cu); cpp and cuda share the per-pixel body csrc/include/mimkernels/hog.h, whose formulas
are the Triton kernel's, operation for operation. All compute in fp32 from the exactly upcast input.
The kernels bin by a sign test against split fp32 cotangents instead of atan2 (spec §8.1): on
integer-valued inputs with odd nbins they equal the official fp32 result; elsewhere pixels within
~1e-7 of a bin boundary may vote differently (spec §7.3 — so does the official code between CPU and
GPU). With even nbins, integer gradients hit the 45°/90°/135° boundaries exactly: the kernels take the
exact bin, while torch's vectorized CPU atan2 can round below it (atan2(g, g)·4/π = 0.99999994).

No gradient: the official target is computed under no_grad; so are ours, on every backend, and the
outputs never require grad, whatever the input (a target, never a path for gradients).

A NaN or Inf pixel poisons the whole vector of every (channel, cell) its 3×3 stencil reaches, as in the
official code (no value checks: they would synchronize the host). The cuda backend holds a tile of at
least one cell in shared memory: it raises ValueError when one cell does not fit the GPU's shared memory
per block (pool > ~130 on an H100 at 9 bins); triton has no such limit.
"""
from __future__ import annotations

import functools
import math

import torch

from mimkernels import _dispatch, _native
from mimkernels._dispatch import HAS_TRITON, check_int, check_tensor, define_op, implements
from mimkernels.hog import reference

__all__ = ["hog", "hog_map"]

implements("hog", "torch", "triton", "cpp", "cuda")
implements("hog_map", "torch", "triton", "cpp", "cuda")

IMAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.uint8)
# dtype codes of the native kernels (csrc/hog/hog.h)
_NATIVE_DTYPE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.uint8: 3}


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
    _dispatch.check_patch_grid(imgs.shape[2], imgs.shape[3], patch_size)
    return _run("hog", imgs, nbins, pool, gaussian_window, norm_out, patch_size, backend)


def hog_map(imgs: torch.Tensor, *, nbins: int = 9, pool: int = 8, gaussian_window: int = 16, norm_out: bool = True,
            backend: str = "auto") -> torch.Tensor:
    """HOG cell map: imgs (B, C, H, W) float32/float16/bfloat16/uint8, any strides ->
    (B, C, nbins, H // pool, W // pool) float32 (SlowFast HOGLayerC's output). The last H mod pool rows
    and W mod pool columns form no cell (they still serve as stencil neighbours). No gradient."""
    _check_common(imgs, nbins, pool, gaussian_window, norm_out)
    return _run("hog_map", imgs, nbins, pool, gaussian_window, norm_out, 0, backend)


def _check_common(imgs, nbins, pool, gaussian_window, norm_out) -> None:
    check_tensor(imgs, "imgs", ndim=4, dtypes=IMAGE_DTYPES, what="(B, C, H, W)")
    check_int(nbins, "nbins", minimum=1)
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


def _run(op, imgs, nbins, pool, gaussian_window, norm_out, patch_size, backend) -> torch.Tensor:
    be = _dispatch.resolve_backend(op, backend, imgs.device)
    with torch.no_grad():
        if be == "torch":
            out = reference.hog_map(imgs, nbins, pool, gaussian_window, norm_out)
            return reference.to_patches(out, patch_size // pool) if patch_size else out
        cot, window = tables(nbins, gaussian_window, imgs.device)
        if be == "triton":
            return torch.ops.mimkernels.hog(imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out)
        return torch.ops.mimkernels.hog_native(imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out)


# ---- constant tables of the kernels ------------------------------------------------------------

def bin_cotangents(nbins: int) -> torch.Tensor:
    """(nbins − 1, 2) float32: cot(kπ/nbins), k = 1..nbins−1, as hi + lo (hi = fp32(cot), lo = fp32(cot − hi)),
    so that fma(u, lo, fma(u, hi, −v)) ≥ 0 decides v ≤ u·cot to ~2⁻⁴⁸ (spec §8.1). The rational
    boundaries (π/4, π/2, 3π/4) are exactly 1, 0, −1: a tie then lands in bin k, as the exact floor."""
    cots = []
    for k in range(1, nbins):
        if 4 * k == nbins:
            cots.append(1.0)
        elif 2 * k == nbins:
            cots.append(0.0)
        elif 4 * k == 3 * nbins:
            cots.append(-1.0)
        else:
            cots.append(1.0 / math.tan(k * math.pi / nbins))
    exact = torch.tensor(cots, dtype=torch.float64).reshape(nbins - 1)
    hi = exact.to(torch.float32)
    return torch.stack([hi, (exact - hi.double()).to(torch.float32)], dim=1)


@functools.lru_cache(maxsize=64)
def tables(nbins: int, gaussian_window: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(cotangents (nbins−1, 2), window (gw, gw) or (1, 1) unused) float32 on `device`, built once per
    (nbins, gw, device); the window by the official torch ops (bit-identical to mmpretrain's buffer)."""
    window = (reference.gaussian_window(gaussian_window) if gaussian_window
              else torch.ones((1, 1), dtype=torch.float32))
    return bin_cotangents(nbins).to(device), window.to(device)


def _hog_fake(imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out):
    b, c, h, w = imgs.shape
    if patch_size:
        u = patch_size // pool
        return imgs.new_empty((b, (h // patch_size) * (w // patch_size), c * nbins * u * u), dtype=torch.float32)
    return imgs.new_empty((b, c, nbins, h // pool, w // pool), dtype=torch.float32)


def _hog_native_impl(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int,
                     gaussian_window: int, patch_size: int, norm_out: bool) -> torch.Tensor:
    """imgs any strides (made contiguous here, where the pointer is taken); cot, window: tables()."""
    imgs = imgs.contiguous()
    out = _hog_fake(imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out)
    if out.numel() == 0:
        return out
    b, c, h, w = imgs.shape
    args = (_native.ptr(imgs, imgs.dtype), _NATIVE_DTYPE[imgs.dtype], _native.ptr(cot, torch.float32),
            _native.ptr(window, torch.float32), _native.ptr(out, torch.float32), b, c, h, w, nbins, pool,
            gaussian_window, patch_size // pool if patch_size else 0, norm_out)
    if imgs.device.type == "cuda":
        _native.cuda_call("hog_cuda", imgs.device, *args)
    else:
        _native.lib.hog_cpu(*args, _native.cpu_threads(b * c * (h // pool)))
    return out


define_op("hog_native", _hog_native_impl, fake=_hog_fake, triton=False)

if HAS_TRITON:
    from mimkernels.hog import triton as _kernels

    def _hog_triton_impl(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int,
                         gaussian_window: int, patch_size: int, norm_out: bool) -> torch.Tensor:
        return _kernels.hog(imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out)

    define_op("hog", _hog_triton_impl, fake=_hog_fake, triton=True)
