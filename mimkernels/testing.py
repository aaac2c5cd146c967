"""Test helpers shared by python_tests/ (and usable by downstream code testing its own use):
which backends can run an op on a device, per-dtype tolerances, real photographs, and restatements
of the official SimMIM and BEiT/MaskFeat mask generators (oracles and benchmark baselines), and
`make_torchvision_importable` for the integration tests' hosts (timm, lightly, mmpretrain).
"""
from __future__ import annotations

import functools
import glob
import importlib.util
import os

import numpy as np
import torch

from mimkernels import _backends

# (atol, rtol) for comparing a kernel against the fp32-accumulating reference, per input dtype.
TOLERANCES = {
    torch.float32: (1e-5, 1e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (2e-2, 2e-2),
}


def backends_on(op: str, device: str | torch.device = "cpu", *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The implemented backends of `op` that can run on `device` here (never "auto")."""
    device = torch.device(device)
    return [b for b in _backends.implemented(op)
            if b not in exclude and _backends.unavailable_reason(b, device) is None]


_KEPT_ALIVE: list = []


@functools.lru_cache(maxsize=None)
def make_torchvision_importable() -> str:
    """Let `import torchvision` (and so timm, lightly, mmpretrain) succeed beside a CPU-only torch.

    torchvision's PyPI wheels link CUDA torch (libc10_cuda.so). Beside torch's CPU build their
    compiled `_C` fails to load, which torchvision tolerates, except that it then registers fakes for
    `torchvision::nms` and `::qnms`, which nothing declared, and the import raises. Declaring those
    two schemas (as torchvision's C++ does) lets its pure-Python modules load; calling a torchvision
    operator then still fails clearly (no kernel). Nothing is done when `_C` loads or torchvision is
    absent. Call it before anything imports torchvision. Returns what it did, for test headers."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        return "torchvision absent"
    compiled = glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so"))
    try:
        torch.ops.load_library(compiled[0])
        return "torchvision _C loaded"
    except (IndexError, OSError):
        pass
    declared = torch.library.Library("torchvision", "FRAGMENT")
    for name in ("nms", "qnms"):
        if not hasattr(torch.ops.torchvision, name):
            declared.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEPT_ALIVE.append(declared)  # a Library deregisters its ops when it is collected
    return "torchvision _C not loadable (CUDA wheel beside CPU torch): nms/qnms schemas declared"


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
