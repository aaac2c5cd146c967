"""Triton kernel of the HOG family: the whole MaskFeat target in one pass (SPEC.md §6).

Program (b, c, tile) owns a TILE×TILE block of cells of one channel: for `hog` the tile is one
patch (TILE = patch_size // pool), so its nbins·TILE² outputs are one contiguous stretch of the
patch's row of C·nbins·TILE²; for `hog_map` TILE = max(1, 32 // pool). A program per (image, channel,
tile): the stencils of the channels share nothing, so the grid only gains parallelism.

The tile's pixels are held as (rows, chunks, V): a chunk is V consecutive pixels of one row of one cell
(V the largest power of two ≤ 8 dividing pool), so every global load is a contiguous run along W:

    loads      for each of the rows above, at and below (reflect-mapped: -1 -> 1, H -> H-2), the chunk
               itself (one vector load: 2×128-bit for fp32 at V = 8) and its two halo pixels (j0 - 1,
               j0 + V, reflect-mapped); the left and right neighbours of each pixel are the chunk shifted
               in registers (split/join), never a reload. Upcast to fp32 in registers.
    gradients  pairwise differences first: gx = ((tl-tr) + 2(ml-mr)) + (bl-br), gy likewise
    magnitude  sqrt(fma(gx, gx, gy·gy)) · G[i mod GW, j mod GW] (the window row loaded as a vector)
    bin        the sign test of SPEC.md §5, no atan2: count the boundaries k with fma(|gx|, lo_k,
               fma(|gx|, hi_k, -v)) ≥ 0; gx == 0 (and NaN) -> bin 0
    cell sums  one pass per bin: the V pixels of a chunk summed in registers, then the chunks of a cell
               (a reshape-reduce), gathered into a (cells, bins) block — no scatter buffer, no atomics:
               deterministic
    normalize  h / max(‖h‖₂, 1e-12) per (c, cell), then one store in the output layout.

Index math is int32 inside a plane (the launcher sets PLANE_I64 when a plane's span reaches 2^31) and
for the output inside a program; the plane and output bases are int64 scalars per program.
C, the window GW, pool and the tile are compile-time constants.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimkernels._triton_lib import triton_launch


@triton.jit
def _join4(a, b, c, d):
    """Four (..., N) tensors -> (..., N, 4) [a, b, c, d] along the new last axis."""
    x = tl.join(tl.join(a, c), tl.join(b, d))  # (..., 2, 2): [j][s] -> (a, c)[j] if s == 0 else (b, d)[j]
    return tl.reshape(x, (x.shape[0], x.shape[1], 4))


@triton.jit
def _neighbours(x, left_halo, right_halo, V: tl.constexpr):
    """x (R, N, V), the halos (R, N) -> (x[.., v - 1], x[.., v + 1]) (R, N, V): the row shifted right and
    left by one pixel inside the chunk, the halo pixel entering at the end. Register moves only."""
    R: tl.constexpr = x.shape[0]
    N: tl.constexpr = x.shape[1]
    if V == 1:
        return left_halo[:, :, None], right_halo[:, :, None]
    elif V == 2:
        c0, c1 = tl.split(x)
        return tl.join(left_halo, c0), tl.join(c1, right_halo)
    elif V == 4:
        e, o = tl.split(tl.reshape(x, (R, N, 2, 2)))  # e = [0, 2], o = [1, 3]
        c0, c2 = tl.split(e)
        c1, c3 = tl.split(o)
        return _join4(left_halo, c0, c1, c2), _join4(c1, c2, c3, right_halo)
    else:  # V == 8
        e, o = tl.split(tl.reshape(x, (R, N, 4, 2)))  # e = [0, 2, 4, 6], o = [1, 3, 5, 7]
        e0, e1 = tl.split(tl.reshape(e, (R, N, 2, 2)))  # [0, 4], [2, 6]
        o0, o1 = tl.split(tl.reshape(o, (R, N, 2, 2)))  # [1, 5], [3, 7]
        c0, c4 = tl.split(e0)
        c2, c6 = tl.split(e1)
        c1, c5 = tl.split(o0)
        c3, c7 = tl.split(o1)
        left = tl.reshape(tl.join(_join4(left_halo, c1, c3, c5), _join4(c0, c2, c4, c6)), (R, N, 8))
        right = tl.reshape(tl.join(_join4(c1, c3, c5, c7), _join4(c2, c4, c6, right_halo)), (R, N, 8))
        return left, right


@triton.jit
def _cell_reduce(x, TILE_PAD: tl.constexpr, POOL_PAD: tl.constexpr, CPC_PAD: tl.constexpr, SUM: tl.constexpr):
    """(rows, chunks) of a tile -> (cells,): the sum (or the max) over each cell's pixel rows and chunks."""
    x = tl.reshape(x, (TILE_PAD, POOL_PAD, TILE_PAD, CPC_PAD))
    if SUM:
        x = tl.sum(tl.sum(x, axis=3), axis=1)
    else:
        x = tl.max(tl.max(x, axis=3), axis=1)
    return tl.reshape(x, (TILE_PAD * TILE_PAD,))


