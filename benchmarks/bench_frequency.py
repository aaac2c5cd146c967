"""Frequency family benchmarks at the canonical batch (B=256, 3x224x224): MFM's corruption
(r=16, clamp + normalize, half the samples high-pass) and PixMIM's target (r=40), fp32 and bf16:
the official chain, its torch.compile, the torch backend (rfft2 / unshifted fft2 path) and the
Triton truncated DFT. MFM's loss: official (two FFTs, autograd) vs the one-rfft2 torch path,
forward + backward. bytes = one read + one write of the images (the roofline of a fused filter).
The official chains run in fp32 only (no half FFT at 224): their bf16 rows upcast first.
"""
import pytest
import torch

import mimkernels as mk
from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD, reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")

BATCH, SIZE = 256, 224


def _images(dtype):
    return torch.rand(BATCH, 3, SIZE, SIZE, device="cuda").to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["official", "compile", "torch", "triton"])
def test_mfm_corruption(timed, dtype, provider):
    imgs = _images(dtype)
    high_pass = torch.arange(BATCH, device="cuda") % 2 == 1
    low = mk.frequency_mask(SIZE, SIZE, 16, device="cuda")
    masks = torch.where(high_pass[:, None, None], 1 - low, low)

    def official(t):
        return reference.mfm_filter_official(t, masks, (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD)

    fns = {
        "official": official,
        "compile": torch.compile(official),
        "torch": lambda t: mk.circular_filter(t, 16, high_pass, mean=IMAGENET_MEAN, std=IMAGENET_STD, backend="torch"),
        "triton": lambda t: mk.circular_filter(t, 16, high_pass, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                               backend="triton"),
    }
    timed(fns[provider], imgs, bytes_moved=2 * imgs.numel() * imgs.element_size(), kernel="mfm_corruption",
          provider=provider, radius=16, batch=BATCH, dtype=str(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["official", "compile", "torch", "triton"])
def test_pixmim_target(timed, dtype, provider):
    imgs = (_images(torch.float32) - 0.45) / 0.225
    imgs = imgs.to(dtype)
    mask = mk.frequency_mask(SIZE, SIZE, 40, center="pixmim", device="cuda")

    def official(t):
        return reference.pixmim_target_official(t, mask, IMAGENET_MEAN, IMAGENET_STD)

    fns = {
        "official": official,
        "compile": torch.compile(official),
        "torch": lambda t: mk.lowfreq_target(t, 40, backend="torch"),
        "triton": lambda t: mk.lowfreq_target(t, 40, backend="triton"),
    }
    timed(fns[provider], imgs, bytes_moved=2 * imgs.numel() * imgs.element_size(), kernel="pixmim_target",
          provider=provider, radius=40, batch=BATCH, dtype=str(dtype))


@pytest.mark.parametrize("provider", ["official", "torch"])
def test_frequency_loss_forward_backward(timed, provider):
    pred = torch.randn(BATCH, 3, SIZE, SIZE, device="cuda", requires_grad=True)
    target = torch.randn(BATCH, 3, SIZE, SIZE, device="cuda")
    freq_mask = mk.mfm_corrupt(torch.rand(BATCH, 3, SIZE, SIZE, device="cuda"), 16, seed=0)[1]
    loss_fn = reference.frequency_loss_official if provider == "official" else mk.frequency_loss

    def step(p):
        (g,) = torch.autograd.grad(loss_fn(p, target, freq_mask), p)
        return g

    timed(step, pred, bytes_moved=3 * pred.numel() * pred.element_size(), kernel="frequency_loss",
          provider=provider, mode="full", batch=BATCH, dtype="torch.float32")
