"""The mask zoo's modules and DataLoader collators (re-exported by mimkernels.nn)."""
from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn

from mimkernels import rng
from mimkernels.mask_zoo import multiblock_mask, multiblock_mask_3d
from mimkernels.masking import MaskCollator

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------

__all__ += ["MultiBlockMaskCollator", "MultiBlock3DMaskCollator"]


def _grid(size, patch_size: int, name: str) -> tuple[int, int]:
    size = size if isinstance(size, tuple) else (size, size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
        raise TypeError(f"{name} must be an int or a pair of ints, got {size!r}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be an int >= 1, got {patch_size!r}")
    return size[0] // patch_size, size[1] // patch_size


class MultiBlockMaskCollator(MaskCollator):
    """I-JEPA's collate_fn: returns (collated batch, masks_enc, masks_pred) as ijepa's train loop (and
    lightly's IJEPAMaskCollator) gives them: lists of nenc and npred int64 tensors (B, K)
    (MultiBlockMasks.to_upstream). The constructor takes upstream's arguments and defaults
    (ijepa src/masks/multiblock.py MaskCollator); I-JEPA's ViT-H/14 config is patch_size=14,
    enc_mask_scale=(0.85, 1.0), pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), npred=4,
    min_keep=10. Masks from multiblock_mask(..., variant=variant), seeded as masking.MaskCollator
    seeds (seed, epoch, rank, batch index: call set_epoch each epoch), so they do not depend on the
    number of workers."""

    def __init__(self, input_size=(224, 224), patch_size: int = 16, enc_mask_scale=(0.2, 0.8),
                 pred_mask_scale=(0.2, 0.8), aspect_ratio=(0.3, 3.0), nenc: int = 1, npred: int = 2,
                 min_keep: int = 4, allow_overlap: bool = False, *, variant: str = "fixed", seed: int = 0,
                 collate_fn: Callable | None = None):
        height, width = _grid(input_size, patch_size, "input_size")
        mask_fn = functools.partial(multiblock_mask, height=height, width=width, enc_mask_scale=enc_mask_scale,
                                    pred_mask_scale=pred_mask_scale, aspect_ratio=aspect_ratio,
                                    num_enc_masks=nenc, num_pred_masks=npred, min_keep=min_keep,
                                    allow_overlap=allow_overlap, variant=variant)
        mask_fn(0, seed=0)  # the arguments' errors at construction, not in a worker
        super().__init__(mask_fn, seed, collate_fn)

    def __call__(self, samples: list):
        collated, masks = super().__call__(samples)
        return (collated, *masks.to_upstream())


class MultiBlock3DMaskCollator(MaskCollator):
    """V-JEPA's collate_fn (jepa src/masks/multiblock3d.py MaskCollator): returns (collated batch,
    masks_enc, masks_pred), one (B, K) int64 tensor per mask config in each list. cfgs_mask: dicts with
    upstream's keys (spatial_scale, temporal_scale, aspect_ratio, num_blocks, max_temporal_keep,
    max_keep), e.g. configs/pretrain/vitl16.yaml's two. Config k draws with derive_seed(batch seed, k);
    batch seeds as masking.MaskCollator's."""

    def __init__(self, cfgs_mask, crop_size=(224, 224), num_frames: int = 16, patch_size: int = 16,
                 tubelet_size: int = 2, *, variant: str = "fixed", seed: int = 0, collate_fn: Callable | None = None):
        height, width = _grid(crop_size, patch_size, "crop_size")
        if isinstance(tubelet_size, bool) or not isinstance(tubelet_size, int) or tubelet_size < 1:
            raise ValueError(f"tubelet_size must be an int >= 1, got {tubelet_size!r}")
        frames = num_frames // tubelet_size
        self.generators = [
            (functools.partial(multiblock_mask_3d, frames=frames, height=height, width=width,
                               spatial_scale=tuple(cfg.get("spatial_scale")),
                               temporal_scale=tuple(cfg.get("temporal_scale", (1.0, 1.0))),
                               aspect_ratio=tuple(cfg.get("aspect_ratio")), num_blocks=cfg.get("num_blocks"),
                               max_temporal_keep=cfg.get("max_temporal_keep", 1.0), variant=variant),
             cfg.get("max_keep", None))
            for cfg in cfgs_mask]
        for generate, _ in self.generators:
            generate(0, seed=0)
        super().__init__(self._masks, seed, collate_fn)

    def _masks(self, batch: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for k, (generate, max_keep) in enumerate(self.generators):
            (enc,), (pred,) = generate(batch, seed=rng.derive_seed(seed, k)).to_upstream(max_keep)
            out.append((enc, pred))
        return out

    def __call__(self, samples: list):
        collated, masks = super().__call__(samples)
        return collated, [enc for enc, _ in masks], [pred for _, pred in masks]



# ---- VideoMAE tube and running cell ---------------------------------------------------------------


# ---- UM-MAE uniform masking -----------------------------------------------------------------------


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------


# ---- score-guided masks ---------------------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
