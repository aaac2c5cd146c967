"""Triton kernels and their launchers, one launcher per op of the family (the forward of
`torch.ops.mimkernels.<op>.triton`) and per backward (`<op>.triton_backward`):

    random_mask_indices             _mae_mask_kernel (Philox keys; `_from_noise`: caller noise)
    random_masking / _backward      _row_copy_kernel (gather the kept rows / scatter them into zeros)
    unshuffle_tokens / _backward    _unshuffle_kernel / _unshuffle_backward_kernel

gather_patches is a copy through patch ids: its launchers are the pixel family's
(pixel/triton.py gather_patches / gather_patches_backward, on its patch-copy kernel).

Random mask indices (SPEC.md §2; the keys: §1).

One program per sample: a signed 32-bit sort key per patch, packed as the int64 (key << 32) | l
(monotone in (key, l), so a plain sort is the stable argsort; padding lanes hold int64 max and sort
last), tl.sort, then ids_keep[pos] = l for pos < K, ids_restore[l] = pos, mask[l] = pos >= K.
Triton has no argsort; the packed sort is the argsort. Keys: Philox x0 − 2^31 (uint32 order), or
caller noise (fp32/fp16/bf16, upcast exactly to fp32) mapped to int32 in float order: −0.0 → +0.0
and every NaN → one NaN above +inf, so equal values, ±0 and NaNs tie and break by index as in
torch's stable sort.

Random masking gathers the kept token rows with the row-copy kernel below; its backward scatters
the gradient rows back into zeros (ids are distinct: no collisions, no atomics).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from mimkernels import rng
from mimkernels._triton_lib import block_settings, philox_draw, triton_launch

MAX_PATCHES = 1 << 14


@triton.jit
def _float_order_key(v):
    """fp32 -> int32 with the same order (torch's sort order: -0.0 == +0.0, NaN above +inf)."""
    bits = v.to(tl.int32, bitcast=True)
    bits = tl.where(v == 0.0, 0, bits)               # -0.0 -> +0.0
    bits = tl.where(v != v, 0x7FC00000, bits)        # every NaN -> one quiet NaN, above +inf
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)    # negatives: flip the magnitude bits


