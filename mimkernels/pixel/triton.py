"""Triton kernels of the pixel family.

Patch copy: one kernel moves pixels between an image (B, C, H, W, any strides) and patch rows
(B, K, p·p·C) in MAE's (p, q, c) layout, in either direction, optionally through patch ids
(row k of sample b is patch ids[b, k]):

    to patches, no ids     patchify                 backward of unpatchify
    to image,   no ids     unpatchify               backward of patchify
    to patches, ids        gather_patches           (masking family)
    to image,   ids        scatter into zeros       backward of gather_patches

For element d of a patch row: pi = d // (p·C), qj = (d // C) % p, c = d % C; patch l = i·w + j
sits at rows i·p.., columns j·p... Program (row, block) copies BLOCK_D elements of one row.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimkernels._dispatch import triton_launch
from mimkernels._triton_lib import block_settings


@triton.jit
def _patch_copy_kernel(
    img_ptr,            # image (B, C, H, W)
    img_stride_b, img_stride_c, img_stride_h, img_stride_w,
    patch_ptr,          # patch rows (B, K, D), D = p·p·C
    patch_stride_b, patch_stride_k, patch_stride_d,
    ids_ptr,            # (B, K) int64 patch ids, read when HAS_IDS
    ids_stride_b, ids_stride_k,
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
        patch = tl.load(ids_ptr + b * ids_stride_b + k * ids_stride_k).to(tl.int64)
    else:
        patch = k
    i = patch // grid_w
    j = patch % grid_w
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    pi = d // (P * C)
    qj = (d // C) % P
    c = d % C
    img_off = b * img_stride_b + c * img_stride_c + (i * P + pi) * img_stride_h + (j * P + qj) * img_stride_w
    patch_off = b * patch_stride_b + k * patch_stride_k + d * patch_stride_d
    if TO_PATCHES:
        v = tl.load(img_ptr + img_off, mask=in_row)
        tl.store(patch_ptr + patch_off, v, mask=in_row)
    else:
        v = tl.load(patch_ptr + patch_off, mask=in_row)
        tl.store(img_ptr + img_off, v, mask=in_row)


def patch_copy(img: torch.Tensor, patches: torch.Tensor, patch_size: int, ids: torch.Tensor | None,
               to_patches: bool) -> None:
    """Copy between `img` (B, C, H, W) and `patches` (B, K, p·p·C), in place in the destination."""
    b, c, _, width = img.shape
    k, d = patches.shape[1], patches.shape[2]
    if b * k == 0 or d == 0:
        return
    block_d, num_warps = block_settings(d)
    ids_arg = ids if ids is not None else patches  # never read when HAS_IDS is False
    ids_strides = ids.stride() if ids is not None else (0, 0)
    grid = (b * k, triton.cdiv(d, block_d))
    triton_launch(_patch_copy_kernel)[grid](
        img, *img.stride(), patches, *patches.stride(), ids_arg, *ids_strides,
        k, c, width // patch_size, d,
        P=patch_size, HAS_IDS=ids is not None, TO_PATCHES=to_patches, BLOCK_D=block_d, num_warps=num_warps,
    )


def patchify(imgs: torch.Tensor, patch_size: int, ids: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, H, W) -> (B, L or K, p·p·C) in imgs.dtype; with ids (B, K), only those patches."""
    b, c, h, w = imgs.shape
    rows = ids.shape[1] if ids is not None else (h // patch_size) * (w // patch_size)
    out = torch.empty((b, rows, patch_size * patch_size * c), dtype=imgs.dtype, device=imgs.device)
    patch_copy(imgs, out, patch_size, ids, to_patches=True)
    return out


def unpatchify(x: torch.Tensor, patch_size: int, channels: int, height: int, width: int,
               ids: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L or K, p·p·C) -> (B, C, H, W) in x.dtype; with ids, rows go to patches ids[b, k] and the
    pixels of the other patches are zero."""
    alloc = torch.zeros if ids is not None else torch.empty
    out = alloc((x.shape[0], channels, height, width), dtype=x.dtype, device=x.device)
    patch_copy(out, x, patch_size, ids, to_patches=False)
    return out
