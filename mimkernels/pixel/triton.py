"""Triton kernels of the pixel family and their launchers: each op's launcher is named after it
(`patchify`, `norm_pix_mse_loss`, ...), its backward `<op>_backward` (grad, the op's inputs, needs)
-> one gradient per differentiable input; ops.py registers them as torch.ops.mimkernels.<op>.triton.

The patch tile (every patch-layout kernel). A program holds R whole patch rows (R·p·p·C elements: no
idle lane unless the rows run out in the last program, or p·p is not a power of two). C, p are
compile-time constants. Each row's p·p pixels are cut into groups of VEC pixels adjacent along W (VEC
= 16 bytes of the element type, at most the largest power of two dividing p), one group per thread
per step: the tensors are [R, G, VEC] with G = p·p / VEC, one tensor per channel on the image side
(each a 128-bit load/store of VEC pixels of one channel) and one per "row vector" on the patch-row
side: the C·VEC elements of a group are contiguous in MAE's (p, q, c) row (pixels q0..q0+VEC of
pixel row pi, channels innermost), so they are C vectors of VEC elements, row vector k = elements
k·VEC .. k·VEC + VEC of the group. `_to_rows` / `_to_channels` permute between the two in registers
(split/join trees: no shared memory, no extra instruction after register allocation).

    to patches, no ids     patchify                 = unpatchify_backward
    to image,   no ids     unpatchify               = patchify_backward
    to patches, ids        gather_patches           (the masking family's op)
    to image,   ids        gather_patches_backward  (a search: see below)

Ids may count prefix tokens first (lightly's token indices): row k holds patch ids[b, k] − ids_offset.
Bounds (SPEC.md §1): an id outside [0, L) after the offset gives a row of zeros (its loads are
predicated off: never an access outside imgs), whatever its value. The backward of gather_patches does
not scatter: one program per R image patches (b, l) finds the rows k with ids[b, k] − offset = l (a
vector compare of the sample's ids), adds those rows' gradients in ascending k (duplicates sum,
deterministically) and writes every pixel of the image once (zero where no row matched; an id out of
range matches no patch and is dropped). No zero fill, no atomics.

Index math: the sample's base offset (b · stride_b) is int64; offsets inside a sample, rows and
patch indices are IDX = int32 when the launcher has checked that every such offset (the extent of one
sample of each tensor, Σ (size − 1)·|stride|) and the row count fit below 2^31, else int64.

Per-patch normalized target and masked losses (SPEC.md §2-5), on the same tile, statistics in ACC
(float32; float64 for float64 inputs). With u = x − μ and s = √(Σu²/(D − 1) + eps), the target is
t = u / s (two passes over the tile in registers, no Σx² cancellation), and its backward, for an
upstream gradient g_t, is
    g_x = (g_t − mean(g_t) − t · Σ(g_t·t) / (D − 1)) / s.
All arithmetic is in row order (the image side is permuted on load / store). Losses write one partial
per patch row into an ACC buffer; the launcher sums it (a fixed-order tree, no atomics) and divides.
Backward kernels take the scalar factor (grad / normaliser) as a 0-d tensor, so nothing syncs the
host, and recompute the target from the image instead of saving it. masked_mse_loss on rows (B, L, D)
uses the tile with the row cut into C = D / W chunks of W (the largest power of two dividing D, when
D / W ≤ 16; else one chunk of D padded to a power of two).
SimMIM's L1: one program per tile of up to 4096 pixels of one (b, c) plane, the mask read at (y // p, x // p).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimkernels._triton_lib import block_settings, triton_launch

# ---- the patch tile -------------------------------------------------------------------------------


@triton.jit
def _columns(x, R: tl.constexpr, G: tl.constexpr, VEC: tl.constexpr, LOG2VEC: tl.constexpr):
    """x [R, G, VEC] -> a tuple of VEC tensors [R, G, 1], column m at index m (a tree of splits)."""
    cols = (x,)
    for lev in tl.static_range(LOG2VEC):
        evens = ()
        odds = ()
        for t in tl.static_range(1 << lev):
            e, o = tl.split(tl.reshape(cols[t], [R, G, (VEC >> lev) // 2, 2]))
            evens = evens + (e,)
            odds = odds + (o,)
        cols = evens + odds  # cols[s] holds the columns ≡ s mod 2^(lev+1), in order
    return cols


@triton.jit
def _stack(cols, R: tl.constexpr, G: tl.constexpr, VEC: tl.constexpr, LOG2VEC: tl.constexpr):
    """A tuple of VEC tensors [R, G, 1] -> [R, G, VEC], column m from cols[m] (a tree of joins)."""
    for lev in tl.static_range(LOG2VEC):
        new = ()
        for s in tl.static_range(VEC >> (lev + 1)):
            new = new + (tl.reshape(tl.join(cols[s], cols[s + (VEC >> (lev + 1))]), [R, G, 2 << lev]),)
        cols = new
    return cols[0]


@triton.jit
def _to_rows(xs, C: tl.constexpr, R: tl.constexpr, G: tl.constexpr, VEC: tl.constexpr, LOG2VEC: tl.constexpr):
    """Channel tiles (C tensors [R, G, VEC]: pixel q0 + m of channel c) -> row vectors (C tensors:
    element f = k·VEC + m of the group's (q, c) run, pixel q0 + f // C, channel f % C)."""
    cols = ()
    for c in tl.static_range(C):
        cols = cols + _columns(xs[c], R, G, VEC, LOG2VEC)
    ys = ()
    for k in tl.static_range(C):
        sel = ()
        for m in tl.static_range(VEC):
            sel = sel + (cols[((k * VEC + m) % C) * VEC + (k * VEC + m) // C],)
        ys = ys + (_stack(sel, R, G, VEC, LOG2VEC),)
    return ys


@triton.jit
def _to_channels(ys, C: tl.constexpr, R: tl.constexpr, G: tl.constexpr, VEC: tl.constexpr,
                 LOG2VEC: tl.constexpr):
    """The inverse of `_to_rows`: row vectors -> channel tiles."""
    cols = ()
    for k in tl.static_range(C):
        cols = cols + _columns(ys[k], R, G, VEC, LOG2VEC)
    xs = ()
    for c in tl.static_range(C):
        sel = ()
        for m in tl.static_range(VEC):
            sel = sel + (cols[m * C + c],)  # element f = m·C + c of the run is column f of the row vectors
        xs = xs + (_stack(sel, R, G, VEC, LOG2VEC),)
    return xs


@triton.jit
def _tile(ROWS, R: tl.constexpr, G: tl.constexpr, VEC: tl.constexpr, P: tl.constexpr, IDX: tl.constexpr):
    """This program's rows [R, 1, 1] (IDX) and whether each exists; for each element of the [R, G, VEC]
    tile its group g, pixel row pi and group start q0 ([1, G, 1]), lane m ([1, 1, VEC]) in the patch,
    and whether the group is in the patch (G > p·p / VEC when p·p is not a power of two)."""
    row = tl.program_id(0).to(IDX) * R + tl.arange(0, R).to(IDX)[:, None, None]
    g = tl.arange(0, G).to(IDX)[None, :, None]
    m = tl.arange(0, VEC).to(IDX)[None, None, :]
    return row, row < ROWS, g, g // (P // VEC), (g % (P // VEC)) * VEC, m, g < P * (P // VEC)


@triton.jit
def _image_offsets(patch, pi, q0, m, stride_h, stride_w, grid_w, P: tl.constexpr):
    """Offsets inside one image plane of pixel (pi, q0 + m) of patch `patch` (row-major grid of grid_w)."""
    i = patch // grid_w
    j = patch - i * grid_w
    return (i * P + pi) * stride_h + (j * P + q0 + m) * stride_w


@triton.jit
def _row_offsets(pi, q0, m, g, C: tl.constexpr, VEC: tl.constexpr, P: tl.constexpr, FROM_IMAGE: tl.constexpr):
    """Offset in a patch row of lane m of row vector 0 of each group: MAE's (p, q, c) order when
    FROM_IMAGE, else the plain chunked row; row vector k adds k·STEP (VEC, or PPP for a chunked row)."""
    if FROM_IMAGE:
        return (pi * P + q0) * C + m
    else:
        return g * VEC + m


@triton.jit
def _tsum(xs, C: tl.constexpr):
    """Σ over the C tensors [R, G, VEC] of each row -> [R, 1, 1]."""
    s = tl.sum(tl.sum(xs[0], 2), 1)
    for c in tl.static_range(1, C):
        s += tl.sum(tl.sum(xs[c], 2), 1)
    return s[:, None, None]


@triton.jit
def _patch_copy_kernel(
    img_ptr,            # image (B, C, H, W), any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    patch_ptr,          # patch rows (B, K, D), D = p·p·C, any strides
    patch_stride_b, patch_stride_k, patch_stride_d,
    ids_ptr,            # (B, K) int64 patch ids + ids_offset, read when HAS_IDS
    ids_stride_b, ids_stride_k, ids_offset,
    ROWS,               # rows of the tile: B·K patch rows, or B·L image patches (gather_patches' backward)
    K, L, grid_w,       # rows per sample, patches per image, patches per image row
    C: tl.constexpr, P: tl.constexpr, MAXVEC: tl.constexpr, PPP: tl.constexpr, R: tl.constexpr,
    BLOCK_K: tl.constexpr, IDX: tl.constexpr, HAS_IDS: tl.constexpr, TO_PATCHES: tl.constexpr,
):
    BITS: tl.constexpr = img_ptr.dtype.element_ty.primitive_bitwidth
    VEC: tl.constexpr = MAXVEC if MAXVEC * BITS <= 128 else 128 // BITS
    LOG2VEC: tl.constexpr = (VEC > 1) + (VEC > 2) + (VEC > 4) + (VEC > 8)
    G: tl.constexpr = PPP // VEC
    row, live, g, pi, q0, m, in_patch = _tile(ROWS, R, G, VEC, P, IDX)
    if PPP != P * P:  # p·p not a power of two: the padding groups idle
        live = live & in_patch
    sh = tl.cast(img_stride_h, IDX)
    sw = tl.cast(img_stride_w, IDX)
    sc = tl.cast(img_stride_c, IDX)
    sk = tl.cast(patch_stride_k, IDX)
    sd = tl.cast(patch_stride_d, IDX)
    run = _row_offsets(pi, q0, m, pi, C, VEC, P, True) * sd  # lane m of row vector 0 of each group
    if HAS_IDS and not TO_PATCHES:
        # gather_patches' backward: image patch l of sample b sums the gradient rows k with ids[b, k] = l
        ACC: tl.constexpr = tl.float64 if patch_ptr.dtype.element_ty == tl.float64 else tl.float32
        b = row // L
        l = row - b * L
        b64 = b.to(tl.int64)
        img_off = b64 * img_stride_b + _image_offsets(l, pi, q0, m, sh, sw, grid_w, P)
        live_row = tl.reshape(row < ROWS, [R, 1])
        b2 = tl.reshape(b64, [R, 1])
        l2 = tl.reshape(l, [R, 1]).to(tl.int64)
        ys = ()
        for k in tl.static_range(C):
            ys = ys + (tl.zeros([R, G, VEC], ACC),)
        kk = tl.arange(0, BLOCK_K)[None, :]  # all the sample's ids at once (BLOCK_K ≥ K)
        ids = tl.load(ids_ptr + b2 * ids_stride_b + kk.to(IDX) * tl.cast(ids_stride_k, IDX),
                      mask=live_row & (kk < K), other=-1)
        hit = (ids - ids_offset == l2) & live_row & (kk < K)  # an id out of [0, L) hits nothing
        todo = tl.max(tl.sum(hit.to(tl.int32), 1), 0)  # the most hits of a row of the tile (1 for MAE)
        prev = tl.full([R, 1], -1, tl.int32)
        while todo > 0:
            kt = tl.min(tl.where(hit & (kk > prev), kk, BLOCK_K), 1)  # each row's next hit; BLOCK_K: none left
            prev = kt[:, None]
            kt3 = tl.reshape(kt, [R, 1, 1])
            src = patch_ptr + b64 * patch_stride_b + kt3.to(IDX) * sk + run
            new = ()
            for k in tl.static_range(C):
                new = new + (ys[k] + tl.load(src + (k * VEC) * sd, mask=live & (kt3 < K), other=0).to(ACC),)
            ys = new
            todo -= 1
        xs = _to_channels(ys, C, R, G, VEC, LOG2VEC)
        for c in tl.static_range(C):
            tl.store(img_ptr + img_off + c * sc, xs[c].to(img_ptr.dtype.element_ty), mask=live)
    else:
        b = row // K
        k = row - b * K
        b64 = b.to(tl.int64)
        if HAS_IDS:
            patch = tl.load(ids_ptr + b64 * ids_stride_b + k * tl.cast(ids_stride_k, IDX), mask=row < ROWS,
                            other=-1) - ids_offset
            inside = (patch >= 0) & (patch < L)  # else a row of zeros, nothing read
            src_live = live & inside
            patch = tl.where(inside, patch, 0).to(IDX)
        else:
            patch = k
            src_live = live
        img_off = b64 * img_stride_b + _image_offsets(patch, pi, q0, m, sh, sw, grid_w, P)
        row_off = b64 * patch_stride_b + k * sk + run
        if TO_PATCHES:
            xs = ()
            for c in tl.static_range(C):
                xs = xs + (tl.load(img_ptr + img_off + c * sc, mask=src_live, other=0),)
            ys = _to_rows(xs, C, R, G, VEC, LOG2VEC)
            for k in tl.static_range(C):
                tl.store(patch_ptr + row_off + (k * VEC) * sd, ys[k], mask=live)
        else:
            ys = ()
            for k in tl.static_range(C):
                ys = ys + (tl.load(patch_ptr + row_off + (k * VEC) * sd, mask=live),)
            xs = _to_channels(ys, C, R, G, VEC, LOG2VEC)
            for c in tl.static_range(C):
                tl.store(img_ptr + img_off + c * sc, xs[c], mask=live)


def _pow2_floor(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def _tile_settings(ppp: int, maxvec: int, c: int, budget: int, widest: int) -> tuple[int, int]:
    """(R, num_warps) of the patch tile for rows of ppp positions (p·p pixels, padded to a power of
    two) × c (channels or chunks): R whole rows, about `budget` elements a program; warps so that a
    thread holds ~`per_thread` elements and even the widest vector (min(maxvec, `widest`) elements)
    leaves no thread without a group. Depends on shapes only (the element type picks VEC inside the
    kernel, so a bf16 launch is the fp32 one retyped)."""
    rows = _pow2_floor(max(1, budget // (ppp * c)))
    warps = min(_pow2_floor(max(1, rows * ppp * c // 24 // 32)),
                _pow2_floor(max(1, rows * ppp // min(maxvec, widest) // 32)), 16)
    return rows, warps


def _patch_settings(p: int, c: int, budget: int, widest: int) -> tuple[int, int, int, int]:
    """(R, PPP, MAXVEC, num_warps) for patch rows of p·p pixels × c channels."""
    ppp, maxvec = triton.next_power_of_2(p * p), min(p & -p, 16)
    rows, warps = _tile_settings(ppp, maxvec, c, budget, widest)
    return rows, ppp, maxvec, warps


def _extent(t: torch.Tensor, dims) -> int:
    """The largest offset inside one sample of t along `dims`: Σ (size − 1)·|stride|."""
    return sum((t.shape[d] - 1) * abs(t.stride(d)) for d in dims if t.shape[d] > 0)


def _index_type(rows: int, *extents: int):
    """int32 when the tile's row numbers (+ one program's rows) and every in-sample offset fit below
    2^31 (then no int32 product in the kernels can overflow: each is bounded by an extent), else int64."""
    limit = 2 ** 31 - 1 - 65536
    return tl.int32 if rows < limit and all(e < limit for e in extents) else tl.int64


def _loadable(t: torch.Tensor) -> torch.Tensor:
    """bool tensors as uint8 (same bytes, any strides): Triton would make a bool pointer int1."""
    return t.view(torch.uint8) if t.dtype == torch.bool else t


# the elements one program of a copy holds (R·p·p·C: 4 rows at p = 16, C = 3, 24 a thread at 4 warps;
# 8 rows spilled 16 bytes in unpatchify fp32)
COPY_BUDGET = 3072


def patch_copy(img: torch.Tensor, patches: torch.Tensor, patch_size: int, ids: torch.Tensor | None,
               to_patches: bool, ids_offset: int = 0) -> None:
    """Copy between `img` (B, C, H, W) and `patches` (B, K, p·p·C), in place in the destination;
    row k of sample b is patch ids[b, k] − ids_offset when ids are given (zeros for an id outside
    [0, L)). ids with to_patches=False: gather_patches' backward, which writes all of img (the
    sum of the rows whose id names each patch; zero where none does)."""
    b, c, h, width = img.shape
    k, d = patches.shape[1], patches.shape[2]
    length = (h // patch_size) * (width // patch_size)
    search = ids is not None and not to_patches
    rows = b * (length if search else k)
    if rows == 0 or d == 0:
        return
    # warps by the vector of this dtype (16 bytes); a bf16 launch gets the fp32 one's (no idle lane either way)
    r, ppp, maxvec, num_warps = _patch_settings(patch_size, c, COPY_BUDGET, 16 // max(img.element_size(), 1))
    ids_arg = ids if ids is not None else patches  # never read when HAS_IDS is False
    ids_strides = ids.stride() if ids is not None else (0, 0)
    idx = _index_type(rows, _extent(img, (1, 2, 3)), _extent(patches, (1, 2)),
                      _extent(ids, (1,)) if ids is not None else 0)
    block_k = triton.next_power_of_2(max(k, 1)) if search else 1
    if search:  # the tile's [R, BLOCK_K] ids: R fewer rows for long id lists (K > 512 at p = 16)
        r = max(1, min(r, 2048 // block_k))
    img, patches = _loadable(img), _loadable(patches)
    triton_launch(_patch_copy_kernel)[(triton.cdiv(rows, r),)](
        img, *img.stride(), patches, *patches.stride(), ids_arg, *ids_strides, ids_offset,
        rows, k, length, width // patch_size,
        C=c, P=patch_size, MAXVEC=maxvec, PPP=ppp, R=r, BLOCK_K=block_k, IDX=idx,
        HAS_IDS=ids is not None, TO_PATCHES=to_patches, num_warps=num_warps,
    )


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) any strides -> (B, L, p·p·C) in imgs.dtype, contiguous."""
    b, c, h, w = imgs.shape
    out = imgs.new_empty((b, (h // patch_size) * (w // patch_size), patch_size * patch_size * c))
    patch_copy(imgs, out, patch_size, None, to_patches=True)
    return out


def patchify_backward(grad: torch.Tensor, imgs: torch.Tensor, patch_size: int, needs: list[bool]) -> list[torch.Tensor]:
    """[∂/∂imgs] = [unpatchify(grad)]; imgs is the library's stand-in, read for its shape only."""
    _, c, h, w = imgs.shape
    return [unpatchify(grad, patch_size, c, h, w)]


def unpatchify(x: torch.Tensor, patch_size: int, channels: int, height: int, width: int) -> torch.Tensor:
    """(B, L, p·p·C) any strides -> (B, C, H, W) in x.dtype, contiguous."""
    out = x.new_empty((x.shape[0], channels, height, width))
    patch_copy(out, x, patch_size, None, to_patches=False)
    return out


def unpatchify_backward(grad: torch.Tensor, x: torch.Tensor, patch_size: int, channels: int, height: int,
                        width: int, needs: list[bool]) -> list[torch.Tensor]:
    """[∂/∂x] = [patchify(grad)]; x is not read."""
    return [patchify(grad, patch_size)]


def gather_patches(imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int,
                   num_prefix_tokens: int = 0) -> torch.Tensor:
    """The masking family's gather_patches: (B, C, H, W) -> (B, K, p·p·C), row k = patch ids_keep[b, k] −
    num_prefix_tokens; a row of zeros where that is outside [0, L) (pixel SPEC.md §1)."""
    b, c = imgs.shape[:2]
    out = imgs.new_empty((b, ids_keep.shape[1], patch_size * patch_size * c))
    patch_copy(imgs, out, patch_size, ids_keep, to_patches=True, ids_offset=num_prefix_tokens)
    return out


def gather_patches_backward(grad: torch.Tensor, imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int,
                            num_prefix_tokens: int, needs: list[bool]) -> list[torch.Tensor]:
    """[∂/∂imgs]: each image patch the sum of the gradient rows whose id names it (duplicates add up, in
    ascending k; zero where none does; rows with ids out of range dropped). imgs is read for its shape only."""
    out = grad.new_empty((grad.shape[0], *imgs.shape[1:]))
    if out.numel() and grad.shape[2] == 0:
        out.zero_()
    patch_copy(out, grad, patch_size, ids_keep, to_patches=False, ids_offset=num_prefix_tokens)
    return [out]


# ---- per-patch normalized target and masked losses ------------------------------------------------

# The largest patch row one program holds in registers (p = 64 at C = 3 fits); larger rows take the
# torch backend (the front door decides).
MAX_PATCH_ELEMENTS = 16384
# the elements one program of a loss / target kernel holds (4 rows at p = 16, C = 3; 24 a thread)
LOSS_BUDGET = 3072


@triton.jit
def _load_rows(ptr, base, run, live, sd, C: tl.constexpr, VEC: tl.constexpr, ACC: tl.constexpr):
    """The C row vectors of a tile of patch rows, in ACC, zero where not live."""
    ys = ()
    for k in tl.static_range(C):
        ys = ys + (tl.load(ptr + base + run + (k * VEC) * sd, mask=live, other=0.0).to(ACC),)
    return ys


@triton.jit
def _store_rows(ptr, base, run, live, sd, ys, C: tl.constexpr, VEC: tl.constexpr):
    for k in tl.static_range(C):
        tl.store(ptr + base + run + (k * VEC) * sd, ys[k].to(ptr.dtype.element_ty), mask=live)


@triton.jit
def _normalize(ts, live, D: tl.constexpr, C: tl.constexpr, eps):
    """(t = (x − μ)/s per row, s = √(Σ(x − μ)²/(D − 1) + eps)) of the C row vectors, zero where not live."""
    mean = _tsum(ts, C) / D
    us = ()
    for k in tl.static_range(C):
        us = us + (tl.where(live, ts[k] - mean, 0.0),)
    sq = ()
    for k in tl.static_range(C):
        sq = sq + (us[k] * us[k],)
    std = tl.sqrt(_tsum(sq, C) / (D - 1) + eps)
    out = ()
    for k in tl.static_range(C):
        out = out + (us[k] / std,)
    return out, std


@triton.jit
def _norm_backward(gs, ts, std, live, D: tl.constexpr, C: tl.constexpr):
    """Gradient w.r.t. the patch pixels of t = (x − μ) / √(var + eps), given g_t (row vectors)."""
    g0 = ()
    gt = ()
    for k in tl.static_range(C):
        g = tl.where(live, gs[k], 0.0)
        g0 = g0 + (g,)
        gt = gt + (g * ts[k],)
    mean_g = _tsum(g0, C) / D
    dot = _tsum(gt, C) / (D - 1)
    out = ()
    for k in tl.static_range(C):
        out = out + ((g0[k] - mean_g - ts[k] * dot) / std,)
    return out


@triton.jit
def _patch_norm_target_kernel(
    out_ptr,            # (B, L, D) imgs.dtype, any strides
    out_stride_b, out_stride_l, out_stride_d,
    img_ptr,            # (B, C, H, W) any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    ROWS, L, grid_w, eps,
    C: tl.constexpr, P: tl.constexpr, MAXVEC: tl.constexpr, PPP: tl.constexpr, R: tl.constexpr,
    IDX: tl.constexpr, ACC: tl.constexpr,
):
    BITS: tl.constexpr = img_ptr.dtype.element_ty.primitive_bitwidth
    VEC: tl.constexpr = MAXVEC if MAXVEC * BITS <= 128 else 128 // BITS
    LOG2VEC: tl.constexpr = (VEC > 1) + (VEC > 2) + (VEC > 4) + (VEC > 8)
    G: tl.constexpr = PPP // VEC
    D: tl.constexpr = P * P * C
    row, live, g, pi, q0, m, in_patch = _tile(ROWS, R, G, VEC, P, IDX)
    if PPP != P * P:
        live = live & in_patch
    b = row // L
    l = row - b * L
    b64 = b.to(tl.int64)
    img_off = b64 * img_stride_b + _image_offsets(l, pi, q0, m, tl.cast(img_stride_h, IDX),
                                                  tl.cast(img_stride_w, IDX), grid_w, P)
    xs = ()
    for c in tl.static_range(C):
        xs = xs + (tl.load(img_ptr + img_off + c * tl.cast(img_stride_c, IDX), mask=live, other=0.0).to(ACC),)
    ts, _ = _normalize(_to_rows(xs, C, R, G, VEC, LOG2VEC), live, D, C, eps)
    sd = tl.cast(out_stride_d, IDX)
    _store_rows(out_ptr, b64 * out_stride_b + l * tl.cast(out_stride_l, IDX), _row_offsets(pi, q0, m, pi, C, VEC, P, True) * sd,
                live, sd, ts, C, VEC)


# The tile prologue of _patch_norm_target_kernel, written out again: a jit helper that took img_ptr would make
# torch's store analysis (torch.compile's functionalization of triton_op launches) count img_ptr as written.
@triton.jit
def _patch_norm_target_bwd_kernel(
    grad_img_ptr,       # (B, C, H, W) imgs.dtype, any strides, written
    gi_stride_b, gi_stride_c, gi_stride_h, gi_stride_w,
    grad_ptr,           # (B, L, D) upstream gradient, any strides
    grad_stride_b, grad_stride_l, grad_stride_d,
    img_ptr,            # (B, C, H, W) any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    ROWS, L, grid_w, eps,
    C: tl.constexpr, P: tl.constexpr, MAXVEC: tl.constexpr, PPP: tl.constexpr, R: tl.constexpr,
    IDX: tl.constexpr, ACC: tl.constexpr,
):
    BITS: tl.constexpr = img_ptr.dtype.element_ty.primitive_bitwidth
    VEC: tl.constexpr = MAXVEC if MAXVEC * BITS <= 128 else 128 // BITS
    LOG2VEC: tl.constexpr = (VEC > 1) + (VEC > 2) + (VEC > 4) + (VEC > 8)
    G: tl.constexpr = PPP // VEC
    D: tl.constexpr = P * P * C
    row, live, g, pi, q0, m, in_patch = _tile(ROWS, R, G, VEC, P, IDX)
    if PPP != P * P:
        live = live & in_patch
    b = row // L
    l = row - b * L
    b64 = b.to(tl.int64)
    img_off = b64 * img_stride_b + _image_offsets(l, pi, q0, m, tl.cast(img_stride_h, IDX),
                                                  tl.cast(img_stride_w, IDX), grid_w, P)
    xs = ()
    for c in tl.static_range(C):
        xs = xs + (tl.load(img_ptr + img_off + c * tl.cast(img_stride_c, IDX), mask=live, other=0.0).to(ACC),)
    ts, std = _normalize(_to_rows(xs, C, R, G, VEC, LOG2VEC), live, D, C, eps)
    sd = tl.cast(grad_stride_d, IDX)
    gs = _load_rows(grad_ptr, b64 * grad_stride_b + l * tl.cast(grad_stride_l, IDX),
                    _row_offsets(pi, q0, m, pi, C, VEC, P, True) * sd, live, sd, C, VEC, ACC)
    gx = _to_channels(_norm_backward(gs, ts, std, live, D, C), C, R, G, VEC, LOG2VEC)
    out_off = b64 * gi_stride_b + _image_offsets(l, pi, q0, m, tl.cast(gi_stride_h, IDX), tl.cast(gi_stride_w, IDX),
                                                 grid_w, P)
    for c in tl.static_range(C):
        tl.store(grad_img_ptr + out_off + c * tl.cast(gi_stride_c, IDX), gx[c].to(grad_img_ptr.dtype.element_ty),
                 mask=live)


@triton.jit
def _load_target(tgt_ptr, s0, s1, s2, s3, b64, l, pi, q0, m, g, live, grid_w, eps,
                 C: tl.constexpr, P: tl.constexpr, R: tl.constexpr, G: tl.constexpr, VEC: tl.constexpr,
                 LOG2VEC: tl.constexpr, D: tl.constexpr, IDX: tl.constexpr, FROM_IMAGE: tl.constexpr,
                 NORM: tl.constexpr, ACC: tl.constexpr):
    """The target's row vectors of the tile in ACC (zero where not live), normalized per row when NORM,
    and each row's s (1 without NORM). Image (B, C, H, W) strides s0..s3 when FROM_IMAGE, else rows
    (B, L, D) strides s0..s2."""
    if FROM_IMAGE:
        off = b64 * s0 + _image_offsets(l, pi, q0, m, tl.cast(s2, IDX), tl.cast(s3, IDX), grid_w, P)
        xs = ()
        for c in tl.static_range(C):
            xs = xs + (tl.load(tgt_ptr + off + c * tl.cast(s1, IDX), mask=live, other=0.0).to(ACC),)
        ts = _to_rows(xs, C, R, G, VEC, LOG2VEC)
    else:
        sd = tl.cast(s2, IDX)
        ts = _load_rows(tgt_ptr, b64 * s0 + l * tl.cast(s1, IDX), _row_offsets(pi, q0, m, g, C, VEC, P, False) * sd,
                        live, sd, C, VEC * G, ACC)
    std = tl.full([R, 1, 1], 1.0, ACC)
    if NORM:
        ts, std = _normalize(ts, live, D, C, eps)
    return ts, std


@triton.jit
def _masked_mse_fwd_kernel(
    part_ptr,           # (B·L,) ACC: m_bl · mean_d (pred − target)²
    pred_ptr,           # (B, L, D) any strides
    pred_stride_b, pred_stride_l, pred_stride_d,
    tgt_ptr,            # image (B, C, H, W) when FROM_IMAGE, else rows (B, L, D); any strides
    tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3,
    mask_ptr,           # (B, L) any numeric dtype, 1 = masked
    mask_stride_b, mask_stride_l,
    ROWS, L, grid_w, eps,
    C: tl.constexpr, P: tl.constexpr, D: tl.constexpr, MAXVEC: tl.constexpr, PPP: tl.constexpr,
    R: tl.constexpr, IDX: tl.constexpr, FROM_IMAGE: tl.constexpr, NORM: tl.constexpr, ACC: tl.constexpr,
):
    # FROM_IMAGE: C channels of p·p pixels; else the row in C chunks of PPP (P = PPP: one "pixel row")
    BITS: tl.constexpr = pred_ptr.dtype.element_ty.primitive_bitwidth
    VEC: tl.constexpr = MAXVEC if MAXVEC * BITS <= 128 else 128 // BITS
    LOG2VEC: tl.constexpr = (VEC > 1) + (VEC > 2) + (VEC > 4) + (VEC > 8)
    G: tl.constexpr = PPP // VEC
    STEP: tl.constexpr = VEC if FROM_IMAGE else PPP  # from one row vector to the next
    row, live, g, pi, q0, m, in_patch = _tile(ROWS, R, G, VEC, P, IDX)
    if FROM_IMAGE:
        if PPP != P * P:
            live = live & in_patch
    elif C * PPP != D:  # one chunk padded to a power of two
        live = live & (g * VEC + m < D)
    b = row // L
    l = row - b * L
    b64 = b.to(tl.int64)
    ts, _ = _load_target(tgt_ptr, tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3, b64, l, pi, q0, m, g,
                         live, grid_w, eps, C, P, R, G, VEC, LOG2VEC, D, IDX, FROM_IMAGE, NORM, ACC)
    sd = tl.cast(pred_stride_d, IDX)
    xs = _load_rows(pred_ptr, b64 * pred_stride_b + l * tl.cast(pred_stride_l, IDX),
                    _row_offsets(pi, q0, m, g, C, VEC, P, FROM_IMAGE) * sd, live, sd, C, STEP, ACC)
    sq = ()
    for k in tl.static_range(C):
        diff = tl.where(live, xs[k] - ts[k], 0.0)
        sq = sq + (diff * diff,)
    mk = tl.load(mask_ptr + b64 * mask_stride_b + l * tl.cast(mask_stride_l, IDX), mask=row < ROWS, other=0).to(ACC)
    tl.store(part_ptr + row, mk * (_tsum(sq, C) / D), mask=row < ROWS)


@triton.jit
def _masked_mse_bwd_kernel(
    grad_pred_ptr,      # (B, L, D) pred.dtype, any strides; written when NEED_PRED
    gp_stride_b, gp_stride_l, gp_stride_d,
    grad_tgt_ptr,       # target.dtype, the target's shape, any strides; written when NEED_TARGET
    gt_stride_0, gt_stride_1, gt_stride_2, gt_stride_3,
    scale_ptr,          # 0-d ACC: 2 · grad / (D · Σ m)
    pred_ptr,
    pred_stride_b, pred_stride_l, pred_stride_d,
    tgt_ptr,
    tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3,
    mask_ptr,
    mask_stride_b, mask_stride_l,
    ROWS, L, grid_w, eps,
    C: tl.constexpr, P: tl.constexpr, D: tl.constexpr, MAXVEC: tl.constexpr, PPP: tl.constexpr,
    R: tl.constexpr, IDX: tl.constexpr, FROM_IMAGE: tl.constexpr, NORM: tl.constexpr, NEED_PRED: tl.constexpr,
    NEED_TARGET: tl.constexpr, ACC: tl.constexpr,
):
    BITS: tl.constexpr = pred_ptr.dtype.element_ty.primitive_bitwidth
    VEC: tl.constexpr = MAXVEC if MAXVEC * BITS <= 128 else 128 // BITS
    LOG2VEC: tl.constexpr = (VEC > 1) + (VEC > 2) + (VEC > 4) + (VEC > 8)
    G: tl.constexpr = PPP // VEC
    STEP: tl.constexpr = VEC if FROM_IMAGE else PPP
    row, live, g, pi, q0, m, in_patch = _tile(ROWS, R, G, VEC, P, IDX)
    if FROM_IMAGE:
        if PPP != P * P:
            live = live & in_patch
    elif C * PPP != D:
        live = live & (g * VEC + m < D)
    b = row // L
    l = row - b * L
    b64 = b.to(tl.int64)
    ts, std = _load_target(tgt_ptr, tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3, b64, l, pi, q0, m, g,
                           live, grid_w, eps, C, P, R, G, VEC, LOG2VEC, D, IDX, FROM_IMAGE, NORM, ACC)
    run = _row_offsets(pi, q0, m, g, C, VEC, P, FROM_IMAGE)
    sd = tl.cast(pred_stride_d, IDX)
    xs = _load_rows(pred_ptr, b64 * pred_stride_b + l * tl.cast(pred_stride_l, IDX), run * sd, live, sd, C, STEP,
                    ACC)
    mk = tl.load(mask_ptr + b64 * mask_stride_b + l * tl.cast(mask_stride_l, IDX), mask=row < ROWS, other=0).to(ACC)
    factor = tl.load(scale_ptr) * mk
    gs = ()
    for k in tl.static_range(C):
        gs = gs + (factor * (xs[k] - ts[k]),)  # ∂loss/∂pred; NaN for an empty mask, as autograd
    if NEED_PRED:
        gd = tl.cast(gp_stride_d, IDX)
        _store_rows(grad_pred_ptr, b64 * gp_stride_b + l * tl.cast(gp_stride_l, IDX), run * gd, live, gd, gs, C, STEP)
    if NEED_TARGET:
        neg = ()
        for k in tl.static_range(C):
            neg = neg + (-gs[k],)
        if NORM:
            neg = _norm_backward(neg, ts, std, live, D, C)
        if FROM_IMAGE:
            xs_t = _to_channels(neg, C, R, G, VEC, LOG2VEC)
            off = b64 * gt_stride_0 + _image_offsets(l, pi, q0, m, tl.cast(gt_stride_2, IDX),
                                                     tl.cast(gt_stride_3, IDX), grid_w, P)
            for c in tl.static_range(C):
                tl.store(grad_tgt_ptr + off + c * tl.cast(gt_stride_1, IDX),
                         xs_t[c].to(grad_tgt_ptr.dtype.element_ty), mask=live)
        else:
            td = tl.cast(gt_stride_2, IDX)
            _store_rows(grad_tgt_ptr, b64 * gt_stride_0 + l * tl.cast(gt_stride_1, IDX), run * td, live, td, neg, C,
                        STEP)


@triton.jit
def _l1_tile(C, H, W, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """This program's BLOCK_H × BLOCK_W tile of plane (b, c): (plane = b·C + c, b, c, rows y (BLOCK_H, 1),
    columns x (1, BLOCK_W), the in-image flag), all int64. No pointers in, so that torch's analysis of the
    kernel (triton_op under torch.compile) sees which tensors each store writes."""
    plane = tl.program_id(0).to(tl.int64)
    y = tl.program_id(1).to(tl.int64) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    x = tl.program_id(2).to(tl.int64) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    return plane, plane // C, plane % C, y, x, (y < H) & (x < W)


@triton.jit
def _l1_diff(xr_ptr, xr_stride_b, xr_stride_c, xr_stride_h, xr_stride_w,
             img_ptr, img_stride_b, img_stride_c, img_stride_h, img_stride_w,
             mask_ptr, mask_stride_b, mask_stride_h, mask_stride_w,
             b, c, y, x, inside, cell, ACC: tl.constexpr):
    """(x_rec − imgs in ACC, the mask weight of each pixel read at (y // cell, x // cell)) on a tile."""
    xr = tl.load(xr_ptr + b * xr_stride_b + c * xr_stride_c + y * xr_stride_h + x * xr_stride_w, mask=inside,
                 other=0.0)
    xi = tl.load(img_ptr + b * img_stride_b + c * img_stride_c + y * img_stride_h + x * img_stride_w,
                 mask=inside, other=0.0)
    m = tl.load(mask_ptr + b * mask_stride_b + (y // cell) * mask_stride_h + (x // cell) * mask_stride_w,
                mask=inside, other=0).to(ACC)
    return xr.to(ACC) - xi.to(ACC), m


@triton.jit
def _masked_l1_fwd_kernel(
    part_ptr,           # (B·C, cdiv(H, BLOCK_H), cdiv(W, BLOCK_W)) ACC: Σ m · |x_rec − imgs| over each tile
    xr_ptr,             # x_rec (B, C, H, W) any strides
    xr_stride_b, xr_stride_c, xr_stride_h, xr_stride_w,
    img_ptr,            # imgs (B, C, H, W) any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    mask_ptr,           # (B, h, w) any numeric dtype, 1 = masked
    mask_stride_b, mask_stride_h, mask_stride_w,
    C, H, W, cell,      # cell: pixels per mask cell along each axis (H / h)
    ACC: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    _, b, c, y, x, inside = _l1_tile(C, H, W, BLOCK_H, BLOCK_W)
    diff, m = _l1_diff(xr_ptr, xr_stride_b, xr_stride_c, xr_stride_h, xr_stride_w,
                       img_ptr, img_stride_b, img_stride_c, img_stride_h, img_stride_w,
                       mask_ptr, mask_stride_b, mask_stride_h, mask_stride_w, b, c, y, x, inside, cell, ACC)
    tile = (tl.program_id(0).to(tl.int64) * tl.num_programs(1) + tl.program_id(1)) * tl.num_programs(2) \
        + tl.program_id(2)
    tl.store(part_ptr + tile, tl.sum(tl.sum(m * tl.abs(diff), 1), 0))


@triton.jit
def _masked_l1_bwd_kernel(
    grad_xr_ptr,        # (B, C, H, W) contiguous, x_rec.dtype; written when NEED_XREC
    grad_img_ptr,       # (B, C, H, W) contiguous, imgs.dtype; written when NEED_IMGS
    scale_ptr,          # 0-d ACC: grad / (count + 1e-5) / in_chans
    xr_ptr,
    xr_stride_b, xr_stride_c, xr_stride_h, xr_stride_w,
    img_ptr,
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    mask_ptr,
    mask_stride_b, mask_stride_h, mask_stride_w,
    C, H, W, cell,
    NEED_XREC: tl.constexpr, NEED_IMGS: tl.constexpr, ACC: tl.constexpr, BLOCK_H: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    plane, b, c, y, x, inside = _l1_tile(C, H, W, BLOCK_H, BLOCK_W)
    diff, m = _l1_diff(xr_ptr, xr_stride_b, xr_stride_c, xr_stride_h, xr_stride_w,
                       img_ptr, img_stride_b, img_stride_c, img_stride_h, img_stride_w,
                       mask_ptr, mask_stride_b, mask_stride_h, mask_stride_w, b, c, y, x, inside, cell, ACC)
    out = plane * H * W + y * W + x  # the pixel's offset in a contiguous image
    sign = tl.where(diff > 0, 1.0, tl.where(diff < 0, -1.0, 0.0)).to(ACC)  # sign(0) = 0, as abs' backward
    g = (tl.load(scale_ptr) * m) * sign
    if NEED_XREC:
        tl.store(grad_xr_ptr + out, g.to(grad_xr_ptr.dtype.element_ty), mask=inside)
    if NEED_IMGS:
        tl.store(grad_img_ptr + out, (-g).to(grad_img_ptr.dtype.element_ty), mask=inside)




def _acc_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


_TL_ACC = {torch.float32: tl.float32, torch.float64: tl.float64}


def _loadable_mask(mask: torch.Tensor) -> torch.Tensor:
    """bool masks as uint8 (same bytes, any strides); other dtypes as they are."""
    return _loadable(mask)


def _mask_sum(mask: torch.Tensor, acc: torch.dtype) -> torch.Tensor:
    """Σ mask: exact int64 for bool/integer masks, acc for floating ones."""
    return mask.sum(dtype=acc if mask.is_floating_point() else torch.int64)


def _strides(t: torch.Tensor, n: int) -> tuple[int, ...]:
    """t's strides padded to n (0 for an unused tensor)."""
    return (tuple(t.stride()) + (0,) * n)[:n] if t.dim() == n or t.numel() else (0,) * n


def _mse_geometry(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch_size: int,
                  from_image: bool, *grads: torch.Tensor) -> dict:
    """The MSE kernels' tile constants (C, P, D, MAXVEC, PPP, R, IDX, num_warps) and grid_w.
    FROM_IMAGE: C channels of p·p pixels. Rows: D = C chunks of PPP, PPP the largest power of two
    dividing D when that leaves at most 16 chunks, else one chunk of D padded to a power of two."""
    b, length, d = pred.shape
    if from_image:
        c, p, grid_w = target.shape[1], patch_size, target.shape[3] // patch_size
        r, ppp, maxvec, num_warps = _patch_settings(p, c, LOSS_BUDGET, 8)
        extents = [_extent(target, (1, 2, 3))]
    else:
        ppp = d & -d
        c = d // ppp
        if c > 16:
            c, ppp = 1, triton.next_power_of_2(d)
        p, grid_w, maxvec = ppp, 1, min(d & -d, 16)
        r, num_warps = _tile_settings(ppp, maxvec, c, LOSS_BUDGET, 8)
        extents = [_extent(target, (1, 2))]
    extents += [_extent(pred, (1, 2)), _extent(mask, (1,))] + [_extent(g, range(1, g.dim())) for g in grads if g.numel()]
    return dict(C=c, P=p, D=d, MAXVEC=maxvec, PPP=ppp, R=r, IDX=_index_type(b * length, *extents),
                num_warps=num_warps), grid_w


def patch_norm_target(imgs: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
    """(B, C, H, W) any strides -> (B, L, p·p·C) in imgs.dtype, per-patch normalized (statistics in ACC)."""
    b, c, h, w = imgs.shape
    length, d = (h // patch_size) * (w // patch_size), patch_size * patch_size * c
    out = torch.empty((b, length, d), dtype=imgs.dtype, device=imgs.device)
    if out.numel() == 0:
        return out
    r, ppp, maxvec, num_warps = _patch_settings(patch_size, c, LOSS_BUDGET, 8)
    idx = _index_type(b * length, _extent(imgs, (1, 2, 3)), _extent(out, (1, 2)))
    triton_launch(_patch_norm_target_kernel)[(triton.cdiv(b * length, r),)](
        out, *out.stride(), imgs, *imgs.stride(), b * length, length, w // patch_size, eps,
        C=c, P=patch_size, MAXVEC=maxvec, PPP=ppp, R=r, IDX=idx, ACC=_TL_ACC[_acc_dtype(imgs)],
        num_warps=num_warps)
    return out


def patch_norm_target_backward(grad: torch.Tensor, imgs: torch.Tensor, patch_size: int, eps: float,
                               needs: list[bool]) -> list[torch.Tensor]:
    """[grad_imgs (B, C, H, W) contiguous, imgs.dtype] from grad (B, L, p·p·C); the target is recomputed."""
    b, c, h, w = imgs.shape
    length = grad.shape[1]
    grad_imgs = torch.empty((b, c, h, w), dtype=imgs.dtype, device=imgs.device)
    if grad_imgs.numel() == 0:
        return [grad_imgs]
    r, ppp, maxvec, num_warps = _patch_settings(patch_size, c, LOSS_BUDGET, 8)
    idx = _index_type(b * length, _extent(imgs, (1, 2, 3)), _extent(grad, (1, 2)), _extent(grad_imgs, (1, 2, 3)))
    triton_launch(_patch_norm_target_bwd_kernel)[(triton.cdiv(b * length, r),)](
        grad_imgs, *grad_imgs.stride(), grad, *grad.stride(), imgs, *imgs.stride(), b * length, length,
        w // patch_size, eps, C=c, P=patch_size, MAXVEC=maxvec, PPP=ppp, R=r, IDX=idx,
        ACC=_TL_ACC[_acc_dtype(imgs, grad)], num_warps=num_warps)
    return [grad_imgs]


def _mse_forward(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch_size: int, from_image: bool,
                 norm: bool, eps: float) -> torch.Tensor:
    """Σ m_bl · mean_d (pred − target)²_bld / Σ m_bl, a 0-d ACC tensor (one partial per row, summed here)."""
    b, length, _ = pred.shape
    acc = _acc_dtype(pred, target)
    partial = pred.new_empty(b * length, dtype=acc)
    if pred.shape[2] == 0:  # the mean over an empty row: NaN, as the reference
        partial.fill_(float("nan"))
    elif partial.numel():
        mask_l = _loadable_mask(mask)
        options, grid_w = _mse_geometry(pred, target, mask, patch_size, from_image)
        triton_launch(_masked_mse_fwd_kernel)[(triton.cdiv(b * length, options["R"]),)](
            partial, pred, *pred.stride(), target, *_strides(target, 4), mask_l, *mask_l.stride(),
            b * length, length, grid_w, eps, FROM_IMAGE=from_image, NORM=norm, ACC=_TL_ACC[acc], **options)
    return partial.sum() / _mask_sum(mask, partial.dtype).to(partial.dtype)


def _mse_backward(grad: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  needs: list[bool], patch_size: int, from_image: bool, norm: bool, eps: float) -> list[torch.Tensor]:
    """[grad_pred, grad_target], contiguous in their inputs' dtypes, empty where not needed."""
    b, length, d = pred.shape
    acc = _acc_dtype(pred, target)
    grads = [torch.empty(t.shape if need else (0,), dtype=t.dtype, device=t.device)
             for t, need in zip((pred, target), needs)]
    if b * length * d == 0 or not any(needs):
        return grads
    scale = (2.0 * grad.to(acc)) / (d * _mask_sum(mask, acc).to(acc))
    mask_l = _loadable_mask(mask)
    options, grid_w = _mse_geometry(pred, target, mask, patch_size, from_image, *grads)
    triton_launch(_masked_mse_bwd_kernel)[(triton.cdiv(b * length, options["R"]),)](
        grads[0], *_strides(grads[0], 3), grads[1], *_strides(grads[1], 4), scale, pred, *pred.stride(),
        target, *_strides(target, 4), mask_l, *mask_l.stride(), b * length, length, grid_w, eps,
        FROM_IMAGE=from_image, NORM=norm, NEED_PRED=needs[0], NEED_TARGET=needs[1], ACC=_TL_ACC[acc], **options)
    return grads


def masked_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ m_bl · mean_d (pred − target)²_bld / Σ m_bl, a 0-d ACC tensor; target rows (B, L, D) any strides.
    Empty mask: 0/0 = NaN."""
    return _mse_forward(pred, target, mask, 1, False, False, 0.0)


def masked_mse_loss_backward(grad: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                             needs: list[bool]) -> list[torch.Tensor]:
    """[grad_pred, grad_target = −grad_pred] for the upstream 0-d grad; one not needed is empty."""
    return _mse_backward(grad, pred, target, mask, needs, 1, False, False, 0.0)


def norm_pix_mse_loss(pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, patch_size: int, norm_pix: bool,
                      eps: float) -> torch.Tensor:
    """MAE's forward_loss, a 0-d ACC tensor: the target rows are read from the image (B, C, H, W, any
    strides) patch by patch and normalized per patch when norm_pix; never patchified in memory."""
    return _mse_forward(pred, imgs, mask, patch_size, True, norm_pix, eps)


def norm_pix_mse_loss_backward(grad: torch.Tensor, pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor,
                               patch_size: int, norm_pix: bool, eps: float, needs: list[bool]) -> list[torch.Tensor]:
    """[grad_pred, grad_imgs (B, C, H, W), through the normalization]; the target is recomputed from imgs."""
    return _mse_backward(grad, pred, imgs, mask, needs, patch_size, True, norm_pix, eps)


def _l1_settings(imgs: torch.Tensor) -> tuple[tuple[int, int, int], int, int, int]:
    """(grid, BLOCK_H, BLOCK_W, num_warps): tiles of up to 4096 pixels of one (b, c) plane."""
    b, c, h, w = imgs.shape
    block_w = min(triton.next_power_of_2(w), 1024)
    block_h = min(triton.next_power_of_2(h), max(1, 4096 // block_w))
    _, num_warps = block_settings(block_h * block_w)
    return (b * c, triton.cdiv(h, block_h), triton.cdiv(w, block_w)), block_h, block_w, num_warps


def _l1_denominator(mask: torch.Tensor, cell: int, acc: torch.dtype) -> torch.Tensor:
    """SimMIM's mask_up.sum() + 1e-5: masked pixels counted once (not × C), in ACC."""
    return (_mask_sum(mask, acc) * (cell * cell)).to(acc) + 1e-5


def masked_l1_loss(x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, in_chans: int) -> torch.Tensor:
    """SimMIM's loss, a 0-d ACC tensor: Σ m·|x_rec − imgs| / (p²·Σ mask + 1e-5) / in_chans."""
    acc = _acc_dtype(x_rec, imgs)
    cell = imgs.shape[2] // mask.shape[1]
    grid, block_h, block_w, num_warps = _l1_settings(imgs)
    partial = torch.empty(grid, dtype=acc, device=imgs.device)
    if partial.numel():
        loadable = _loadable_mask(mask)
        triton_launch(_masked_l1_fwd_kernel)[grid](
            partial, x_rec, *x_rec.stride(), imgs, *imgs.stride(), loadable, *loadable.stride(),
            imgs.shape[1], imgs.shape[2], imgs.shape[3], cell, ACC=_TL_ACC[acc], BLOCK_H=block_h,
            BLOCK_W=block_w, num_warps=num_warps)
    return partial.sum() / _l1_denominator(mask, cell, acc) / in_chans


def masked_l1_loss_backward(grad: torch.Tensor, x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor,
                            in_chans: int, needs: list[bool]) -> list[torch.Tensor]:
    """[grad_x_rec, grad_imgs = −grad_x_rec], contiguous, in their inputs' dtypes; one not needed is empty."""
    need_x_rec, need_imgs = needs
    acc = _acc_dtype(x_rec, imgs)
    cell = imgs.shape[2] // mask.shape[1]
    grad_xr = torch.empty(x_rec.shape if need_x_rec else (0,), dtype=x_rec.dtype, device=x_rec.device)
    grad_imgs = torch.empty(imgs.shape if need_imgs else (0,), dtype=imgs.dtype, device=imgs.device)
    if imgs.numel() == 0 or not (need_x_rec or need_imgs):
        return [grad_xr, grad_imgs]
    scale = grad.to(acc) / _l1_denominator(mask, cell, acc) / in_chans
    grid, block_h, block_w, num_warps = _l1_settings(imgs)
    loadable = _loadable_mask(mask)
    triton_launch(_masked_l1_bwd_kernel)[grid](
        grad_xr, grad_imgs, scale, x_rec, *x_rec.stride(), imgs, *imgs.stride(), loadable, *loadable.stride(),
        imgs.shape[1], imgs.shape[2], imgs.shape[3], cell, NEED_XREC=need_x_rec, NEED_IMGS=need_imgs,
        ACC=_TL_ACC[acc], BLOCK_H=block_h, BLOCK_W=block_w, num_warps=num_warps)
    return [grad_xr, grad_imgs]
