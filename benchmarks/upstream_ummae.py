"""UM-MAE's uniform masking (implus/UM-MAE), restated without torch: the oracle of
python_tests/mask_zoo/test_uniform.py and the baseline of benchmarks/bench_mask_zoo.py.

- `RandomMaskingGenerator`: mask_transform.py, line for line, `np.random` through an injectable
  generator (`rnd`), einops' rearrange written as the numpy reshape/transpose it performs, the
  constructor's print dropped. regular=True is UM-MAE's uniform sampling (mask_ratio 0.75).
- `secondary_mask`: the secondary masking of models_mae_swin.py / models_mae_pvt.py forward_encoder
  (`vis_mask_ratio`), in numpy: `noise` (N, L) in [0, 1) stands for the model's torch.rand.
"""
from __future__ import annotations

import numpy as np


class RandomMaskingGenerator:
    """implus/UM-MAE mask_transform.py RandomMaskingGenerator: flat (H·W,) float64, 1.0 = masked."""

    def __init__(self, input_size, mask_ratio, regular=False, rnd=np.random):
        if not isinstance(input_size, tuple):
            input_size = (input_size,) * 2

        self.height, self.width = input_size

        self.num_patches = self.height * self.width
        self.num_mask = int(mask_ratio * self.num_patches)
        self.regular = regular
        self.rnd = rnd

        if regular:
            assert mask_ratio == 0.75

            candidate_list = []
            while True:  # add more
                for j in range(4):
                    candidate = np.ones(4)
                    candidate[j] = 0
                    candidate_list.append(candidate)
                if len(candidate_list) * 4 >= self.num_patches * 2:
                    break
            self.mask_candidate = np.vstack(candidate_list)

    def __repr__(self):
        return "Mask: total patches {}, mask patches {}, regular {}".format(
            self.num_patches, self.num_mask, self.regular)

    def __call__(self):
        if not self.regular:
            mask = np.hstack([
                np.zeros(self.num_patches - self.num_mask),
                np.ones(self.num_mask),
            ])
            self.rnd.shuffle(mask)
        else:
            mask = self.mask_candidate.copy()
            self.rnd.shuffle(mask)
            # rearrange(mask[:L // 4], '(h w) (p1 p2) -> (h p1) (w p2)', h=H // 2, w=W // 2, p1=2, p2=2)
            h, w = self.height // 2, self.width // 2
            mask = mask[:self.num_patches // 4].reshape(h, w, 2, 2).transpose(0, 2, 1, 3).reshape(h * 2, w * 2)
            mask = mask.flatten()

        return mask


def secondary_mask(mask, vis_mask_ratio, noise):
    """models_mae_swin.py forward_encoder's secondary mask: mask (N, L) bool (the loader's, 1 = masked),
    noise (N, L) in [0, 1) -> new_mask (N, L) bool, the loader's mask plus int-truncated vis_mask_ratio of
    each sample's visible tokens (the visible tokens of larger noise)."""
    N, L = mask.shape
    vis_cnt = L - len(np.nonzero(mask[0])[0])
    vis_final_cnt = int(vis_cnt * (1. - vis_mask_ratio))  # final visible
    mask_noise = mask.astype(np.float32) + noise
    ids_shuffle = np.argsort(mask_noise, axis=1, kind="stable")
    ids_restore = np.argsort(ids_shuffle, axis=1, kind="stable")
    new_mask = np.ones([N, L])
    new_mask[:, :vis_final_cnt] = 0
    new_mask = np.take_along_axis(new_mask, ids_restore, axis=1).astype(bool)
    return new_mask
