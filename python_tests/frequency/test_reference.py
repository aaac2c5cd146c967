"""The references against independent oracles (oracles.py): masks against the official builders
restated, the official chains and the fast torch paths against float64 numpy, the loss and its
properties, the identities of SPEC.md §3 and §7 as properties, real photographs at 224."""
import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD, reference
from mimkernels.testing import sample_photos
from python_tests.frequency.oracles import (loss_oracle, low_masks, mfm_filter_oracle, mfm_mask_oracle,
                                            pixmim_mask_oracle, pixmim_target_oracle)


# ---- masks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(8, 8), (9, 9), (8, 9), (7, 6), (16, 12), (1, 1), (2, 5)])
@pytest.mark.parametrize("radius", [0, 1, 2.5, 3, 4.75, 30])
def test_masks_equal_the_official_builders(h, w, radius):
    low = mk.frequency_mask(h, w, radius)
    assert low.dtype == torch.float32
    np.testing.assert_array_equal(low.numpy(), mfm_mask_oracle(h, w, radius))
    np.testing.assert_array_equal(mk.frequency_mask(h, w, radius, high_pass=True).numpy(),
                                  1 - mfm_mask_oracle(h, w, radius))
    np.testing.assert_array_equal(mk.frequency_mask(h, w, radius, outer_radius=radius + 2).numpy(),
                                  mfm_mask_oracle(h, w, radius, radius + 2))
    np.testing.assert_array_equal(mk.frequency_mask(h, w, radius, center="pixmim").numpy(),
                                  pixmim_mask_oracle(h, w, radius))

def test_mask_counts_at_224():
    assert int(mk.frequency_mask(224, 224, 16).sum()) == 793
    assert int(mk.frequency_mask(224, 224, 16, outer_radius=999).sum()) == 793
    pix = mk.frequency_mask(224, 224, 40, center="pixmim")
    assert int(pix.sum()) == 5024
    k = reference.signed_frequencies(224)
    rows = k[pix.bool().any(1)]
    assert (int(rows.min()), int(rows.max())) == (-40, 39)

@pytest.mark.parametrize("h,w", [(8, 8), (9, 9), (8, 9), (7, 6), (16, 12), (33, 32), (224, 225)])
def test_conjugate_symmetry(h, w):
    """SPEC.md §3: MFM masks are conjugate-symmetric in natural layout for every size; PixMIM's iff odd x odd."""
    def symmetric(m):
        nat = torch.fft.ifftshift(m)
        return torch.equal(nat, reference._mirror(nat))

    assert symmetric(mk.frequency_mask(h, w, 3)) and symmetric(mk.frequency_mask(h, w, 3, high_pass=True))
    assert symmetric(mk.frequency_mask(h, w, 3, center="pixmim")) == (h % 2 == 1 and w % 2 == 1)


# ---- MFM filter ------------------------------------------------------------------------------

FILTER_CASES = [((2, 3, 16, 16), 4), ((2, 2, 17, 13), 3.5), ((1, 1, 20, 32), 6), ((3, 1, 5, 7), 1)]


@pytest.mark.parametrize("shape,radius", FILTER_CASES)
def test_official_filter_chain_matches_oracle(shape, radius):
    x = torch.rand(shape, dtype=torch.float64)
    high_pass = [bool(i % 2) for i in range(shape[0])]
    masks = low_masks(shape[0], shape[2], shape[3], radius, high_pass)
    for clamp, mean, std in [(None, None, None), ((0.0, 1.0), (0.4,) * shape[1], (0.3,) * shape[1])]:
        expected = mfm_filter_oracle(x.numpy(), masks, clamp, mean, std)
        got = reference.mfm_filter_official(x, torch.from_numpy(masks), clamp, mean, std)
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12, rtol=0)
        got32 = reference.mfm_filter_official(x.float(), torch.from_numpy(masks), clamp, mean, std)
        np.testing.assert_allclose(got32.numpy(), expected, atol=2e-6 / (0.3 if mean else 1), rtol=0)


# ---- PixMIM target ---------------------------------------------------------------------------

TARGET_CASES = [((2, 3, 16, 16), 5), ((1, 3, 17, 15), 4), ((2, 3, 17, 17), 3), ((1, 3, 12, 20), 6.5),
                ((1, 3, 9, 8), 0.5)]


@pytest.mark.parametrize("shape,radius", TARGET_CASES)
def test_official_target_matches_oracle(shape, radius):
    z = torch.randn(shape, dtype=torch.float64)
    mask = pixmim_mask_oracle(shape[2], shape[3], radius)
    expected = pixmim_target_oracle(z.numpy(), mask)
    got = reference.pixmim_target_official(z, torch.from_numpy(mask), IMAGENET_MEAN, IMAGENET_STD)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-11, rtol=0)
    got32 = reference.pixmim_target_official(z.float(), torch.from_numpy(mask), IMAGENET_MEAN, IMAGENET_STD)
    np.testing.assert_allclose(got32.numpy(), expected, atol=1e-5, rtol=0)

