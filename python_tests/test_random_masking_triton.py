"""random_masking and random_mask_indices on the Triton backend (spec/masking.md §2): the index
kernel sorting caller noise (fp32/fp16/bf16, with ties, ±0, ±inf and NaN) bit-identical to the
stable-argsort reference and to MAE's own code, the row gather of kept tokens and its scatter
backward, gradcheck, opcheck and torch.compile. Tiny shapes: Triton runs under the interpreter."""
import numpy as np
import pytest
import torch
from torch.library import opcheck

import mimkernels as mk
from mimkernels.masking import reference
from mimkernels.testing import backends_on

pytestmark = pytest.mark.skipif("triton" not in backends_on("random_masking"), reason="triton backend unavailable")


def awkward_noise(b, length, dtype, seed):
    """Uniform noise with repeated values, signed zeros, infinities and NaNs planted in it."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(b, length, generator=g) * 2 - 1
    noise[:, : length // 3] = noise[:, :1]                     # a run of ties
    if length > 2:
        noise[0, -1], noise[0, -2] = -0.0, 0.0                 # tie: +0.0 (lower index) first
    if length > 6:
        noise[-1, 2], noise[-1, 3], noise[-1, 4] = float("nan"), float("inf"), -float("inf")
        noise[-1, 5] = float("nan")
    return noise.to(dtype)


def assert_same(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape and torch.equal(g, w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("b,length,ratio", [(3, 49, 0.75), (2, 17, 0.5), (1, 1, 0.0), (2, 10, 0.9), (2, 7, 1.0)])
def test_indices_from_noise_equal_reference(dtype, b, length, ratio):
    noise = awkward_noise(b, length, dtype, seed=length)
    assert_same(mk.random_mask_indices(b, length, ratio, noise=noise, backend="triton"),
                reference.random_mask_indices(b, length, ratio, noise))


def test_indices_from_noise_equal_mae_on_tie_free_noise():
    noise = torch.rand(4, 196, generator=torch.Generator().manual_seed(0))
    assert all(torch.unique(row).numel() == 196 for row in noise)
    ids_shuffle = torch.argsort(noise, dim=1)                  # MAE models_mae.py random_masking
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(4, 196)
    mask[:, :49] = 0
    got = mk.random_mask_indices(4, 196, 0.75, noise=noise, backend="triton")
    assert_same(got, (ids_shuffle[:, :49], ids_restore, torch.gather(mask, 1, ids_restore)))


def test_non_contiguous_noise_and_other_dtypes():
    noise = awkward_noise(9, 4, torch.float32, seed=1).t()    # (4, 9), strided
    assert_same(mk.random_mask_indices(4, 9, 0.5, noise=noise, backend="triton"),
                reference.random_mask_indices(4, 9, 0.5, noise))
    for dtype in (torch.float64, torch.int64):                 # not exact in fp32: the reference runs
        n = (torch.rand(2, 9, dtype=torch.float64) * 100).to(dtype)
        assert_same(mk.random_mask_indices(2, 9, 0.5, noise=n, backend="triton"),
                    reference.random_mask_indices(2, 9, 0.5, n))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("keys", ["seed", "noise"])
def test_random_masking_equals_reference(dtype, keys):
    x = torch.randn(3, 13, 10, dtype=dtype)[:, :, ::2]         # non-contiguous D
    kwargs = {"seed": 11, "sample_offset": 4} if keys == "seed" else {"noise": awkward_noise(3, 13, dtype, 2)}
    assert_same(mk.random_masking(x, 0.6, backend="triton", **kwargs),
                mk.random_masking(x, 0.6, backend="torch", **kwargs))


def test_gradient_is_a_scatter_into_zeros():
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


def test_gradcheck():
    x = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: mk.random_masking(a, 0.5, seed=1, backend="triton")[0], (x,),
                                    fast_mode=True)


def test_opcheck_and_compile():
    ids = torch.stack([torch.randperm(7)[:3] for _ in range(2)])
    opcheck(torch.ops.mimkernels.gather_rows.default, (torch.randn(2, 7, 4, requires_grad=True), ids))
    opcheck(torch.ops.mimkernels.scatter_rows.default, (torch.randn(2, 3, 4, requires_grad=True), ids, 7))
    opcheck(torch.ops.mimkernels.mae_random_mask_indices_from_noise.default, (torch.rand(2, 7), 3))
    torch._dynamo.reset()
    x, noise = torch.randn(2, 7, 4), torch.rand(2, 7)
    fn = torch.compile(lambda a, n: mk.random_masking(a, 0.5, noise=n, backend="triton")[0] * 2, fullgraph=True)
    assert torch.equal(fn(x, noise), reference.random_masking(x, 0.5, noise)[0] * 2)


def test_empty_batch_and_all_masked():
    x_vis, mask, ids_restore = mk.random_masking(torch.zeros(0, 5, 3), 0.5, seed=0, backend="triton")
    assert x_vis.shape == (0, 2, 3) and mask.shape == (0, 5) and ids_restore.shape == (0, 5)
    x_vis, mask, _ = mk.random_masking(torch.randn(2, 5, 3), 1.0, seed=0, backend="triton")
    assert x_vis.shape == (2, 0, 3) and np.all(mask.numpy() == 1)
