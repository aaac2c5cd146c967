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


# ---- mask report ---------------------------------------------------------------------------------
