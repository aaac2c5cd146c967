"""gather_patches (spec/masking.md §3): patchify + gather at ids_keep in one pass, and its backward
(scatter into a zero image); reference against an index-by-index oracle, backends against the
reference, gradcheck, opcheck, torch.compile, and the patch-embedding trap 1."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.library import opcheck

import mimkernels as mk
from mimkernels.masking import reference
from mimkernels.testing import backends_on


def oracle_gather(imgs: np.ndarray, ids: np.ndarray, p: int) -> np.ndarray:
    b, c, _, ww = imgs.shape
    w = ww // p
    out = np.empty((b, ids.shape[1], p * p * c), dtype=imgs.dtype)
    for n in range(b):
        for k, l in enumerate(ids[n]):
            i, j = divmod(int(l), w)
            block = imgs[n, :, i * p:(i + 1) * p, j * p:(j + 1) * p]  # (c, p, q)
            out[n, k] = block.transpose(1, 2, 0).reshape(-1)          # (p, q, c)
    return out


def random_ids(b, length, k):
    return torch.stack([torch.randperm(length)[:k] for _ in range(b)])


@pytest.mark.parametrize("shape,p,k", [((2, 3, 8, 12), 4, 4), ((3, 1, 6, 6), 3, 1), ((1, 5, 4, 4), 2, 4),
                                       ((2, 3, 4, 4), 2, 0)])
def test_reference_matches_oracle(shape, p, k):
    imgs = torch.randn(shape, dtype=torch.float64)
    ids = random_ids(shape[0], (shape[2] // p) * (shape[3] // p), k)
    np.testing.assert_array_equal(reference.gather_patches(imgs, ids, p).numpy(),
                                  oracle_gather(imgs.numpy(), ids.numpy(), p))


@pytest.mark.parametrize("backend", backends_on("gather_patches"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_backends_equal_reference(backend, dtype):
    imgs = torch.randn(3, 3, 10, 15).to(dtype)
    ids = random_ids(3, 6, 4)
    expected = reference.gather_patches(imgs, ids, 5)
    for x in (imgs, imgs.contiguous(memory_format=torch.channels_last), torch.stack([imgs, -imgs], -1)[..., 0]):
        got = mk.gather_patches(x, ids, 5, backend=backend)
        assert got.dtype == dtype and torch.equal(got, expected)
    ids_t = ids.t().contiguous().t()  # non-contiguous ids
    assert torch.equal(mk.gather_patches(imgs, ids_t, 5, backend=backend), expected)


@pytest.mark.parametrize("backend", backends_on("gather_patches"))
def test_gradient_scatters_into_a_zero_image(backend):
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
def test_opcheck_and_compile():
    imgs = torch.randn(2, 3, 8, 8, requires_grad=True)
    ids = random_ids(2, 4, 3)
    opcheck(torch.ops.mimkernels.gather_patches.default, (imgs, ids, 4))
    opcheck(torch.ops.mimkernels.scatter_patches.default, (torch.randn(2, 3, 48, requires_grad=True), ids, 4, 3, 8, 8))
    opcheck(torch.ops.mimkernels.gather_patches.default, (imgs, ids + 5, 4, 5))
    opcheck(torch.ops.mimkernels.scatter_patches.default,
            (torch.randn(2, 3, 48, requires_grad=True), ids + 1, 4, 3, 8, 8, 1))
    torch._dynamo.reset()
    fn = torch.compile(lambda t, i: mk.gather_patches(t, i, 4, backend="triton") + 1, fullgraph=True)
    assert torch.equal(fn(imgs.detach(), ids), reference.gather_patches(imgs.detach(), ids, 4) + 1)
    fn = torch.compile(lambda t, i: mk.gather_patches(t, i, 4, num_prefix_tokens=5, backend="triton"), fullgraph=True)
    assert torch.equal(fn(imgs.detach(), ids + 5), reference.gather_patches(imgs.detach(), ids, 4))


def test_linear_on_gathered_patches_equals_conv_patch_embedding():
    """Trap 1: Conv2d weight (E, C, p, p) is (c, p, q); a Linear on (p, q, c) rows needs it permuted."""
    conv = torch.nn.Conv2d(3, 7, kernel_size=4, stride=4).double()
    imgs = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    ids = random_ids(2, 6, 4)
    tokens = conv(imgs).flatten(2).transpose(1, 2)  # (B, L, E), timm PatchEmbed
    expected = torch.gather(tokens, 1, ids[..., None].expand(-1, -1, 7))
    weight = conv.weight.permute(0, 2, 3, 1).reshape(7, -1)
    got = mk.gather_patches(imgs, ids, 4) @ weight.t() + conv.bias
    torch.testing.assert_close(got, expected)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 3), w=st.integers(1, 3), p=st.integers(1, 3),
       prefix=st.sampled_from([0, 1, 5]), data=st.data())
def test_property_equals_patchify_then_index(b, c, h, w, p, prefix, data):
    """num_prefix_tokens = P: ids count P prefix tokens first (lightly's idx_mask), patch l is id P + l."""
    k = data.draw(st.integers(0, h * w))
    imgs = torch.randn(b, c, h * p, w * p)
    ids = random_ids(b, h * w, k)
    expected = mk.patchify(imgs, p, backend="torch")[torch.arange(b)[:, None], ids]
    for backend in backends_on("gather_patches"):
        assert torch.equal(mk.gather_patches(imgs, ids + prefix, p, num_prefix_tokens=prefix, backend=backend),
                           expected)


def test_bad_input(monkeypatch):
    imgs = torch.zeros(2, 3, 8, 8)
    with pytest.raises(TypeError, match="ids_keep must have dtype"):
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.float32), 4)
    with pytest.raises(ValueError, match="ids_keep has batch 1"):
        mk.gather_patches(imgs, torch.zeros(1, 1, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.int64), 3)
    with pytest.raises(ValueError, match="ids_keep must be 2-D"):
        mk.gather_patches(imgs, torch.zeros(2, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.int64), 4, num_prefix_tokens=-1)
    monkeypatch.setenv("MIMKERNELS_DEBUG", "1")
    with pytest.raises(ValueError, match=r"ids_keep values must be in \[P, P \+ L\) = \[0, 4\)"):
        mk.gather_patches(imgs, torch.full((2, 1), 4, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match=r"= \[1, 5\)"):   # a prefix token (cls, index 0) has no pixels
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.int64), 4, num_prefix_tokens=1)


def test_readme_encoder_path_equals_mae_encoder_input():
    """README: embed only the visible patches (gather + permuted Linear + gathered positions) ==
    MAE's embed all + pos_embed + random_masking, for the same noise."""
    b, c, size, p, e = 2, 3, 16, 4, 8
    length = (size // p) ** 2
    conv = torch.nn.Conv2d(c, e, p, p).double()
    pos = torch.randn(1, length + 1, e, dtype=torch.float64)
    imgs = torch.randn(b, c, size, size, dtype=torch.float64)
    noise = torch.rand(b, length)
    tokens = conv(imgs).flatten(2).transpose(1, 2) + pos[:, 1:]
    expected, mask, ids_restore = mk.random_masking(tokens, 0.75, noise=noise, backend="torch")
    ids_keep, ids_restore2, mask2 = mk.random_mask_indices(b, length, 0.75, noise=noise)
    weight = conv.weight.permute(0, 2, 3, 1).reshape(e, p * p * c)
    got = mk.gather_patches(imgs, ids_keep, p) @ weight.t() + conv.bias + pos[0, 1:][ids_keep]
    torch.testing.assert_close(got, expected)
    assert torch.equal(mask, mask2) and torch.equal(ids_restore, ids_restore2)
