"""Triton kernels of the pixel family and their launchers: each op's launcher is named after it
(`patchify`, `norm_pix_mse_loss`, ...), its backward `<op>_backward` (grad, the op's inputs, needs)
-> one gradient per differentiable input; ops.py registers them as torch.ops.mimkernels.<op>.triton.

Patch copy: one kernel (launched by `patch_copy`) moves pixels between an image (B, C, H, W, any
strides) and patch rows (B, K, p·p·C) in MAE's (p, q, c) layout, in either direction, optionally
through patch ids (row k of sample b is patch ids[b, k]):

    to patches, no ids     patchify                 = unpatchify_backward
    to image,   no ids     unpatchify               = patchify_backward
    to patches, ids        gather_patches           (the masking family's op)
    to image,   ids        scatter into zeros       gather_patches_backward

Ids may count prefix tokens first (lightly's token indices): row k holds patch ids[b, k] − ids_offset.

For element d of a patch row: pi = d // (p·C), qj = (d // C) % p, c = d % C; patch l = i·w + j
sits at rows i·p.., columns j·p... Program (row, block) copies BLOCK_D elements of one row.

Per-patch normalized target and masked losses (SPEC.md §2-5): one program per patch row (b, l),
the whole row of D = p·p·C elements in one tile, statistics in ACC (float32; float64 for float64
inputs). With u = x − μ and s = √(Σu²/(D − 1) + eps), the target is t = u / s (two passes over the
tile in registers, no Σx² cancellation), and its backward, for an upstream gradient g_t, is
    g_x = (g_t − mean(g_t) − t · Σ(g_t·t) / (D − 1)) / s.
Losses write one partial per program into an ACC buffer; the launcher sums it (a fixed-order tree,
no atomics) and divides. Backward kernels take the scalar factor (grad / normaliser) as a 0-d
tensor, so nothing syncs the host, and recompute the target from the image instead of saving it.
SimMIM's L1: one program per tile of up to 4096 pixels of one (b, c) plane, the mask read at (y // p, x // p).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimkernels._triton_lib import block_settings, triton_launch


@triton.jit
def _patch_offsets(b, patch, d, stride_b, stride_c, stride_h, stride_w, C, grid_w, P: tl.constexpr):
    """Offsets into an image (B, C, H, W) of the elements d of patch `patch` of sample b, (p, q, c) order."""
    i = patch // grid_w
    j = patch % grid_w
    pi = d // (P * C)
    qj = (d // C) % P
    c = d % C
    return b * stride_b + c * stride_c + (i * P + pi) * stride_h + (j * P + qj) * stride_w


@triton.jit
def _patch_copy_kernel(
    img_ptr,            # image (B, C, H, W)
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    patch_ptr,          # patch rows (B, K, D), D = p·p·C
    patch_stride_b, patch_stride_k, patch_stride_d,
    ids_ptr,            # (B, K) int64 patch ids + ids_offset, read when HAS_IDS
    ids_stride_b, ids_stride_k, ids_offset,
    K,                  # rows per sample
    C, grid_w, D,       # channels, patches per image row, elements per patch row
    P: tl.constexpr,    # patch size
    HAS_IDS: tl.constexpr,
    TO_PATCHES: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    b = row // K
    k = row % K
    if HAS_IDS:
        patch = tl.load(ids_ptr + b * ids_stride_b + k * ids_stride_k).to(tl.int64) - ids_offset
    else:
        patch = k
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    img_off = _patch_offsets(b, patch, d, img_stride_b, img_stride_c, img_stride_h, img_stride_w, C, grid_w, P)
    patch_off = b * patch_stride_b + k * patch_stride_k + d * patch_stride_d
    if TO_PATCHES:
        v = tl.load(img_ptr + img_off, mask=in_row)
        tl.store(patch_ptr + patch_off, v, mask=in_row)
    else:
        v = tl.load(patch_ptr + patch_off, mask=in_row)
        tl.store(img_ptr + img_off, v, mask=in_row)


def patch_copy(img: torch.Tensor, patches: torch.Tensor, patch_size: int, ids: torch.Tensor | None,
               to_patches: bool, ids_offset: int = 0) -> None:
    """Copy between `img` (B, C, H, W) and `patches` (B, K, p·p·C), in place in the destination;
    row k of sample b is patch ids[b, k] − ids_offset when ids are given."""
    b, c, _, width = img.shape
    k, d = patches.shape[1], patches.shape[2]
    if b * k == 0 or d == 0:
        return
    block_d, num_warps = block_settings(d)
    ids_arg = ids if ids is not None else patches  # never read when HAS_IDS is False
    ids_strides = ids.stride() if ids is not None else (0, 0)
    grid = (b * k, triton.cdiv(d, block_d))
    triton_launch(_patch_copy_kernel)[grid](
        img, *img.stride(), patches, *patches.stride(), ids_arg, *ids_strides, ids_offset,
        k, c, width // patch_size, d,
        P=patch_size, HAS_IDS=ids is not None, TO_PATCHES=to_patches, BLOCK_D=block_d, num_warps=num_warps,
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
    num_prefix_tokens."""
    b, c = imgs.shape[:2]
    out = imgs.new_empty((b, ids_keep.shape[1], patch_size * patch_size * c))
    patch_copy(imgs, out, patch_size, ids_keep, to_patches=True, ids_offset=num_prefix_tokens)
    return out


