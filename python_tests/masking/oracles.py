"""Test helpers of the masking family: independent oracles (MAE's own code restated, numpy and
scipy, the official generators' statistics), input builders and skip markers."""
import random

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from mimkernels import _native
from benchmarks.upstream_masks import OfficialMaskingGenerator, OfficialMMPretrainBEiTMaskGenerator
from mimkernels.testing import backends_on

native = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")


needs_triton = pytest.mark.skipif("triton" not in backends_on("random_masking"), reason="triton backend unavailable")


# ---- MAE's models_mae.py random_masking and decoder unshuffle, restated with noise passed in: its
# unstable argsorts, the (B, K, D) repeated index and the mask built by a gather --------------------

def mae_random_masking(x, mask_ratio, noise):
    n, length, d = x.shape
    kept = int(length * (1 - mask_ratio))
    order = torch.argsort(noise, dim=1)
    restore = torch.argsort(order, dim=1)
    x_kept = torch.gather(x, 1, order[:, :kept].unsqueeze(-1).repeat(1, 1, d))
    removed = torch.ones(n, length, device=x.device)
    removed[:, :kept] = 0
    return x_kept, torch.gather(removed, 1, restore), restore


def mae_decoder_unshuffle(x, ids_restore, mask_token):
    fill = mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
    tokens = torch.cat([x[:, 1:], fill], dim=1)
    tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    return torch.cat([x[:, :1], tokens], dim=1)


# ---- numpy oracle, written from the spec --------------------------------------------------------

def oracle(noise: np.ndarray, mask_ratio: float):
    b, length = noise.shape
    k = int(length * (1 - mask_ratio))
    order = np.argsort(noise, axis=1, kind="stable")              # patch at each sorted position
    ids_restore = np.empty((b, length), dtype=np.int64)
    np.put_along_axis(ids_restore, order, np.arange(length, dtype=np.int64)[None].repeat(b, 0), axis=1)
    return order[:, :k].astype(np.int64), ids_restore, (ids_restore >= k).astype(np.float32)


def tie_free_noise(b, length, gen):
    """torch.rand rows redrawn until tie-free, so MAE's unstable argsort is well defined."""
    while True:
        noise = torch.rand(b, length, generator=gen)
        if all(torch.unique(row).numel() == length for row in noise):
            return noise


def awkward_noise(b, length, dtype, seed):
    """Uniform noise with repeated values, signed zeros, infinities and NaNs planted in it."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(b, length, generator=g) * 2 - 1
    noise[:, : length // 3] = noise[:, :1]                     # a run of ties
    if length > 2:
        noise[0, -1], noise[0, -2] = -0.0, 0.0                 # tie: +0.0 (lower index) first
    if length > 6:
        noise[-1, 2], noise[-1, 3], noise[-1, 4] = float("nan"), float("inf"), -float("inf")
        noise[-1, 5] = float("nan")
    return noise.to(dtype)


def assert_same(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape and torch.equal(g, w)


def oracle_gather(imgs: np.ndarray, ids: np.ndarray, p: int) -> np.ndarray:
    b, c, _, ww = imgs.shape
    w = ww // p
    out = np.empty((b, ids.shape[1], p * p * c), dtype=imgs.dtype)
    for n in range(b):
        for k, l in enumerate(ids[n]):
            i, j = divmod(int(l), w)
            block = imgs[n, :, i * p:(i + 1) * p, j * p:(j + 1) * p]  # (c, p, q)
            out[n, k] = block.transpose(1, 2, 0).reshape(-1)          # (p, q, c)
    return out


def random_ids(b, length, k):
    return torch.stack([torch.randperm(length)[:k] for _ in range(b)])


def make_ids(b, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.argsort(torch.rand(b, length, generator=g), dim=1)


# ---- mask generators: statistics against the official generators, scipy's AvgDist -------------

def cpp_on_two_threads(fn, *args, **kw):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return fn(*args, backend="cpp", **kw)
    finally:
        torch.set_num_threads(threads)


def official_block_masks(n, seed, variant="unilm", **kw):
    if variant == "unilm":
        gen = OfficialMaskingGenerator(14, rnd=random.Random(seed), **kw)
    else:
        gen = OfficialMMPretrainBEiTMaskGenerator(14, rs=np.random.RandomState(seed), **kw)
    return torch.from_numpy(np.stack([gen() for _ in range(n)])).bool()


def count_histogram_pvalue(ours, theirs, target):
    """χ² homogeneity test of the per-mask count histograms, tail <= target - 3 pooled (and any count
    above the target, which the official generator never makes, in one more bin)."""
    def hist(masks):
        counts = masks.flatten(1).sum(1).clamp(min=target - 3, max=target + 1).numpy()
        return [int((counts == k).sum()) for k in range(target - 3, target + 2)]

    table = np.array([hist(ours), hist(theirs)])
    assert table.sum(1).min() > 0 and (table[:, -2] > 0).all()
    table = table[:, table.sum(0) > 0]
    return stats.chi2_contingency(table)[1] if table.shape[1] > 1 else 1.0


def two_proportion_z(k1, n1, k2, n2):
    p = (k1 + k2) / (n1 + n2)
    se = np.sqrt(np.maximum(p * (1 - p) * (1 / n1 + 1 / n2), 1e-300))
    return (k1 / n1 - k2 / n2) / se


def neighbour_pairs(masks):
    """(B,) horizontal + vertical 4-neighbour pairs that are both masked."""
    m = masks.long()
    return ((m[:, :, 1:] * m[:, :, :-1]).sum((1, 2)) + (m[:, 1:] * m[:, :-1]).sum((1, 2))).double()


BLOCK_SETTINGS = {
    "maskfeat": dict(num_masking_patches=78, min_num_patches=15),
    "beit": dict(num_masking_patches=75, min_num_patches=16),
    "mmpretrain": dict(num_masking_patches=78, min_num_patches=15, variant="mmpretrain"),
}


def scipy_avg_dist(mask, patch):
    out = []
    for m in mask.numpy():
        pixels = np.kron(m != 0, np.ones((patch, patch), dtype=bool))
        d = ndimage.distance_transform_edt(pixels)
        out.append(d[pixels].mean() if pixels.any() and not pixels.all() else (np.nan if not pixels.any() else np.inf))
    return torch.tensor(out, dtype=torch.float64)


SEEDS = [0, 12345, 2**63, 2**64 - 1]
