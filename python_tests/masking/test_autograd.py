"""Gradients (gradcheck, the backward kernels as scatters), the torch.library ops (opcheck: schema,
fake, autograd registration) and torch.compile (fullgraph) for every op of the family."""
import math

import pytest
import torch
from torch.library import opcheck

import mimkernels as mk
from mimkernels.masking import reference
from mimkernels.testing import backends_on
from python_tests.masking.oracles import make_ids, native, needs_triton, random_ids


def test_unshuffle_gradcheck():
    _, _, ids_restore = mk.random_masking(torch.zeros(2, 6, 1), 0.5, seed=1)
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    token = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, t: mk.unshuffle_tokens(a, ids_restore, t), (x, token))
    # grad of mask_token = sum of the upstream grad over the masked positions
    g = torch.randn(2, 7, 3, dtype=torch.float64)
    mk.unshuffle_tokens(x, ids_restore, token).backward(g)
    masked = ids_restore >= 3
    assert torch.allclose(token.grad, g[:, 1:][masked].sum(0))


def test_random_masking_grad_flows_to_x():
    x = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    noise = torch.rand(2, 9, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: mk.random_masking(a, 0.5, noise=noise)[0], (x,))


@needs_triton
def test_random_masking_gradient_is_a_scatter_into_zeros():
    x = torch.randn(2, 11, 6, requires_grad=True)
    x_vis, mask, ids_restore = mk.random_masking(x, 0.7, seed=5, backend="triton")
    grad = torch.randn_like(x_vis)
    (gx,) = torch.autograd.grad(x_vis, x, grad)
    want = torch.zeros_like(x)
    ids_keep = torch.argsort(ids_restore, dim=1)[:, : x_vis.shape[1]]
    for b in range(2):
        want[b, ids_keep[b]] = grad[b]
    assert torch.equal(gx, want)
    assert torch.equal(gx.abs().sum(-1) == 0, mask.bool())    # masked tokens get exactly zero


@needs_triton
def test_random_masking_triton_gradcheck():
    x = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: mk.random_masking(a, 0.5, seed=1, backend="triton")[0], (x,),
                                    fast_mode=True)


@needs_triton
def test_random_masking_opcheck_and_compile():
    ids = torch.stack([torch.randperm(7)[:3] for _ in range(2)])
    opcheck(torch.ops.mimkernels.random_masking.triton, (torch.randn(2, 7, 4, requires_grad=True), ids))
    opcheck(torch.ops.mimkernels.random_masking.triton_backward,
            (torch.randn(2, 3, 4), torch.randn(2, 7, 4), ids, [True]))
    opcheck(torch.ops.mimkernels.random_mask_indices.triton_from_noise, (torch.rand(2, 7), 3))
    torch._dynamo.reset()
    x, noise = torch.randn(2, 7, 4), torch.rand(2, 7)
    fn = torch.compile(lambda a, n: mk.random_masking(a, 0.5, noise=n, backend="triton")[0] * 2, fullgraph=True)
    assert torch.equal(fn(x, noise), reference.random_masking(x, 0.5, noise)[0] * 2)


