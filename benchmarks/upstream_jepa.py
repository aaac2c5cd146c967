"""I-JEPA's and V-JEPA's multi-block mask collators restated without torch: the oracles of
python_tests/mask_zoo/test_multiblock.py and the baselines of benchmarks/bench_mask_zoo.py.

- `IJepaMaskCollator`: facebookresearch/ijepa src/masks/multiblock.py MaskCollator, step for step.
- `VJepaMaskGenerator`, `VJepaMaskCollator`: facebookresearch/jepa src/masks/multiblock3d.py
  _MaskGenerator and MaskCollator, step for step.

Upstream draws from torch: the block sizes from a torch.Generator seeded with the collator's call
counter (`torch.rand(1, generator=g)`), the placements from torch's global generator
(`torch.randint(low, high, (1,))`, high excluded). Here both come through an injectable `draws` object:
  draws.seeded(seed)        the per-call generator; its .rand() is a float in [0, 1)
  draws.randint(low, high)  an int in [low, high)
  draws.begin_sample()      called where upstream starts a sample's loop (no draw; lets a test feed
                            each sample's placements from its own stream)
`PythonDraws` (Python's `random` in place of torch's) is the default. Index lists are numpy int64
arrays; torch's default_collate of the lists is np.stack; the batch of images is collated the same way.
Upstream's loops are kept as they are: without `max_placements`, a block of <= min_keep cells loops
forever as upstream does (ijepa#68); with it, RuntimeError after that many placements.
"""
from __future__ import annotations

import math
import random

import numpy as np


class PythonDraws:
    """The default draws: random.Random in place of torch's generators."""

    class _Seeded:
        def __init__(self, seed):
            self._random = random.Random(seed)

        def rand(self):
            return self._random.random()

    def __init__(self, seed=0):
        self._global = random.Random(seed)

    def seeded(self, seed):
        return self._Seeded(seed)

    def randint(self, low, high):
        return self._global.randrange(low, high)

    def begin_sample(self):
        pass


def _collate_lists(lists):
    """torch's default_collate of a batch of equal-length sequences of arrays: one stacked array per
    position."""
    return [np.stack(column) for column in zip(*lists)]


class IJepaMaskCollator:
    """ijepa MaskCollator. The shared-memory call counter (`multiprocessing.Value`) is a plain int."""

    def __init__(self, input_size=(224, 224), patch_size=16, enc_mask_scale=(0.2, 0.8),
                 pred_mask_scale=(0.2, 0.8), aspect_ratio=(0.3, 3.0), nenc=1, npred=2, min_keep=4,
                 allow_overlap=False, draws=None, max_placements=None):
        if not isinstance(input_size, tuple):
            input_size = (input_size, ) * 2
        self.patch_size = patch_size
        self.height, self.width = input_size[0] // patch_size, input_size[1] // patch_size
        self.enc_mask_scale = enc_mask_scale
        self.pred_mask_scale = pred_mask_scale
        self.aspect_ratio = aspect_ratio
        self.nenc = nenc
        self.npred = npred
        self.min_keep = min_keep
        self.allow_overlap = allow_overlap
        self._itr_counter = -1
        self.draws = draws if draws is not None else PythonDraws()
        self.max_placements = max_placements

    def step(self):
        self._itr_counter += 1
        return self._itr_counter

    def _sample_block_size(self, generator, scale, aspect_ratio_scale):
        _rand = generator.rand()
        min_s, max_s = scale
        mask_scale = min_s + _rand * (max_s - min_s)
        max_keep = int(self.height * self.width * mask_scale)
        min_ar, max_ar = aspect_ratio_scale
        aspect_ratio = min_ar + _rand * (max_ar - min_ar)
        h = int(round(math.sqrt(max_keep * aspect_ratio)))
        w = int(round(math.sqrt(max_keep / aspect_ratio)))
        while h >= self.height:
            h -= 1
        while w >= self.width:
            w -= 1
        return (h, w)

    def _sample_block_mask(self, b_size, acceptable_regions=None):
        h, w = b_size

        def constrain_mask(mask, tries=0):
            N = max(int(len(acceptable_regions) - tries), 0)
            for k in range(N):
                mask *= acceptable_regions[k]

        tries = 0
        timeout = og_timeout = 20
        valid_mask = False
        placements = 0
        while not valid_mask:
            top = self.draws.randint(0, self.height - h)
            left = self.draws.randint(0, self.width - w)
            mask = np.zeros((self.height, self.width), dtype=np.int32)
            mask[top:top + h, left:left + w] = 1
            if acceptable_regions is not None:
                constrain_mask(mask, tries)
            mask = np.flatnonzero(mask)
            valid_mask = len(mask) > self.min_keep
            if not valid_mask:
                timeout -= 1
                if timeout == 0:
                    tries += 1
                    timeout = og_timeout
            placements += 1
            if not valid_mask and self.max_placements is not None and placements >= self.max_placements:
                raise RuntimeError(f"Valid mask not found after {placements} placements")
        mask_complement = np.ones((self.height, self.width), dtype=np.int32)
        mask_complement[top:top + h, left:left + w] = 0
        return mask, mask_complement

    def masks(self, B):
        """The (masks_enc, masks_pred) of a batch of B samples: upstream's __call__ less the image collate."""
        seed = self.step()
        g = self.draws.seeded(seed)
        p_size = self._sample_block_size(generator=g, scale=self.pred_mask_scale, aspect_ratio_scale=self.aspect_ratio)
        e_size = self._sample_block_size(generator=g, scale=self.enc_mask_scale, aspect_ratio_scale=(1., 1.))

        collated_masks_pred, collated_masks_enc = [], []
        min_keep_pred = self.height * self.width
        min_keep_enc = self.height * self.width
        for _ in range(B):
            self.draws.begin_sample()
            masks_p, masks_C = [], []
            for _ in range(self.npred):
                mask, mask_C = self._sample_block_mask(p_size)
                masks_p.append(mask)
                masks_C.append(mask_C)
                min_keep_pred = min(min_keep_pred, len(mask))
            collated_masks_pred.append(masks_p)

            acceptable_regions = None if self.allow_overlap else masks_C
            masks_e = []
            for _ in range(self.nenc):
                mask, _ = self._sample_block_mask(e_size, acceptable_regions=acceptable_regions)
                masks_e.append(mask)
                min_keep_enc = min(min_keep_enc, len(mask))
            collated_masks_enc.append(masks_e)

        collated_masks_pred = _collate_lists([[cm[:min_keep_pred] for cm in cm_list] for cm_list in collated_masks_pred])
        collated_masks_enc = _collate_lists([[cm[:min_keep_enc] for cm in cm_list] for cm_list in collated_masks_enc])
        return collated_masks_enc, collated_masks_pred

    def __call__(self, batch):
        collated_batch = np.stack(batch)
        collated_masks_enc, collated_masks_pred = self.masks(len(batch))
        return collated_batch, collated_masks_enc, collated_masks_pred


