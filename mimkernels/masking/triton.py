"""Triton kernel of MAE random masking indices (spec/masking.md §2, spec/rng.md stream 1).

One program per sample: Philox keys x0 for patches 0..L-1, packed as the signed int64
((x0 − 2^31) << 32) | l (monotone in (x0, l), so a plain sort is the stable uint32 sort; padding
lanes hold int64 max and sort last), tl.sort, then ids_keep[pos] = l for pos < K,
ids_restore[l] = pos, mask[l] = pos >= K. Triton has no argsort; the packed sort is the argsort.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimkernels._dispatch import triton_launch
from mimkernels._triton_lib import block_settings, philox_draw

MAX_PATCHES = 1 << 14


@triton.jit
def _mae_mask_kernel(ids_keep_ptr, ids_restore_ptr, mask_ptr, seed, sample_offset, L, K,
                     STREAM: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    lane = tl.arange(0, BLOCK).to(tl.int64)
    valid = lane < L
    x0, _, _, _ = philox_draw(seed, lane, b + sample_offset, STREAM)
    key = x0.to(tl.int64) - 2147483648                 # uint32 -> signed, order kept
    packed = tl.where(valid, (key << 32) | lane, 9223372036854775807)
    packed = tl.sort(packed)
    idx = packed & 0xFFFFFFFF
    pos = lane
    tl.store(ids_keep_ptr + b * K + pos, idx, mask=pos < K)
    tl.store(ids_restore_ptr + b * L + idx, pos, mask=valid)
    tl.store(mask_ptr + b * L + idx, (pos >= K).to(tl.float32), mask=valid)


def random_mask_indices(batch: int, num_patches: int, len_keep: int, seed_i64: int, sample_offset: int,
                        stream: int, device: torch.device):
    ids_keep = torch.empty((batch, len_keep), dtype=torch.int64, device=device)
    ids_restore = torch.empty((batch, num_patches), dtype=torch.int64, device=device)
    mask = torch.empty((batch, num_patches), dtype=torch.float32, device=device)
    if batch == 0:
        return ids_keep, ids_restore, mask
    block, num_warps = block_settings(num_patches, max_block=MAX_PATCHES)
    triton_launch(_mae_mask_kernel)[(batch,)](
        ids_keep, ids_restore, mask, seed_i64, sample_offset, num_patches, len_keep,
        STREAM=stream, BLOCK=block, num_warps=num_warps)
    return ids_keep, ids_restore, mask


# ---- unshuffle_tokens (spec/masking.md §3) -----------------------------------------------------
# Forward: program (row, block) with row = b·(1+L) + t writes BLOCK_D elements of out[b, t]:
# t = 0 copies the cls token x[b, 0]; t = 1+l copies x[b, 1+r] if r = ids_restore[b, l] < K, else
# the mask token (already cast to x.dtype on the host, as the reference casts it).
# Backward: program (b, block) walks the rows of sample b in order: grad_x[b, 0] = g[b, 0],
# grad_x[b, 1+r] = g[b, 1+l] for r < K (ids_restore is a permutation: each kept r is written once,
# grad_x starts at zero), and the masked rows are summed in a fixed order into partial[b] (fp32, or
# fp64 for fp64 grads); the host sums partial over b. No atomics: deterministic.


@triton.jit
def _unshuffle_kernel(out_ptr, out_stride_b, out_stride_t, out_stride_d,
                      x_ptr, x_stride_b, x_stride_t, x_stride_d,
                      ids_ptr, ids_stride_b, ids_stride_l,
                      tok_ptr, tok_stride_d,
                      L, K, D, BLOCK_D: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    b = row // (L + 1)
    t = row % (L + 1)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    r = tl.load(ids_ptr + b * ids_stride_b + (t - 1) * ids_stride_l, mask=t > 0, other=0).to(tl.int64)
    use_x = (t == 0) | (r < K)
    src = tl.where(t == 0, 0, 1 + r)
    src = tl.where(use_x, src, 0)
    vx = tl.load(x_ptr + b * x_stride_b + src * x_stride_t + d * x_stride_d, mask=in_row & use_x, other=0.0)
    vm = tl.load(tok_ptr + d * tok_stride_d, mask=in_row & (use_x == 0), other=0.0)
    v = tl.where(use_x, vx, vm)
    tl.store(out_ptr + b * out_stride_b + t * out_stride_t + d * out_stride_d, v, mask=in_row)


@triton.jit
def _unshuffle_backward_kernel(gx_ptr, gx_stride_b, gx_stride_t, gx_stride_d,
                               g_ptr, g_stride_b, g_stride_t, g_stride_d,
                               ids_ptr, ids_stride_b, ids_stride_l,
                               part_ptr, part_stride_b,
                               L, K, D, BLOCK_D: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    g_row = g_ptr + b * g_stride_b + d * g_stride_d
    gx_row = gx_ptr + b * gx_stride_b + d * gx_stride_d
    tl.store(gx_row, tl.load(g_row, mask=in_row), mask=in_row)
    acc = tl.zeros([BLOCK_D], dtype=part_ptr.dtype.element_ty)
    l = b * 0  # int64 scalar; a while loop (the interpreter cannot range() over a runtime int)
    while l < L:
        r = tl.load(ids_ptr + b * ids_stride_b + l * ids_stride_l).to(tl.int64)
        v = tl.load(g_row + (1 + l) * g_stride_t, mask=in_row, other=0.0)
        kept = r < K
        dst = tl.where(kept, 1 + r, 0)
        tl.store(gx_row + dst * gx_stride_t, v, mask=in_row & kept)
        acc += tl.where(kept, 0.0, v.to(part_ptr.dtype.element_ty))
        l += 1
    tl.store(part_ptr + b * part_stride_b + d, acc, mask=in_row)


def unshuffle_tokens(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor) -> torch.Tensor:
    """x (B, 1+K, D) any strides, ids_restore (B, L) int64, mask_token with D elements -> (B, 1+L, D)
    in x.dtype."""
    b, _, d = x.shape
    length = ids_restore.shape[1]
    out = torch.empty((b, 1 + length, d), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    token = mask_token.reshape(-1).to(x.dtype)
    block_d, num_warps = block_settings(d)
    grid = (b * (1 + length), triton.cdiv(d, block_d))
    triton_launch(_unshuffle_kernel)[grid](
        out, *out.stride(), x, *x.stride(), ids_restore, *ids_restore.stride(), token, token.stride(0),
        length, x.shape[1] - 1, d, BLOCK_D=block_d, num_warps=num_warps)
    return out


def unshuffle_tokens_backward(grad: torch.Tensor, ids_restore: torch.Tensor, kept: int):
    """grad (B, 1+L, D) -> (grad_x (B, 1+K, D) in grad.dtype, partial (B, D): per-sample sums of the
    masked rows, fp32 (fp64 for fp64 grads))."""
    b, _, d = grad.shape
    length = ids_restore.shape[1]
    grad_x = torch.zeros((b, 1 + kept, d), dtype=grad.dtype, device=grad.device)
    acc_dtype = torch.float64 if grad.dtype == torch.float64 else torch.float32
    partial = torch.zeros((b, d), dtype=acc_dtype, device=grad.device)
    if b == 0 or d == 0:
        return grad_x, partial
    block_d, num_warps = block_settings(d)
    grid = (b, triton.cdiv(d, block_d))
    triton_launch(_unshuffle_backward_kernel)[grid](
        grad_x, *grad_x.stride(), grad, *grad.stride(), ids_restore, *ids_restore.stride(),
        partial, partial.stride(0), length, kept, d, BLOCK_D=block_d, num_warps=num_warps)
    return grad_x, partial
