"""Bad arguments of the front doors: each raises TypeError or ValueError naming the argument, before
any kernel runs (the table of examples.py runs in python_tests/test_contract.py); freq_mask's values
are checked only under MIMKERNELS_DEBUG=1."""
import pytest
import torch

import mimkernels as mk
from mimkernels.frequency import IMAGENET_MEAN


def test_bad_arguments():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="radius"):
        mk.circular_filter(x, -1, False)
    with pytest.raises(TypeError, match="radius"):
        mk.frequency_mask(8, 8, float("nan"))
    with pytest.raises(ValueError, match="imgs"):
        mk.circular_filter(x[0], 2, False)
    with pytest.raises(TypeError, match="imgs"):
        mk.circular_filter((x * 255).to(torch.uint8), 2, False)
    with pytest.raises(TypeError, match="imgs"):
        mk.lowfreq_target(torch.zeros(2, 3, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="mean"):
        mk.circular_filter(x, 2, False, mean=(0.5, 0.5), std=(0.2, 0.2))
    with pytest.raises(ValueError, match="std"):
        mk.lowfreq_target(x, 2, std=(0.2,) * 4)
    with pytest.raises(ValueError, match="both mean and std"):
        mk.mfm_corrupt(x, 2, mean=IMAGENET_MEAN, std=None)
    with pytest.raises(ValueError, match="high_pass"):
        mk.circular_filter(x, 2, torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="high_pass"):
        mk.circular_filter(x, 2, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="low_pass_prob"):
        mk.mfm_corrupt(x, 2, 1.5)
    with pytest.raises(ValueError, match="outer_radius"):
        mk.circular_filter(x, 4, False, outer_radius=2)
    with pytest.raises(ValueError, match="clamp"):
        mk.circular_filter(x, 4, False, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="freq_mask"):
        mk.frequency_loss(x, x, torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="freq_mask"):
        mk.frequency_loss(x, x, torch.ones(8, 7))
    with pytest.raises(ValueError, match="same shape"):
        mk.frequency_loss(x, x[:1], None)
    with pytest.raises(ValueError, match="gamma"):
        mk.frequency_loss(x, x, None, gamma=0)
    with pytest.raises(ValueError, match="center"):
        mk.frequency_mask(8, 8, 2, center="middle")
    with pytest.raises(ValueError, match="backend"):
        mk.frequency_loss(x, x, None, backend="triton")
    with pytest.raises(TypeError, match="mean"):
        mk.circular_filter(x, 2, False, mean=torch.zeros(3), std=(1.0,) * 3)

def test_debug_check_of_mask_values(monkeypatch):
    x = torch.rand(2, 3, 8, 8)
    bad = torch.full((8, 8), 0.5)
    assert torch.isfinite(mk.frequency_loss(x, x + 1, bad))  # unchecked by default: no host sync
    monkeypatch.setenv("MIMKERNELS_DEBUG", "1")
    with pytest.raises(ValueError, match="freq_mask"):
        mk.frequency_loss(x, x, bad)


def test_huge_radius_passes_everything():
    """Issue 20: radius 1e308 raised OverflowError (radius² in floats); any radius past the spectrum's
    extent is the all-pass disc (and an outer band past it removes nothing)."""
    x = torch.rand(2, 3, 8, 6, dtype=torch.float64)
    assert bool((mk.frequency_mask(15, 4, 1e308) == 1).all())
    assert bool((mk.frequency_mask(15, 4, 1e308, center="pixmim") == 1).all())
    assert bool((mk.frequency_mask(15, 4, 1e308, high_pass=True) == 0).all())
    assert torch.equal(mk.frequency_mask(8, 6, 2, outer_radius=1e308), mk.frequency_mask(8, 6, 2))
    torch.testing.assert_close(mk.circular_filter(x, 1e308, False, backend="torch"), x.clamp(0, 1))
    torch.testing.assert_close(mk.circular_filter(x, 3.0, False, outer_radius=1e308, backend="torch"),
                               mk.circular_filter(x, 3.0, False, backend="torch"))
    corrupted, freq_mask, _ = mk.mfm_corrupt(x, 1e308, 1.0, seed=0, backend="torch")
    torch.testing.assert_close(corrupted, x.clamp(0, 1))
    assert bool((freq_mask == 1).all())
    assert torch.isfinite(mk.lowfreq_target(x, 1e308, backend="torch")).all()


@pytest.mark.parametrize("shape", [(2, 3, 0, 8), (2, 3, 8, 0), (0, 3, 8, 8)])
def test_empty_images_on_the_kernel(shape):
    """Issue 20: an image with no rows or columns divided by zero building the Triton plan's twiddles;
    it is the reference's empty result."""
    x = torch.rand(shape)
    assert mk.lowfreq_target(x, backend="triton").shape == shape
    assert mk.lowfreq_target(x, mean=None, std=None, exact=False, backend="triton").shape == shape
    assert mk.circular_filter(x, 3, False, backend="triton").shape == shape