def gather_patches_backward(grad: torch.Tensor, imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int,
                            num_prefix_tokens: int, needs: list[bool]) -> list[torch.Tensor]:
    """[∂/∂imgs]: the rows scattered back into a zero image (imgs read for its shape only)."""
    out = grad.new_zeros((grad.shape[0], *imgs.shape[1:]))
    patch_copy(out, grad, patch_size, ids_keep, to_patches=False, ids_offset=num_prefix_tokens)
    return [out]


# ---- per-patch normalized target and masked losses ------------------------------------------------

# The largest patch row one program holds in registers (p = 64 at C = 3 fits); larger rows take the
# torch backend (the front door decides).
MAX_PATCH_ELEMENTS = 16384


@triton.jit
def _patch_row(L, D, BLOCK_D: tl.constexpr):
    """This program's patch row: (row = b·L + l, b, l, the element indices d, d < D), all int64."""
    row = tl.program_id(0).to(tl.int64)
    d = tl.arange(0, BLOCK_D).to(tl.int64)
    return row, row // L, row % L, d, d < D


@triton.jit
def _load_row(ptr, stride_b, stride_l, stride_d, b, l, d, in_row, ACC: tl.constexpr):
    """Row (b, l) of a (B, L, D) tensor, any strides, in ACC; zero outside the row."""
    return tl.load(ptr + b * stride_b + l * stride_l + d * stride_d, mask=in_row, other=0.0).to(ACC)


@triton.jit
def _load_target(tgt_ptr,               # image (B, C, H, W) when FROM_IMAGE, else rows (B, L, D)
                 stride_0, stride_1, stride_2, stride_3,  # image (b, c, h, w) or rows (b, l, d, unused)
                 b, l, d, in_row, D, C, grid_w, eps,
                 P: tl.constexpr, FROM_IMAGE: tl.constexpr, NORM: tl.constexpr, ACC: tl.constexpr):
    """Target row (b, l) in ACC, zero outside the row, normalized per patch when NORM; and the
    row's s = √(var + eps) (1 without NORM)."""
    if FROM_IMAGE:
        off = _patch_offsets(b, l, d, stride_0, stride_1, stride_2, stride_3, C, grid_w, P)
        t = tl.load(tgt_ptr + off, mask=in_row, other=0.0).to(ACC)
    else:
        t = _load_row(tgt_ptr, stride_0, stride_1, stride_2, b, l, d, in_row, ACC)
    std = tl.full((), 1.0, ACC)
    if NORM:
        t = tl.where(in_row, t - tl.sum(t, 0) / D, 0.0)
        std = tl.sqrt(tl.sum(t * t, 0) / (D - 1) + eps)
        t = t / std
    return t, std


@triton.jit
def _norm_backward(g_t, t, std, in_row, D):
    """Gradient w.r.t. the patch pixels of t = (x − μ) / √(var + eps), given g_t (zero outside the row)."""
    g_t = tl.where(in_row, g_t, 0.0)
    return (g_t - tl.sum(g_t, 0) / D - t * (tl.sum(g_t * t, 0) / (D - 1))) / std


