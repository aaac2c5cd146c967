"""The mask zoo's table of calls: one tiny valid call per op for the contract tests and `python -m
mimkernels.info`, and the invalid calls, each raising an error that names the argument. Each section
adds its ops to VALID_CALLS (a function of the device) and BAD_CALLS."""
from __future__ import annotations

import torch

VALID_CALLS = {}   # op -> function(device) -> (args, kwargs)
BAD_CALLS = []     # (op, argument, bad value, expected exception)


def valid_calls(device: torch.device) -> dict[str, tuple[tuple, dict]]:
    """op -> (args, kwargs): one tiny call per op on `device`."""
    return {op: call(device) for op, call in VALID_CALLS.items()}


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------

VALID_CALLS["multiblock_mask"] = lambda device: ((4, 8, 8), {"seed": 0, "device": device})
VALID_CALLS["multiblock_mask_3d"] = lambda device: ((2, 2, 6, 6), {"seed": 0, "device": device})
BAD_CALLS += [
    ("multiblock_mask", "batch", 2.0, TypeError), ("multiblock_mask", "batch", -1, ValueError),
    ("multiblock_mask", "height", 0, ValueError), ("multiblock_mask", "width", "8", TypeError),
    ("multiblock_mask", "height", 1 << 28, ValueError),  # 2^31 cells: refused, not allocated
    ("multiblock_mask", "enc_mask_scale", (0.9, 0.8), ValueError),
    ("multiblock_mask", "enc_mask_scale", 0.5, TypeError),
    ("multiblock_mask", "pred_mask_scale", (0.1, 1.5), ValueError),
    ("multiblock_mask", "aspect_ratio", (0.0, 1.0), ValueError),
    ("multiblock_mask", "aspect_ratio", (1.0, float("inf")), ValueError),
    ("multiblock_mask", "num_enc_masks", -1, ValueError), ("multiblock_mask", "num_pred_masks", 1.0, TypeError),
    ("multiblock_mask", "num_pred_masks", 65, ValueError),
    ("multiblock_mask", "min_keep", -1, ValueError), ("multiblock_mask", "allow_overlap", 1, TypeError),
    ("multiblock_mask", "variant", "ijepa", ValueError), ("multiblock_mask", "seed", 1.5, TypeError),
    ("multiblock_mask", "sample_offset", -1, ValueError), ("multiblock_mask", "sample_offset", 2**32, ValueError),
    ("multiblock_mask_3d", "batch", -1, ValueError), ("multiblock_mask_3d", "frames", 0, ValueError),
    ("multiblock_mask_3d", "height", 2.0, TypeError), ("multiblock_mask_3d", "frames", 1 << 40, ValueError), ("multiblock_mask_3d", "width", -3, ValueError),
    ("multiblock_mask_3d", "spatial_scale", (0.5, 0.2), ValueError),
    ("multiblock_mask_3d", "temporal_scale", (0.0, 2.0), ValueError),
    ("multiblock_mask_3d", "aspect_ratio", (-1.0, 1.0), ValueError),
    ("multiblock_mask_3d", "num_blocks", -1, ValueError), ("multiblock_mask_3d", "num_blocks", 65, ValueError),
    ("multiblock_mask_3d", "max_temporal_keep", 1.5, ValueError),
    ("multiblock_mask_3d", "variant", None, ValueError), ("multiblock_mask_3d", "sample_offset", 1.0, TypeError),
]



