"""The one table of valid and invalid calls of the masking family's ops, used by the contract tests
(python_tests/test_contract.py) and by `python -m mimkernels.info` (a sanity run of every op on every
backend available here)."""
from __future__ import annotations

import torch

from mimkernels.masking import random_mask_indices


def valid_calls(device: torch.device) -> dict[str, tuple[tuple, dict]]:
    """op -> (args, kwargs): one tiny call per op on `device`. Every op of the family is exact (index
    work, copies, integer-valued distances), so every backend agrees with "torch" bit for bit."""
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (2, 3, 16, 16), generator=gen).to(device=device, dtype=torch.float32) / 255
    tokens = torch.randn(2, 16, 8, generator=gen).to(device)
    ids_keep, _, mask = random_mask_indices(2, 16, 0.75, seed=1, device=device, backend="torch")
    _, ids_restore, _ = random_mask_indices(2, 4, 0.5, seed=2, device=device, backend="torch")  # K = 2 of L = 4
    return {
        "random_mask_indices": ((2, 16), {"seed": 0, "device": device}),
        "random_masking": ((tokens, 0.75), {"seed": 0}),
        "gather_patches": ((imgs, ids_keep, 4), {}),
        "unshuffle_tokens": ((tokens[:, :3], ids_restore, tokens[0, 0]), {}),
        "simmim_mask": ((2, 32, 8, 4), {"seed": 0, "device": device}),
        "block_mask": ((2, 6, 6, 10, 2), {"seed": 0, "device": device}),
        "mask_avg_dist": ((mask.reshape(2, 4, 4), 4), {}),
    }


def _img(*shape, dtype=torch.float32, device="cpu"):
    return torch.zeros(shape, dtype=dtype, device=device)


# (op, argument, bad value, expected exception): a valid call (valid_calls) with that one argument
# replaced raises the exception, and its message names the argument (python_tests/test_contract.py
# adds a bad `backend` for every op).
BAD_CALLS = [
    ("random_mask_indices", "batch", 2.0, TypeError), ("random_mask_indices", "batch", -1, ValueError),
    ("random_mask_indices", "num_patches", 0, ValueError), ("random_mask_indices", "mask_ratio", "0.5", TypeError),
    ("random_mask_indices", "mask_ratio", 1.5, ValueError), ("random_mask_indices", "seed", 1.0, TypeError),
    ("random_mask_indices", "sample_offset", -1, ValueError), ("random_mask_indices", "generator", 3, TypeError),
    ("random_mask_indices", "noise", _img(2, 15), ValueError), ("random_mask_indices", "noise", [0.5], TypeError),
    ("random_masking", "x", _img(16, 8), ValueError), ("random_masking", "x", "x", TypeError),
    ("random_masking", "mask_ratio", -0.1, ValueError), ("random_masking", "seed", "1", TypeError),
    ("random_masking", "noise", _img(2, 15), ValueError), ("random_masking", "sample_offset", 0.5, TypeError),
    ("gather_patches", "imgs", _img(3, 8, 8), ValueError), ("gather_patches", "imgs", 1, TypeError),
    ("gather_patches", "ids_keep", _img(2, 2), TypeError),
    ("gather_patches", "ids_keep", _img(3, 2, dtype=torch.int64), ValueError),
    ("gather_patches", "patch_size", 3, ValueError),
    ("gather_patches", "num_prefix_tokens", -1, ValueError), ("gather_patches", "num_prefix_tokens", True, TypeError),
    ("unshuffle_tokens", "x", _img(3, 8), ValueError), ("unshuffle_tokens", "ids_restore", _img(2, 4), TypeError),
    ("unshuffle_tokens", "ids_restore", _img(3, 4, dtype=torch.int64), ValueError),
    ("unshuffle_tokens", "mask_token", _img(7), ValueError), ("unshuffle_tokens", "mask_token", 0.0, TypeError),
    ("unshuffle_tokens", "num_prefix_tokens", -1, ValueError),
    ("unshuffle_tokens", "num_prefix_tokens", 4, ValueError), ("unshuffle_tokens", "num_prefix_tokens", 1.0, TypeError),
    ("simmim_mask", "batch", -1, ValueError), ("simmim_mask", "input_size", 33, ValueError),
    ("simmim_mask", "mask_patch_size", "8", TypeError), ("simmim_mask", "model_patch_size", 3, ValueError),
    ("simmim_mask", "mask_ratio", 2.0, ValueError), ("simmim_mask", "seed", 0.0, TypeError),
    ("simmim_mask", "sample_offset", -3, ValueError),
    ("block_mask", "height", 0, ValueError), ("block_mask", "width", 1.0, TypeError),
    ("block_mask", "min_num_patches", -1, ValueError), ("block_mask", "min_aspect", 0.0, ValueError),
    ("block_mask", "max_aspect", "2", TypeError), ("block_mask", "variant", "beit", ValueError),
    ("block_mask", "seed", "0", TypeError),
    # settings no block mask can satisfy (issue 19; variant="official" runs them as upstream does)
    ("block_mask", "num_masking_patches", -1, ValueError), ("block_mask", "num_masking_patches", 37, ValueError),
    ("block_mask", "min_num_patches", 11, ValueError), ("block_mask", "max_num_patches", 0, ValueError),
    ("mask_avg_dist", "patch_size", 2**29, ValueError), ("simmim_mask", "device", "cuda:0", ValueError)
    if not torch.cuda.is_available() else ("simmim_mask", "seed", 1.5, TypeError),
    ("mask_avg_dist", "mask", _img(3, 3), ValueError), ("mask_avg_dist", "mask", [[1]], TypeError),
    ("mask_avg_dist", "patch_size", 0, ValueError),
    # a second device (meta: no data) where tensors must share one
    ("gather_patches", "ids_keep", _img(2, 2, dtype=torch.int64, device="meta"), ValueError),
    ("unshuffle_tokens", "mask_token", _img(8, device="meta"), ValueError),
    ("random_masking", "noise", _img(2, 16, device="meta"), ValueError),
    # per-sample ratios and counts (SPEC.md §2a, §7a): a (B,) tensor of the right dtype, batch and device
    ("random_mask_indices", "mask_ratio", _img(3), ValueError), ("random_mask_indices", "mask_ratio", _img(2, 1), ValueError),
    ("random_mask_indices", "mask_ratio", _img(2, dtype=torch.int64), TypeError),
    ("random_mask_indices", "mask_ratio", _img(2, device="meta"), ValueError),
    ("random_mask_indices", "max_keep", 4, ValueError), ("random_masking", "max_keep", 4, ValueError),
    ("random_masking", "mask_ratio", _img(3), ValueError), ("random_masking", "mask_ratio", _img(2, device="meta"), ValueError),
    ("random_masking", "mask_ratio", _img(2, dtype=torch.int32), TypeError),
    ("block_mask", "num_masking_patches", _img(3, dtype=torch.int64), ValueError),
    ("block_mask", "num_masking_patches", _img(2), TypeError),
    ("block_mask", "num_masking_patches", _img(2, 1, dtype=torch.int64), ValueError),
    ("block_mask", "num_masking_patches", _img(2, dtype=torch.int64, device="meta"), ValueError),
    # a seed tensor (rng.seed_tensor) of another dtype, shape or device
    ("random_mask_indices", "seed", _img(2, dtype=torch.int32), ValueError),
    ("random_masking", "seed", _img(3, dtype=torch.int64), ValueError),
    ("simmim_mask", "seed", _img(2, 1, dtype=torch.int64), ValueError),
    ("block_mask", "seed", _img(2, dtype=torch.int64, device="meta"), ValueError),
]
