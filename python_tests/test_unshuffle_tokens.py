"""unshuffle_tokens Triton backend (spec/masking.md §3): forward bit-exact against the reference,
gradients (scatter to x, fp32-accumulated sum to mask_token) close to it, gradcheck, opcheck and
torch.compile. Tiny shapes: the tests run Triton under the interpreter."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.library import opcheck

import mimkernels as mk
from mimkernels.masking import reference
from mimkernels.testing import TOLERANCES, backends_on

pytestmark = pytest.mark.skipif("triton" not in backends_on("unshuffle_tokens"),
                                reason="triton backend unavailable")


def make_ids(b, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.argsort(torch.rand(b, length, generator=g), dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("d", [5, 33])
@pytest.mark.parametrize("kept,token_shape,prefix", [(0, "flat", 1), (3, "3d", 1), (6, "flat", 1), (6, "3d", 1),
                                                     (3, "flat", 0), (2, "3d", 5)])
def test_triton_equals_reference(dtype, d, kept, token_shape, prefix):
    b, length = 2, 6
    x = torch.randn(b, prefix + kept, d).to(dtype)
    ids = make_ids(b, length, seed=kept + d)
    token = torch.randn(d).to(dtype)
    if token_shape == "3d":
        token = token.reshape(1, 1, d)
    want = reference.unshuffle_tokens(x, ids, token, prefix)
    got = mk.unshuffle_tokens(x, ids, token, num_prefix_tokens=prefix, backend="triton")
    assert got.dtype == dtype and got.shape == (b, prefix + length, d) and torch.equal(got, want)

    xr = x.clone().requires_grad_(True)
    tr = token.clone().requires_grad_(True)
    xt = x.clone().requires_grad_(True)
    tt = token.clone().requires_grad_(True)
    g = torch.randn(b, prefix + length, d).to(dtype)
    gx_ref, gt_ref = torch.autograd.grad(reference.unshuffle_tokens(xr, ids, tr, prefix), (xr, tr), g)
    gx, gt = torch.autograd.grad(mk.unshuffle_tokens(xt, ids, tt, num_prefix_tokens=prefix, backend="triton"),
                                 (xt, tt), g)
    assert torch.equal(gx, gx_ref)  # a pure scatter: exact
    assert gt.shape == token.shape and gt.dtype == token.dtype
    atol, rtol = TOLERANCES[dtype]
    torch.testing.assert_close(gt.float(), gt_ref.float(), atol=atol * 4, rtol=rtol * 4)
    # fp32 accumulation in a fixed order: the fp64 sum rounded once
    masked = (ids >= kept)
    exact = g.double()[:, prefix:][masked].sum(0).to(dtype).reshape(token.shape)
    torch.testing.assert_close(gt, exact, atol=atol, rtol=rtol)


def test_non_contiguous_inputs_and_mixed_token_dtype():
    b, length, kept, d = 3, 5, 2, 7
    base = torch.randn(d, 1 + kept, b)
    x = base.permute(2, 1, 0)  # non-contiguous (B, 1+K, D)
    assert not x.is_contiguous()
    ids = make_ids(b, length).t().contiguous().t()  # non-contiguous ids
    token = torch.randn(1, 1, 2 * d)[..., ::2].double()  # strided, other dtype: cast to x.dtype
    want = reference.unshuffle_tokens(x, ids, token)
    got = mk.unshuffle_tokens(x, ids, token, backend="triton")
    assert got.dtype == x.dtype and torch.equal(got, want)
    g = torch.randn(b, 1 + length, 2 * d)[..., ::2]  # non-contiguous grad
    xt, tt = x.clone().requires_grad_(True), token.clone().requires_grad_(True)
    xr, tr = x.clone().requires_grad_(True), token.clone().requires_grad_(True)
    gx, gt = torch.autograd.grad(mk.unshuffle_tokens(xt, ids, tt, backend="triton"), (xt, tt), g)
    gx_ref, gt_ref = torch.autograd.grad(reference.unshuffle_tokens(xr, ids, tr), (xr, tr), g)
    assert torch.equal(gx, gx_ref)
    assert gt.dtype == torch.float64
    torch.testing.assert_close(gt, gt_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("prefix,token_shape", [(0, (3,)), (1, (3,)), (1, (1, 1, 3)), (5, (1, 1, 3))])
def test_gradcheck(prefix, token_shape):
    ids = make_ids(2, 4, seed=3)
    x = torch.randn(2, prefix + 2, 3, dtype=torch.float64, requires_grad=True)
    token = torch.randn(token_shape, dtype=torch.float64, requires_grad=True)
    for backend in backends_on("unshuffle_tokens"):
        assert torch.autograd.gradcheck(
            lambda a, t: mk.unshuffle_tokens(a, ids, t, num_prefix_tokens=prefix, backend=backend), (x, token),
            fast_mode=True)


def test_opcheck_and_compile():
    ids = make_ids(2, 4, seed=5)
    x = torch.randn(2, 3, 5, requires_grad=True)
    token = torch.randn(5, requires_grad=True)
    opcheck(torch.ops.mimkernels.unshuffle_tokens.default, (x, ids, token))
    opcheck(torch.ops.mimkernels.unshuffle_tokens_backward.default, (torch.randn(2, 5, 5), ids, 2))
    for prefix in (0, 5):   # x holds P prefix tokens and K = 2 kept ones
        xp = torch.randn(2, prefix + 2, 5, requires_grad=True)
        opcheck(torch.ops.mimkernels.unshuffle_tokens.default, (xp, ids, token, prefix))
        opcheck(torch.ops.mimkernels.unshuffle_tokens_backward.default, (torch.randn(2, prefix + 4, 5), ids, 2, prefix))
    torch._dynamo.reset()
    fn = torch.compile(lambda a, i, t: mk.unshuffle_tokens(a, i, t, backend="triton") * 2, fullgraph=True)
    assert torch.equal(fn(x.detach(), ids, token.detach()),
                       reference.unshuffle_tokens(x.detach(), ids, token.detach()) * 2)
    fn = torch.compile(lambda a, i, t: mk.unshuffle_tokens(a, i, t, num_prefix_tokens=5, backend="triton"),
                       fullgraph=True)
    assert torch.equal(fn(xp.detach(), ids, token.detach()),
                       reference.unshuffle_tokens(xp.detach(), ids, token.detach(), 5))


def test_empty_batch_and_zero_width():
    ids = torch.zeros(0, 4, dtype=torch.int64)
    out = mk.unshuffle_tokens(torch.zeros(0, 2, 3), ids, torch.zeros(3), backend="triton")
    assert out.shape == (0, 5, 3)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(0, 3), length=st.integers(1, 20), d=st.integers(1, 9), prefix=st.sampled_from([0, 1, 5]),
       data=st.data(), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
def test_property_equals_index_by_index_oracle(b, length, d, prefix, data, dtype):
    kept = data.draw(st.integers(0, length))
    ids = make_ids(b, length, seed=data.draw(st.integers(0, 2 ** 16)))
    x = torch.randn(b, prefix + kept, d).to(dtype)
    token = torch.randn(d).to(dtype)
    want = torch.empty(b, prefix + length, d, dtype=dtype)
    for s in range(b):                      # out[t] = x[t] for t < P; out[P+l] = x[P+r] if r < K else token
        want[s, :prefix] = x[s, :prefix]
        for l in range(length):
            r = int(ids[s, l])
            want[s, prefix + l] = x[s, prefix + r] if r < kept else token
    for backend in backends_on("unshuffle_tokens"):
        got = mk.unshuffle_tokens(x, ids, token, num_prefix_tokens=prefix, backend=backend)
        assert torch.equal(got, want)
