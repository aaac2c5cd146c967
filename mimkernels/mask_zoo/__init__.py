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


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