@triton.jit
def _row_with_halo(base, row_off, j0, ok, left_j, right_j, v, stride_w, V: tl.constexpr):
    """One row set: (R, N, V) pixels at j0 + v, and their left / right neighbours, upcast to fp32."""
    ptrs = base + row_off[:, None, None] + (j0[None, :, None] + v[None, None, :]) * stride_w
    x = tl.load(ptrs, mask=ok[:, :, None], other=0).to(tl.float32)
    lh = tl.load(base + row_off[:, None] + left_j[None, :] * stride_w, mask=ok, other=0).to(tl.float32)
    rh = tl.load(base + row_off[:, None] + right_j[None, :] * stride_w, mask=ok, other=0).to(tl.float32)
    left, right = _neighbours(x, lh, rh, V)
    return left, x, right


@triton.jit
def _hog_kernel(
    img_ptr,                # input (B, C, H, W), any float or uint8 dtype, any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    cot_ptr,                # (nbins - 1, 2) fp32 split cotangents of the bin boundaries
    window_ptr,             # (GW, GW) fp32 Gaussian window, read when GW > 0
    out_ptr,                # (B, L, C·nbins·TILE²) when PATCH_LAYOUT else (B, C, nbins, cells_h, cells_w), fp32
    H, W,                   # image height and width
    cells_h, cells_w,       # cells per column and per row (H // pool, W // pool)
    bc0,                    # image·C + channel of program (0, 0, 0) (the launcher splits grids past 65535)
    C: tl.constexpr,        # channels
    GW: tl.constexpr,       # window side (0: no window)
    NBINS: tl.constexpr,    # orientation bins
    POOL: tl.constexpr,     # cell side in pixels
    POOL_PAD: tl.constexpr,  # next power of two >= POOL
    V: tl.constexpr,        # pixels per chunk: a power of two dividing POOL
    CPC_PAD: tl.constexpr,  # next power of two >= POOL // V (chunks per cell row)
    TILE: tl.constexpr,     # tile side in cells (a multiple of U when PATCH_LAYOUT)
    TILE_PAD: tl.constexpr,  # next power of two >= TILE
    U: tl.constexpr,        # cells per patch side (PATCH_LAYOUT)
    PATCH_LAYOUT: tl.constexpr,
    NORM_OUT: tl.constexpr,
    PLANE_I64: tl.constexpr,  # a plane's span reaches 2^31 elements: in-plane offsets in int64
):
    # (image, channel, tile) of this program: a 3-D grid, no division. Grid sizes < 2^31: int32.
    tx = tl.program_id(0)
    ty = tl.program_id(1)
    bc = bc0 + tl.program_id(2)
    c = bc % C
    b = bc // C
    CPC: tl.constexpr = POOL // V
    CELLS: tl.constexpr = TILE_PAD * TILE_PAD

    # Rows of the tile: (cell row, pixel row) padded to powers of two; chunks: (cell column, chunk).
    # In-plane indices are < H, W < 2^31 (tensor sizes): int32.
    r = tl.arange(0, TILE_PAD * POOL_PAD)
    cy = ty * TILE + r // POOL_PAD
    i = cy * POOL + r % POOL_PAD
    row_ok = (r // POOL_PAD < TILE) & (r % POOL_PAD < POOL) & (cy < cells_h)
    n = tl.arange(0, TILE_PAD * CPC_PAD)
    cx = tx * TILE + n // CPC_PAD
    j0 = cx * POOL + (n % CPC_PAD) * V
    chunk_ok = (n // CPC_PAD < TILE) & (n % CPC_PAD < CPC) & (cx < cells_w)
    ok = row_ok[:, None] & chunk_ok[None, :]
    v = tl.arange(0, V)
    left_j = tl.where(j0 == 0, 1, j0 - 1)                 # reflect: -1 -> 1
    right_j = tl.where(j0 + V >= W, W - 2, j0 + V)        # reflect: W -> W - 2
    up_i = tl.where(i == 0, 1, i - 1)
    down_i = tl.where(i >= H - 1, H - 2, i + 1)

    base = img_ptr + b.to(tl.int64) * img_stride_b + c.to(tl.int64) * img_stride_c
    if PLANE_I64:
        i = i.to(tl.int64)
        up_i = up_i.to(tl.int64)
        down_i = down_i.to(tl.int64)
        j0 = j0.to(tl.int64)
        left_j = left_j.to(tl.int64)
        right_j = right_j.to(tl.int64)
    tl_, tm, tr = _row_with_halo(base, up_i * img_stride_h, j0, ok, left_j, right_j, v, img_stride_w, V)
    ml, _, mr = _row_with_halo(base, i * img_stride_h, j0, ok, left_j, right_j, v, img_stride_w, V)
    bl, bm, br = _row_with_halo(base, down_i * img_stride_h, j0, ok, left_j, right_j, v, img_stride_w, V)

    dx = ml - mr
    dy = tm - bm
    gx = ((tl_ - tr) + (dx + dx)) + (bl - br)
    gy = ((tl_ - bl) + (dy + dy)) + (tr - br)
    magnitude = tl.sqrt_rn(tl.fma(gx, gx, gy * gy))  # 0 on masked pixels: their loads are 0
    if GW > 0:
        wi = (i % GW) * GW
        if GW % V == 0:  # the chunk's window weights are one contiguous run of the window row
            wj = (j0 % GW)[None, :, None] + v[None, None, :]
        else:
            wj = (j0[None, :, None] + v[None, None, :]) % GW
        magnitude = magnitude * tl.load(window_ptr + wi[:, None, None] + wj, mask=ok[:, :, None], other=0.0)

    # bin: the sign test (SPEC.md §5), folded: the boundaries past π/2 are the mirrors of those before it
    # (cot(π - x) = -cot(x), the table antisymmetric), so v > 0 tests the first HALF with u and v <= 0 the same
    # HALF with -u: the counts of all nbins - 1 tests, bit for bit, from HALF of them
    HALF: tl.constexpr = (NBINS - 1) // 2
    u = tl.abs(gx)
    w = tl.where(gx > 0, gy, -gy)
    us = tl.where(w > 0, u, -u)
    bins = tl.where(w > 0, 0, tl.where(w <= 0, NBINS - 1 - HALF, 0))  # v <= 0 passes the first half (and π/2)
    for k in tl.static_range(HALF):
        hi, lo = tl.split(tl.load(cot_ptr + 2 * k + tl.arange(0, 2)))  # one 64-bit load of the (hi, lo) pair
        bins += (tl.fma(us, lo, tl.fma(us, hi, -w)) >= 0).to(tl.int32)
    bins = tl.where(u > 0, bins, 0)  # gx == 0 (either sign) and NaN: bin 0

    # cell sums, one bin at a time: the chunk's V pixels in registers, then the cell's chunks
    q = tl.arange(0, CELLS)
    qy = q // TILE_PAD
    qx = q % TILE_PAD
    hist = ()
    sumsq = tl.zeros([CELLS], dtype=tl.float32)
    for k in tl.static_range(NBINS):
        s = _cell_reduce(tl.sum(tl.where(bins == k, magnitude, 0.0), axis=2), TILE_PAD, POOL_PAD, CPC_PAD, True)
        sumsq = tl.fma(s, s, sumsq)
        hist = hist + (s,)
    if NORM_OUT:
        norm = tl.sqrt_rn(sumsq)
        divisor = tl.where(norm < 1e-12, 1e-12, norm)  # not tl.maximum: a NaN norm must stay NaN

    gy_ = ty * TILE + qy  # the cell's row and column in the image
    gx_ = tx * TILE + qx
    store_ok = (qy < TILE) & (qx < TILE) & (gy_ < cells_h) & (gx_ < cells_w)
    if PATCH_LAYOUT:
        # patch (gy_ // U)·(cells_w // U) + gx_ // U, entry ((c·nbins + k)·U + gy_ % U)·U + gx_ % U of a row of
        # C·nbins·U² floats. The image's base in int64; offsets inside an image's rows int32 (< 2^31: the
        # launcher checks the per-image output size).
        patches_h = cells_h // U  # whole patches only: a cell outside them has no entry (never stored)
        patches_w = cells_w // U
        store_ok = store_ok & (gy_ < patches_h * U) & (gx_ < patches_w * U)
        out_base = out_ptr + b.to(tl.int64) * (patches_h * patches_w * (C * NBINS * U * U))
        patch = (gy_ // U) * patches_w + gx_ // U
        cell_off = patch * (C * NBINS * U * U) + (c * NBINS * U + gy_ % U) * U + gx_ % U
        bin_step = U * U
    else:
        # (B, C, nbins, cells_h, cells_w): the plane base in int64, offsets inside a plane int32
        out_base = out_ptr + (b.to(tl.int64) * C + c) * NBINS * cells_h * cells_w
        cell_off = gy_ * cells_w + gx_
        bin_step = cells_h * cells_w
    for k in tl.static_range(NBINS):
        h = hist[k]
        if NORM_OUT:
            h = h / divisor
        tl.store(out_base + cell_off + k * bin_step, h, mask=store_ok)


def map_tile(pool: int) -> int:
    """Cells per tile side for hog_map: tiles of about 32 pixels a side."""
    return max(1, 32 // pool)


def patch_tile(pool: int, cells_per_patch: int) -> int:
    """Cells per tile side for hog: whole patches, about 32 pixels a side (2×2 patches of 16 at pool 8)."""
    return cells_per_patch * max(1, 32 // (cells_per_patch * pool))


CHUNK = 4  # pixels per chunk at most: one 128-bit fp32 load (the same for every dtype, so one binary per shape)
GRID_YZ = 65535  # CUDA's limit on grid y and z


def chunk_width(pool: int) -> int:
    """Pixels per chunk: the largest power of two dividing pool, at most CHUNK (one thread's vector)."""
    v = 1
    while 2 * v <= CHUNK and pool % (2 * v) == 0:
        v *= 2
    return v


def hog(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int, gaussian_window: int,
        patch_size: int, norm_out: bool) -> torch.Tensor:
    """imgs (B, C, H, W) -> (B, L, C·nbins·u²) fp32, u = patch_size // pool. cot, window: `ops.tables`."""
    from mimkernels.hog.ops import check_meta

    check_meta(imgs, cot, window, nbins, pool, gaussian_window, patch_size)
    b, c, h, w = imgs.shape
    u = patch_size // pool
    out = torch.empty((b, (h // patch_size) * (w // patch_size), c * nbins * u * u), dtype=torch.float32,
                      device=imgs.device)
    return _launch_hog(imgs, cot, window, out, nbins, pool, gaussian_window, patch_tile(pool, u), u, norm_out)


def hog_map(imgs: torch.Tensor, cot: torch.Tensor, window: torch.Tensor, nbins: int, pool: int, gaussian_window: int,
            norm_out: bool) -> torch.Tensor:
    """imgs (B, C, H, W) -> the cell map (B, C, nbins, H // pool, W // pool) fp32."""
    from mimkernels.hog.ops import check_meta

    check_meta(imgs, cot, window, nbins, pool, gaussian_window)
    b, c, h, w = imgs.shape
    out = torch.empty((b, c, nbins, h // pool, w // pool), dtype=torch.float32, device=imgs.device)
    return _launch_hog(imgs, cot, window, out, nbins, pool, gaussian_window, map_tile(pool), 0, norm_out)


def _launch_hog(imgs, cot, window, out, nbins, pool, gaussian_window, tile, cells_per_patch, norm_out):
    """Programs (tile column, tile row, image·C + channel), each a tile×tile block of cells, writing `out`
    in its layout (the patch rows when cells_per_patch > 0, else the map)."""
    if out.numel() == 0:
        return out
    b, c, h, w = imgs.shape
    cot, window = cot.contiguous(), window.contiguous()  # read by flat index
    cells_h, cells_w = h // pool, w // pool
    tiles_h, tiles_w = triton.cdiv(cells_h, tile), triton.cdiv(cells_w, tile)
    v = chunk_width(pool)
    pool_pad, tile_pad = triton.next_power_of_2(pool), triton.next_power_of_2(tile)
    cpc_pad = triton.next_power_of_2(pool // v)
    # int32 offsets: inside a plane (its furthest element) and inside one image's output
    span = (h - 1) * abs(imgs.stride(2)) + (w - 1) * abs(imgs.stride(3))
    if c * nbins * cells_h * cells_w >= 2**31:
        raise ValueError(f"hog: {c * nbins * cells_h * cells_w} outputs per image (at most 2^31 - 1)")
    pixels = tile_pad * pool_pad * tile_pad * cpc_pad * v
    num_warps = max(1, min(8, pixels // (32 * 16)))  # about 16 pixels per thread
    if tiles_h > GRID_YZ:
        raise ValueError(f"hog: {tiles_h} tile rows (at most {GRID_YZ}); use a larger pool")
    for bc0 in range(0, b * c, GRID_YZ):
        grid = (tiles_w, tiles_h, min(GRID_YZ, b * c - bc0))
        triton_launch(_hog_kernel)[grid](
            imgs, *imgs.stride(), cot, window, out, h, w, cells_h, cells_w, bc0,
            C=c, GW=gaussian_window, NBINS=nbins, POOL=pool, POOL_PAD=pool_pad, V=v, CPC_PAD=cpc_pad, TILE=tile,
            TILE_PAD=tile_pad, U=max(cells_per_patch, 1), PATCH_LAYOUT=cells_per_patch > 0, NORM_OUT=norm_out,
            PLANE_I64=span >= 2**31, num_warps=num_warps,
        )
    return out
