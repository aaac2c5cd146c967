"""Triton kernel of the HOG family: the whole MaskFeat target in one pass (SPEC.md §6).

Program (b, c, tile) owns a TILE×TILE block of cells of one channel: for `hog` the tile is one
patch (TILE = patch_size // pool), so its nbins·TILE² outputs are one contiguous stretch of the
patch's row of C·nbins·TILE²; for `hog_map` TILE = max(1, 32 // pool). A program per (image, channel, tile) rather
than per (image, patch) with all channels: the stencils of the channels share nothing, so the
grid (B·C·tiles, 150k programs at B = 256, 224 px) only gains parallelism. Each pixel of the tile
is one lane of a (cells, pixels-per-cell) block:

    gradients  the 8 stencil neighbours, reflect-mapped at the border (-1 -> 1, H -> H-2), upcast to
               fp32, pairwise differences first: gx = ((tl-tr) + 2(ml-mr)) + (bl-br), gy likewise
    magnitude  sqrt(fma(gx, gx, gy·gy)) · G[i mod gw, j mod gw]
    bin        the sign test of §8.1, no atan2: count the boundaries k with fma(|gx|, cot_k, -v) ≥ 0,
               cot_k held as a split pair (hi, lo); gx == 0 (and NaN) -> bin 0
    cell sums  one masked row sum per bin, kept as a (cells, bins) block (no scatter buffer, no
               one-hot (cells, bins, pixels) block, no atomics: deterministic)
    normalize  h / max(‖h‖₂, 1e-12) per (c, cell), then one store in the output layout.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimkernels._triton_lib import triton_launch


@triton.jit
def _orientation_bin(gx, gy, cot_ptr, NBINS: tl.constexpr):
    """Unsigned orientation bin of atan2(gx, gy) (SPEC.md §5): #{k in 1..nbins-1 : v <= |gx|·cot(kπ/nbins)},
    v = gy if gx > 0 else -gy; cot_ptr holds (nbins-1, 2) fp32 (hi, lo) pairs."""
    u = tl.abs(gx)
    v = tl.where(gx > 0, gy, -gy)
    count = tl.zeros(gx.shape, dtype=tl.int32)
    for k in range(NBINS - 1):
        hi = tl.broadcast_to(tl.load(cot_ptr + 2 * k), u.shape)  # tl.fma takes operands of one shape
        lo = tl.broadcast_to(tl.load(cot_ptr + 2 * k + 1), u.shape)
        t = tl.fma(u, lo, tl.fma(u, hi, -v))
        count += (t >= 0).to(tl.int32)
    return tl.where(gx == 0, 0, count)


@triton.jit
def _hog_kernel(
    img_ptr,                # input (B, C, H, W), any float or uint8 dtype, any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    cot_ptr,                # (nbins - 1, 2) fp32 split cotangents of the bin boundaries
    window_ptr,             # (gw, gw) fp32 Gaussian window, read when HAS_WINDOW
    out_ptr,                # (B, L, C·nbins·TILE²) when PATCH_LAYOUT else (B, C, nbins, cells_h, cells_w), fp32
    C, H, W,                # channels, image height and width
    cells_h, cells_w,       # cells per column and per row (H // pool, W // pool)
    tiles_w, tiles,         # tiles per row of tiles, tiles per image
    gw,                     # window period
    NBINS: tl.constexpr,    # orientation bins
    NBINS_PAD: tl.constexpr,  # next power of two >= NBINS
    POOL: tl.constexpr,     # cell side in pixels
    TILE: tl.constexpr,     # tile side in cells (the patch side when PATCH_LAYOUT)
    CELLS: tl.constexpr,    # next power of two >= TILE²
    PIXELS: tl.constexpr,   # next power of two >= POOL²
    HAS_WINDOW: tl.constexpr,
    PATCH_LAYOUT: tl.constexpr,
    NORM_OUT: tl.constexpr,
):
    # Map the program id to the (image, channel, tile) it computes.
    pid = tl.program_id(0).to(tl.int64)
    tile = pid % tiles
    bc = pid // tiles
    c = bc % C
    b = bc // C
    ty = tile // tiles_w
    tx = tile % tiles_w

    q = tl.arange(0, CELLS)[:, None]    # cell of the tile, row-major
    p = tl.arange(0, PIXELS)[None, :]   # pixel of the cell, row-major
    cy = ty * TILE + q // TILE
    cx = tx * TILE + q % TILE
    cell_ok = (q < TILE * TILE) & (cy < cells_h) & (cx < cells_w)
    ok = cell_ok & (p < POOL * POOL)
    i = cy * POOL + p // POOL
    j = cx * POOL + p % POOL
    up = tl.where(i == 0, 1, i - 1) * img_stride_h
    mid = i * img_stride_h
    down = tl.where(i == H - 1, H - 2, i + 1) * img_stride_h
    left = tl.where(j == 0, 1, j - 1) * img_stride_w
    centre = j * img_stride_w
    right = tl.where(j == W - 1, W - 2, j + 1) * img_stride_w

    base = img_ptr + b * img_stride_b + c * img_stride_c
    tl_ = tl.load(base + up + left, mask=ok, other=0).to(tl.float32)
    tm = tl.load(base + up + centre, mask=ok, other=0).to(tl.float32)
    tr = tl.load(base + up + right, mask=ok, other=0).to(tl.float32)
    ml = tl.load(base + mid + left, mask=ok, other=0).to(tl.float32)
    mr = tl.load(base + mid + right, mask=ok, other=0).to(tl.float32)
    bl = tl.load(base + down + left, mask=ok, other=0).to(tl.float32)
    bm = tl.load(base + down + centre, mask=ok, other=0).to(tl.float32)
    br = tl.load(base + down + right, mask=ok, other=0).to(tl.float32)
    gx = ((tl_ - tr) + 2.0 * (ml - mr)) + (bl - br)
    gy = ((tl_ - bl) + 2.0 * (tm - bm)) + (tr - br)

    magnitude = tl.sqrt(tl.fma(gx, gx, gy * gy))  # 0 on masked lanes: their loads are 0
    if HAS_WINDOW:
        magnitude = magnitude * tl.load(window_ptr + (i % gw) * gw + j % gw, mask=ok, other=0.0)
    bins = _orientation_bin(gx, gy, cot_ptr, NBINS)

    # cell sums: one masked row sum per bin, gathered into a (cells, bins) block
    kk = tl.arange(0, NBINS_PAD)[None, :]
    hist = tl.zeros([CELLS, NBINS_PAD], dtype=tl.float32)
    for k in range(NBINS):
        h = tl.sum(tl.where(bins == k, magnitude, 0.0), axis=1)
        hist = tl.where(kk == k, h[:, None], hist)
    if NORM_OUT:
        norm = tl.sqrt(tl.sum(hist * hist, axis=1))[:, None]
        hist = hist / tl.where(norm < 1e-12, 1e-12, norm)  # not tl.maximum: a NaN norm must stay NaN

    q1 = tl.arange(0, CELLS)[:, None]
    cy1 = ty * TILE + q1 // TILE
    cx1 = tx * TILE + q1 % TILE
    store_ok = (q1 < TILE * TILE) & (cy1 < cells_h) & (cx1 < cells_w) & (kk < NBINS)
    if PATCH_LAYOUT:
        # patch l = tile; entry ((c·nbins + k)·TILE + cy)·TILE + cx of a row of C·nbins·TILE² floats
        out_offset = (b * tiles + tile) * (C * NBINS * TILE * TILE) + (c * NBINS + kk) * TILE * TILE + q1
    else:
        out_offset = (((b * C + c) * NBINS + kk) * cells_h + cy1) * cells_w + cx1
    tl.store(out_ptr + out_offset, hist, mask=store_ok)


def map_tile(pool: int) -> int:
    """Cells per tile side for hog_map: tiles of about 32 pixels a side."""
    return max(1, 32 // pool)


def hog(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int, gaussian_window: int,
        patch_size: int, norm_out: bool) -> torch.Tensor:
    """imgs (B, C, H, W) -> (B, L, C·nbins·u²) fp32, u = patch_size // pool. cot, window: `ops.tables`."""
    b, c, h, w = imgs.shape
    u = patch_size // pool
    out = torch.empty((b, (h // patch_size) * (w // patch_size), c * nbins * u * u), dtype=torch.float32,
                      device=imgs.device)
    return _launch_hog(imgs, cot, window, out, nbins, pool, gaussian_window, u, True, norm_out)


def hog_map(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int, gaussian_window: int,
            norm_out: bool) -> torch.Tensor:
    """imgs (B, C, H, W) -> the cell map (B, C, nbins, H // pool, W // pool) fp32."""
    b, c, h, w = imgs.shape
    out = torch.empty((b, c, nbins, h // pool, w // pool), dtype=torch.float32, device=imgs.device)
    return _launch_hog(imgs, cot, window, out, nbins, pool, gaussian_window, map_tile(pool), False, norm_out)


def _launch_hog(imgs, cot, window, out, nbins, pool, gaussian_window, tile, patch_layout, norm_out):
    """One program per (image, channel, tile of tile×tile cells), writing `out` in its layout."""
    if out.numel() == 0:
        return out
    b, c, h, w = imgs.shape
    cells_h, cells_w = h // pool, w // pool
    tiles_h, tiles_w = triton.cdiv(cells_h, tile), triton.cdiv(cells_w, tile)
    grid = (b * c * tiles_h * tiles_w,)
    triton_launch(_hog_kernel)[grid](
        imgs, *imgs.stride(), cot, window, out,
        c, h, w, cells_h, cells_w, tiles_w, tiles_h * tiles_w, max(gaussian_window, 1),
        NBINS=nbins, NBINS_PAD=triton.next_power_of_2(nbins), POOL=pool, TILE=tile,
        CELLS=triton.next_power_of_2(tile * tile), PIXELS=triton.next_power_of_2(pool * pool),
        HAS_WINDOW=gaussian_window > 0, PATCH_LAYOUT=patch_layout, NORM_OUT=norm_out,
        num_warps=4 if tile * tile * pool * pool >= 512 else 2,
    )
    return out
