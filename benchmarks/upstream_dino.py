"""DINOv2 and DINOv3's iBOT masks, restated line for line with an injectable RNG: the oracle of
mimkernels.mask_zoo.dino_collate_masks (python_tests/mask_zoo/test_dino.py) and its benchmark baseline
(bench_mask_zoo.py).

Sources (read with the `fetch` tool, HEAD of each repository):
- facebookresearch/dinov2 `dinov2/data/masking.py` (MaskingGenerator) and `dinov2/data/collate.py`
  (collate_data_and_cast); `dinov2/train/train.py` builds the generator as
  MaskingGenerator(input_size=(S, S), max_num_patches=0.5 * img_size // patch_size * img_size // patch_size),
  S = img_size // patch_size, and the collate with ibot.mask_ratio_min_max = (0.1, 0.5) and
  ibot.mask_sample_probability = 0.5 (ssl_default_config.yaml).
- facebookresearch/dinov3 `dinov3/data/masking.py` (the same generator, whose __call__ ends with
  complete_mask_randomly) and `dinov3/data/collate.py` (count int(N · prob_max) per stratum, optional
  random circular shift; ibot.mask_random_circular_shift is false in every shipped config).

Only the mask part of the collate is restated (the crops are a torch.stack each). The RNG: `rnd` is any
object with Python `random`'s uniform / randint / shuffle (a random.Random), `np_rng` any with numpy's
`choice` (v3's completion; a numpy Generator or np.random). Upstream's tensor arithmetic (the float32
linspace and products) is kept, so torch is imported.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from benchmarks.upstream_masks import OfficialMaskingGenerator, UnilmMaskingGenerator


class MaskingGenerator(UnilmMaskingGenerator):
    """dinov2/data/masking.py MaskingGenerator (complete=False) or dinov3's (complete=True: __call__ fills a
    short mask to exactly num_masking_patches with randomly chosen free cells). Its __init__ and _mask are
    unilm's line for line (upstream_masks.UnilmMaskingGenerator, inherited; `num_masking_patches` defaults
    to None, being an argument of __call__ here); __call__ takes the count and returns numpy bool."""

    def __init__(self, input_size, num_masking_patches=None, min_num_patches=4, max_num_patches=None,
                 min_aspect=0.3, max_aspect=None, *, complete=False, rnd=random, np_rng=np.random):
        super().__init__(input_size, num_masking_patches, min_num_patches, max_num_patches, min_aspect, max_aspect,
                         rnd=rnd)
        self.complete, self.np_rng = complete, np_rng

    def __call__(self, num_masking_patches=0):
        mask = np.zeros(shape=self.get_shape(), dtype=bool)
        mask_count = 0
        while mask_count < num_masking_patches:
            max_mask_patches = num_masking_patches - mask_count
            max_mask_patches = min(max_mask_patches, self.max_num_patches)

            delta = self._mask(mask, max_mask_patches)
            if delta == 0:
                break
            else:
                mask_count += delta

        if self.complete:
            return self.complete_mask_randomly(mask, num_masking_patches)
        return mask

    def complete_mask_randomly(self, mask, num_masking_patches):
        shape = mask.shape
        m2 = mask.flatten()
        to_add = self.np_rng.choice(np.where(~m2)[0], size=num_masking_patches - m2.sum(), replace=False)
        m2[to_add] = True
        return m2.reshape(shape)


class CondensedMaskingGenerator(MaskingGenerator):
    """The same generator with `_mask`'s per-cell loop as one numpy slice assignment: the same draws in the
    same order, the same masks (python_tests/mask_zoo/test_dino.py checks it), 4x faster: the oracle of
    the statistics tests. The benchmarks use MaskingGenerator, what upstream runs."""

    _uniform = OfficialMaskingGenerator._uniform
    _offset = OfficialMaskingGenerator._offset
    _mask = OfficialMaskingGenerator._add_block  # unilm's _mask condensed, shared with the masking oracles

    @property
    def log_aspect(self):
        return self.log_aspect_ratio


def mask_generator(img_size: int = 224, patch_size: int = 14, *, complete: bool = False, rnd=random,
                   np_rng=np.random, condensed: bool = False) -> MaskingGenerator:
    """The generator as dinov2 / dinov3 train.py build it (max_num_patches: their float expression);
    condensed: CondensedMaskingGenerator (same masks, faster)."""
    cls = CondensedMaskingGenerator if condensed else MaskingGenerator
    return cls(input_size=(img_size // patch_size, img_size // patch_size),
               max_num_patches=0.5 * img_size // patch_size * img_size // patch_size,
               complete=complete, rnd=rnd, np_rng=np_rng)


def _outputs(masks_list, upperbound):
    """The tail both collates share, as written upstream."""
    collated_masks = torch.stack(masks_list).flatten(1)
    mask_indices_list = collated_masks.flatten().nonzero().flatten()

    masks_weight = (1 / collated_masks.sum(-1).clamp(min=1.0)).unsqueeze(-1).expand_as(collated_masks)[collated_masks]
    return {
        "collated_masks": collated_masks,
        "mask_indices_list": mask_indices_list,
        "masks_weight": masks_weight,
        "upperbound": upperbound,
        "n_masked_patches": torch.full((1,), fill_value=mask_indices_list.shape[0], dtype=torch.long),
    }


def collate_masks_v2(B, mask_ratio_tuple=(0.1, 0.5), mask_probability=0.5, n_tokens=None, mask_generator=None,
                     rnd=random):
    """dinov2 collate_data_and_cast from `B = len(collated_global_crops)` on: B masks (n_global_crops ·
    samples upstream)."""
    N = n_tokens
    n_samples_masked = int(B * mask_probability)
    probs = torch.linspace(*mask_ratio_tuple, n_samples_masked + 1)
    upperbound = 0
    masks_list = []
    for i in range(0, n_samples_masked):
        prob_min = probs[i]
        prob_max = probs[i + 1]
        masks_list.append(torch.BoolTensor(mask_generator(int(N * rnd.uniform(prob_min, prob_max)))))
        upperbound += int(N * prob_max)
    for i in range(n_samples_masked, B):
        masks_list.append(torch.BoolTensor(mask_generator(0)))

    rnd.shuffle(masks_list)
    return _outputs(masks_list, upperbound)


def collate_masks_v3(B, mask_ratio_tuple=(0.1, 0.5), mask_probability=0.5, n_tokens=None, mask_generator=None,
                     random_circular_shift=False, rnd=random):
    """dinov3 collate_data_and_cast from `B = ...` on (local_batch_size None: B = n_global_crops · samples)."""
    N = n_tokens
    n_samples_masked = int(B * mask_probability)
    probs = torch.linspace(*mask_ratio_tuple, n_samples_masked + 1)
    upperbound = 0
    masks_list = []
    for i in range(0, n_samples_masked):
        prob_max = probs[i + 1]
        mask = torch.BoolTensor(mask_generator(int(N * prob_max)))
        if random_circular_shift:
            shift_x, shift_y = (
                rnd.randint(0, mask.shape[0] - 1),
                rnd.randint(0, mask.shape[1] - 1),
            )
            mask = torch.roll(mask, (shift_x, shift_y), (0, 1))
        masks_list.append(mask)
        upperbound += int(N * prob_max)
    for _ in range(n_samples_masked, B):
        masks_list.append(torch.BoolTensor(mask_generator(0)))

    rnd.shuffle(masks_list)
    return _outputs(masks_list, upperbound)