@pytest.mark.parametrize("backend", backends_on("gather_patches"))
def test_gather_patches_gradient_scatters_into_a_zero_image(backend):
    imgs = torch.randn(2, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    ids = random_ids(2, 6, 3)
    assert torch.autograd.gradcheck(lambda t: mk.gather_patches(t, ids, 2, backend=backend), (imgs,),
                                    fast_mode=True)
    assert torch.autograd.gradcheck(lambda t: mk.gather_patches(t, ids + 5, 2, num_prefix_tokens=5, backend=backend),
                                    (imgs,), fast_mode=True)
    grad = torch.randn(2, 3, 8, dtype=torch.float64)
    (g,) = torch.autograd.grad(mk.gather_patches(imgs, ids, 2, backend=backend), imgs, grad)
    (g_ref,) = torch.autograd.grad(reference.gather_patches(imgs, ids, 2), imgs, grad)
    assert torch.equal(g, g_ref)
    kept = torch.zeros(2, 6, dtype=torch.bool).scatter_(1, ids, True)
    unkept_pixels = mk.unpatchify((~kept).double()[..., None].expand(-1, -1, 8), 2, 2, grid_size=(2, 3))
    assert (g[unkept_pixels.bool()] == 0).all()


@pytest.mark.skipif("triton" not in backends_on("gather_patches"), reason="triton backend unavailable")
def test_gather_patches_opcheck_and_compile():
    imgs = torch.randn(2, 3, 8, 8, requires_grad=True)
    ids = random_ids(2, 4, 3)
    opcheck(torch.ops.mimkernels.gather_patches.triton, (imgs, ids, 4))
    opcheck(torch.ops.mimkernels.gather_patches.triton_backward,
            (torch.randn(2, 3, 48), imgs.detach(), ids, 4, 0, [True]))
    opcheck(torch.ops.mimkernels.gather_patches.triton, (imgs, ids + 5, 4, 5))
    opcheck(torch.ops.mimkernels.gather_patches.triton_backward,
            (torch.randn(2, 3, 48), imgs.detach(), ids + 1, 4, 1, [True]))
    torch._dynamo.reset()
    fn = torch.compile(lambda t, i: mk.gather_patches(t, i, 4, backend="triton") + 1, fullgraph=True)
    assert torch.equal(fn(imgs.detach(), ids), reference.gather_patches(imgs.detach(), ids, 4) + 1)
    fn = torch.compile(lambda t, i: mk.gather_patches(t, i, 4, num_prefix_tokens=5, backend="triton"), fullgraph=True)
    assert torch.equal(fn(imgs.detach(), ids + 5), reference.gather_patches(imgs.detach(), ids, 4))


@needs_triton
@pytest.mark.parametrize("prefix,token_shape", [(0, (3,)), (1, (3,)), (1, (1, 1, 3)), (5, (1, 1, 3))])
def test_unshuffle_gradcheck_prefix_tokens(prefix, token_shape):
    ids = make_ids(2, 4, seed=3)
    x = torch.randn(2, prefix + 2, 3, dtype=torch.float64, requires_grad=True)
    token = torch.randn(token_shape, dtype=torch.float64, requires_grad=True)
    for backend in backends_on("unshuffle_tokens"):
        assert torch.autograd.gradcheck(
            lambda a, t: mk.unshuffle_tokens(a, ids, t, num_prefix_tokens=prefix, backend=backend), (x, token),
            fast_mode=True)


@needs_triton
def test_unshuffle_opcheck_and_compile():
    ids = make_ids(2, 4, seed=5)
    x = torch.randn(2, 3, 5, requires_grad=True)
    token = torch.randn(5, requires_grad=True)
    opcheck(torch.ops.mimkernels.unshuffle_tokens.triton, (x, ids, token))
    opcheck(torch.ops.mimkernels.unshuffle_tokens.triton_backward,
            (torch.randn(2, 5, 5), x.detach(), ids, token.detach(), 1, [True, True]))
    for prefix in (0, 5):   # x holds P prefix tokens and K = 2 kept ones
        xp = torch.randn(2, prefix + 2, 5, requires_grad=True)
        opcheck(torch.ops.mimkernels.unshuffle_tokens.triton, (xp, ids, token, prefix))
        opcheck(torch.ops.mimkernels.unshuffle_tokens.triton_backward,
                (torch.randn(2, prefix + 4, 5), xp.detach(), ids, token.detach(), prefix, [True, True]))
    torch._dynamo.reset()
    fn = torch.compile(lambda a, i, t: mk.unshuffle_tokens(a, i, t, backend="triton") * 2, fullgraph=True)
    assert torch.equal(fn(x.detach(), ids, token.detach()),
                       reference.unshuffle_tokens(x.detach(), ids, token.detach()) * 2)
    fn = torch.compile(lambda a, i, t: mk.unshuffle_tokens(a, i, t, num_prefix_tokens=5, backend="triton"),
                       fullgraph=True)
    assert torch.equal(fn(xp.detach(), ids, token.detach()),
                       reference.unshuffle_tokens(xp.detach(), ids, token.detach(), 5))


@native
def test_opcheck_native_ops():
    cpu = torch.device("cpu")
    torch.library.opcheck(torch.ops.mimkernels.simmim_mask.cpp, (3, 6, 8, 22, -5, None, 2, cpu))
    torch.library.opcheck(torch.ops.mimkernels.block_mask.cpp,
                          (3, 14, 14, 78, 15, 78, math.log(0.3), -math.log(0.3), False, 2**63 - 1, None, 0, cpu))
    torch.library.opcheck(torch.ops.mimkernels.block_mask.cpp,
                          (2, 14, 14, 78, 15, 78, math.log(0.3), -math.log(0.3), True, 5, None, 9, cpu))
    torch.library.opcheck(torch.ops.mimkernels.mask_avg_dist.cpp,
                          (torch.rand(3, 5, 6) < 0.5, 4))


@native
def test_torch_compile_fullgraph():
    def masks(m):
        return (mk.block_mask(4, seed=3, backend="cpp"), mk.simmim_mask(2, seed=1, backend="cpp"),
                mk.mask_avg_dist(m, 4, backend="cpp"))

    m = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.5
    for got, expect in zip(torch.compile(masks, fullgraph=True, backend="aot_eager")(m), masks(m)):
        assert torch.equal(got, expect)
