"""The frequency family's table of calls: one tiny valid call per op for the contract tests
(python_tests/test_contract.py) and `python -m mimkernels.info`, and the invalid calls, each raising
an error that names the argument."""
from __future__ import annotations

import torch

from mimkernels.frequency import frequency_mask


def valid_calls(device: torch.device) -> dict[str, tuple[tuple, dict]]:
    """op -> (args, kwargs): one tiny call per op on `device`. The images are integer-valued (k/255),
    so that every backend agrees with torch to rounding; B = 2, C = 3, 16 × 16."""
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (2, 3, 16, 16), generator=gen).to(device=device, dtype=torch.float32) / 255
    return {
        "frequency_mask": ((8, 8, 2.0), {"device": device}),
        "circular_filter": ((imgs, 3.0, torch.tensor([False, True], device=device)), {}),
        "mfm_corrupt": ((imgs, 3.0), {"seed": 1}),
        "lowfreq_target": ((imgs, 3.0), {}),
        "frequency_loss": ((imgs, imgs.flip(0), frequency_mask(16, 16, 3.0, device=device)), {}),
    }


def _img(*shape, dtype=torch.float32) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype)


# (op, argument, bad value, exception): the call of valid_calls with that one argument replaced
# raises, before any kernel runs, and the message names the argument (a bad `backend` is every op's
# row, added by python_tests/test_contract.py).
BAD_CALLS = [
    ("frequency_mask", "height", 0, ValueError), ("frequency_mask", "radius", -1.0, ValueError),
    ("frequency_mask", "radius", "2", TypeError), ("frequency_mask", "center", "dc", ValueError),
    ("frequency_mask", "high_pass", 1, TypeError), ("frequency_mask", "outer_radius", 1.0, ValueError),
    ("circular_filter", "imgs", _img(3, 8, 8), ValueError), ("circular_filter", "radius", None, TypeError),
    ("circular_filter", "high_pass", 1, TypeError),
    ("circular_filter", "high_pass", torch.ones(3, dtype=torch.bool), ValueError),
    ("circular_filter", "clamp", (1.0,), ValueError), ("circular_filter", "mean", (0.5, 0.5), ValueError),
    ("mfm_corrupt", "imgs", _img(2, 3, 8), ValueError), ("mfm_corrupt", "low_pass_prob", 1.5, ValueError),
    ("mfm_corrupt", "seed", 1.5, TypeError), ("mfm_corrupt", "sample_offset", -1, ValueError),
    ("mfm_corrupt", "seed", torch.zeros(2, dtype=torch.int32), ValueError),  # a seed tensor must be int64 (2,)
    ("lowfreq_target", "std", 0.2, TypeError), ("lowfreq_target", "imgs", _img(2, 3, 8), ValueError),
    ("lowfreq_target", "exact", 1, TypeError), ("lowfreq_target", "mean", (0.5,), ValueError),
    ("frequency_loss", "pred", _img(2, 3, 8), ValueError), ("frequency_loss", "target", _img(2, 3, 8, 4), ValueError),
    ("frequency_loss", "freq_mask", torch.ones(3, 8, 8), ValueError), ("frequency_loss", "gamma", 0.0, ValueError),
    ("frequency_loss", "gamma", "1", TypeError),
    # a second device (meta: no data) where tensors must share one
    ("circular_filter", "high_pass", torch.ones(2, dtype=torch.bool, device="meta"), ValueError),
    ("frequency_loss", "freq_mask", torch.ones(2, 16, 16, device="meta"), ValueError),
]