@pytest.mark.parametrize("h,w", [(8, 8), (9, 9), (8, 9), (7, 6)])
def test_exact_target_is_modulus_of_unshifted_filter(h, w):
    """SPEC.md §7.3: the missing ifftshift is a unit phase: official == |ifft2(X·ifftshift(M))|."""
    x = torch.rand(2, 3, h, w, dtype=torch.float64)
    mask = reference.frequency_mask(h, w, 2.5, False, "pixmim")
    direct = torch.fft.ifft2(torch.fft.fft2(x) * torch.fft.ifftshift(mask.double())).abs()
    torch.testing.assert_close(reference.pixmim_target_official(x, mask), direct, atol=1e-13, rtol=0)
    if h % 2 == 0 or w % 2 == 0:  # then the official output is truly complex: no real filter gives it
        real = torch.fft.ifft2(torch.fft.fft2(x) * torch.fft.ifftshift(mask.double())).real.abs()
        assert (real - direct).abs().max() > 1e-6


# ---- loss ------------------------------------------------------------------------------------

LOSS_CASES = [(2, 3, 8, 8), (3, 2, 9, 7), (2, 1, 6, 11)]


@pytest.mark.parametrize("shape", LOSS_CASES)
@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_loss_matches_oracle(shape, gamma):
    b, c, h, w = shape
    pred, target = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    masks = [None, torch.from_numpy(low_masks(b, h, w, 2, [bool(i % 2) for i in range(b)])),
             (torch.rand(h, w) < 0.4).float(), (torch.rand(b, h, w) < 0.5).to(torch.int64)]
    for freq_mask in masks:
        fm = None if freq_mask is None else freq_mask.numpy().astype(np.float64)
        expected = loss_oracle(pred.numpy(), target.numpy(), fm, gamma)
        assert reference.frequency_loss_official(pred, target, freq_mask, gamma).item() == pytest.approx(expected,
                                                                                                           rel=1e-12)
        assert mk.frequency_loss(pred, target, freq_mask, gamma=gamma).item() == pytest.approx(expected, rel=1e-12)
        got32 = mk.frequency_loss(pred.float(), target.float(), freq_mask, gamma=gamma)
        assert got32.dtype == torch.float32 and got32.dim() == 0
        assert got32.item() == pytest.approx(expected, rel=1e-5)

def test_loss_properties():
    """Depends on pred - target only; gamma=1 is positively homogeneous; the masked mean is one
    batch-wide mean (each sample weighted by its count of removed frequencies); half inputs."""
    b, c, h, w = 4, 3, 8, 8
    pred, target = torch.randn(b, c, h, w, dtype=torch.float64), torch.randn(b, c, h, w, dtype=torch.float64)
    fm = torch.from_numpy(low_masks(b, h, w, 3, [False, True, True, False]))
    loss = mk.frequency_loss(pred, target, fm)
    shift = torch.randn(b, c, h, w, dtype=torch.float64)
    assert mk.frequency_loss(pred + shift, target + shift, fm).item() == pytest.approx(loss.item(), rel=1e-12)
    assert mk.frequency_loss(3 * pred, 3 * target, fm).item() == pytest.approx(3 * loss.item(), rel=1e-9)
    counts = (1 - fm).sum((1, 2))
    per_sample = torch.stack([mk.frequency_loss(pred[i:i + 1], target[i:i + 1], fm[i:i + 1]) for i in range(b)])
    assert loss.item() == pytest.approx(((per_sample * counts).sum() / counts.sum()).item(), rel=1e-12)
    assert torch.isnan(mk.frequency_loss(pred, target, torch.ones(h, w)))  # nothing removed: 0/0 as official
    half = mk.frequency_loss(pred.half(), target.bfloat16(), fm)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(mk.frequency_loss(pred.half().float(), target.bfloat16().float(),
                                                          fm).item(), rel=1e-5)


# ---- real photographs at 224 (reference paths) -----------------------------------------------

def test_photographs_at_224():
    x = sample_photos(224)
    x64 = x.double().numpy()
    low = mfm_mask_oracle(224, 224, 16).astype(np.float64)
    masks = np.stack([low, 1 - low])
    expected = mfm_filter_oracle(x64, masks, clamp=None)
    torch_masks = torch.from_numpy(masks).float()
    official = reference.mfm_filter_official(x, torch_masks, None)
    assert np.abs(official.double().numpy() - expected).max() < 2e-6
    fast = mk.circular_filter(x, 16, torch.tensor([False, True]), clamp=None, backend="torch")
    assert np.abs(fast.double().numpy() - expected).max() < 2e-6

    mean, std = np.array(IMAGENET_MEAN)[:, None, None], np.array(IMAGENET_STD)[:, None, None]
    z = (x64 - mean) / std
    target_expected = pixmim_target_oracle(z, pixmim_mask_oracle(224, 224, 40))
    z32 = torch.from_numpy(z).float()
    for got in (reference.pixmim_target_official(z32, mk.frequency_mask(224, 224, 40, center="pixmim"),
                                                 IMAGENET_MEAN, IMAGENET_STD),
                mk.lowfreq_target(z32, 40, backend="torch")):
        assert np.abs(got.double().numpy() - target_expected).max() < 1e-5
    # exact=False is not the official target (SPEC.md §5: a few % of the target's spread)
    sym = mk.lowfreq_target(z32, 40, exact=False, backend="torch").double().numpy()
    rms = np.sqrt(((sym - target_expected) ** 2).mean())
    assert 1e-3 < rms < 0.1 * target_expected.std()

    pred = torch.randn(2, 3, 224, 224)
    loss = mk.frequency_loss(pred, z32, torch.from_numpy(masks).float())
    assert loss.item() == pytest.approx(loss_oracle(pred.double().numpy(), z, masks), rel=1e-5)
