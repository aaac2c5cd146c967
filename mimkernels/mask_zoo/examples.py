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
