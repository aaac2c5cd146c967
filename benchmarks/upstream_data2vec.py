"""data2vec 2.0's block mask and the score-guided masks of AttMask and HPM, restated line for line:
the oracles of python_tests/mask_zoo/test_data2vec.py / test_score.py and the baselines of
benchmarks/bench_mask_zoo.py.

- `compute_block_mask_2d`: facebookresearch/fairseq fairseq/data/data_utils.py, line for line on torch
  (imported lazily; the `expand_adjcent` branch left out: no data2vec 2.0 image config sets it), its
  two draws, randint and multinomial, made through an injectable `rnd` (`TorchRandom`: torch's own).
  Also the benchmark baseline: what data2vec 2.0's MaeImageDataset pays per image.
- `attmask`: gkakogeorgiou/attmask attmask.py (AttMask, get_mask, attention_masking, show_hints).
- `hpm_generate_mask`: Haochen-Wang409/HPM models_mae_learn_loss.py MaskedAutoencoderViT.generate_mask.
"""
from __future__ import annotations

import math

import numpy as np


class TorchRandom:
    """torch.randint / torch.multinomial on a torch.Generator (None: torch's global one), as fairseq calls them."""

    def __init__(self, generator=None):
        self.generator = generator

    def randint(self, low, high, size):
        import torch
        return torch.randint(low, high, size=size, generator=self.generator)

    def multinomial(self, weights, k, replacement=False):
        import torch
        return torch.multinomial(weights, k, replacement=replacement, generator=self.generator)


class TorchLikeRandom:
    """The torch draws of AttMask and HPM on numpy's Generator: rand, shuffle (HPM's np.random.shuffle) and
    multinomial(weights, k) without replacement (weights (B, n) or (n,) -> k indices per row drawn in
    proportion to the weights among those not drawn yet)."""

    def __init__(self, seed=None):
        self.gen = np.random.default_rng(seed)

    def multinomial(self, weights, k):
        weights = np.asarray(weights, dtype=np.float64)
        rows = weights.reshape(-1, weights.shape[-1])
        out = np.stack([self._choose(row, k) for row in rows]) if len(rows) else np.zeros((0, k), dtype=np.int64)
        return out.reshape(*weights.shape[:-1], k)

    def _choose(self, row, k):
        support = np.flatnonzero(row)
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        if (row[support] == row[support[0]]).all():  # equal weights (every call here): a uniform subset
            return self.gen.choice(support, size=k, replace=False)
        return self.gen.choice(row.size, size=k, replace=False, p=row / row.sum())

    def rand(self, size):
        return self.gen.random(size)

    def shuffle(self, x):
        self.gen.shuffle(x)


def compute_block_mask_2d(shape, mask_prob, mask_length, mask_prob_adjust=0, inverse_mask=False,
                          require_same_masks=True, mask_dropout=0, non_overlapping=False, rnd=None):
    """fairseq compute_block_mask_2d: (B, L) float32, 1 = masked (after the inversion); torch's randint /
    multinomial through rnd (default: TorchRandom(), torch's global generator)."""
    import torch

    rnd = TorchRandom() if rnd is None else rnd
    assert mask_length > 1
    B, L = shape
    d = int(L**0.5)
    if inverse_mask:
        mask_prob = 1 - mask_prob
    if non_overlapping:
        sz = math.ceil(d / mask_length)
        inp_len = sz * sz
        inp = torch.zeros((B, 1, sz, sz))
        w = torch.ones((1, 1, mask_length, mask_length))
        mask_inds = rnd.multinomial(1 - inp.view(B, -1),
                                    int(inp_len * (mask_prob + mask_prob_adjust) * (1 + mask_dropout)),
                                    replacement=False)
        inp.view(B, -1).scatter_(1, mask_inds, 1)
        mask = torch.nn.functional.conv_transpose2d(inp, w, stride=mask_length).squeeze(1)
        if mask.size(-1) > d:
            mask = mask[..., :d, :d]
    else:
        mask = torch.zeros((B, d, d))
        mask_inds = rnd.randint(0, L, size=(B, int(L * ((mask_prob + mask_prob_adjust) / mask_length**2)
                                                     * (1 + mask_dropout))))
        mask.view(B, -1).scatter_(1, mask_inds, 1)
        centers = mask.nonzero(as_tuple=True)
        inds = ([], [], [])
        offset = mask_length // 2
        for i in range(mask_length):
            for j in range(mask_length):
                k1 = i - offset
                k2 = j - offset
                inds[0].append(centers[0])
                inds[1].append(centers[1] + k1)
                inds[2].append(centers[2] + k2)
        i0 = torch.cat(inds[0])
        i1 = torch.cat(inds[1]).clamp_(min=0, max=d - 1)
        i2 = torch.cat(inds[2]).clamp_(min=0, max=d - 1)
        mask[(i0, i1, i2)] = 1
    mask = mask.reshape(B, -1)
    if require_same_masks:
        n_masks = mask.sum(dim=-1)
        final_target_len = int(L * (mask_prob))
        for i in range(len(mask)):
            n = n_masks[i]
            m = mask[i]
            if n > final_target_len:
                to_unmask = rnd.multinomial(m, int(n - final_target_len), replacement=False)
                m[to_unmask] = 0
            elif n < final_target_len:
                to_mask = rnd.multinomial((1 - m), int(final_target_len - n), replacement=False)
                m[to_mask] = 1
    if inverse_mask:
        mask = 1 - mask
    return mask


