"""Test helpers shared by python_tests/ (and usable by downstream code testing its own use):
which backends can run an op on a device, per-dtype tolerances, real photographs.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from mimkernels import _dispatch

# (atol, rtol) for comparing a kernel against the fp32-accumulating reference, per input dtype.
TOLERANCES = {
    torch.float32: (1e-5, 1e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (2e-2, 2e-2),
}


def backends_on(op: str, device: str | torch.device = "cpu", *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The implemented backends of `op` that can run on `device` here (never "auto")."""
    device = torch.device(device)
    return [b for b in _dispatch.IMPLEMENTED[op]
            if b not in exclude and _dispatch.backend_unavailable_reason(b, device) is None]


@functools.lru_cache(maxsize=None)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)  # two 427x640x3 uint8 photographs, shipped with sklearn


def sample_photos(size: int | tuple[int, int] = 224, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """scikit-learn's sample photographs, center-cropped square and resized: (2, 3, H, W) in [0, 1]
    (uint8 in [0, 255] when dtype is torch.uint8)."""
    h, w = (size, size) if isinstance(size, int) else size
    imgs = []
    for photo in _photos():
        t = torch.from_numpy(photo).permute(2, 0, 1).float()
        side = min(t.shape[1:])
        top, left = (t.shape[1] - side) // 2, (t.shape[2] - side) // 2
        t = t[:, top:top + side, left:left + side]
        t = torch.nn.functional.interpolate(t[None], size=(h, w), mode="bilinear", antialias=True,
                                            align_corners=False)[0]
        imgs.append(t.clamp(0, 255))
    out = torch.stack(imgs)
    return out.round().to(torch.uint8) if dtype == torch.uint8 else (out / 255).to(dtype)
