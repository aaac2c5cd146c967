"""mfm_corrupt's per-sample low/high-pass choice (SPEC.md §4): rng stream 4, the same on every
backend and batch split, at the asked rate."""
import math

import pytest
import torch

import mimkernels as mk
from mimkernels import rng
from mimkernels.testing import backends_on

FILTER_BACKENDS = backends_on("circular_filter")


def test_corrupt_draws_follow_stream_4():
    """Same seed -> same choice on every backend and batch split; rng.md stream 4 definition."""
    x = torch.rand(10, 1, 4, 4)
    choices = [mk.mfm_corrupt(x, 2, 0.5, seed=123, backend=b)[2] for b in FILTER_BACKENDS]
    assert all(torch.equal(c, choices[0]) for c in choices)
    x0 = rng.draw(123, 0, torch.arange(10), rng.STREAM_FREQUENCY_CHOICE)[0]
    assert torch.equal(choices[0], rng.unit_float(x0).double() < 0.5)
    tail = mk.mfm_corrupt(x[4:], 2, 0.5, seed=123, sample_offset=4)[2]
    assert torch.equal(tail, choices[0][4:])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(mk.mfm_corrupt(x, 2, generator=g1)[2], mk.mfm_corrupt(x, 2, generator=g2)[2])
    assert torch.all(mk.mfm_corrupt(x, 2, 1.0, seed=1)[2]) and not torch.any(mk.mfm_corrupt(x, 2, 0.0, seed=1)[2])

@pytest.mark.parametrize("prob", [0.5, 0.3])
def test_low_pass_rate(prob):
    n = 8000
    is_low = mk.mfm_corrupt(torch.zeros(n, 1, 1, 1), 1, prob, seed=2024, backend="torch")[2]
    sigma = math.sqrt(prob * (1 - prob) / n)
    assert abs(is_low.double().mean().item() - prob) < 4 * sigma
