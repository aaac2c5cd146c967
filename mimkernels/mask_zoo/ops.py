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
# torch.ops.mimkernels.tube_mask.cpp / .cuda, running_cell_mask.cpp / .cuda: (B, T·H·W) bool, the bodies of
# csrc/include/mimkernels/video_masks.h (csrc/mask_zoo/video_masks*).

def _video_entry(name: str, device: torch.device, batch: int, *args) -> None:
    """`_C.<name>_cuda(*args, stream)` on CUDA tensors, else `_C.<name>_cpu(*args, threads)`."""
    if device.type == "cuda":
        _native.cuda_call(f"{name}_cuda", device, *args)
    else:
        getattr(_native.lib, f"{name}_cpu")(*args, _native.cpu_threads(batch))


def _tube_mask_fake(batch: int, frames: int, cells: int, masked: int, seed: int, sample_offset: int,
                    device: torch.device) -> torch.Tensor:
    return torch.empty((batch, frames * cells), dtype=torch.bool, device=device)


def tube_mask_native(batch: int, frames: int, cells: int, masked: int, seed: int, sample_offset: int,
                     device: torch.device) -> torch.Tensor:
    out = _tube_mask_fake(batch, frames, cells, masked, seed, sample_offset, device)
    _video_entry("tube_mask", device, batch, _native.ptr(out, torch.bool), batch, frames, cells,
                 max(0, min(masked, cells)), seed % 2**64, sample_offset)
    return out


define_native("tube_mask", tube_mask_native, fake=_tube_mask_fake)


def _running_cell_mask_fake(batch: int, frames: int, height: int, width: int, masked_slots: int, seed: int,
                            sample_offset: int, device: torch.device) -> torch.Tensor:
    return torch.empty((batch, frames * height * width), dtype=torch.bool, device=device)


def running_cell_mask_native(batch: int, frames: int, height: int, width: int, masked_slots: int, seed: int,
                             sample_offset: int, device: torch.device) -> torch.Tensor:
    out = _running_cell_mask_fake(batch, frames, height, width, masked_slots, seed, sample_offset, device)
    _video_entry("running_cell_mask", device, batch, _native.ptr(out, torch.bool), batch, frames, height, width,
                 masked_slots, seed % 2**64, sample_offset)
    return out


define_native("running_cell_mask", running_cell_mask_native, fake=_running_cell_mask_fake)


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------
# torch.ops.mimkernels.uniform_mask.cpp / .cuda: (mask, secondary), (B, H·W) bool each.

def _uniform_mask_fake(batch: int, height: int, width: int, keep_final: int, seed: int, sample_offset: int,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.empty((batch, height * width), dtype=torch.bool, device=device),
            torch.empty((batch, height * width), dtype=torch.bool, device=device))


def uniform_mask_native(batch: int, height: int, width: int, keep_final: int, seed: int, sample_offset: int,
                        device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """height and width even (the front door checks); keep_final is clamped to [0, blocks] here."""
    mask, secondary = _uniform_mask_fake(batch, height, width, keep_final, seed, sample_offset, device)
    keep_final = max(0, min(keep_final, (height // 2) * (width // 2)))
    pointers = [_native.ptr(mask, torch.bool), _native.ptr(secondary, torch.bool)]
    if device.type == "cuda":  # the candidate rows of each sample
        workspace = torch.empty((batch, reference.uniform_candidate_rows(height * width)), dtype=torch.uint8,
                                device=device)
        pointers.append(_native.ptr(workspace, torch.uint8))
    _video_entry("uniform_mask", device, batch, *pointers, batch, height, width, keep_final, seed % 2**64,
                 sample_offset)
    return mask, secondary


define_native("uniform_mask", uniform_mask_native, fake=_uniform_mask_fake)


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------

define_reference("mask_stats", reference.mask_stats)
