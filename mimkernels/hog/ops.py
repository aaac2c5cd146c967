"""torch.library declarations of the HOG family: `torch.ops.mimkernels.{hog,hog_map}.{triton,cpp,cuda}`,
the constant tables every kernel reads, and the native glue. No autograd: HOG is a target."""
from __future__ import annotations

import functools
import math

import torch

from mimkernels import _native
from mimkernels._backends import HAS_TRITON
from mimkernels._library import define_native, define_op
from mimkernels.hog import reference

# dtype codes of the native kernels (csrc/include/mimkernels/hog.h)
_NATIVE_DTYPE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.uint8: 3}


def bin_cotangents(nbins: int) -> torch.Tensor:
    """(nbins − 1, 2) float32: cot(kπ/nbins), k = 1..nbins−1, as hi + lo (hi = fp32(cot), lo = fp32(cot − hi)),
    so that fma(u, lo, fma(u, hi, −v)) ≥ 0 decides v ≤ u·cot to ~2⁻⁴⁸ (SPEC.md §5). The rational
    boundaries (π/4, π/2, 3π/4) are exactly 1, 0, −1: a tie then lands in bin k, as the exact floor. The table is
    antisymmetric, (hi, lo) of nbins − k = −(hi, lo) of k, which lets the kernels fold the tests past π/2."""
    pairs = []
    for k in range(1, nbins):
        if 4 * k == nbins:
            exact = 1.0
        elif 2 * k == nbins:
            exact = 0.0
        elif 4 * k == 3 * nbins:
            exact = -1.0
        elif 2 * k > nbins:  # cot(π − x) = −cot(x), exactly: the kernels test only the first half (SPEC.md §5)
            hi, lo = pairs[nbins - k - 1]
            pairs.append((-hi, -lo))
            continue
        else:
            exact = 1.0 / math.tan(k * math.pi / nbins)
        hi = float(torch.tensor(exact, dtype=torch.float32))
        pairs.append((hi, float(torch.tensor(exact - hi, dtype=torch.float32))))
    return torch.tensor(pairs, dtype=torch.float32).reshape(nbins - 1, 2)


@functools.lru_cache(maxsize=64)
def tables(nbins: int, gaussian_window: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(cotangents (nbins−1, 2), window (gw, gw) or (1, 1) unused) float32 on `device`, built once per
    (nbins, gw, device); the window by the official torch ops (bit-identical to mmpretrain's buffer)."""
    window = (reference.gaussian_window(gaussian_window) if gaussian_window
              else torch.ones((1, 1), dtype=torch.float32))
    return bin_cotangents(nbins).to(device), window.to(device)


# The most orientation bins: each pixel's vote tests (nbins − 1) // 2 boundaries and each cell holds nbins
# floats, so nbins = 2^31 − 1 ran for hours; 4096 bins (0.044° wide) are far past any HOG use (9 to 36).
MAX_NBINS = 4096


def check_meta(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int,
               gaussian_window: int, patch_size: int | None = None) -> None:
    """The sizes every kernel indexes with, checked in each op body (the ops are reachable without the front
    door, e.g. from a compiled graph): metadata only, no sync. With them no kernel reads outside imgs, cot and
    window or writes outside its output (SPEC.md §8)."""
    if imgs.dim() != 4 or imgs.dtype not in _NATIVE_DTYPE:
        raise ValueError(f"hog: imgs must be (B, C, H, W) of {list(_NATIVE_DTYPE)}, got {tuple(imgs.shape)} "
                         f"{imgs.dtype}")
    if not 1 <= nbins <= MAX_NBINS or pool < 1 or gaussian_window < 0 or gaussian_window == 1:
        raise ValueError(f"hog: nbins {nbins} must be in [1, {MAX_NBINS}], pool {pool} >= 1, gaussian_window "
                         f"{gaussian_window} 0 or >= 2")
    _, _, h, w = imgs.shape
    if min(h, w) < max(2, pool):
        raise ValueError(f"hog: imgs height {h} and width {w} must be >= 2 and >= pool {pool}")
    if tuple(cot.shape) != (nbins - 1, 2) or cot.dtype != torch.float32:
        raise ValueError(f"hog: cot must be ({nbins - 1}, 2) float32 (ops.tables), got {tuple(cot.shape)} {cot.dtype}")
    if gaussian_window and (tuple(window.shape) != (gaussian_window, gaussian_window)
                            or window.dtype != torch.float32):
        raise ValueError(f"hog: window must be ({gaussian_window}, {gaussian_window}) float32 (ops.tables), got "
                         f"{tuple(window.shape)} {window.dtype}")
    if patch_size is not None and (patch_size < 1 or patch_size % pool):
        raise ValueError(f"hog: patch_size {patch_size} must be a positive multiple of pool {pool}")


def hog_fake(imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out):
    b, c, h, w = imgs.shape
    u = patch_size // pool
    return imgs.new_empty((b, (h // patch_size) * (w // patch_size), c * nbins * u * u), dtype=torch.float32)


def hog_map_fake(imgs, cot, window, nbins, pool, gaussian_window, norm_out):
    b, c, h, w = imgs.shape
    return imgs.new_empty((b, c, nbins, h // pool, w // pool), dtype=torch.float32)


def _native_hog(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, out: torch.Tensor, nbins: int,
                pool: int, gaussian_window: int, cells_per_patch: int, norm_out: bool) -> torch.Tensor:
    """Fill `out` through `_C` (hog_cpu or hog_cuda by device): cells_per_patch 0 = the cell map."""
    if out.numel() == 0:
        return out
    imgs, cot, window = imgs.contiguous(), cot.contiguous(), window.contiguous()
    b, c, h, w = imgs.shape
    args = (_native.ptr(imgs, imgs.dtype), _NATIVE_DTYPE[imgs.dtype], _native.ptr(cot, torch.float32),
            _native.ptr(window, torch.float32), _native.ptr(out, torch.float32), b, c, h, w, nbins, pool,
            gaussian_window, cells_per_patch, norm_out)
    if imgs.device.type == "cuda":
        _native.cuda_call("hog_cuda", imgs.device, *args)
    else:
        _native.lib.hog_cpu(*args, _native.cpu_threads(b * c * (h // pool)))
    return out


def native_hog(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int,
               gaussian_window: int, patch_size: int, norm_out: bool) -> torch.Tensor:
    """imgs (B, C, H, W) any strides -> (B, L, C·nbins·u²) float32 through `_C`; cot, window: tables()."""
    check_meta(imgs, cot, window, nbins, pool, gaussian_window, patch_size)
    out = hog_fake(imgs, cot, window, nbins, pool, gaussian_window, patch_size, norm_out)
    return _native_hog(imgs, cot, window, out, nbins, pool, gaussian_window, patch_size // pool, norm_out)


def native_hog_map(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int,
                   gaussian_window: int, norm_out: bool) -> torch.Tensor:
    """imgs (B, C, H, W) any strides -> (B, C, nbins, H // pool, W // pool) float32 through `_C`."""
    check_meta(imgs, cot, window, nbins, pool, gaussian_window)
    out = hog_map_fake(imgs, cot, window, nbins, pool, gaussian_window, norm_out)
    return _native_hog(imgs, cot, window, out, nbins, pool, gaussian_window, 0, norm_out)


define_native("hog", native_hog, fake=hog_fake)
define_native("hog_map", native_hog_map, fake=hog_map_fake)

if HAS_TRITON:
    from mimkernels.hog import triton as kernels

    define_op("hog.triton", kernels.hog, fake=hog_fake, triton=True)
    define_op("hog_map.triton", kernels.hog_map, fake=hog_map_fake, triton=True)
