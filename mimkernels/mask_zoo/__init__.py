"""The mask zoo: the masks the field uses after MAE, batched, exact to the upstream generators and
reproducible (the contract: mask_zoo/SPEC.md). Every front door is in this file:

    I-JEPA / V-JEPA    multiblock_mask, multiblock_mask_3d                        (SPEC.md §2, §3)
    VideoMAE           tube_mask, running_cell_mask                               (§4, §5)
    UM-MAE             uniform_mask                                               (§6)
    data2vec 2.0       data2vec_block_mask                                        (§7)
    AttMask / HPM      score_mask                                                 (§8)
    DINOv2 / DINOv3    dino_collate_masks                                         (§9)
    report             mask_stats                                                 (§10)

As in the masking family: each front door validates once (mimkernels.checks), picks a backend
(`_backends.resolve`) and calls `reference.<op>` for "torch", else `torch.ops.mimkernels.<op>.<backend>`
(ops.py). The random ops draw from rng.md's Philox streams 5–12 (`rng.STREAM_*`): the same seed gives the
same masks on every backend and batch split (`sample_offset`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from mimkernels import _backends, _native, rng
from mimkernels.checks import as_device, check_float, check_int, check_tensor
from mimkernels.mask_zoo import ops as _ops  # noqa: F401  (puts the family's ops in the catalogue)
from mimkernels.mask_zoo import reference

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------


# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------
from mimkernels.masking import check_aspects  # the block mask's aspect bounds, also DINO's

__all__ += ["dino_collate_masks", "DinoMasks"]

_DINO_VERSIONS = ("v2", "v3")
# Rows of a collate: sample counters (word 1) and the slot index of a shuffle key are 32-bit.
_DINO_MAX_BATCH = 1 << 31
# Cells of a mask: below 2^31 (block_mask's sides and counts); the outputs hold B·N cells, and B·N is refused
# past 2^40 (a terabyte of bool) rather than allocated.
_DINO_MAX_CELLS = 1 << 31
_DINO_MAX_TOTAL = 1 << 40


class DinoMasks(NamedTuple):
    """dino_collate_masks' outputs, named as the keys of upstream's collate dict (SPEC.md §9)."""
    collated_masks: torch.Tensor      # (B, N) bool, True = masked
    mask_indices_list: torch.Tensor   # (upperbound,) int64: flat indices of the masked tokens, then 0
    masks_weight: torch.Tensor        # (upperbound,) float32: 1 / (masked tokens of the row), then 0
    n_masked_patches: torch.Tensor    # (1,) int64: the valid length of the two lists

    @property
    def upperbound(self) -> int:
        """Upstream's `upperbound`, Σ int(N · p_{i+1}) over the masked strata: the lists' length."""
        return self.mask_indices_list.shape[0]


def _check_ratio_pair(mask_ratio_min_max) -> tuple[float, float]:
    if not isinstance(mask_ratio_min_max, (tuple, list)) or len(mask_ratio_min_max) != 2:
        raise TypeError(f"mask_ratio_min_max must be a pair (min, max) of floats, got {mask_ratio_min_max!r}")
    lo = check_float(mask_ratio_min_max[0], "mask_ratio_min_max[0]", minimum=0.0, maximum=1.0)
    hi = check_float(mask_ratio_min_max[1], "mask_ratio_min_max[1]", minimum=0.0, maximum=1.0)
    if lo > hi:
        raise ValueError(f"mask_ratio_min_max must have min <= max, got {mask_ratio_min_max!r}")
    return lo, hi


def dino_collate_masks(batch: int, height: int = 16, width: int = 16, *, mask_ratio_min_max=(0.1, 0.5),
                       mask_probability: float = 0.5, min_num_patches: int = 4, max_num_patches: int | None = None,
                       min_aspect: float = 0.3, max_aspect: float | None = None, version: str = "v2",
                       random_circular_shift: bool = False, seed: int | None = None,
                       generator: torch.Generator | None = None, device=None, backend: str = "auto") -> DinoMasks:
    """The iBOT masks of DINOv2's / DINOv3's collate_data_and_cast for `batch` masks (upstream's B: global
    crops x samples) on a height x width patch grid (N = height·width): int(B · mask_probability) masks ask
    for stratified counts over linspace(*mask_ratio_min_max, n + 1) (v2: int(N · U(p_i, p_{i+1})); v3:
    int(N · p_{i+1}), completed to exactly that count; v3's random_circular_shift rolls them), the others
    are empty; the rows are shuffled. The masks are DINOv2's MaskingGenerator (the unilm block mask with
    min_num_patches=4, max_num_patches = N // 2 when None: upstream's 0.5·N). Returns DinoMasks
    (collated_masks (B, N) bool, mask_indices_list and masks_weight padded to upperbound, n_masked_patches
    (1,); `.upperbound` their length): no host sync, no data-dependent shape (SPEC.md §9)."""
    check_int(batch, "batch", minimum=0)
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    cells = height * width
    if batch >= _DINO_MAX_BATCH or cells >= _DINO_MAX_CELLS or batch * cells >= _DINO_MAX_TOTAL:
        raise ValueError(f"batch must be < 2^31, height * width < 2^31 and batch * height * width < 2^40, got "
                         f"batch={batch}, height={height}, width={width}")
    lo, hi = _check_ratio_pair(mask_ratio_min_max)
    probability = check_float(mask_probability, "mask_probability", minimum=0.0, maximum=1.0)
    check_int(min_num_patches, "min_num_patches", minimum=0)
    max_num_patches = int(0.5 * cells) if max_num_patches is None else check_int(max_num_patches, "max_num_patches",
                                                                                minimum=1)
    min_aspect, max_aspect = check_aspects(min_aspect, max_aspect)
    if version not in _DINO_VERSIONS:
        raise ValueError(f"version must be one of {_DINO_VERSIONS}, got {version!r}")
    if not isinstance(random_circular_shift, bool):
        raise TypeError(f"random_circular_shift must be a bool, got {type(random_circular_shift).__name__}")
    if random_circular_shift and version != "v3":
        raise ValueError("random_circular_shift is DINOv3's (version='v3'); DINOv2's collate has no shift")
    dev = as_device(device)
    be = _backends.resolve("dino_collate_masks", backend, dev)
    key = rng.resolve_seed(seed, generator)
    n_masked = int(batch * probability)
    probs, upperbound = reference.dino_strata(cells, n_masked, (lo, hi))
    args = (batch, n_masked, height, width, min_num_patches, max_num_patches, math.log(min_aspect),
            math.log(max_aspect), version == "v3", random_circular_shift, rng.seed_to_i64(key))
    if be == "torch":
        masks = _ops.dino_collate_masks_reference(probs.to(dev), *args)
        return DinoMasks(masks, *reference.dino_index_lists(masks, upperbound))
    if be == "cpp" and not torch.compiler.is_compiling():
        # the CPU path: _C directly, as masking's per-sample fast path (the catalogue op's dispatch costs as
        # much as the kernel at B = 256), then the lists in one C++ pass
        masks = _ops.dino_collate_masks_native(probs, *args)
        return DinoMasks(masks, *_ops.dino_index_lists_native(masks, upperbound))
    masks = getattr(torch.ops.mimkernels.dino_collate_masks, be)(probs.to(dev), *args)
    return DinoMasks(masks, *reference.dino_index_lists(masks, upperbound))


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
