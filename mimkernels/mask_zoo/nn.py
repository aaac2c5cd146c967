"""The mask zoo's modules and DataLoader collators (re-exported by mimkernels.nn)."""
from __future__ import annotations

import functools

import torch
from torch import nn

from mimkernels.mask_zoo import dino_collate_masks
from mimkernels.masking import MaskCollator

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------


# ---- VideoMAE tube and running cell ---------------------------------------------------------------


# ---- UM-MAE uniform masking -----------------------------------------------------------------------


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------


# ---- score-guided masks ---------------------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
__all__ += ["DinoMaskCollator"]


class DinoMaskCollator(MaskCollator):
    """DINOv2's / DINOv3's `collate_data_and_cast` as a DataLoader collate_fn, its masks from
    dino_collate_masks: samples are (crops, target) with crops["global_crops"] and crops["local_crops"] lists
    of tensors (DataAugmentationDINO's output); returns upstream's dict: collated_global_crops and
    collated_local_crops (cast to dtype, crop-major as upstream), collated_masks (B, N) bool with B =
    n_global_crops · len(samples), mask_indices_list, masks_weight, upperbound, n_masked_patches.

    Seeding is masking.MaskCollator's (SPEC.md §10 of masking): batch k of epoch e on rank r draws with seed
    derive_seed(derive_seed(seed, e), r, k), the same whatever num_workers; call set_epoch(e) each epoch.
    mask_kwargs: dino_collate_masks' settings (mask_ratio_min_max, mask_probability, version,
    random_circular_shift, min_num_patches, max_num_patches, ...)."""

    def __init__(self, height: int, width: int | None = None, *, dtype: torch.dtype = torch.float32, seed: int = 0,
                 **mask_kwargs):
        width = height if width is None else width
        dino_collate_masks(0, height, width, seed=0, **mask_kwargs)  # validates the settings once, here
        super().__init__(functools.partial(dino_collate_masks, height=height, width=width, **mask_kwargs), seed=seed)
        self.dtype = dtype

    def __call__(self, samples: list) -> dict:
        seed = self.step_seed()
        self.step += 1
        crops = [sample[0] for sample in samples]
        n_global, n_local = len(crops[0]["global_crops"]), len(crops[0]["local_crops"])
        global_crops = torch.stack([c["global_crops"][i] for i in range(n_global) for c in crops])
        local_crops = torch.stack([c["local_crops"][i] for i in range(n_local) for c in crops]) if n_local else None
        masks = self.mask_fn(len(global_crops), seed=seed)
        return {
            "collated_global_crops": global_crops.to(self.dtype),
            "collated_local_crops": None if local_crops is None else local_crops.to(self.dtype),
            "collated_masks": masks.collated_masks,
            "mask_indices_list": masks.mask_indices_list,
            "masks_weight": masks.masks_weight,
            "upperbound": masks.upperbound,
            "n_masked_patches": masks.n_masked_patches,
        }
