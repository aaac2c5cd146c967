"""The mask zoo in the torch.library catalogue: one declaration per (op, backend), its fake beside it,
and the native glue (`_C` through plain pointers), as masking/ops.py."""
from __future__ import annotations

import torch

from mimkernels import _native, rng
from mimkernels._library import define_native, define_reference
from mimkernels.mask_zoo import reference


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
                     seed_step: torch.Tensor | None, sample_offset: int,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _multiblock_outputs(batch, num_pred + num_enc, (height, width), device)


def multiblock_mask_native(batch: int, height: int, width: int, enc_scale_min: float, enc_scale_max: float,
                           pred_scale_min: float, pred_scale_max: float, aspect_min: float, aspect_max: float,
                           num_enc: int, num_pred: int, min_keep: int, allow_overlap: bool, official: bool,
                           seed: int, seed_step: torch.Tensor | None, sample_offset: int,
                           device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    blocks, ids, counts = _multiblock_fake(batch, height, width, enc_scale_min, enc_scale_max, pred_scale_min,
                                           pred_scale_max, aspect_min, aspect_max, num_enc, num_pred, min_keep,
                                           allow_overlap, official, seed, seed_step, sample_offset, device)
    args = (_native.ptr(blocks, torch.bool), _native.ptr(ids, torch.int64), _native.ptr(counts, torch.int64),
            batch, height, width, enc_scale_min, enc_scale_max, pred_scale_min, pred_scale_max, aspect_min,
            aspect_max, num_enc, num_pred, min_keep, allow_overlap, official, seed % 2**64, _native.seed_step_ptr(seed_step),
            sample_offset)
    if device.type == "cuda":
        _native.cuda_call("multiblock_mask_cuda", device, *args)
    else:
        _native.lib.multiblock_mask_cpu(*args, True, _native.cpu_threads(batch))
    return blocks, ids, counts


def _multiblock_3d_fake(batch: int, frames: int, height: int, width: int, temporal_scale_min: float,
                        temporal_scale_max: float, spatial_scale_min: float, spatial_scale_max: float,
                        aspect_min: float, aspect_max: float, num_blocks: int, max_temporal_keep: float,
                        official: bool, seed: int, seed_step: torch.Tensor | None, sample_offset: int,
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _multiblock_outputs(batch, 2, (frames, height, width), device)


def multiblock_mask_3d_native(batch: int, frames: int, height: int, width: int, temporal_scale_min: float,
                              temporal_scale_max: float, spatial_scale_min: float, spatial_scale_max: float,
                              aspect_min: float, aspect_max: float, num_blocks: int, max_temporal_keep: float,
                              official: bool, seed: int, seed_step: torch.Tensor | None, sample_offset: int,
                              device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    blocks, ids, counts = _multiblock_outputs(batch, 2, (frames, height, width), device)
    args = (_native.ptr(blocks, torch.bool), _native.ptr(ids, torch.int64), _native.ptr(counts, torch.int64),
            batch, frames, height, width, temporal_scale_min, temporal_scale_max, spatial_scale_min,
            spatial_scale_max, aspect_min, aspect_max, num_blocks, max_temporal_keep, official, seed % 2**64,
            _native.seed_step_ptr(seed_step), sample_offset)
    if device.type == "cuda":
        _native.cuda_call("multiblock_mask_3d_cuda", device, *args)
    else:
        _native.lib.multiblock_mask_3d_cpu(*args, True, _native.cpu_threads(batch))
    return blocks, ids, counts


define_native("multiblock_mask", multiblock_mask_native, fake=_multiblock_fake)
define_native("multiblock_mask_3d", multiblock_mask_3d_native, fake=_multiblock_3d_fake)



# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------
# torch.ops.mimkernels.tube_mask.cpp / .cuda, running_cell_mask.cpp / .cuda: (B, T·H·W) bool, the bodies of
# csrc/include/mimkernels/video_masks.h (csrc/mask_zoo/video_masks*).

def _video_entry(name: str, device: torch.device, batch: int, *args) -> None:
    """`_C.<name>_cuda(*args, stream)` on CUDA tensors, else `_C.<name>_cpu(*args, threads)`."""
    if device.type == "cuda":
        _native.cuda_call(f"{name}_cuda", device, *args)
    else:
        getattr(_native.lib, f"{name}_cpu")(*args, _native.cpu_threads(batch))


def _tube_mask_fake(batch: int, frames: int, cells: int, masked: int, seed: int, seed_step: torch.Tensor | None,
                    sample_offset: int, device: torch.device) -> torch.Tensor:
    return torch.empty((batch, frames * cells), dtype=torch.bool, device=device)


def tube_mask_native(batch: int, frames: int, cells: int, masked: int, seed: int, seed_step: torch.Tensor | None,
                     sample_offset: int, device: torch.device) -> torch.Tensor:
    out = _tube_mask_fake(batch, frames, cells, masked, seed, seed_step, sample_offset, device)
    _video_entry("tube_mask", device, batch, _native.ptr(out, torch.bool), batch, frames, cells,
                 max(0, min(masked, cells)), seed % 2**64, _native.seed_step_ptr(seed_step), sample_offset)
    return out


define_native("tube_mask", tube_mask_native, fake=_tube_mask_fake)


def _running_cell_mask_fake(batch: int, frames: int, height: int, width: int, masked_slots: int, seed: int,
                            seed_step: torch.Tensor | None, sample_offset: int, device: torch.device) -> torch.Tensor:
    return torch.empty((batch, frames * height * width), dtype=torch.bool, device=device)


def running_cell_mask_native(batch: int, frames: int, height: int, width: int, masked_slots: int, seed: int,
                             seed_step: torch.Tensor | None, sample_offset: int, device: torch.device) -> torch.Tensor:
    out = _running_cell_mask_fake(batch, frames, height, width, masked_slots, seed, seed_step, sample_offset, device)
    _video_entry("running_cell_mask", device, batch, _native.ptr(out, torch.bool), batch, frames, height, width,
                 masked_slots, seed % 2**64, _native.seed_step_ptr(seed_step), sample_offset)
    return out


define_native("running_cell_mask", running_cell_mask_native, fake=_running_cell_mask_fake)


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------
# torch.ops.mimkernels.uniform_mask.cpp / .cuda: (mask, secondary), (B, H·W) bool each.

def _uniform_mask_fake(batch: int, height: int, width: int, keep_final: int, seed: int,
                       seed_step: torch.Tensor | None, sample_offset: int,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.empty((batch, height * width), dtype=torch.bool, device=device),
            torch.empty((batch, height * width), dtype=torch.bool, device=device))


def uniform_mask_native(batch: int, height: int, width: int, keep_final: int, seed: int,
                        seed_step: torch.Tensor | None, sample_offset: int,
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """height and width even (the front door checks); keep_final is clamped to [0, blocks] here."""
    mask, secondary = _uniform_mask_fake(batch, height, width, keep_final, seed, seed_step, sample_offset, device)
    keep_final = max(0, min(keep_final, (height // 2) * (width // 2)))
    pointers = [_native.ptr(mask, torch.bool), _native.ptr(secondary, torch.bool)]
    if device.type == "cuda":  # the candidate rows of each sample
        workspace = torch.empty((batch, reference.uniform_candidate_rows(height * width)), dtype=torch.uint8,
                                device=device)
        pointers.append(_native.ptr(workspace, torch.uint8))
    _video_entry("uniform_mask", device, batch, *pointers, batch, height, width, keep_final, seed % 2**64,
                 _native.seed_step_ptr(seed_step), sample_offset)
    return mask, secondary


define_native("uniform_mask", uniform_mask_native, fake=_uniform_mask_fake)


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------

def _data2vec_mask_fake(batch: int, clone_batch: int, side: int, mask_length: int, centres: int, target: int,
                        inverse_mask: bool, require_same_masks: bool, non_overlapping: bool, seed: int,
                        seed_step: torch.Tensor | None, sample_offset: int, device: torch.device) -> torch.Tensor:
    """(B·K, side²) bool."""
    return torch.empty((batch * clone_batch, side * side), dtype=torch.bool, device=device)


def data2vec_block_mask_native(batch: int, clone_batch: int, side: int, mask_length: int, centres: int, target: int,
                               inverse_mask: bool, require_same_masks: bool, non_overlapping: bool, seed: int,
                               seed_step: torch.Tensor | None, sample_offset: int,
                               device: torch.device) -> torch.Tensor:
    out = _data2vec_mask_fake(batch, clone_batch, side, mask_length, centres, target, inverse_mask,
                              require_same_masks, non_overlapping, seed, seed_step, sample_offset, device)
    tiles_side = -(-side // max(mask_length, 1))
    calls = reference.data2vec_calls_per_clone(tiles_side * tiles_side if non_overlapping else max(centres, 0), side * side)
    args = (_native.ptr(out, torch.bool), batch, clone_batch, side, mask_length, centres, target, calls, inverse_mask,
            require_same_masks, non_overlapping, seed % 2**64, _native.seed_step_ptr(seed_step), sample_offset)
    if device.type == "cuda":
        _native.cuda_call("data2vec_mask_cuda", device, *args)
    else:
        _native.lib.data2vec_mask_cpu(*args, _native.cpu_threads(batch * clone_batch))
    return out


define_native("data2vec_block_mask", data2vec_block_mask_native, fake=_data2vec_mask_fake)


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------

def _score_mask_fake(scores: torch.Tensor, num_masked: int, num_guided: int, hint_pool: int, num_hints: int,
                     largest: bool, seed: int, seed_step: torch.Tensor | None, sample_offset: int) -> torch.Tensor:
    """(B, N) bool."""
    return torch.empty(scores.shape, dtype=torch.bool, device=scores.device)


def score_mask_native(scores: torch.Tensor, num_masked: int, num_guided: int, hint_pool: int, num_hints: int,
                      largest: bool, seed: int, seed_step: torch.Tensor | None, sample_offset: int) -> torch.Tensor:
    """scores (B, N) any floating dtype: float64 read as is, the others as float32 (exact: the same order)."""
    scores = scores.detach()
    dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
    scores = scores.to(dtype).contiguous()
    out = torch.empty(scores.shape, dtype=torch.bool, device=scores.device)
    batch, tokens = scores.shape
    args = (_native.ptr(scores, dtype), dtype == torch.float64, batch, tokens, num_masked, num_guided, hint_pool,
            num_hints, largest, seed % 2**64, _native.seed_step_ptr(seed_step), sample_offset)
    if scores.device.type == "cuda":
        order = torch.empty(scores.shape, dtype=torch.int32, device=scores.device)  # sort workspace
        _native.cuda_call("score_mask_cuda", scores.device, _native.ptr(out, torch.bool), _native.ptr(order, torch.int32),
                          *args)
    else:
        _native.lib.score_mask_cpu(_native.ptr(out, torch.bool), *args, _native.cpu_threads(batch))
    return out


define_native("score_mask", score_mask_native, fake=_score_mask_fake)


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------
# torch.ops.mimkernels.dino_collate_masks.torch / .cpp / .cuda: the collated masks (B, H·W) bool; probs is
# upstream's float32 linspace (n_masked + 1 values) on the output's device. The index lists are torch ops
# on these masks (reference.dino_index_lists), the same on every backend.

def _dino_collate_fake(probs: torch.Tensor, batch: int, n_masked: int, height: int, width: int, min_num_patches: int,
                       max_num_patches: int, log_aspect_min: float, log_aspect_max: float, v3: bool,
                       circular_shift: bool, seed: int, seed_step: torch.Tensor | None) -> torch.Tensor:
    return torch.empty((batch, height * width), dtype=torch.bool, device=probs.device)


def dino_collate_masks_reference(probs: torch.Tensor, batch: int, n_masked: int, height: int, width: int,
                                 min_num_patches: int, max_num_patches: int, log_aspect_min: float,
                                 log_aspect_max: float, v3: bool, circular_shift: bool, seed: int,
                                 seed_step: torch.Tensor | None) -> torch.Tensor:
    """A seed tensor's key is read on the host here (the reference draws row by row there, SPEC.md §9)."""
    from mimkernels.mask_zoo import reference
    key = rng.reference_key(seed, seed_step, on_host=True) % 2**64
    masks = reference.dino_collate_masks(batch, height, width, probs.cpu(), n_masked, min_num_patches,
                                         max_num_patches, (log_aspect_min, log_aspect_max), v3, circular_shift, key)
    return masks.to(probs.device)


def dino_collate_masks_native(probs: torch.Tensor, batch: int, n_masked: int, height: int, width: int,
                              min_num_patches: int, max_num_patches: int, log_aspect_min: float, log_aspect_max: float,
                              v3: bool, circular_shift: bool, seed: int,
                              seed_step: torch.Tensor | None) -> torch.Tensor:
    probs = probs.contiguous()
    out = _dino_collate_fake(probs, batch, n_masked, height, width, min_num_patches, max_num_patches, log_aspect_min,
                             log_aspect_max, v3, circular_shift, seed, seed_step)
    settings = (batch, n_masked, height, width, min_num_patches, max_num_patches, log_aspect_min, log_aspect_max, v3,
                circular_shift, seed % 2**64, _native.seed_step_ptr(seed_step))
    pointers = (_native.ptr(out, torch.bool), _native.ptr(probs, torch.float32))
    if probs.device.type == "cuda":
        size = _native.lib.dino_collate_workspace_bytes(batch, height, width)
        workspace = torch.empty(size, dtype=torch.uint8, device=probs.device)  # torch's caching allocator
        _native.cuda_call("dino_collate_cuda", probs.device, *pointers, _native.ptr(workspace, torch.uint8),
                          *settings)
    else:
        _native.lib.dino_collate_cpu(*pointers, *settings, _native.cpu_threads(batch))
    return out


def dino_index_lists_native(masks: torch.Tensor, upperbound: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """reference.dino_index_lists on CPU masks in one C++ pass (the torch version's cumsum and scatters cost
    ~10x more): the same bits."""
    masks = masks.contiguous()
    indices = torch.empty(upperbound, dtype=torch.int64)
    weights = torch.empty(upperbound, dtype=torch.float32)
    n_masked = torch.empty(1, dtype=torch.int64)
    _native.lib.dino_index_lists_cpu(_native.ptr(masks, torch.bool), masks.shape[0], masks.shape[1], upperbound,
                                     _native.ptr(indices, torch.int64), _native.ptr(weights, torch.float32),
                                     _native.ptr(n_masked, torch.int64))
    return indices, weights, n_masked


define_reference("dino_collate_masks", dino_collate_masks_reference)
define_native("dino_collate_masks", dino_collate_masks_native, fake=_dino_collate_fake)


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------

define_reference("mask_stats", reference.mask_stats)
