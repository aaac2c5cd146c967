"""The HOG family's table of calls: one tiny valid call per op (integer-valued pixels, so that every
backend agrees with torch to rounding) for the contract tests and `python -m mimkernels.info`, and
the invalid calls, each raising an error that names the argument."""
from __future__ import annotations

import torch


def valid_calls(device: torch.device) -> dict[str, tuple[tuple, dict]]:
    """op -> (args, kwargs)."""
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (2, 3, 16, 16), generator=gen).to(device=device, dtype=torch.float32)
    return {
        "hog": ((imgs,), {"patch_size": 8}),
        "hog_map": ((imgs,), {"gaussian_window": 0}),
    }


def _img(*shape, dtype=torch.float32):
    return torch.rand(*shape, dtype=dtype)


# (op, argument, bad value, expected exception); the message names the argument.
BAD_CALLS = [
    ("hog", "imgs", _img(3, 16, 16), ValueError), ("hog", "imgs", _img(1, 3, 16, 16, dtype=torch.float64), TypeError),
    ("hog", "nbins", 0, ValueError), ("hog", "nbins", 9.0, TypeError), ("hog", "pool", 0, ValueError),
    ("hog", "gaussian_window", -1, ValueError), ("hog", "norm_out", 1, TypeError), ("hog", "patch_size", 12, ValueError),
    ("hog_map", "imgs", None, TypeError), ("hog_map", "pool", 32, ValueError),
]