@triton.jit
def _patch_norm_target_kernel(
    out_ptr,            # (B, L, D) contiguous, imgs.dtype
    img_ptr,            # (B, C, H, W) any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    L, D, C, grid_w, eps,
    P: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr,
):
    row, b, l, d, in_row = _patch_row(L, D, BLOCK_D)
    t, _ = _load_target(img_ptr, img_stride_b, img_stride_c, img_stride_h, img_stride_w, b, l, d, in_row,
                        D, C, grid_w, eps, P, True, True, ACC)
    tl.store(out_ptr + row * D + d, t.to(out_ptr.dtype.element_ty), mask=in_row)


@triton.jit
def _patch_norm_target_bwd_kernel(
    grad_img_ptr,       # (B, C, H, W) contiguous, written
    grad_ptr,           # (B, L, D) upstream gradient, any strides
    grad_stride_b, grad_stride_l, grad_stride_d,
    img_ptr,            # (B, C, H, W) any strides
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    L, D, C, H, W, grid_w, eps,
    P: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr,
):
    row, b, l, d, in_row = _patch_row(L, D, BLOCK_D)
    t, std = _load_target(img_ptr, img_stride_b, img_stride_c, img_stride_h, img_stride_w, b, l, d, in_row,
                          D, C, grid_w, eps, P, True, True, ACC)
    g_t = _load_row(grad_ptr, grad_stride_b, grad_stride_l, grad_stride_d, b, l, d, in_row, ACC)
    g_x = _norm_backward(g_t, t, std, in_row, D)
    out = _patch_offsets(b, l, d, C * H * W, H * W, W, 1, C, grid_w, P)
    tl.store(grad_img_ptr + out, g_x.to(grad_img_ptr.dtype.element_ty), mask=in_row)


@triton.jit
def _masked_mse_fwd_kernel(
    part_ptr,           # (B·L,) ACC: m_bl · mean_d (pred − target)²
    pred_ptr,           # (B, L, D) any strides
    pred_stride_b, pred_stride_l, pred_stride_d,
    tgt_ptr,            # image (B, C, H, W) when FROM_IMAGE, else rows (B, L, D); any strides
    tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3,
    mask_ptr,           # (B, L) any numeric dtype, 1 = masked
    mask_stride_b, mask_stride_l,
    L, D, C, grid_w, eps,
    P: tl.constexpr, FROM_IMAGE: tl.constexpr, NORM: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr,
):
    row, b, l, d, in_row = _patch_row(L, D, BLOCK_D)
    t, _ = _load_target(tgt_ptr, tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3, b, l, d, in_row,
                        D, C, grid_w, eps, P, FROM_IMAGE, NORM, ACC)
    x = _load_row(pred_ptr, pred_stride_b, pred_stride_l, pred_stride_d, b, l, d, in_row, ACC)
    diff = tl.where(in_row, x - t, 0.0)
    m = tl.load(mask_ptr + b * mask_stride_b + l * mask_stride_l).to(ACC)
    tl.store(part_ptr + row, m * (tl.sum(diff * diff, 0) / D))


@triton.jit
def _masked_mse_bwd_kernel(
    grad_pred_ptr,      # (B, L, D) contiguous, pred.dtype; written when NEED_PRED
    grad_tgt_ptr,       # contiguous, target.dtype, the target's shape; written when NEED_TARGET
    scale_ptr,          # 0-d ACC: 2 · grad / (D · Σ m)
    pred_ptr,
    pred_stride_b, pred_stride_l, pred_stride_d,
    tgt_ptr,
    tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3,
    mask_ptr,
    mask_stride_b, mask_stride_l,
    L, D, C, H, W, grid_w, eps,
    P: tl.constexpr, FROM_IMAGE: tl.constexpr, NORM: tl.constexpr, NEED_PRED: tl.constexpr,
    NEED_TARGET: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr,
):
    row, b, l, d, in_row = _patch_row(L, D, BLOCK_D)
    t, std = _load_target(tgt_ptr, tgt_stride_0, tgt_stride_1, tgt_stride_2, tgt_stride_3, b, l, d, in_row,
                          D, C, grid_w, eps, P, FROM_IMAGE, NORM, ACC)
    x = _load_row(pred_ptr, pred_stride_b, pred_stride_l, pred_stride_d, b, l, d, in_row, ACC)
    m = tl.load(mask_ptr + b * mask_stride_b + l * mask_stride_l).to(ACC)
    g = (tl.load(scale_ptr) * m) * (x - t)  # ∂loss/∂pred; NaN for an empty mask, as autograd
    if NEED_PRED:
        tl.store(grad_pred_ptr + row * D + d, g.to(grad_pred_ptr.dtype.element_ty), mask=in_row)
    if NEED_TARGET:
        if NORM:
            g_t = _norm_backward(-g, t, std, in_row, D)
        else:
            g_t = -g
        if FROM_IMAGE:
            out = _patch_offsets(b, l, d, C * H * W, H * W, W, 1, C, grid_w, P)
        else:
            out = row * D + d
        tl.store(grad_tgt_ptr + out, g_t.to(grad_tgt_ptr.dtype.element_ty), mask=in_row)


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


