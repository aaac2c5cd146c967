"""The mask zoo in the torch.library catalogue: one declaration per (op, backend), its fake beside it,
and the native glue (`_C` through plain pointers), as masking/ops.py."""
from __future__ import annotations

import torch

from mimkernels import _native
from mimkernels._backends import HAS_TRITON
from mimkernels._library import define_native, define_op, define_reference


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------

def _multiblock_outputs(batch: int, blocks: int, grid: tuple[int, ...],
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """blocks (B, blocks, *grid) bool, ids (B, blocks, cells) int64, counts (B, blocks) int64."""
    cells = 1
    for side in grid:
        cells *= side
    return (torch.empty((batch, blocks, *grid), dtype=torch.bool, device=device),
            torch.empty((batch, blocks, cells), dtype=torch.int64, device=device),
            torch.empty((batch, blocks), dtype=torch.int64, device=device))


def _multiblock_fake(batch: int, height: int, width: int, enc_scale_min: float, enc_scale_max: float,
                     pred_scale_min: float, pred_scale_max: float, aspect_min: float, aspect_max: float,
                     num_enc: int, num_pred: int, min_keep: int, allow_overlap: bool, official: bool, seed: int,
                     sample_offset: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _multiblock_outputs(batch, num_pred + num_enc, (height, width), device)


def multiblock_mask_native(batch: int, height: int, width: int, enc_scale_min: float, enc_scale_max: float,
                           pred_scale_min: float, pred_scale_max: float, aspect_min: float, aspect_max: float,
                           num_enc: int, num_pred: int, min_keep: int, allow_overlap: bool, official: bool,
                           seed: int, sample_offset: int,
                           device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    blocks, ids, counts = _multiblock_fake(batch, height, width, enc_scale_min, enc_scale_max, pred_scale_min,
                                           pred_scale_max, aspect_min, aspect_max, num_enc, num_pred, min_keep,
                                           allow_overlap, official, seed, sample_offset, device)
    args = (_native.ptr(blocks, torch.bool), _native.ptr(ids, torch.int64), _native.ptr(counts, torch.int64),
            batch, height, width, enc_scale_min, enc_scale_max, pred_scale_min, pred_scale_max, aspect_min,
            aspect_max, num_enc, num_pred, min_keep, allow_overlap, official, seed % 2**64, sample_offset)
    if device.type == "cuda":
        _native.cuda_call("multiblock_mask_cuda", device, *args)
    else:
        _native.lib.multiblock_mask_cpu(*args, _native.cpu_threads(batch))
    return blocks, ids, counts


def _multiblock_3d_fake(batch: int, frames: int, height: int, width: int, temporal_scale_min: float,
                        temporal_scale_max: float, spatial_scale_min: float, spatial_scale_max: float,
                        aspect_min: float, aspect_max: float, num_blocks: int, max_temporal_keep: float,
                        official: bool, seed: int, sample_offset: int,
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _multiblock_outputs(batch, 2, (frames, height, width), device)


def multiblock_mask_3d_native(batch: int, frames: int, height: int, width: int, temporal_scale_min: float,
                              temporal_scale_max: float, spatial_scale_min: float, spatial_scale_max: float,
                              aspect_min: float, aspect_max: float, num_blocks: int, max_temporal_keep: float,
                              official: bool, seed: int, sample_offset: int,
                              device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    blocks, ids, counts = _multiblock_outputs(batch, 2, (frames, height, width), device)
    args = (_native.ptr(blocks, torch.bool), _native.ptr(ids, torch.int64), _native.ptr(counts, torch.int64),
            batch, frames, height, width, temporal_scale_min, temporal_scale_max, spatial_scale_min,
            spatial_scale_max, aspect_min, aspect_max, num_blocks, max_temporal_keep, official, seed % 2**64,
            sample_offset)
    if device.type == "cuda":
        _native.cuda_call("multiblock_mask_3d_cuda", device, *args)
    else:
        _native.lib.multiblock_mask_3d_cpu(*args, _native.cpu_threads(batch))
    return blocks, ids, counts


define_native("multiblock_mask", multiblock_mask_native, fake=_multiblock_fake)
define_native("multiblock_mask_3d", multiblock_mask_3d_native, fake=_multiblock_3d_fake)



# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