# ---- AttMask (gkakogeorgiou/attmask attmask.py) ---------------------------------------------------

def _argsort_rows(values, descending):
    """torch.argsort(values, descending=...) along the last axis, ties by lower index (stable)."""
    return np.argsort(-values if descending else values, axis=1, kind="stable")


def attention_masking(attention, masking_mode, masking_ratio):
    N = int(attention.shape[1] * masking_ratio)
    attn_mask = np.zeros(attention.shape, dtype=bool)

    if masking_mode in ['attmask_high', 'attmask_hint']:
        idx = _argsort_rows(attention, descending=True)[:, :N]
    elif masking_mode == 'attmask_low':
        idx = _argsort_rows(attention, descending=False)[:, :N]
    else:
        raise ValueError('Use attmask_high, attmask_hint or attmask_low')

    np.put_along_axis(attn_mask, idx, True, axis=1)
    return attn_mask


def get_mask(attention, masking_prob, masking_mode, masking_ratio, rnd):
    token_mask = attention_masking(attention, masking_mode, masking_ratio)
    generator = rnd.rand(attention.shape[0])
    token_mask[generator > masking_prob] = False
    return token_mask


def show_hints(top_masks, masks, show_ratio, rnd):
    _, n_tokens = masks.shape
    reveal_tokens = int(show_ratio * n_tokens)
    selected_high = rnd.multinomial(top_masks.astype(np.float64), reveal_tokens)
    np.put_along_axis(masks, selected_high, False, axis=1)
    return masks


def attmask(attention, masking_prob, masking_mode, masking_ratio, show_ratio, show_max, rnd=None):
    """AttMask(attention (B, N), ...) -> (B, N) bool, True = masked."""
    rnd = TorchLikeRandom() if rnd is None else rnd
    masks = get_mask(attention, masking_prob, masking_mode, masking_ratio, rnd)
    if masking_mode == 'attmask_hint':
        top_masks = get_mask(attention, 1, masking_mode, show_max, rnd)
        masks = show_hints(top_masks, masks, show_ratio, rnd)
    return masks


# ---- HPM (Haochen-Wang409/HPM models_mae_learn_loss.py) -------------------------------------------

def hpm_generate_mask(loss_pred, mask_ratio=0.75, guide=True, epoch=0, total_epoch=200, rnd=None):
    """HPM's generate_mask: (N, L) float64, 1 = masked: the `keep_ratio` share of the masked count
    taken from the largest predicted losses, the rest uniformly at random from the other tokens
    (np.argsort stable in place of torch.argsort; torch.randn's shuffle as rnd.shuffle)."""
    rnd = TorchLikeRandom() if rnd is None else rnd
    N, L = loss_pred.shape
    len_keep = int(L * (1 - mask_ratio))

    ids_shuffle_loss = np.argsort(loss_pred, axis=1, kind="stable")  # (N, L)

    keep_ratio = 0.2
    ids_shuffle = np.zeros_like(ids_shuffle_loss)

    if guide:
        keep_ratio = float((epoch + 1) / total_epoch) * 0.5

    if int((L - len_keep) * keep_ratio) <= 0:
        for i in range(N):
            ids_shuffle[i] = np.arange(L)
            rnd.shuffle(ids_shuffle[i])
    else:
        for i in range(N):
            len_loss = int((L - len_keep) * keep_ratio)
            ids_shuffle[i, -len_loss:] = ids_shuffle_loss[i, -len_loss:]

            temp = np.arange(L)
            deleted = np.delete(temp, ids_shuffle[i, -len_loss:])
            rnd.shuffle(deleted)
            ids_shuffle[i, :(L - len_loss)] = deleted

    ids_restore = np.argsort(ids_shuffle, axis=1, kind="stable")

    mask = np.ones([N, L])
    mask[:, :len_keep] = 0
    mask = np.take_along_axis(mask, ids_restore, axis=1)

    return mask
