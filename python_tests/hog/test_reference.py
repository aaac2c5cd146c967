"""The eager reference against the independent float64 oracle: integer images exactly, photographs and
randn within the flip-aware bound; the constant tables of the kernels."""
import math

import numpy as np
import pytest
import torch

from mimkernels.hog import reference
from mimkernels.hog.ops import bin_cotangents
from python_tests.hog.oracles import (assert_within_flip_bound, integer_images, normalized_photos, oracle,
                                      oracle_patches)


@pytest.mark.parametrize("shape,pool,gw", [((2, 3, 32, 32), 8, 16), ((2, 3, 32, 48), 8, 0), ((1, 1, 21, 30), 7, 0),
                                           ((1, 2, 16, 16), 4, 8)])
def test_reference_equals_oracle_on_integer_images(shape, pool, gw):
    imgs = integer_images(shape)
    o = oracle(imgs, 9, pool, gw)
    np.testing.assert_allclose(reference.hog_map(imgs, 9, pool, gw).numpy(), o["map"], rtol=0, atol=2e-6)
    if shape[2] % 16 == 0 and shape[3] % 16 == 0 and 16 % pool == 0:
        np.testing.assert_allclose(reference.hog(imgs, 9, pool, gw, True, 16).numpy(),
                                   oracle_patches(o["map"], 16 // pool), rtol=0, atol=2e-6)


def test_reference_within_flip_bound_on_photos_and_randn():
    imgs = normalized_photos(64)
    assert_within_flip_bound(reference.hog_map(imgs), oracle(imgs), label="reference, photos 64 px")
    randn = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert_within_flip_bound(reference.hog(randn), oracle(randn), patch_cells=2, label="reference, randn")


def test_window_table_and_cotangents():
    g = reference.gaussian_window(16).double().numpy()
    t = np.arange(16)
    bell = np.exp(-0.5 * ((t - 7.5) / 8) ** 2)
    np.testing.assert_allclose(g, np.outer(bell, bell) / np.outer(bell, bell).sum(), rtol=1e-6)
    for nbins in (2, 4, 8, 9, 12):
        cot = bin_cotangents(nbins).double()
        exact = torch.tensor([1 / math.tan(k * math.pi / nbins) for k in range(1, nbins)], dtype=torch.float64)
        assert torch.allclose(cot.sum(1), exact, rtol=0, atol=1e-14)
        for k in range(1, nbins):  # the rational boundaries are stored exactly
            if 4 * k in (nbins, 3 * nbins) or 2 * k == nbins:
                assert cot[k - 1, 1] == 0 and cot[k - 1, 0] in (-1.0, 0.0, 1.0)
    assert bin_cotangents(1).shape == (0, 2)
