"""The mask generators against the official ones in distribution (different RNGs: statistics, not
bits; N = 20 000 masks each, from the cpp backend): SimMIM's uniform subset, the block mask's count
histogram, marginal map and neighbour pairs, SPEC.md's simulated tables, AvgDist reference values."""
import math

import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels import _native
from benchmarks.upstream_masks import OfficialSimMIMMaskGenerator
from python_tests.masking.oracles import (BLOCK_SETTINGS, count_histogram_pvalue, native, neighbour_pairs,
                                          official_block_masks, two_proportion_z)


@native
def test_simmim_uniform_subset_vs_official():
    """Our cells vs the official numpy generator: marginal map and pair rate, N = 20 000 each."""
    n = 20_000
    ours = mk.simmim_mask(n, 224, 32, 32, 0.6, seed=11, backend="cpp").flatten(1)
    gen = OfficialSimMIMMaskGenerator(224, 32, 32, 0.6, rs=np.random.RandomState(5))
    theirs = torch.from_numpy(np.stack([gen() for _ in range(n)])).bool().flatten(1)
    assert (ours.sum(1) == 30).all() and (theirs.sum(1) == 30).all()
    z = two_proportion_z(ours.sum(0).numpy(), n, theirs.sum(0).numpy(), n)
    assert np.abs(z).max() < 4.5
    # P(two given cells) = m(m-1)/(T(T-1)): cells 0 and 48 (opposite corners), 3 and 4 (neighbours).
    for a, b in ((0, 48), (3, 4)):
        both = int((ours[:, a] & ours[:, b]).sum())
        expect = n * 30 * 29 / (49 * 48)
        assert abs(both - expect) < 4.5 * math.sqrt(expect)


@pytest.fixture(scope="module")
def block_samples():
    """N = 20 000 masks per setting from our cpp backend and from the official generator."""
    if not _native.available():
        pytest.skip("mimkernels._C not built")
    n = 20_000
    return {name: (mk.block_mask(n, seed=100 + i, backend="cpp", **kw), official_block_masks(n, seed=i, **kw))
            for i, (name, kw) in enumerate(BLOCK_SETTINGS.items())}


@pytest.mark.parametrize("name", list(BLOCK_SETTINGS))
def test_block_distribution_vs_official(block_samples, name):
    ours, theirs = block_samples[name]
    n, target = ours.shape[0], BLOCK_SETTINGS[name]["num_masking_patches"]
    assert count_histogram_pvalue(ours, theirs, target) > 1e-3
    z = two_proportion_z(ours.sum(0).numpy(), n, theirs.sum(0).numpy(), n)
    assert np.abs(z).max() < 4.5, f"marginal map differs, max |z| = {np.abs(z).max():.1f}"
    a, b = neighbour_pairs(ours), neighbour_pairs(theirs)
    z_pairs = (a.mean() - b.mean()) / math.sqrt(a.var() / n + b.var() / n)
    assert abs(z_pairs) < 4.0, f"neighbour-pair rate differs, z = {z_pairs:.1f}"


def test_block_spec_table(block_samples):
    """Coverage numbers simulated from the official generator (N = 1e5, below) within 5 standard errors at N = 2e4."""
    table = {"maskfeat": (0.705, 0.209, 0.732, 0.044, 0.359), "beit": (0.664, 0.233, 0.715, 0.041, 0.344),
             "mmpretrain": (1.0, 0.0, 0.790, 0.066, 0.3625)}
    for name, (p_exact, p_minus1, centre, corner, pair) in table.items():
        ours = block_samples[name][0]
        n, target = ours.shape[0], BLOCK_SETTINGS[name]["num_masking_patches"]
        counts = ours.flatten(1).sum(1)
        last = 12 if name == "mmpretrain" else 13  # mmpretrain never masks row 13 and column 13
        for observed, expected in (((counts == target).double().mean(), p_exact),
                                   ((counts == target - 1).double().mean(), p_minus1),
                                   (ours[:, 6:8, 6:8].double().mean(), centre),
                                   (ours[:, [0, 0, last, last], [0, last, 0, last]].double().mean(), corner)):
            assert abs(float(observed) - expected) < 5 * math.sqrt(expected * (1 - expected) / n) + 0.002
        # P(horizontal neighbours both masked), averaged over the 14·13 pairs.
        horizontal = (ours[:, :, 1:] & ours[:, :, :-1]).double().mean()
        assert abs(float(horizontal) - pair) < 0.01


@native
def test_avg_dist_spec_reference_values():
    """AvgDist simulated from the official generators (N = 2000): SimMIM 192/32/0.6 -> 15.30 (sd 2.53); MaskFeat 78/15 -> 20.64 (5.40)."""
    n = 400
    simmim = mk.mask_avg_dist(mk.simmim_mask(n, seed=5)[:, ::8, ::8], 32).double()
    assert abs(simmim.mean() - 15.30) < 4 * 2.53 / math.sqrt(n)
    maskfeat = mk.mask_avg_dist(mk.block_mask(n, seed=5), 16).double()
    assert abs(maskfeat.mean() - 20.64) < 4 * 5.40 / math.sqrt(n)
