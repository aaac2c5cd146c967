"""patchify / unpatchify (spec/masking.md §1): reference against an index-by-index oracle; every
backend against the reference; autograd, opcheck, torch.compile; bad input."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.library import opcheck

import mimkernels as mk
from mimkernels.pixel import reference
from mimkernels.testing import backends_on


def oracle_patchify(imgs: np.ndarray, p: int) -> np.ndarray:
    """Written from the spec: patch l = i·w + j, element (pi·p + qj)·C + c."""
    b, c, hh, ww = imgs.shape
    h, w = hh // p, ww // p
    out = np.empty((b, h * w, p * p * c), dtype=imgs.dtype)
    for i in range(h):
        for j in range(w):
            for pi in range(p):
                for qj in range(p):
                    for ch in range(c):
                        out[:, i * w + j, (pi * p + qj) * c + ch] = imgs[:, ch, i * p + pi, j * p + qj]
    return out


@pytest.mark.parametrize("shape,p", [((2, 3, 8, 8), 4), ((1, 1, 6, 9), 3), ((3, 5, 4, 12), 2), ((2, 3, 7, 7), 7)])
def test_reference_matches_oracle(shape, p):
    imgs = torch.randn(shape, dtype=torch.float64)
    expected = oracle_patchify(imgs.numpy(), p)
    np.testing.assert_array_equal(reference.patchify(imgs, p).numpy(), expected)
    h, w = shape[2] // p, shape[3] // p
    assert torch.equal(reference.unpatchify(torch.from_numpy(expected), p, shape[1], (h, w)), imgs)


def _layouts(imgs):
    yield "contiguous", imgs
    yield "channels_last", imgs.contiguous(memory_format=torch.channels_last)
    yield "strided", torch.stack([imgs, -imgs], dim=-1)[..., 0]  # stride 2 along W


@pytest.mark.parametrize("backend", backends_on("patchify"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape,p", [((2, 3, 8, 12), 4), ((1, 4, 10, 5), 5), ((3, 1, 3, 3), 1)])
def test_backends_equal_reference(backend, dtype, shape, p):
    imgs = torch.randn(shape).to(dtype)
    expected = reference.patchify(imgs, p)
    for layout, x in _layouts(imgs):
        got = mk.patchify(x, p, backend=backend)
        assert got.dtype == dtype, layout
        assert got.is_contiguous() or backend == "torch", layout  # the reference may return a view, as MAE
        assert torch.equal(got, expected), layout  # a copy: bit-exact
        h, w = shape[2] // p, shape[3] // p
        assert torch.equal(mk.unpatchify(got.transpose(0, 1).contiguous().transpose(0, 1), p, shape[1],
                                         grid_size=(h, w), backend=backend), imgs), layout


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
    opcheck(torch.ops.mimkernels.patchify.default, (imgs, 4))
    x = torch.randn(2, 2, 48, requires_grad=True)
    opcheck(torch.ops.mimkernels.unpatchify.default, (x, 4, 3, 8, 4))
    torch._dynamo.reset()
    fn = torch.compile(lambda t: mk.unpatchify(mk.patchify(t, 4, backend="triton") * 2, 4, 3, grid_size=(2, 1),
                                               backend="triton"), fullgraph=True)
    assert torch.equal(fn(imgs.detach()), imgs.detach() * 2)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 3), w=st.integers(1, 3), p=st.integers(1, 4))
def test_property_round_trip(b, c, h, w, p):
    imgs = torch.randn(b, c, h * p, w * p)
    for backend in backends_on("patchify"):
        x = mk.patchify(imgs, p, backend=backend)
        assert x.shape == (b, h * w, p * p * c)
        assert torch.equal(mk.unpatchify(x, p, c, grid_size=(h, w), backend=backend), imgs)


def test_bad_input():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        mk.patchify(torch.zeros(1, 3, 10, 8), 4)
    with pytest.raises(ValueError, match="imgs must be 4-D"):
        mk.patchify(torch.zeros(3, 8, 8), 4)
    with pytest.raises(TypeError, match="imgs must be a torch.Tensor"):
        mk.patchify(np.zeros((1, 3, 8, 8)), 4)
    with pytest.raises(ValueError, match="patch_size must be >= 1"):
        mk.patchify(torch.zeros(1, 3, 8, 8), 0)
    with pytest.raises(ValueError, match="not a square grid"):
        mk.unpatchify(torch.zeros(1, 6, 48), 4)
    with pytest.raises(ValueError, match="expected patch_size"):
        mk.unpatchify(torch.zeros(1, 4, 47), 4)
    with pytest.raises(ValueError, match="backend must be one of"):
        mk.patchify(torch.zeros(1, 3, 8, 8), 4, backend="fast")
    with pytest.raises(ValueError, match="not implemented"):
        mk.patchify(torch.zeros(1, 3, 8, 8), 4, backend="cpp")
