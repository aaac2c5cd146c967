"""The pixel family's table of calls: one tiny valid call per op (pixel values k/255, so that every
backend agrees with torch to rounding) for the contract tests and `python -m mimkernels.info`, and
the invalid calls, each raising an error that names the argument."""
from __future__ import annotations

import torch


def valid_calls(device: torch.device) -> dict[str, tuple[tuple, dict]]:
    """op -> (args, kwargs): images (2, 3, 8, 8) in patches of 4, so L = 4 and D = 48."""
    gen = torch.Generator().manual_seed(0)
    imgs = (torch.randint(0, 256, (2, 3, 8, 8), generator=gen) / 255).to(device)
    pred = (torch.randint(0, 256, (2, 4, 48), generator=gen) / 255).to(device)
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]], device=device)
    return {
        "patchify": ((imgs, 4), {}),
        "unpatchify": ((pred, 4), {}),
        "patch_norm_target": ((imgs, 4), {}),
        "masked_mse_loss": ((pred, pred.flip(0), mask), {}),
        "norm_pix_mse_loss": ((pred, imgs, mask, 4), {}),
        "masked_l1_loss": ((imgs.flip(0), imgs, mask.reshape(2, 2, 2)), {}),
    }


def _img(*shape):
    return torch.rand(*shape)


# (op, argument, bad value, expected exception); the message names the argument.
BAD_CALLS = [
    *[(op, "backend", "cuda-ish", ValueError) for op in ("patchify", "unpatchify", "patch_norm_target",
                                                         "masked_mse_loss", "norm_pix_mse_loss", "masked_l1_loss")],
    ("patchify", "imgs", [[1.0]], TypeError), ("patchify", "imgs", _img(3, 8, 8), ValueError),
    ("patchify", "patch_size", 4.0, TypeError), ("patchify", "patch_size", 0, ValueError),
    ("patchify", "patch_size", 3, ValueError),
    ("unpatchify", "x", None, TypeError), ("unpatchify", "x", _img(4, 48), ValueError),
    ("unpatchify", "patch_size", "4", TypeError), ("unpatchify", "channels", 0, ValueError),
    ("unpatchify", "grid_size", (3, 3), ValueError),
    ("patch_norm_target", "imgs", _img(3, 8, 8), ValueError), ("patch_norm_target", "patch_size", 5, ValueError),
    ("patch_norm_target", "eps", -1.0, ValueError),
    ("masked_mse_loss", "pred", _img(2, 4), ValueError), ("masked_mse_loss", "target", _img(2, 4, 5), ValueError),
    ("masked_mse_loss", "mask", torch.ones(2, 5), ValueError), ("masked_mse_loss", "mask", [1, 0], TypeError),
    ("norm_pix_mse_loss", "pred", _img(2, 4, 47), ValueError), ("norm_pix_mse_loss", "imgs", _img(2, 3, 8), ValueError),
    ("norm_pix_mse_loss", "mask", torch.ones(2, 3), ValueError), ("norm_pix_mse_loss", "norm_pix", 1, TypeError),
    ("norm_pix_mse_loss", "patch_size", 3, ValueError),
    ("masked_l1_loss", "x_rec", _img(2, 3, 8), ValueError), ("masked_l1_loss", "imgs", _img(2, 3, 8, 4), ValueError),
    ("masked_l1_loss", "mask", torch.ones(2, 3, 3), ValueError), ("masked_l1_loss", "in_chans", 0, ValueError),
    ("masked_l1_loss", "in_chans", 1.5, TypeError),
    # a second device (meta: no data) where tensors must share one
    ("masked_mse_loss", "mask", torch.ones(2, 4, device="meta"), ValueError),
    ("norm_pix_mse_loss", "mask", torch.ones(2, 4, device="meta"), ValueError),
    ("masked_l1_loss", "mask", torch.ones(2, 2, 2, device="meta"), ValueError),
]
