"""Triton kernels and their launchers, one launcher per op of the family (the forward of
`torch.ops.mimkernels.<op>.triton`) and per backward (`<op>.triton_backward`):

    random_mask_indices             _mae_mask_kernel (Philox keys; `_from_noise`: caller noise)
    random_masking / _backward      _row_copy_kernel (gather the kept rows / scatter them into zeros)
    unshuffle_tokens / _backward    _unshuffle_kernel / _unshuffle_backward_kernel (tiles of rows, both)

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
from mimkernels._triton_lib import block_settings, pair_key, philox_draw, triton_launch

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
                     seed, seed_step_ptr, sample_offset, L, K, kept_ptr,
                     HAS_NOISE: tl.constexpr, HAS_KEPT: tl.constexpr, SEED_IN_TENSOR: tl.constexpr,
                     STREAM: tl.constexpr, BLOCK: tl.constexpr):
    """K: the width of the ids_keep rows; the mask marks positions >= K, or >= kept_ptr[b] with per-sample
    ratios (HAS_KEPT, SPEC.md §2a). SEED_IN_TENSOR: the key is derived from the (seed, step) pair at
    seed_step_ptr, on the device (rng.md "Seeds in a tensor")."""
    if SEED_IN_TENSOR:  # _triton_lib.load_key, loaded here: the store addresses below depend on the key
        seed = pair_key(tl.load(seed_step_ptr), tl.load(seed_step_ptr + 1 + tl.arange(0, 1)))
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
    if HAS_KEPT:
        kept = tl.load(kept_ptr + b)
    else:
        kept = K
    tl.store(mask_ptr + b * L + idx, (pos >= kept).to(tl.float32), mask=valid)


def _mask_indices(batch: int, num_patches: int, len_keep: int, seed: int, seed_step: torch.Tensor | None,
                  sample_offset: int, device: torch.device, noise: torch.Tensor | None,
                  kept: torch.Tensor | None = None):
    ids_keep = torch.empty((batch, len_keep), dtype=torch.int64, device=device)
    ids_restore = torch.empty((batch, num_patches), dtype=torch.int64, device=device)
    mask = torch.empty((batch, num_patches), dtype=torch.float32, device=device)
    if batch == 0:
        return ids_keep, ids_restore, mask
    block, num_warps = block_settings(num_patches, max_block=MAX_PATCHES)
    noise_arg, noise_strides = (noise, noise.stride()) if noise is not None else (mask, (0, 0))
    triton_launch(_mae_mask_kernel)[(batch,)](
        ids_keep, ids_restore, mask, noise_arg, *noise_strides, seed, ids_keep if seed_step is None else seed_step,
        sample_offset, num_patches, len_keep, ids_keep if kept is None else kept, HAS_NOISE=noise is not None,
        HAS_KEPT=kept is not None, SEED_IN_TENSOR=seed_step is not None, STREAM=rng.STREAM_MAE_MASKING, BLOCK=block,
        num_warps=num_warps)
    return ids_keep, ids_restore, mask


def random_mask_indices(batch: int, num_patches: int, len_keep: int, seed: int, seed_step: torch.Tensor | None,
                        sample_offset: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids_keep (B, K), ids_restore (B, L) int64, mask (B, L) float32) from the Philox keys of rng
    stream 1; seed: the key as a signed int64 (rng.seed_to_i64), or 0 with seed_step the (2,) int64 seed
    tensor read in the kernel."""
    return _mask_indices(batch, num_patches, len_keep, seed, seed_step, sample_offset, device, None)


