"""Gradients of the differentiable ops (gradcheck, against the official chain's autograd, the clamp's
pass-through), the torch.library ops under opcheck, and torch.compile over the front door."""
import pytest
import torch
from torch.library import opcheck

import mimkernels as mk
from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD, reference
from mimkernels.testing import backends_on
from python_tests.frequency.oracles import low_masks

FILTER_BACKENDS = backends_on("circular_filter")
needs_triton = pytest.mark.skipif("triton" not in FILTER_BACKENDS, reason="triton backend unavailable")


@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_filter_gradcheck(backend):
    x = torch.rand(2, 2, 16, 12, dtype=torch.float64, requires_grad=True)
    high_pass = torch.tensor([True, False])
    for kwargs in ({"clamp": None}, {"clamp": (0.1, 0.9), "mean": (0.5, 0.4), "std": (0.2, 0.3)},
                   {"outer_radius": 5.0, "clamp": None}):
        assert torch.autograd.gradcheck(lambda t: mk.circular_filter(t, 3, high_pass, backend=backend, **kwargs),
                                        (x,), fast_mode=True)

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_filter_gradient_equals_official_chain(backend):
    """Clamp pass-through (inclusive, as torch.clamp) and the 1/std of the normalization."""
    x = torch.rand(3, 3, 16, 16, requires_grad=True)
    grad = torch.randn(3, 3, 16, 16)
    high_pass = torch.tensor([True, False, True])
    masks = torch.where(high_pass[:, None, None], *(reference.frequency_mask(16, 16, 4, hp) for hp in (True, False)))
    out = mk.circular_filter(x, 4, high_pass, mean=IMAGENET_MEAN, std=IMAGENET_STD, backend=backend)
    (g,) = torch.autograd.grad(out, x, grad)
    ref = reference.mfm_filter_official(x, masks, (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD)
    (g_ref,) = torch.autograd.grad(ref, x, grad)
    torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4)

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_clamp_bounds_pass_the_gradient(backend):
    """torch.clamp's pass-through is inclusive: a pixel sitting exactly on a bound keeps its gradient."""
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    y_pre = mk.circular_filter(x.detach(), 3, False, clamp=None, backend=backend)
    for clamp in ((y_pre[0, 0, 5, 7].item(), 2.0), (-1.0, y_pre[0, 0, 5, 7].item())):
        out = mk.circular_filter(x, 3, False, clamp=clamp, backend=backend)
        (g,) = torch.autograd.grad(out[0, 0, 5, 7], x)
        assert g.abs().max() > 1e-3

@needs_triton
def test_filter_opcheck_and_compile():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    high_pass = torch.tensor([True, False])
    opcheck(torch.ops.mimkernels.circular_filter.triton, (x, 4.0, high_pass, [0.0, 1.0], None, list(IMAGENET_MEAN),
                                                          list(IMAGENET_STD)))
    opcheck(torch.ops.mimkernels.mfm_corrupt.triton, (x, 4.0, high_pass, 6.0, list(IMAGENET_MEAN),
                                                      list(IMAGENET_STD)))
    opcheck(torch.ops.mimkernels.lowfreq_target.triton, (x.detach(), 5.0, None, None, True))
    torch._dynamo.reset()
    fn = torch.compile(lambda t: mk.circular_filter(t, 4, high_pass, backend="triton") * 2, fullgraph=True)
    torch.testing.assert_close(fn(x.detach()), 2 * mk.circular_filter(x.detach(), 4, high_pass, backend="torch"),
                               atol=4e-6, rtol=0)

def test_corrupt_is_differentiable():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    out = mk.mfm_corrupt(x, 4, seed=0)[0]
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()

def test_loss_gradcheck_and_gradient_equals_official():
    pred = torch.randn(3, 2, 8, 7, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 2, 8, 7, dtype=torch.float64, requires_grad=True)
    freq_mask = torch.from_numpy(low_masks(3, 8, 7, 2, [True, False, True]))
    for fm, gamma in [(freq_mask, 1.0), (None, 1.0), (freq_mask[0], 2.0), (freq_mask, 0.7)]:
        assert torch.autograd.gradcheck(lambda p, t: mk.frequency_loss(p, t, fm, gamma=gamma), (pred, target),
                                        fast_mode=True)
        g = torch.autograd.grad(mk.frequency_loss(pred, target, fm, gamma=gamma), (pred, target))
        g_ref = torch.autograd.grad(reference.frequency_loss_official(pred, target, fm, gamma), (pred, target))
        for a, e in zip(g, g_ref):
            torch.testing.assert_close(a, e, atol=1e-12, rtol=1e-9)
    p32 = pred.detach().float().requires_grad_()
    (g32,) = torch.autograd.grad(mk.frequency_loss(p32, target.detach().float(), freq_mask), p32)
    (g64,) = torch.autograd.grad(reference.frequency_loss_official(pred, target, freq_mask), pred)
    assert g32.dtype == torch.float32
    torch.testing.assert_close(g32.double(), g64, atol=1e-7, rtol=1e-4)


def test_reference_ops_opcheck():
    """The ops with no kernel are in the catalogue as their reference (`<op>.torch`, composite)."""
    torch.testing.assert_close(torch.ops.mimkernels.frequency_mask.torch(8, 9, 2.5, True, "mfm", 3.0),
                               mk.frequency_mask(8, 9, 2.5, high_pass=True, outer_radius=3.0), rtol=0, atol=0)
    pred = torch.randn(2, 3, 8, 7, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 8, 7, dtype=torch.float64)
    freq_mask = torch.from_numpy(low_masks(2, 8, 7, 2, [True, False]))
    opcheck(torch.ops.mimkernels.frequency_loss.torch, (pred, target, freq_mask, 1.0))
    torch.testing.assert_close(torch.ops.mimkernels.frequency_loss.torch(pred, target, freq_mask, 1.0),
                               mk.frequency_loss(pred, target, freq_mask), rtol=0, atol=0)
