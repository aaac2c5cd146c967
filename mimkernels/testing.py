"""Test helpers shared by python_tests/ (and usable by downstream code testing its own use):
which backends can run an op on a device, per-dtype tolerances, real photographs, and restatements
of the official SimMIM and BEiT/MaskFeat mask generators (oracles and benchmark baselines), and
`make_torchvision_importable` for the integration tests' hosts (timm, lightly, mmpretrain).
"""
from __future__ import annotations

import functools
import glob
import importlib.util
import math
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


# ---- the official mask generators' algorithms, restated: oracles of the distribution tests and the
# baselines of benchmarks/bench_masking.py (mimkernels/masking/SPEC.md §6–7). Same draws, in the same order, as
# the official classes; per-image Python, as the official data loaders run them. -------------------

class OfficialSimMIMMaskGenerator:
    """microsoft/SimMIM data/data_simmim.py MaskGenerator's algorithm: ceil(ratio · cells) mask patches
    taken from one random permutation, upsampled to the model's patch grid; int (n, n), 1 = masked.
    rs: a numpy RandomState standing in for np.random."""

    def __init__(self, input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6, rs=None):
        self.side = input_size // mask_patch_size                  # mask patches per side
        self.scale = mask_patch_size // model_patch_size           # model patches per mask patch
        self.mask_count = int(np.ceil(self.side ** 2 * mask_ratio))
        self.rs = rs

    def __call__(self) -> np.ndarray:
        cells = np.zeros(self.side ** 2, dtype=int)
        cells[self.rs.permutation(self.side ** 2)[:self.mask_count]] = 1
        return np.kron(cells.reshape(self.side, self.side), np.ones((self.scale, self.scale), dtype=int))


class OfficialMaskingGenerator:
    """microsoft/unilm beit/masking_generator.py MaskingGenerator's algorithm (= SlowFast's MaskFeat):
    blocks of area U(min_num_patches, budget) and log-uniform aspect, top/left uniform with inclusive
    bounds; a block is kept when it masks between 1 and `budget` new cells; at most 10 tries per block;
    stop at num_masking_patches or when 10 tries add nothing. rnd: a random.Random."""

    STOP_WHEN_STUCK = True

    def __init__(self, input_size, num_masking_patches, min_num_patches=4, max_num_patches=None,
                 min_aspect=0.3, max_aspect=None, rnd=None):
        self.height, self.width = input_size if isinstance(input_size, tuple) else (input_size, input_size)
        self.num_masking_patches = num_masking_patches
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect or 1 / min_aspect))
        self.rnd = rnd

    def _uniform(self, low: float, high: float) -> float:
        return self.rnd.uniform(low, high)

    def _offset(self, largest: int) -> int:
        return self.rnd.randint(0, largest)  # inclusive

    def _add_block(self, mask: np.ndarray, budget: int) -> int:
        """Masks one block in place; returns how many cells it added (0: ten tries failed)."""
        for _ in range(10):
            area = self._uniform(self.min_num_patches, budget)
            aspect = math.exp(self._uniform(*self.log_aspect))
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if h >= self.height or w >= self.width:
                continue
            top, left = self._offset(self.height - h), self._offset(self.width - w)
            block = mask[top:top + h, left:left + w]
            added = h * w - int(block.sum())
            if 0 < added <= budget:
                block[...] = 1
                return added
        return 0

    def __call__(self) -> np.ndarray:
        mask = np.zeros((self.height, self.width), dtype=int)
        count = 0
        while count != self.num_masking_patches:
            added = self._add_block(mask, min(self.num_masking_patches - count, self.max_num_patches))
            if added == 0 and self.STOP_WHEN_STUCK:
                break
            count += added
        return mask


class OfficialMMPretrainBEiTMaskGenerator(OfficialMaskingGenerator):
    """open-mmlab/mmpretrain datasets/transforms/processing.py BEiTMaskGenerator's algorithm: numpy
    draws, top/left with an exclusive upper bound, no stop when a block adds nothing. rs: a numpy
    RandomState standing in for np.random."""

    STOP_WHEN_STUCK = False

    def __init__(self, input_size, num_masking_patches, min_num_patches=4, max_num_patches=None,
                 min_aspect=0.3, max_aspect=None, rs=None):
        super().__init__(input_size, num_masking_patches, min_num_patches, max_num_patches, min_aspect, max_aspect)
        self.rs = rs

    def _uniform(self, low: float, high: float) -> float:
        return self.rs.uniform(low, high)

    def _offset(self, largest: int) -> int:
        return self.rs.randint(0, largest)  # exclusive