@triton.jit
def _mae_mask_kernel(ids_keep_ptr, ids_restore_ptr, mask_ptr, noise_ptr, noise_stride_b, noise_stride_l,
                     seed, sample_offset, L, K,
                     HAS_NOISE: tl.constexpr, STREAM: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    lane = tl.arange(0, BLOCK).to(tl.int64)
    valid = lane < L
    if HAS_NOISE:
        v = tl.load(noise_ptr + b * noise_stride_b + lane * noise_stride_l, mask=valid, other=0.0)
        key = _float_order_key(v.to(tl.float32)).to(tl.int64)
    else:
        x0, _, _, _ = philox_draw(seed, lane, b + sample_offset, STREAM)
        key = x0.to(tl.int64) - 2147483648                 # uint32 -> signed, order kept
    packed = tl.where(valid, (key << 32) | lane, 9223372036854775807)
    packed = tl.sort(packed)
    idx = packed & 0xFFFFFFFF
    pos = lane
    tl.store(ids_keep_ptr + b * K + pos, idx, mask=pos < K)
    tl.store(ids_restore_ptr + b * L + idx, pos, mask=valid)
    tl.store(mask_ptr + b * L + idx, (pos >= K).to(tl.float32), mask=valid)


def _mask_indices(batch: int, num_patches: int, len_keep: int, seed: int, sample_offset: int,
                  device: torch.device, noise: torch.Tensor | None):
    ids_keep = torch.empty((batch, len_keep), dtype=torch.int64, device=device)
    ids_restore = torch.empty((batch, num_patches), dtype=torch.int64, device=device)
    mask = torch.empty((batch, num_patches), dtype=torch.float32, device=device)
    if batch == 0:
        return ids_keep, ids_restore, mask
    block, num_warps = block_settings(num_patches, max_block=MAX_PATCHES)
    noise_arg, noise_strides = (noise, noise.stride()) if noise is not None else (mask, (0, 0))
    triton_launch(_mae_mask_kernel)[(batch,)](
        ids_keep, ids_restore, mask, noise_arg, *noise_strides, seed, sample_offset, num_patches, len_keep,
        HAS_NOISE=noise is not None, STREAM=rng.STREAM_MAE_MASKING, BLOCK=block, num_warps=num_warps)
    return ids_keep, ids_restore, mask


def random_mask_indices(batch: int, num_patches: int, len_keep: int, seed: int, sample_offset: int,
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids_keep (B, K), ids_restore (B, L) int64, mask (B, L) float32) from the Philox keys of rng
    stream 1; seed: the key as a signed int64 (rng.seed_to_i64)."""
    return _mask_indices(batch, num_patches, len_keep, seed, sample_offset, device, None)


def random_mask_indices_from_noise(noise: torch.Tensor, len_keep: int
                                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same outputs sorting caller noise (B, L), fp32/fp16/bf16, any strides."""
    batch, num_patches = noise.shape
    return _mask_indices(batch, num_patches, len_keep, 0, 0, noise.device, noise)


@triton.jit
def _row_copy_kernel(rows_ptr, rows_stride_b, rows_stride_k, rows_stride_d,
                     x_ptr, x_stride_b, x_stride_l, x_stride_d,
                     ids_ptr, ids_stride_b, ids_stride_k,
                     K, D, TO_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    """rows[b, k] <-> x[b, ids[b, k]]: TO_ROWS gathers (random masking), else scatters (its backward)."""
    row = tl.program_id(0).to(tl.int64)
    b = row // K
    k = row % K
    src = tl.load(ids_ptr + b * ids_stride_b + k * ids_stride_k).to(tl.int64)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    rows_off = b * rows_stride_b + k * rows_stride_k + d * rows_stride_d
    x_off = b * x_stride_b + src * x_stride_l + d * x_stride_d
    if TO_ROWS:
        tl.store(rows_ptr + rows_off, tl.load(x_ptr + x_off, mask=in_row), mask=in_row)
    else:
        tl.store(x_ptr + x_off, tl.load(rows_ptr + rows_off, mask=in_row), mask=in_row)


def _row_copy(rows: torch.Tensor, x: torch.Tensor, ids: torch.Tensor, to_rows: bool) -> None:
    b, k, d = rows.shape
    if rows.numel() == 0:
        return
    block_d, num_warps = block_settings(d)
    triton_launch(_row_copy_kernel)[(b * k, triton.cdiv(d, block_d))](
        rows, *rows.stride(), x, *x.stride(), ids, *ids.stride(), k, d,
        TO_ROWS=to_rows, BLOCK_D=block_d, num_warps=num_warps)


def random_masking(x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
    """The gather of random masking: x (B, L, D) any strides, ids_keep (B, K) int64 -> x_visible
    (B, K, D), x_visible[b, k] = x[b, ids_keep[b, k]]."""
    out = torch.empty((x.shape[0], ids_keep.shape[1], x.shape[2]), dtype=x.dtype, device=x.device)
    _row_copy(out, x, ids_keep, to_rows=True)
    return out


def random_masking_backward(grad: torch.Tensor, x: torch.Tensor, ids_keep: torch.Tensor,
                            needs: list[bool]) -> list[torch.Tensor]:
    """[grad_x]: zeros (B, L, D) with grad_x[b, ids_keep[b, k]] = grad[b, k] (distinct ids)."""
    if not needs[0]:
        return [grad.new_empty((0,))]
    out = torch.zeros((grad.shape[0], x.shape[1], grad.shape[2]), dtype=grad.dtype, device=grad.device)
    _row_copy(grad, out, ids_keep, to_rows=False)
    return [out]


# ---- unshuffle_tokens (SPEC.md §5) --------------------------------------------------------------
# P = num_prefix_tokens (MAE: 1, the cls token). Forward: program (row, block) with
# row = b·(P+L) + t writes BLOCK_D elements of out[b, t]: t < P copies the prefix token x[b, t];
# t = P+l copies x[b, P+r] if r = ids_restore[b, l] < K, else the mask token (already cast to
# x.dtype on the host, as the reference casts it).
# Backward: program (b, block) walks the rows of sample b in order: grad_x[b, t] = g[b, t] for t < P,
# grad_x[b, P+r] = g[b, P+l] for r < K (ids_restore is a permutation: each kept r is written once,
# grad_x starts at zero), and the masked rows are summed in a fixed order into partial[b] (fp32, or
# fp64 for fp64 grads); the host sums partial over b. No atomics: deterministic.


@triton.jit
def _unshuffle_kernel(out_ptr, out_stride_b, out_stride_t, out_stride_d,
                      x_ptr, x_stride_b, x_stride_t, x_stride_d,
                      ids_ptr, ids_stride_b, ids_stride_l,
                      tok_ptr, tok_stride_d,
                      L, K, PREFIX, D, BLOCK_D: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    b = row // (PREFIX + L)
    t = row % (PREFIX + L)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    is_prefix = t < PREFIX
    r = tl.load(ids_ptr + b * ids_stride_b + (t - PREFIX) * ids_stride_l, mask=t >= PREFIX, other=0).to(tl.int64)
    use_x = is_prefix | (r < K)
    src = tl.where(is_prefix, t, PREFIX + r)
    src = tl.where(use_x, src, 0)
    vx = tl.load(x_ptr + b * x_stride_b + src * x_stride_t + d * x_stride_d, mask=in_row & use_x, other=0.0)
    vm = tl.load(tok_ptr + d * tok_stride_d, mask=in_row & (use_x == 0), other=0.0)
    v = tl.where(use_x, vx, vm)
    tl.store(out_ptr + b * out_stride_b + t * out_stride_t + d * out_stride_d, v, mask=in_row)


@triton.jit
def _unshuffle_backward_kernel(
    gx_ptr, gx_stride_b, gx_stride_t, gx_stride_d,  # grad_x (B, P+K, D), zeros
    g_ptr, g_stride_b, g_stride_t, g_stride_d,      # the upstream gradient (B, P+L, D)
    ids_ptr, ids_stride_b, ids_stride_l,            # ids_restore (B, L)
    part_ptr, part_stride_b,                        # per-sample sums of the masked rows (B, D)
    L, K, PREFIX, D, BLOCK_D: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    g_row = g_ptr + b * g_stride_b + d * g_stride_d
    gx_row = gx_ptr + b * gx_stride_b + d * gx_stride_d
    t = b * 0  # int64 scalar; while loops (the interpreter cannot range() over a runtime int)
    while t < PREFIX:
        tl.store(gx_row + t * gx_stride_t, tl.load(g_row + t * g_stride_t, mask=in_row), mask=in_row)
        t += 1
    acc = tl.zeros([BLOCK_D], dtype=part_ptr.dtype.element_ty)
    l = b * 0
    while l < L:
        r = tl.load(ids_ptr + b * ids_stride_b + l * ids_stride_l).to(tl.int64)
        v = tl.load(g_row + (PREFIX + l) * g_stride_t, mask=in_row, other=0.0)
        kept = r < K
        dst = tl.where(kept, PREFIX + r, 0)
        tl.store(gx_row + dst * gx_stride_t, v, mask=in_row & kept)
        acc += tl.where(kept, 0.0, v.to(part_ptr.dtype.element_ty))
        l += 1
    tl.store(part_ptr + b * part_stride_b + d, acc, mask=in_row)


def unshuffle_tokens(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor,
                     num_prefix_tokens: int = 1) -> torch.Tensor:
    """x (B, P+K, D) any strides, ids_restore (B, L) int64, mask_token with D elements, P =
    num_prefix_tokens -> (B, P+L, D) in x.dtype."""
    b, _, d = x.shape
    length = ids_restore.shape[1]
    out = torch.empty((b, num_prefix_tokens + length, d), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    token = mask_token.reshape(-1).to(x.dtype)
    block_d, num_warps = block_settings(d)
    grid = (b * (num_prefix_tokens + length), triton.cdiv(d, block_d))
    triton_launch(_unshuffle_kernel)[grid](
        out, *out.stride(), x, *x.stride(), ids_restore, *ids_restore.stride(), token, token.stride(0),
        length, x.shape[1] - num_prefix_tokens, num_prefix_tokens, d, BLOCK_D=block_d, num_warps=num_warps)
    return out


def unshuffle_tokens_backward(grad: torch.Tensor, x: torch.Tensor, ids_restore: torch.Tensor,
                              mask_token: torch.Tensor, num_prefix_tokens: int,
                              needs: list[bool]) -> list[torch.Tensor]:
    """grad (B, P+L, D) -> [grad_x (B, P+K, D) in grad.dtype, grad_mask_token in mask_token's shape and
    dtype]: the per-sample sums of the masked rows (fp32, fp64 for fp64 grads) summed over the batch."""
    b, _, d = grad.shape
    length = ids_restore.shape[1]
    grad_x = torch.zeros((b, x.shape[1], d), dtype=grad.dtype, device=grad.device)
    acc_dtype = torch.float64 if grad.dtype == torch.float64 else torch.float32
    partial = torch.zeros((b, d), dtype=acc_dtype, device=grad.device)
    if b and d:
        block_d, num_warps = block_settings(d)
        triton_launch(_unshuffle_backward_kernel)[(b, triton.cdiv(d, block_d))](
            grad_x, *grad_x.stride(), grad, *grad.stride(), ids_restore, *ids_restore.stride(),
            partial, partial.stride(0), length, x.shape[1] - num_prefix_tokens, num_prefix_tokens, d,
            BLOCK_D=block_d, num_warps=num_warps)
    grad_token = partial.sum(0).to(mask_token.dtype).reshape(mask_token.shape)
    return [grad_x if needs[0] else grad_x.new_empty((0,)), grad_token if needs[1] else grad_token.new_empty((0,))]