def _row_settings(d: int) -> tuple[int, int]:
    """(BLOCK_D, num_warps) for one patch row of d elements held whole in one program."""
    block_d, num_warps = block_settings(d, max_block=MAX_PATCH_ELEMENTS)
    return block_d, 16 if block_d >= 8192 else num_warps


def _loadable_mask(mask: torch.Tensor) -> torch.Tensor:
    """bool masks as uint8 (same bytes, any strides); other dtypes as they are."""
    return mask.view(torch.uint8) if mask.dtype == torch.bool else mask


def _mask_sum(mask: torch.Tensor, acc: torch.dtype) -> torch.Tensor:
    """Σ mask: exact int64 for bool/integer masks, acc for floating ones."""
    return mask.sum(dtype=acc if mask.is_floating_point() else torch.int64)


def _target_geometry(target: torch.Tensor, patch_size: int, from_image: bool):
    """(four target strides, C, H, W, grid_w) for the MSE kernels."""
    if from_image:
        _, c, h, w = target.shape
        return target.stride(), c, h, w, w // patch_size
    return (*target.stride(), 0), 1, 1, 1, 1


def _mse_forward_args(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch_size: int,
                      from_image: bool):
    """(the per-row partials (B·L,) in ACC, _masked_mse_fwd_kernel's arguments up to eps, its launch options)."""
    b, length, d = pred.shape
    acc = _acc_dtype(pred, target)
    partial = pred.new_empty(b * length, dtype=acc)
    strides, c, _, _, grid_w = _target_geometry(target, patch_size, from_image)
    loadable = _loadable_mask(mask)
    block_d, num_warps = _row_settings(d)
    args = (partial, pred, *pred.stride(), target, *strides, loadable, *loadable.stride(), length, d, c, grid_w)
    return partial, args, dict(ACC=_TL_ACC[acc], BLOCK_D=block_d, num_warps=num_warps)


def _mse_backward_args(grad: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                       needs: list[bool], patch_size: int, from_image: bool):
    """([grad_pred, grad_target], contiguous in their inputs' dtypes, empty where not needed;
    _masked_mse_bwd_kernel's arguments up to eps, None when nothing is to compute; its launch options)."""
    b, length, d = pred.shape
    acc = _acc_dtype(pred, target)
    grads = [torch.empty(t.shape if need else (0,), dtype=t.dtype, device=t.device)
             for t, need in zip((pred, target), needs)]
    if b * length == 0 or not any(needs):
        return grads, None, {}
    scale = (2.0 * grad.to(acc)) / (d * _mask_sum(mask, acc).to(acc))
    strides, c, h, w, grid_w = _target_geometry(target, patch_size, from_image)
    loadable = _loadable_mask(mask)
    block_d, num_warps = _row_settings(d)
    args = (*grads, scale, pred, *pred.stride(), target, *strides, loadable, *loadable.stride(),
            length, d, c, h, w, grid_w)
    return grads, args, dict(NEED_PRED=needs[0], NEED_TARGET=needs[1], ACC=_TL_ACC[acc], BLOCK_D=block_d,
                             num_warps=num_warps)


