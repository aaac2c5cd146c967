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