class VJepaMaskGenerator:
    """jepa _MaskGenerator (one mask config). `max_redraws`: RuntimeError after that many empty contexts
    of one sample (None: upstream's endless loop)."""

    def __init__(self, crop_size=(224, 224), num_frames=16, spatial_patch_size=(16, 16), temporal_patch_size=2,
                 spatial_pred_mask_scale=(0.2, 0.8), temporal_pred_mask_scale=(1.0, 1.0), aspect_ratio=(0.3, 3.0),
                 npred=1, max_context_frames_ratio=1.0, max_keep=None, draws=None, max_redraws=None):
        if not isinstance(crop_size, tuple):
            crop_size = (crop_size, ) * 2
        self.crop_size = crop_size
        # upstream divides by spatial_patch_size as given (an int in its configs)
        self.height, self.width = crop_size[0] // spatial_patch_size, crop_size[1] // spatial_patch_size
        self.duration = num_frames // temporal_patch_size
        self.spatial_patch_size = spatial_patch_size
        self.temporal_patch_size = temporal_patch_size
        self.aspect_ratio = aspect_ratio
        self.spatial_pred_mask_scale = spatial_pred_mask_scale
        self.temporal_pred_mask_scale = temporal_pred_mask_scale
        self.npred = npred
        self.max_context_duration = max(1, int(self.duration * max_context_frames_ratio))
        self.max_keep = max_keep
        self._itr_counter = -1
        self.draws = draws if draws is not None else PythonDraws()
        self.max_redraws = max_redraws

    def step(self):
        self._itr_counter += 1
        return self._itr_counter

    def _sample_block_size(self, generator, temporal_scale, spatial_scale, aspect_ratio_scale):
        _rand = generator.rand()
        min_t, max_t = temporal_scale
        temporal_mask_scale = min_t + _rand * (max_t - min_t)
        t = max(1, int(self.duration * temporal_mask_scale))

        _rand = generator.rand()
        min_s, max_s = spatial_scale
        spatial_mask_scale = min_s + _rand * (max_s - min_s)
        spatial_num_keep = int(self.height * self.width * spatial_mask_scale)

        _rand = generator.rand()
        min_ar, max_ar = aspect_ratio_scale
        aspect_ratio = min_ar + _rand * (max_ar - min_ar)

        h = int(round(math.sqrt(spatial_num_keep * aspect_ratio)))
        w = int(round(math.sqrt(spatial_num_keep / aspect_ratio)))
        h = min(h, self.height)
        w = min(w, self.width)
        return (t, h, w)

    def _sample_block_mask(self, b_size):
        t, h, w = b_size
        top = self.draws.randint(0, self.height - h + 1)
        left = self.draws.randint(0, self.width - w + 1)
        start = self.draws.randint(0, self.duration - t + 1)

        mask = np.ones((self.duration, self.height, self.width), dtype=np.int32)
        mask[start:start + t, top:top + h, left:left + w] = 0
        if self.max_context_duration < self.duration:
            mask[self.max_context_duration:, :, :] = 0
        return mask

    def __call__(self, batch_size):
        seed = self.step()
        g = self.draws.seeded(seed)
        p_size = self._sample_block_size(generator=g, temporal_scale=self.temporal_pred_mask_scale,
                                         spatial_scale=self.spatial_pred_mask_scale,
                                         aspect_ratio_scale=self.aspect_ratio)

        collated_masks_pred, collated_masks_enc = [], []
        min_keep_enc = min_keep_pred = self.duration * self.height * self.width
        for _ in range(batch_size):
            self.draws.begin_sample()
            empty_context = True
            redraws = 0
            while empty_context:
                mask_e = np.ones((self.duration, self.height, self.width), dtype=np.int32)
                for _ in range(self.npred):
                    mask_e *= self._sample_block_mask(p_size)
                mask_e = mask_e.flatten()

                mask_p = np.flatnonzero(mask_e == 0)
                mask_e = np.flatnonzero(mask_e)

                empty_context = len(mask_e) == 0
                if not empty_context:
                    min_keep_pred = min(min_keep_pred, len(mask_p))
                    min_keep_enc = min(min_keep_enc, len(mask_e))
                    collated_masks_pred.append(mask_p)
                    collated_masks_enc.append(mask_e)
                redraws += 1
                if empty_context and self.max_redraws is not None and redraws >= self.max_redraws:
                    raise RuntimeError(f"context empty after {redraws} draws")

        if self.max_keep is not None:
            min_keep_enc = min(min_keep_enc, self.max_keep)

        collated_masks_pred = np.stack([cm[:min_keep_pred] for cm in collated_masks_pred])
        collated_masks_enc = np.stack([cm[:min_keep_enc] for cm in collated_masks_enc])
        return collated_masks_enc, collated_masks_pred