def patch_norm_target(imgs: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
    """(B, C, H, W) any strides -> (B, L, p·p·C) in imgs.dtype, per-patch normalized (statistics in ACC)."""
    b, c, h, w = imgs.shape
    length, d = (h // patch_size) * (w // patch_size), patch_size * patch_size * c
    out = torch.empty((b, length, d), dtype=imgs.dtype, device=imgs.device)
    if out.numel() == 0:
        return out
    block_d, num_warps = _row_settings(d)
    triton_launch(_patch_norm_target_kernel)[(b * length,)](
        out, imgs, *imgs.stride(), length, d, c, w // patch_size, eps,
        P=patch_size, ACC=_TL_ACC[_acc_dtype(imgs)], BLOCK_D=block_d, num_warps=num_warps)
    return out


def patch_norm_target_backward(grad: torch.Tensor, imgs: torch.Tensor, patch_size: int, eps: float,
                               needs: list[bool]) -> list[torch.Tensor]:
    """[grad_imgs (B, C, H, W) contiguous, imgs.dtype] from grad (B, L, p·p·C); the target is recomputed."""
    b, c, h, w = imgs.shape
    length, d = grad.shape[1], grad.shape[2]
    grad_imgs = torch.empty((b, c, h, w), dtype=imgs.dtype, device=imgs.device)
    if grad_imgs.numel() == 0:
        return [grad_imgs]
    block_d, num_warps = _row_settings(d)
    triton_launch(_patch_norm_target_bwd_kernel)[(b * length,)](
        grad_imgs, grad, *grad.stride(), imgs, *imgs.stride(), length, d, c, h, w, w // patch_size, eps,
        P=patch_size, ACC=_TL_ACC[_acc_dtype(imgs, grad)], BLOCK_D=block_d, num_warps=num_warps)
    return [grad_imgs]


def masked_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ m_bl · mean_d (pred − target)²_bld / Σ m_bl, a 0-d ACC tensor; target rows (B, L, D) any strides.
    Empty mask: 0/0 = NaN."""
    partial, args, options = _mse_forward_args(pred, target, mask, 1, from_image=False)
    if partial.numel():
        triton_launch(_masked_mse_fwd_kernel)[(partial.numel(),)](
            *args, 0.0, P=1, FROM_IMAGE=False, NORM=False, **options)
    return partial.sum() / _mask_sum(mask, partial.dtype).to(partial.dtype)


def masked_mse_loss_backward(grad: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                             needs: list[bool]) -> list[torch.Tensor]:
    """[grad_pred, grad_target = −grad_pred] for the upstream 0-d grad; one not needed is empty."""
    grads, args, options = _mse_backward_args(grad, pred, target, mask, needs, 1, from_image=False)
    if args is not None:
        triton_launch(_masked_mse_bwd_kernel)[(pred.shape[0] * pred.shape[1],)](
            *args, 0.0, P=1, FROM_IMAGE=False, NORM=False, **options)
    return grads


def norm_pix_mse_loss(pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, patch_size: int, norm_pix: bool,
                      eps: float) -> torch.Tensor:
    """MAE's forward_loss, a 0-d ACC tensor: the target rows are read from the image (B, C, H, W, any
    strides) patch by patch and normalized per patch when norm_pix; never patchified in memory."""
    partial, args, options = _mse_forward_args(pred, imgs, mask, patch_size, from_image=True)
    if partial.numel():
        triton_launch(_masked_mse_fwd_kernel)[(partial.numel(),)](
            *args, eps, P=patch_size, FROM_IMAGE=True, NORM=norm_pix, **options)
    return partial.sum() / _mask_sum(mask, partial.dtype).to(partial.dtype)


def norm_pix_mse_loss_backward(grad: torch.Tensor, pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor,
                               patch_size: int, norm_pix: bool, eps: float, needs: list[bool]) -> list[torch.Tensor]:
    """[grad_pred, grad_imgs (B, C, H, W), through the normalization]; the target is recomputed from imgs."""
    grads, args, options = _mse_backward_args(grad, pred, imgs, mask, needs, patch_size, from_image=True)
    if args is not None:
        triton_launch(_masked_mse_bwd_kernel)[(pred.shape[0] * pred.shape[1],)](
            *args, eps, P=patch_size, FROM_IMAGE=True, NORM=norm_pix, **options)
    return grads


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
