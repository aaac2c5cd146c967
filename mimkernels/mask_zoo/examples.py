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

