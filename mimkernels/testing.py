"""Test helpers shared by python_tests/ (and usable by downstream code testing its own use):
which backends can run an op on a device, per-dtype tolerances, real photographs, and literal ports
of the official SimMIM and BEiT/MaskFeat mask generators (oracles and benchmark baselines).
"""
from __future__ import annotations

import functools
import math

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


# ---- the official mask generators, ported literally: oracles of the distribution tests and the
# baselines of benchmarks/bench_masks.py (spec/masking.md §4–5) -------------------------------------

class OfficialSimMIMMaskGenerator:
    """microsoft/SimMIM data/data_simmim.py MaskGenerator, with a numpy RandomState for np.random."""

    def __init__(self, input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6, rs=None):
        self.input_size = input_size
        self.mask_patch_size = mask_patch_size
        self.model_patch_size = model_patch_size
        self.mask_ratio = mask_ratio
        assert self.input_size % self.mask_patch_size == 0
        assert self.mask_patch_size % self.model_patch_size == 0
        self.rand_size = self.input_size // self.mask_patch_size
        self.scale = self.mask_patch_size // self.model_patch_size
        self.token_count = self.rand_size ** 2
        self.mask_count = int(np.ceil(self.token_count * self.mask_ratio))
        self.rs = rs

    def __call__(self):
        mask_idx = self.rs.permutation(self.token_count)[:self.mask_count]
        mask = np.zeros(self.token_count, dtype=int)
        mask[mask_idx] = 1
        mask = mask.reshape((self.rand_size, self.rand_size))
        mask = mask.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
        return mask


class OfficialMaskingGenerator:
    """microsoft/unilm beit/masking_generator.py MaskingGenerator (= SlowFast's), with a
    random.Random instance in place of the global `random` module."""

    def __init__(self, input_size, num_masking_patches, min_num_patches=4, max_num_patches=None,
                 min_aspect=0.3, max_aspect=None, rnd=None):
        if not isinstance(input_size, tuple):
            input_size = (input_size,) * 2
        self.height, self.width = input_size
        self.num_patches = self.height * self.width
        self.num_masking_patches = num_masking_patches
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        max_aspect = max_aspect or 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        self.random = rnd

    def _mask(self, mask, max_mask_patches):
        delta = 0
        for attempt in range(10):
            target_area = self.random.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(self.random.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = self.random.randint(0, self.height - h)
                left = self.random.randint(0, self.width - w)

                num_masked = mask[top: top + h, left: left + w].sum()
                # Overlap
                if 0 < h * w - num_masked <= max_mask_patches:
                    for i in range(top, top + h):
                        for j in range(left, left + w):
                            if mask[i, j] == 0:
                                mask[i, j] = 1
                                delta += 1

                if delta > 0:
                    break
        return delta

    def __call__(self):
        mask = np.zeros(shape=(self.height, self.width), dtype=int)
        mask_count = 0
        while mask_count < self.num_masking_patches:
            max_mask_patches = self.num_masking_patches - mask_count
            max_mask_patches = min(max_mask_patches, self.max_num_patches)

            delta = self._mask(mask, max_mask_patches)
            if delta == 0:
                break
            else:
                mask_count += delta

        return mask


class OfficialMMPretrainBEiTMaskGenerator(OfficialMaskingGenerator):
    """open-mmlab/mmpretrain datasets/transforms/processing.py BEiTMaskGenerator: numpy draws, randint
    with an exclusive upper bound, no early stop (`rs`: a numpy RandomState for np.random)."""

    def __init__(self, input_size, num_masking_patches, min_num_patches=4, max_num_patches=None,
                 min_aspect=0.3, max_aspect=None, rs=None):
        super().__init__(input_size, num_masking_patches, min_num_patches, max_num_patches, min_aspect, max_aspect)
        self.rs = rs

    def _mask(self, mask, max_mask_patches):
        delta = 0
        for _ in range(10):
            target_area = self.rs.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(self.rs.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = self.rs.randint(0, self.height - h)
                left = self.rs.randint(0, self.width - w)

                num_masked = mask[top:top + h, left:left + w].sum()
                # Overlap
                if 0 < h * w - num_masked <= max_mask_patches:
                    for i in range(top, top + h):
                        for j in range(left, left + w):
                            if mask[i, j] == 0:
                                mask[i, j] = 1
                                delta += 1
                if delta > 0:
                    break
        return delta

    def __call__(self):
        mask = np.zeros(shape=(self.height, self.width), dtype=int)
        mask_count = 0
        while mask_count != self.num_masking_patches:
            max_mask_patches = self.num_masking_patches - mask_count
            max_mask_patches = min(max_mask_patches, self.max_num_patches)

            delta = self._mask(mask, max_mask_patches)
            mask_count += delta
        return mask