# ---- VideoMAE tube and running cell ---------------------------------------------------------------
VALID_CALLS["tube_mask"] = lambda device: ((2, 2, 3, 4, 0.5), {"seed": 0, "device": device})
VALID_CALLS["running_cell_mask"] = lambda device: ((2, 3, 3, 4, 0.5), {"seed": 0, "device": device})
BAD_CALLS += [
    ("tube_mask", "batch", -1, ValueError), ("tube_mask", "batch", 2.0, TypeError),
    ("tube_mask", "frames", 0, ValueError), ("tube_mask", "height", "3", TypeError),
    ("tube_mask", "width", 2**31, ValueError),  # cells per sample past 2^31
    ("tube_mask", "mask_ratio", 1.5, ValueError), ("tube_mask", "mask_ratio", float("nan"), ValueError),
    ("tube_mask", "mask_ratio", "0.9", TypeError), ("tube_mask", "seed", 1.0, TypeError),
    ("tube_mask", "sample_offset", -1, ValueError), ("tube_mask", "sample_offset", 2**32, ValueError),
    ("tube_mask", "generator", 3, TypeError),
    ("running_cell_mask", "batch", -2, ValueError), ("running_cell_mask", "frames", 1.0, TypeError),
    ("running_cell_mask", "height", 0, ValueError), ("running_cell_mask", "width", -4, ValueError),
    ("running_cell_mask", "frames", 2**31, ValueError),
    ("running_cell_mask", "mask_ratio", 0.2, ValueError),  # int(4 · 0.2) = 0 masked slots: upstream asserts
    ("running_cell_mask", "mask_ratio", 1.0, ValueError),  # 4 masked slots
    ("running_cell_mask", "mask_ratio", None, TypeError), ("running_cell_mask", "seed", "0", TypeError),
    ("running_cell_mask", "sample_offset", 0.5, TypeError),
]


# ---- UM-MAE uniform masking -----------------------------------------------------------------------
VALID_CALLS["uniform_mask"] = lambda device: ((2, 4, 6, 0.5), {"seed": 0, "device": device})
BAD_CALLS += [
    ("uniform_mask", "batch", -1, ValueError), ("uniform_mask", "batch", None, TypeError),
    ("uniform_mask", "height", 5, ValueError),  # odd: no 2 x 2 blocks
    ("uniform_mask", "width", 0, ValueError), ("uniform_mask", "width", 4.0, TypeError),
    ("uniform_mask", "height", 2**32, ValueError),
    ("uniform_mask", "vis_mask_ratio", -0.25, ValueError), ("uniform_mask", "vis_mask_ratio", 1.25, ValueError),
    ("uniform_mask", "vis_mask_ratio", "0.25", TypeError), ("uniform_mask", "seed", 2.5, TypeError),
    ("uniform_mask", "sample_offset", -1, ValueError), ("uniform_mask", "generator", "g", TypeError),
]


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------

VALID_CALLS["data2vec_block_mask"] = lambda device: ((2, 49, 0.8, 3), {"clone_batch": 3, "seed": 0, "device": device})
BAD_CALLS += [
    ("data2vec_block_mask", "batch", -1, ValueError), ("data2vec_block_mask", "batch", 2.0, TypeError),
    ("data2vec_block_mask", "num_patches", 50, ValueError), ("data2vec_block_mask", "num_patches", 0, ValueError),
    ("data2vec_block_mask", "mask_prob", 1.5, ValueError), ("data2vec_block_mask", "mask_prob", "0.8", TypeError),
    ("data2vec_block_mask", "mask_length", 1, ValueError), ("data2vec_block_mask", "mask_length", 3.0, TypeError),
    ("data2vec_block_mask", "mask_prob_adjust", float("inf"), ValueError),
    ("data2vec_block_mask", "mask_prob_adjust", -0.5, ValueError),
    ("data2vec_block_mask", "mask_dropout", -0.1, ValueError), ("data2vec_block_mask", "clone_batch", 0, ValueError),
    ("data2vec_block_mask", "clone_batch", 2**31, ValueError),
    ("data2vec_block_mask", "inverse_mask", 1, TypeError), ("data2vec_block_mask", "non_overlapping", "yes", TypeError),
    ("data2vec_block_mask", "require_same_masks", None, TypeError),
    ("data2vec_block_mask", "sample_offset", 2**32, ValueError), ("data2vec_block_mask", "seed", 0.5, TypeError),
]


# ---- score-guided masks ---------------------------------------------------------------------------

VALID_CALLS["score_mask"] = lambda device: (
    (torch.linspace(0, 1, 32, device=device).reshape(2, 16), 0.5), {"score_share": 0.5, "seed": 0})
