"""The upstream mask generators, restated without torch (importable under callgrind in a fraction of
torch's start-up): the baselines of benchmarks/bench_masking.py and the oracles of the masking
family's distribution tests (python_tests/masking).

- `UnilmMaskingGenerator`, `SimMIMMaskGenerator`: the upstream classes line for line (microsoft/unilm
  beit/masking_generator.py MaskingGenerator, = SlowFast's MaskFeat generator; microsoft/SimMIM
  data/data_simmim.py MaskGenerator), the module-level `random` / `np.random` calls made through an
  injectable generator object of the same interface. `np.int` (removed from numpy) is `int`. These
  are the benchmark baselines: what a data loader running the official code pays per mask.
- `Official*`: the same algorithms, condensed (numpy slice assignment in place of the per-cell loop),
  the oracles of the statistics tests, with the same draws in the same order.
"""
from __future__ import annotations

import math
import random

import numpy as np


class UnilmMaskingGenerator:
    """microsoft/unilm beit/masking_generator.py MaskingGenerator, line for line (rnd: the `random` module
    or a random.Random)."""

    def __init__(
            self, input_size, num_masking_patches, min_num_patches=4, max_num_patches=None,
            min_aspect=0.3, max_aspect=None, rnd=random):
        if not isinstance(input_size, tuple):
            input_size = (input_size, ) * 2
        self.height, self.width = input_size

        self.num_patches = self.height * self.width
        self.num_masking_patches = num_masking_patches

        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches

        max_aspect = max_aspect or 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        self.rnd = rnd

    def get_shape(self):
        return self.height, self.width

    def _mask(self, mask, max_mask_patches):
        delta = 0
        for attempt in range(10):
            target_area = self.rnd.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(self.rnd.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = self.rnd.randint(0, self.height - h)
                left = self.rnd.randint(0, self.width - w)

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
        mask = np.zeros(shape=self.get_shape(), dtype=int)
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


class SimMIMMaskGenerator:
    """microsoft/SimMIM data/data_simmim.py MaskGenerator, line for line (rs: `np.random` or a RandomState)."""

    def __init__(self, input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6, rs=np.random):
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