class VJepaMaskCollator:
    """jepa MaskCollator: one _MaskGenerator per mask config (dicts as in the yaml)."""

    def __init__(self, cfgs_mask, crop_size=(224, 224), num_frames=16, patch_size=(16, 16), tubelet_size=2,
                 draws=None):
        self.mask_generators = []
        for m in cfgs_mask:
            mask_generator = VJepaMaskGenerator(
                crop_size=crop_size, num_frames=num_frames, spatial_patch_size=patch_size,
                temporal_patch_size=tubelet_size, spatial_pred_mask_scale=m.get('spatial_scale'),
                temporal_pred_mask_scale=m.get('temporal_scale'), aspect_ratio=m.get('aspect_ratio'),
                npred=m.get('num_blocks'), max_context_frames_ratio=m.get('max_temporal_keep', 1.0),
                max_keep=m.get('max_keep', None), draws=draws)
            self.mask_generators.append(mask_generator)

    def step(self):
        for mask_generator in self.mask_generators:
            mask_generator.step()

    def __call__(self, batch):
        batch_size = len(batch)
        collated_batch = np.stack(batch)
        collated_masks_pred, collated_masks_enc = [], []
        for mask_generator in self.mask_generators:
            masks_enc, masks_pred = mask_generator(batch_size)
            collated_masks_enc.append(masks_enc)
            collated_masks_pred.append(masks_pred)
        return collated_batch, collated_masks_enc, collated_masks_pred


# V-JEPA ViT-L/16 (configs/pretrain/vitl16.yaml): its two mask configs
VITL16_MASKS = [
    dict(aspect_ratio=(0.75, 1.5), num_blocks=8, spatial_scale=(0.15, 0.15), temporal_scale=(1.0, 1.0),
         max_temporal_keep=1.0, max_keep=None),
    dict(aspect_ratio=(0.75, 1.5), num_blocks=2, spatial_scale=(0.7, 0.7), temporal_scale=(1.0, 1.0),
         max_temporal_keep=1.0, max_keep=None),
]