BAD_CALLS += [
    ("score_mask", "scores", torch.zeros(4), ValueError), ("score_mask", "scores", torch.zeros(2, 4, dtype=torch.int64),
                                                          TypeError),
    ("score_mask", "scores", [[0.5]], TypeError), ("score_mask", "mask_ratio", 1.5, ValueError),
    ("score_mask", "largest", 1, TypeError), ("score_mask", "score_share", -0.5, ValueError),
    ("score_mask", "score_share", float("nan"), ValueError),
    ("score_mask", "num_masked", 17, ValueError), ("score_mask", "num_masked", 2.0, TypeError),
    ("score_mask", "hint_pool", 2.0, ValueError), ("score_mask", "hint_ratio", 0.5, ValueError),
    ("score_mask", "sample_offset", -1, ValueError), ("score_mask", "seed", "1", TypeError),
]


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
VALID_CALLS["dino_collate_masks"] = lambda device: ((8, 5, 4), {"seed": 0, "device": device})
BAD_CALLS += [
    ("dino_collate_masks", "batch", -1, ValueError), ("dino_collate_masks", "batch", 2.0, TypeError),
    ("dino_collate_masks", "batch", 1 << 31, ValueError), ("dino_collate_masks", "height", 0, ValueError),
    ("dino_collate_masks", "width", "4", TypeError), ("dino_collate_masks", "width", 1 << 40, ValueError),
    ("dino_collate_masks", "mask_ratio_min_max", (0.5, 0.1), ValueError),
    ("dino_collate_masks", "mask_ratio_min_max", (0.1, 1.5), ValueError),
    ("dino_collate_masks", "mask_ratio_min_max", (0.1,), TypeError),
    ("dino_collate_masks", "mask_ratio_min_max", 0.5, TypeError),
    ("dino_collate_masks", "mask_ratio_min_max", (0.1, "0.5"), TypeError),
    ("dino_collate_masks", "mask_probability", 1.5, ValueError),
    ("dino_collate_masks", "mask_probability", float("nan"), ValueError),
    ("dino_collate_masks", "min_num_patches", -1, ValueError), ("dino_collate_masks", "max_num_patches", 0, ValueError),
    ("dino_collate_masks", "min_aspect", 0.0, ValueError), ("dino_collate_masks", "max_aspect", float("inf"), ValueError),
    ("dino_collate_masks", "version", "v4", ValueError), ("dino_collate_masks", "random_circular_shift", True, ValueError),
    ("dino_collate_masks", "random_circular_shift", 1, TypeError), ("dino_collate_masks", "seed", "0", TypeError),
    ("dino_collate_masks", "generator", 3, TypeError),
]


# ---- seeds as tensors (docs/rng.md "Seeds in a tensor"): a (seed, step) pair of the wrong dtype, shape or device --
_BAD_SEED_TENSORS = (torch.tensor([1, 2], dtype=torch.int32), torch.zeros(3, dtype=torch.int64),
                     torch.zeros(2, dtype=torch.int64, device="meta"))
BAD_CALLS += [(op, "seed", _BAD_SEED_TENSORS[k % len(_BAD_SEED_TENSORS)], ValueError) for k, op in enumerate(
    ("multiblock_mask", "multiblock_mask_3d", "tube_mask", "running_cell_mask", "uniform_mask", "data2vec_block_mask",
     "score_mask", "dino_collate_masks"))]


# ---- mask report ---------------------------------------------------------------------------------

VALID_CALLS["mask_stats"] = lambda device: ((torch.tensor([[[1, 0, 0], [1, 1, 0]], [[0, 0, 1], [1, 0, 1]]],
                                                           dtype=torch.bool, device=device),), {})
BAD_CALLS += [
    ("mask_stats", "masks", torch.zeros(2, 6, dtype=torch.bool), ValueError),
    ("mask_stats", "masks", [[0, 1]], TypeError),
    ("mask_stats", "masks", torch.zeros(2, 0, 3, dtype=torch.bool), ValueError),
    ("mask_stats", "grid", (3, 2), ValueError),
    ("mask_stats", "grid", (0, 6), ValueError),
]

