"""Autograd of the pixel family: float64 gradcheck of every differentiable input on every backend;
opcheck of each catalogue entry `torch.ops.mimkernels.<op>.triton` and its `triton_backward`;
torch.compile(fullgraph=True) through the Triton ops; what the autograd keeps for the backward."""
import pytest
import torch
from torch.library import opcheck

import mimkernels as mk
from mimkernels.testing import backends_on
from python_tests.pixel.oracles import mae_mask

BACKENDS = backends_on("norm_pix_mse_loss")
TRITON = pytest.mark.skipif("triton" not in BACKENDS, reason="triton backend unavailable")


# ---- patchify / unpatchify --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", backends_on("patchify"))
def test_gradients(backend):
    imgs = torch.randn(2, 3, 6, 9, dtype=torch.float64, requires_grad=True)
    # fast_mode: a few random projections instead of one call per element (the interpreter is slow)
    assert torch.autograd.gradcheck(lambda t: mk.patchify(t, 3, backend=backend), (imgs,), fast_mode=True)
    x = torch.randn(2, 6, 27, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: mk.unpatchify(t, 3, 3, grid_size=(2, 3), backend=backend), (x,),
                                    fast_mode=True)


@pytest.mark.skipif("triton" not in backends_on("patchify"), reason="triton backend unavailable")
def test_opcheck_and_compile():
    imgs = torch.randn(2, 3, 8, 4, requires_grad=True)
    opcheck(torch.ops.mimkernels.patchify.triton, (imgs, 4))
    opcheck(torch.ops.mimkernels.patchify.triton_backward, (torch.randn(2, 2, 48), imgs.detach(), 4, [True]))
    x = torch.randn(2, 2, 48, requires_grad=True)
    opcheck(torch.ops.mimkernels.unpatchify.triton, (x, 4, 3, 8, 4))
    opcheck(torch.ops.mimkernels.unpatchify.triton_backward, (imgs.detach(), x.detach(), 4, 3, 8, 4, [True]))
    torch._dynamo.reset()
    fn = torch.compile(lambda t: mk.unpatchify(mk.patchify(t, 4, backend="triton") * 2, 4, 3, grid_size=(2, 1),
                                               backend="triton"), fullgraph=True)
    assert torch.equal(fn(imgs.detach()), imgs.detach() * 2)


@TRITON
def test_patchify_and_unpatchify_keep_no_tensor_for_backward():
    """Each one's backward is the other's copy: only the input's shape is kept (reads=()), no tensor is saved."""
    imgs = torch.randn(2, 3, 8, 4, requires_grad=True)
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        out = mk.unpatchify(mk.patchify(imgs, 4, backend="triton") * 3, 4, 3, grid_size=(2, 1), backend="triton")
    assert [tuple(t.shape) for t in packed] == []
    out.sum().backward()
    assert torch.equal(imgs.grad, torch.full_like(imgs, 3.0))


# ---- losses and the normalized target -----------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(backend):
    """float64 gradcheck of every differentiable input, the imgs gradient through the normalization included."""
    imgs = (torch.randn(2, 2, 6, 9, dtype=torch.float64) + 1).requires_grad_()
    pred = torch.randn(2, 6, 18, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 0, 0]], dtype=torch.bool)
    fast = backend != "torch"  # the interpreter is slow: random projections instead of one call per element
    for norm_pix in (True, False):
        assert torch.autograd.gradcheck(lambda a, x: mk.norm_pix_mse_loss(a, x, mask, 3, norm_pix, backend=backend),
                                        (pred, imgs), fast_mode=fast)
    assert torch.autograd.gradcheck(lambda x: mk.patch_norm_target(x, 3, backend=backend), (imgs,), fast_mode=fast)
    target = torch.randn(2, 6, 18, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, t: mk.masked_mse_loss(a, t, mask.double() * 0.7, backend=backend),
                                    (pred, target), fast_mode=fast)
    x_rec = (imgs.detach() + torch.randn_like(imgs)).requires_grad_()  # |x_rec − imgs| far from the kink at 0
    cells = torch.tensor([[[1, 0, 1], [0, 1, 1]], [[0, 0, 1], [1, 0, 0]]])
    assert torch.autograd.gradcheck(lambda a, x: mk.masked_l1_loss(a, x, cells, backend=backend), (x_rec, imgs),
                                    fast_mode=fast)


# The Triton ops on CPU tensors under the interpreter (custom_op), and on a GPU (triton_op: traced by compile).
KERNEL_DEVICES = [pytest.param("cpu", marks=TRITON), pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_opcheck(device):
    imgs = torch.randn(2, 3, 8, 4, device=device, requires_grad=True)
    pred = torch.randn(2, 2, 48, device=device, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]], device=device)
    one = torch.tensor(1.0, device=device)
    ops = torch.ops.mimkernels
    opcheck(ops.patch_norm_target.triton, (imgs, 4, 1e-6))
    opcheck(ops.patch_norm_target.triton_backward, (torch.randn(2, 2, 48, device=device), imgs.detach(), 4, 1e-6,
                                                    [True]))
    opcheck(ops.norm_pix_mse_loss.triton, (pred, imgs, mask, 4, True, 1e-6))
    opcheck(ops.norm_pix_mse_loss.triton, (pred, imgs.detach(), mask.bool(), 4, False, 1e-6))
    opcheck(ops.norm_pix_mse_loss.triton_backward, (one, pred.detach(), imgs.detach(), mask, 4, True, 1e-6,
                                                    [True, False]))
    target = torch.randn(2, 2, 48, device=device, requires_grad=True)
    opcheck(ops.masked_mse_loss.triton, (pred, target, mask.long()))
    opcheck(ops.masked_mse_loss.triton_backward, (2 * one, pred.detach(), target.detach(), mask, [False, True]))
    cells = torch.tensor([[[1, 0]], [[1, 1]]], device=device)
    x_rec = torch.randn(2, 3, 4, 8, device=device, requires_grad=True)
    opcheck(ops.masked_l1_loss.triton, (x_rec, imgs.transpose(2, 3), cells, 3))
    opcheck(ops.masked_l1_loss.triton_backward, (one, x_rec.detach(), imgs.detach().transpose(2, 3), cells, 3,
                                                  [True, True]))


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_compile_fullgraph(device):
    imgs = torch.randn(2, 3, 8, 8, device=device)
    pred = torch.randn(2, 4, 48, device=device, requires_grad=True)
    mask = mae_mask(2, 4, 0.5).to(device)
    cells = torch.rand(2, 4, 4, device=device) < 0.5

    def losses(pred, imgs, mask, cells):
        mse = mk.norm_pix_mse_loss(pred, imgs, mask, 4, backend="triton")
        l1 = mk.masked_l1_loss(mk.unpatchify(pred, 4, 3, backend="triton"), imgs, cells, backend="triton")
        return mse + l1 + mk.patch_norm_target(imgs, 4, backend="triton").sum()

    torch._dynamo.reset()
    compiled = torch.compile(losses, fullgraph=True)
    got = compiled(pred, imgs, mask, cells)
    expected = losses(pred, imgs, mask, cells)
    torch.testing.assert_close(got, expected)
    (g_got,) = torch.autograd.grad(got, pred)
    (g_expected,) = torch.autograd.grad(expected, pred)
    torch.testing.assert_close(g_got, g_expected)