def random_mask_indices_per_sample(kept: torch.Tensor, num_patches: int, max_keep: int, seed: int,
                                   seed_step: torch.Tensor | None,
                                   sample_offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample ratios (SPEC.md §2a): kept (B,) int64 kept counts -> ids_keep (B, max_keep), ids_restore
    (B, L) int64, mask (B, L) float32 (positions >= kept[b])."""
    return _mask_indices(kept.shape[0], num_patches, max_keep, seed, seed_step, sample_offset, kept.device, None,
                         kept)


def random_mask_indices_from_noise(noise: torch.Tensor, len_keep: int
                                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same outputs sorting caller noise (B, L), fp32/fp16/bf16, any strides."""
    batch, num_patches = noise.shape
    return _mask_indices(batch, num_patches, len_keep, 0, None, 0, noise.device, noise)


@triton.jit
def _row_copy_kernel(rows_ptr, rows_stride_b, rows_stride_k, rows_stride_d,
                     x_ptr, x_stride_b, x_stride_l, x_stride_d,
                     ids_ptr, ids_stride_b, ids_stride_k,
                     K, L, D, TO_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    """rows[b, k] <-> x[b, ids[b, k]]: TO_ROWS gathers (random masking), else scatters (its backward).
    An id outside [0, L) touches no row of x: the gather writes a zero row, the scatter drops it
    (SPEC.md §3; one predicate on the loads / stores, never an access outside x)."""
    row = tl.program_id(0).to(tl.int64)
    b = row // K
    k = row % K
    src = tl.load(ids_ptr + b * ids_stride_b + k * ids_stride_k).to(tl.int64)
    in_x = (src >= 0) & (src < L)
    src = tl.where(in_x, src, 0)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_row = d < D
    rows_off = b * rows_stride_b + k * rows_stride_k + d * rows_stride_d
    x_off = b * x_stride_b + src * x_stride_l + d * x_stride_d
    if TO_ROWS:
        tl.store(rows_ptr + rows_off, tl.load(x_ptr + x_off, mask=in_row & in_x, other=0.0), mask=in_row)
    else:
        tl.store(x_ptr + x_off, tl.load(rows_ptr + rows_off, mask=in_row & in_x), mask=in_row & in_x)


def _row_copy(rows: torch.Tensor, x: torch.Tensor, ids: torch.Tensor, to_rows: bool) -> None:
    b, k, d = rows.shape
    if rows.numel() == 0:
        return
    block_d, num_warps = block_settings(d)
    triton_launch(_row_copy_kernel)[(b * k, triton.cdiv(d, block_d))](
        rows, *rows.stride(), x, *x.stride(), ids, *ids.stride(), k, x.shape[1], d,
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
# P = num_prefix_tokens (MAE: 1, the cls token). Forward: program (b·C + c, block) writes the tile of
# ROWS rows t in [c·ROWS, (c+1)·ROWS) (C = cdiv(P+L, ROWS) tiles per sample) × BLOCK_D columns of
# out[b] (one load of the tile's ids, the mask token loaded once): t < P copies the prefix token x[b, t];
# t = P+l copies x[b, P+r] if r = ids_restore[b, l] is in [0, K), the mask token (already cast to
# x.dtype on the host, as the reference casts it) if r is in [K, L), and zeros if r is outside [0, L)
# (a bad id reads nothing: SPEC.md §5).
# Backward: parallel over the rows of the upstream gradient, as the forward. Program (b·C + c, block)
# takes the tile of ROWS rows t in [c·ROWS, (c+1)·ROWS) of g[b] (prefix rows included: C =
# cdiv(P+L, ROWS) chunks per sample) and BLOCK_D columns, loaded once, and
#   - stores each prefix row to grad_x[b, t] and each kept row (r in [0, K)) to grad_x[b, P+r]: a
#     scatter; ids_restore is a permutation, so every kept row is written by one program (grad_x starts
#     at zero, so a kept row no id reads keeps its zero gradient; under MIMKERNELS_DEBUG=1 the launcher
#     refuses a kept id that appears twice, whose rows would race);
#   - sums the masked rows (r in [K, L)) of its tile over the rows (tl.sum: a fixed tree) into
#     partial[b·C + c] (fp32, fp64 for fp64 grads). The host sums partial over its rows (torch's
#     reduction: a fixed order). No atomics anywhere: deterministic, run to run and across grids.
# Rows whose id is outside [0, L) are dropped (their forward output was zeros, a constant).


@triton.jit
def _unshuffle_kernel(out_ptr, out_stride_b, out_stride_t, out_stride_d,
                      x_ptr, x_stride_b, x_stride_t, x_stride_d,
                      ids_ptr, ids_stride_b, ids_stride_l,
                      tok_ptr, tok_stride_d,
                      L, K, PREFIX, D, CHUNKS, ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    tile = tl.program_id(0)
    b = (tile // CHUNKS).to(tl.int64)
    # int32 row numbers: t < P + L < 2^31 (the front door bounds L and x's row count)
    t = (tile % CHUNKS) * ROWS + tl.arange(0, ROWS)
    in_sample = t < PREFIX + L
    is_prefix = t < PREFIX
    r = tl.load(ids_ptr + b * ids_stride_b + (t - PREFIX).to(tl.int64) * ids_stride_l,
                mask=in_sample & (t >= PREFIX), other=-1).to(tl.int64)
    use_x = is_prefix | ((r >= 0) & (r < K))
    use_tok = (r >= K) & (r < L)                      # r = -1 on prefix and padding rows
    src = tl.where(is_prefix, t.to(tl.int64), PREFIX + r)
    src = tl.where(use_x, src, 0)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_d = d < D
    vx = tl.load(x_ptr + b * x_stride_b + src[:, None] * x_stride_t + d[None, :] * x_stride_d,
                 mask=use_x[:, None] & in_d[None, :], other=0.0)
    vm = tl.load(tok_ptr + d * tok_stride_d, mask=in_d, other=0.0)
    v = tl.where(use_x[:, None], vx, tl.where(use_tok[:, None], vm[None, :], tl.zeros_like(vx)))  # zeros: a bad id
    tl.store(out_ptr + b * out_stride_b + t.to(tl.int64)[:, None] * out_stride_t + d[None, :] * out_stride_d, v,
             mask=in_sample[:, None] & in_d[None, :])


# The row prologue of _unshuffle_kernel, written out again: a jit helper that took ids_ptr would make torch's
# store analysis (torch.compile's functionalization of triton_op launches) count ids_ptr as written.
@triton.jit
def _unshuffle_backward_kernel(
    gx_ptr, gx_stride_b, gx_stride_t, gx_stride_d,  # grad_x (B, P+K, D), zeros
    g_ptr, g_stride_b, g_stride_t, g_stride_d,      # the upstream gradient (B, P+L, D)
    ids_ptr, ids_stride_b, ids_stride_l,            # ids_restore (B, L)
    part_ptr, part_stride_row,                      # per-tile sums of the masked rows (B·C, D)
    L, K, PREFIX, D, CHUNKS, ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
):
    tile = tl.program_id(0)
    b = (tile // CHUNKS).to(tl.int64)
    # int32 row numbers: t < P + L < 2^31 (the front door bounds L and x's row count)
    t = (tile % CHUNKS) * ROWS + tl.arange(0, ROWS)
    in_sample = t < PREFIX + L
    is_prefix = t < PREFIX
    r = tl.load(ids_ptr + b * ids_stride_b + (t - PREFIX).to(tl.int64) * ids_stride_l,
                mask=in_sample & (t >= PREFIX), other=-1).to(tl.int64)
    kept = (r >= 0) & (r < K)
    to_token = (r >= K) & (r < L)                     # r = -1 on prefix and padding rows
    dst = tl.where(is_prefix, t.to(tl.int64), PREFIX + r)
    write = is_prefix | kept
    dst = tl.where(write, dst, 0)
    d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    in_d = d < D
    v = tl.load(g_ptr + b * g_stride_b + t.to(tl.int64)[:, None] * g_stride_t + d[None, :] * g_stride_d,
                mask=in_sample[:, None] & in_d[None, :], other=0.0)
    tl.store(gx_ptr + b * gx_stride_b + dst[:, None] * gx_stride_t + d[None, :] * gx_stride_d, v,
             mask=write[:, None] & in_d[None, :])
    acc = tl.sum(tl.where(to_token[:, None], v.to(part_ptr.dtype.element_ty), 0.0), axis=0)
    tl.store(part_ptr + tile.to(tl.int64) * part_stride_row + d, acc, mask=in_d)


def unshuffle_tile(rows: int, d: int, max_rows: int) -> tuple[int, int, int]:
    """(ROWS, BLOCK_D, num_warps) of a tile of up to max_rows rows × 256 columns, 32 elements per thread at
    most (at least 4: 128-bit accesses along D in fp32)."""
    block_rows = min(triton.next_power_of_2(max(rows, 1)), max_rows)
    block_d = min(triton.next_power_of_2(max(d, 1)), 256)
    num_warps = max(1, min(8, block_rows * block_d // 1024))
    return block_rows, block_d, num_warps


def unshuffle_tokens(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor,
                     num_prefix_tokens: int = 1) -> torch.Tensor:
    """x (B, P+K, D) any strides, ids_restore (B, L) int64, mask_token with D elements, P =
    num_prefix_tokens -> (B, P+L, D) in x.dtype. An id outside [0, L) gives a zero row. Tiles of 8 rows
    (the ids of a tile in one load, 16 elements per thread)."""
    b, _, d = x.shape
    length = ids_restore.shape[1]
    out = torch.empty((b, num_prefix_tokens + length, d), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    token = mask_token.reshape(-1).to(x.dtype)
    rows, block_d, num_warps = unshuffle_tile(num_prefix_tokens + length, d, 8)
    chunks = triton.cdiv(num_prefix_tokens + length, rows)
    triton_launch(_unshuffle_kernel)[(b * chunks, triton.cdiv(d, block_d))](
        out, *out.stride(), x, *x.stride(), ids_restore, *ids_restore.stride(), token, token.stride(0),
        length, x.shape[1] - num_prefix_tokens, num_prefix_tokens, d, chunks,
        ROWS=rows, BLOCK_D=block_d, num_warps=num_warps)
    return out


def _check_kept_ids_distinct(ids_restore: torch.Tensor, kept: int) -> None:
    """MIMKERNELS_DEBUG=1: a kept id (in [0, K)) twice in a row of ids_restore would make two rows of the
    backward's scatter race for one grad_x row (one gradient lost). Syncs the host: debug only."""
    from mimkernels import _backends
    if not _backends.debug_checks() or ids_restore.numel() == 0 or kept == 0 or torch.compiler.is_compiling():
        return
    in_kept = (ids_restore >= 0) & (ids_restore < kept)
    rows = torch.arange(ids_restore.shape[0], device=ids_restore.device)[:, None].expand_as(ids_restore)
    slots = (rows * kept + ids_restore)[in_kept]
    if slots.numel() and int(torch.bincount(slots).max()) > 1:
        raise ValueError("ids_restore must be a permutation of [0, L): a kept id (< K) appears twice in a row, "
                         "so the gradient of that token would be lost (the Triton backward scatters)")


def unshuffle_tokens_backward(grad: torch.Tensor, x: torch.Tensor, ids_restore: torch.Tensor,
                              mask_token: torch.Tensor, num_prefix_tokens: int,
                              needs: list[bool]) -> list[torch.Tensor]:
    """grad (B, P+L, D) -> [grad_x (B, P+K, D) in grad.dtype, grad_mask_token in mask_token's shape and
    dtype]: the per-tile sums of the masked rows (fp32, fp64 for fp64 grads) summed over the tiles."""
    b, _, d = grad.shape
    length = ids_restore.shape[1]
    kept = x.shape[1] - num_prefix_tokens
    _check_kept_ids_distinct(ids_restore, kept)
    grad_x = torch.zeros((b, x.shape[1], d), dtype=grad.dtype, device=grad.device)
    acc_dtype = torch.float64 if grad.dtype == torch.float64 else torch.float32
    rows, block_d, num_warps = unshuffle_tile(num_prefix_tokens + length, d, 32)  # partials: 1/32 of g
    chunks = triton.cdiv(num_prefix_tokens + length, rows)
    partial = torch.zeros((b * chunks, d), dtype=acc_dtype, device=grad.device)
    if b and d and num_prefix_tokens + length:
        triton_launch(_unshuffle_backward_kernel)[(b * chunks, triton.cdiv(d, block_d))](
            grad_x, *grad_x.stride(), grad, *grad.stride(), ids_restore, *ids_restore.stride(),
            partial, partial.stride(0), length, kept, num_prefix_tokens, d, chunks,
            ROWS=rows, BLOCK_D=block_d, num_warps=num_warps)
    grad_token = partial.sum(0).to(mask_token.dtype).reshape(mask_token.shape)
    return [grad_x if needs[0] else grad_x.new_empty((0,)), grad_token if needs[1] else grad_token.new_empty((0,))]
