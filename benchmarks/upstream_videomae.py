"""VideoMAE's and VideoMAE v2's mask generators, restated without torch: the oracles of
python_tests/mask_zoo/test_video.py and the baselines of benchmarks/bench_mask_zoo.py.

Line for line as upstream, the module-level `np.random` calls made through an injectable generator
(`rnd`, default the `np.random` module; a np.random.RandomState gives a reproducible stream):
- `TubeMaskingGenerator`: MCG-NJU/VideoMAE masking_generator.py (flat (T·H·W,) float64 mask);
  `TubeMaskingGeneratorV2` is OpenGVLab/VideoMAEv2 dataset/masking_generator.py's, the same draws,
  which returns the (T, H·W) tile unflattened.
- `Cell`, `RunningCellMaskingGenerator`: OpenGVLab/VideoMAEv2 dataset/masking_generator.py.
`input_size` is upstream's `window_size`: (num_frames // tubelet_size, H / patch, W / patch).
"""
from __future__ import annotations

import numpy as np


class TubeMaskingGenerator:
    """MCG-NJU/VideoMAE masking_generator.py TubeMaskingGenerator: 1.0 = masked."""

    def __init__(self, input_size, mask_ratio, rnd=np.random):
        self.frames, self.height, self.width = input_size
        self.num_patches_per_frame = self.height * self.width
        self.total_patches = self.frames * self.num_patches_per_frame
        self.num_masks_per_frame = int(mask_ratio * self.num_patches_per_frame)
        self.total_masks = self.frames * self.num_masks_per_frame
        self.rnd = rnd

    def __repr__(self):
        return "Maks: total patches {}, mask patches {}".format(self.total_patches, self.total_masks)

    def __call__(self):
        mask_per_frame = np.hstack([
            np.zeros(self.num_patches_per_frame - self.num_masks_per_frame),
            np.ones(self.num_masks_per_frame),
        ])
        self.rnd.shuffle(mask_per_frame)
        mask = np.tile(mask_per_frame, (self.frames, 1)).flatten()
        return mask


class TubeMaskingGeneratorV2(TubeMaskingGenerator):
    """OpenGVLab/VideoMAEv2's TubeMaskingGenerator: the same draws, the (T, H·W) tile returned as is."""

    def __call__(self):
        mask_per_frame = np.hstack([
            np.zeros(self.num_patches_per_frame - self.num_masks_per_frame),
            np.ones(self.num_masks_per_frame),
        ])
        self.rnd.shuffle(mask_per_frame)
        mask = np.tile(mask_per_frame, (self.frames, 1))
        return mask


class Cell():
    """VideoMAE v2's queue of 4 slots, num_masks ones first, read from a rotating pointer."""

    def __init__(self, num_masks, num_patches, rnd=np.random):
        self.num_masks = num_masks
        self.num_patches = num_patches
        self.size = num_masks + num_patches
        self.queue = np.hstack([np.ones(num_masks), np.zeros(num_patches)])
        self.queue_ptr = 0
        self.rnd = rnd

    def set_ptr(self, pos=-1):
        self.queue_ptr = self.rnd.randint(self.size) if pos < 0 else pos

    def get_cell(self):
        cell_idx = (np.arange(self.size) + self.queue_ptr) % self.size
        return self.queue[cell_idx]

    def run_cell(self):
        self.queue_ptr += 1


class RunningCellMaskingGenerator:
    """OpenGVLab/VideoMAEv2 dataset/masking_generator.py RunningCellMaskingGenerator: (T, H'·W') float64,
    1.0 = masked (dropped from the decoder), H' = 2·(H // 2), W' = 2·(W // 2)."""

    def __init__(self, input_size, mask_ratio=0.5, rnd=np.random):
        self.frames, self.height, self.width = input_size
        self.mask_ratio = mask_ratio
        self.rnd = rnd

        num_masks_per_cell = int(4 * self.mask_ratio)
        assert 0 < num_masks_per_cell < 4
        num_patches_per_cell = 4 - num_masks_per_cell

        self.cell = Cell(num_masks_per_cell, num_patches_per_cell, rnd)
        self.cell_size = self.cell.size

        mask_list = []
        for ptr_pos in range(self.cell_size):
            self.cell.set_ptr(ptr_pos)
            mask = []
            for _ in range(self.frames):
                self.cell.run_cell()
                mask_unit = self.cell.get_cell().reshape(2, 2)
                mask_map = np.tile(mask_unit,
                                   [self.height // 2, self.width // 2])
                mask.append(mask_map.flatten())
            mask = np.stack(mask, axis=0)
            mask_list.append(mask)
        self.all_mask_maps = np.stack(mask_list, axis=0)

    def __repr__(self):
        return f"Running Cell Masking with mask ratio {self.mask_ratio}"

    def __call__(self):
        mask = self.all_mask_maps[self.rnd.randint(self.cell_size)]
        return np.copy(mask)
