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


# ---- VideoMAE tube and running cell ---------------------------------------------------------------


# ---- UM-MAE uniform masking -----------------------------------------------------------------------


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------


# ---- score-guided masks ---------------------------------------------------------------------------


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


# ---- mask report ---------------------------------------------------------------------------------
