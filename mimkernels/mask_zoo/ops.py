"""The mask zoo in the torch.library catalogue: one declaration per (op, backend), its fake beside it,
and the native glue (`_C` through plain pointers), as masking/ops.py."""
from __future__ import annotations

import torch

from mimkernels import _native
from mimkernels._backends import HAS_TRITON
from mimkernels._library import define_native, define_op, define_reference
from mimkernels.mask_zoo import reference


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------


# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------

def _data2vec_mask_fake(batch: int, clone_batch: int, side: int, mask_length: int, centres: int, target: int,
                        inverse_mask: bool, require_same_masks: bool, non_overlapping: bool, seed: int,
                        sample_offset: int, device: torch.device) -> torch.Tensor:
    """(B·K, side²) bool."""
    return torch.empty((batch * clone_batch, side * side), dtype=torch.bool, device=device)


def data2vec_block_mask_native(batch: int, clone_batch: int, side: int, mask_length: int, centres: int, target: int,
                               inverse_mask: bool, require_same_masks: bool, non_overlapping: bool, seed: int,
                               sample_offset: int, device: torch.device) -> torch.Tensor:
    out = _data2vec_mask_fake(batch, clone_batch, side, mask_length, centres, target, inverse_mask,
                              require_same_masks, non_overlapping, seed, sample_offset, device)
    tiles_side = -(-side // max(mask_length, 1))
    calls = reference.data2vec_calls_per_clone(tiles_side * tiles_side if non_overlapping else max(centres, 0), side * side)
    args = (_native.ptr(out, torch.bool), batch, clone_batch, side, mask_length, centres, target, calls, inverse_mask,
            require_same_masks, non_overlapping, seed % 2**64, sample_offset)
    if device.type == "cuda":
        _native.cuda_call("data2vec_mask_cuda", device, *args)
    else:
        _native.lib.data2vec_mask_cpu(*args, _native.cpu_threads(batch * clone_batch))
    return out


define_native("data2vec_block_mask", data2vec_block_mask_native, fake=_data2vec_mask_fake)


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------

def _score_mask_fake(scores: torch.Tensor, num_masked: int, num_guided: int, hint_pool: int, num_hints: int,
                     largest: bool, seed: int, sample_offset: int) -> torch.Tensor:
    """(B, N) bool."""
    return torch.empty(scores.shape, dtype=torch.bool, device=scores.device)


def score_mask_native(scores: torch.Tensor, num_masked: int, num_guided: int, hint_pool: int, num_hints: int,
                      largest: bool, seed: int, sample_offset: int) -> torch.Tensor:
    """scores (B, N) any floating dtype: float64 read as is, the others as float32 (exact: the same order)."""
    scores = scores.detach()
    dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
    scores = scores.to(dtype).contiguous()
    out = torch.empty(scores.shape, dtype=torch.bool, device=scores.device)
    batch, tokens = scores.shape
    args = (_native.ptr(scores, dtype), dtype == torch.float64, batch, tokens, num_masked, num_guided, hint_pool,
            num_hints, largest, seed % 2**64, sample_offset)
    if scores.device.type == "cuda":
        order = torch.empty(scores.shape, dtype=torch.int32, device=scores.device)  # sort workspace
        _native.cuda_call("score_mask_cuda", scores.device, _native.ptr(out, torch.bool), _native.ptr(order, torch.int32),
                          *args)
    else:
        _native.lib.score_mask_cpu(_native.ptr(out, torch.bool), *args, _native.cpu_threads(batch))
    return out


define_native("score_mask", score_mask_native, fake=_score_mask_fake)


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
