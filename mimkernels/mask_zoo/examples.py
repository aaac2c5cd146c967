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


# ---- UM-MAE uniform masking -----------------------------------------------------------------------


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------


# ---- score-guided masks ---------------------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------


# ---- mask report ---------------------------------------------------------------------------------
