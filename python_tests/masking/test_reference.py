"""Each op against an independent oracle (SPEC.md): MAE's own code, a numpy argsort oracle, an
index-by-index patch gather, the official SimMIM/BEiT spec tables, scipy's distance transform; the
random ops' seed, generator and sample_offset semantics (rng stream 1)."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mimkernels as mk
from mimkernels import rng
from mimkernels.masking import reference
from benchmarks.upstream_masks import OfficialSimMIMMaskGenerator
from mimkernels.testing import backends_on
from python_tests.masking.oracles import (mae_decoder_unshuffle, mae_random_masking, oracle, oracle_gather,
                                          random_ids, scipy_avg_dist, tie_free_noise)


@pytest.mark.parametrize("b,length,ratio", [(3, 49, 0.75), (2, 17, 0.5), (4, 196, 0.75), (1, 1, 0.0),
                                             (2, 13, 0.3), (2, 10, 0.9), (3, 7, 1.0), (2, 8, 0.0)])
def test_indices_reference_matches_oracle(b, length, ratio):
    gen = torch.Generator().manual_seed(b * 1000 + length)
    noise = torch.rand(b, length, generator=gen)
    got = mk.random_mask_indices(b, length, ratio, noise=noise)
    want = oracle(noise.numpy(), ratio)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)
    assert got[0].dtype == torch.int64 and got[1].dtype == torch.int64 and got[2].dtype == torch.float32


@pytest.mark.parametrize("length", [9, 49, 196])
def test_ties_break_by_index(length):
    gen = torch.Generator().manual_seed(length)
    noise = torch.randint(0, 4, (5, length), generator=gen).to(torch.float32)   # heavy ties
    for ratio in (0.25, 0.5, 0.75):
        got = mk.random_mask_indices(5, length, ratio, noise=noise)
        want = oracle(noise.numpy(), ratio)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    # integer noise (e.g. Philox words) follows the same rule
    got_int = mk.random_mask_indices(5, length, 0.5, noise=noise.to(torch.int64))
    for g, w in zip(got_int, oracle(noise.numpy(), 0.5)):
        np.testing.assert_array_equal(g.numpy(), w)


@pytest.mark.parametrize("b,length,d,ratio", [(4, 49, 8, 0.75), (2, 196, 3, 0.75), (3, 16, 5, 0.6),
                                               (2, 10, 4, 0.9), (2, 11, 2, 1.0), (2, 9, 2, 0.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mae_parity(b, length, d, ratio, dtype):
    gen = torch.Generator().manual_seed(7 + length)
    noise = tie_free_noise(b, length, gen)
    x = torch.randn(b, length, d, generator=gen).to(dtype)
    got = mk.random_masking(x, ratio, noise=noise)
    want = mae_random_masking(x, ratio, noise)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert torch.equal(g, w)
    assert got[1].dtype == torch.float32
    # ids_keep of random_mask_indices is what random_masking gathered with
    ids_keep, ids_restore, mask = mk.random_mask_indices(b, length, ratio, noise=noise)
    assert torch.equal(ids_restore, want[2]) and torch.equal(mask, want[1])
    assert torch.equal(torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d)), want[0])


@pytest.mark.parametrize("length,ratio", [(10, 0.9), (5, 0.8), (20, 0.9), (10, 0.3)])
def test_k_truncation_trap(length, ratio):
    """K = int(L·(1−r)) in float64 as MAE, even where exact arithmetic says otherwise; K == 0 allowed."""
    k = int(length * (1 - ratio))
    assert reference.len_keep(length, ratio) == k
    noise = torch.rand(2, length, generator=torch.Generator().manual_seed(length))
    ids_keep, ids_restore, mask = mk.random_mask_indices(2, length, ratio, noise=noise)
    assert ids_keep.shape == (2, k)
    assert torch.equal(mask.sum(1), torch.full((2,), float(length - k)))
    x = torch.randn(2, length, 3)
    xv, m, _ = mk.random_masking(x, ratio, noise=noise)
    assert xv.shape == (2, k, 3) and torch.equal(m, mask)


def test_k_truncation_known_values():
    assert int(10 * (1 - 0.9)) == 0 and reference.len_keep(10, 0.9) == 0
    assert reference.len_keep(5, 0.8) == 0
    assert reference.len_keep(196, 0.75) == 49 and reference.len_keep(49, 0.75) == 12
    assert reference.len_keep(7, 1.0) == 0 and reference.len_keep(7, 0.0) == 7


def test_seed_reproducible_and_philox_keys():
    a = mk.random_mask_indices(3, 49, 0.75, seed=1234)
    b = mk.random_mask_indices(3, 49, 0.75, seed=1234)
    c = mk.random_mask_indices(3, 49, 0.75, seed=1235)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert not torch.equal(a[2], c[2])
    # keys are x0 of Philox at (l, b, stream 1, 0), sorted as uint32 ascending
    keys = torch.stack([rng.draw(1234, torch.arange(49), s, rng.STREAM_MAE_MASKING)[0] for s in range(3)])
    assert int(keys.min()) >= 0 and int(keys.max()) < (1 << 32)
    for u, v in zip(a, oracle(keys.numpy(), 0.75)):
        np.testing.assert_array_equal(u.numpy(), v)
    # random_masking draws the same keys
    x = torch.randn(3, 49, 4)
    _, mask, ids_restore = mk.random_masking(x, 0.75, seed=1234)
    assert torch.equal(mask, a[2]) and torch.equal(ids_restore, a[1])


def test_generator_and_global_seed():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = mk.random_mask_indices(2, 16, 0.5, generator=g1)
    b = mk.random_mask_indices(2, 16, 0.5, generator=g2)
    assert torch.equal(a[1], b[1])
    torch.manual_seed(99)
    c = mk.random_mask_indices(2, 16, 0.5)
    torch.manual_seed(99)
    d = mk.random_mask_indices(2, 16, 0.5)
    assert torch.equal(c[1], d[1])


def test_sample_offset_batch_split():
    whole = mk.random_mask_indices(8, 196, 0.75, seed=42)
    first = mk.random_mask_indices(4, 196, 0.75, seed=42, sample_offset=0)
    second = mk.random_mask_indices(4, 196, 0.75, seed=42, sample_offset=4)
    for w, f, s in zip(whole, first, second):
        assert torch.equal(w, torch.cat([f, s]))
    x = torch.randn(8, 196, 2)
    xw, mw, rw = mk.random_masking(x, 0.75, seed=42)
    x1, m1, r1 = mk.random_masking(x[:4], 0.75, seed=42)
    x2, m2, r2 = mk.random_masking(x[4:], 0.75, seed=42, sample_offset=4)
    assert torch.equal(mw, torch.cat([m1, m2])) and torch.equal(xw, torch.cat([x1, x2]))
    assert torch.equal(mw, whole[2])


def test_distribution_invariants():
    ids_keep, ids_restore, mask = mk.random_mask_indices(64, 49, 0.75, seed=3)
    k = 12
    assert torch.equal(mask.sum(1), torch.full((64,), 37.0))
    ar = torch.arange(k).expand(64, k)
    assert torch.equal(torch.gather(ids_restore, 1, ids_keep), ar)      # ids_restore[ids_keep[k]] = k
    assert torch.equal(torch.sort(ids_restore, 1).values, torch.arange(49).expand(64, 49))
    frac = mask.mean(0)                                                  # P(masked) = 37/49 per position
    assert float((frac - 37 / 49).abs().max()) < 0.3


# ---- gather_patches, unshuffle_tokens ------------------------------------------------------------

@pytest.mark.parametrize("shape,p,k", [((2, 3, 8, 12), 4, 4), ((3, 1, 6, 6), 3, 1), ((1, 5, 4, 4), 2, 4),
                                       ((2, 3, 4, 4), 2, 0)])
def test_gather_patches_reference_matches_oracle(shape, p, k):
    imgs = torch.randn(shape, dtype=torch.float64)
    ids = random_ids(shape[0], (shape[2] // p) * (shape[3] // p), k)
    np.testing.assert_array_equal(reference.gather_patches(imgs, ids, p).numpy(),
                                  oracle_gather(imgs.numpy(), ids.numpy(), p))


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


@pytest.mark.parametrize("b,length,d,ratio", [(2, 16, 4, 0.75), (3, 49, 8, 0.5), (2, 10, 3, 0.9), (2, 7, 2, 0.0)])
@pytest.mark.parametrize("token_shape", ["flat", "mae"])
def test_unshuffle_matches_mae(b, length, d, ratio, token_shape):
    gen = torch.Generator().manual_seed(length)
    _, _, ids_restore = mk.random_masking(torch.zeros(b, length, 1), ratio, seed=length)
    k = reference.len_keep(length, ratio)
    x = torch.randn(b, 1 + k, d, generator=gen)
    token = torch.randn(1, 1, d, generator=gen)
    given = token.reshape(d) if token_shape == "flat" else token
    got = mk.unshuffle_tokens(x, ids_restore, given)
    want = mae_decoder_unshuffle(x, ids_restore, token)
    assert got.shape == (b, 1 + length, d) and torch.equal(got, want)


def test_unshuffle_roundtrip_with_random_masking():
    x = torch.randn(3, 25, 6)
    xv, mask, ids_restore = mk.random_masking(x, 0.6, seed=11)
    cls = torch.randn(3, 1, 6)
    token = torch.full((6,), 7.5)
    out = mk.unshuffle_tokens(torch.cat([cls, xv], 1), ids_restore, token)
    assert torch.equal(out[:, 0], cls[:, 0])
    keep = mask == 0
    assert torch.equal(out[:, 1:][keep], x[keep])
    assert bool((out[:, 1:][~keep] == 7.5).all())


# ---- SimMIM mask, AvgDist ---------------------------------------------------------------------

@pytest.mark.parametrize("config,cells", [((192, 32, 4, 0.6), 22), ((224, 32, 16, 0.6), 30), ((224, 32, 4, 0.6), 30)])
def test_simmim_spec_table(config, cells):
    input_size, mask_patch, model_patch, ratio = config
    n, scale = input_size // model_patch, mask_patch // model_patch
    for be in backends_on("simmim_mask"):
        m = mk.simmim_mask(64, *config, seed=1, backend=be)
        assert m.shape == (64, n, n) and m.dtype == torch.bool
        cell = m[:, ::scale, ::scale]
        assert torch.equal(m, cell.repeat_interleave(scale, 1).repeat_interleave(scale, 2))
        assert (cell.flatten(1).sum(1) == cells).all()
        assert OfficialSimMIMMaskGenerator(*config).mask_count == cells


def test_simmim_ratio_edges():
    for be in backends_on("simmim_mask"):
        assert not mk.simmim_mask(3, mask_ratio=0.0, seed=1, backend=be).any()
        assert mk.simmim_mask(3, mask_ratio=1.0, seed=1, backend=be).all()
        assert mk.simmim_mask(0, seed=1, backend=be).shape == (0, 48, 48)
        assert mk.simmim_mask(2, 32, 32, 32, 0.5, seed=1, backend=be).shape == (2, 1, 1)  # one cell: ceil(0.5) = 1


@pytest.mark.parametrize("shape,patch,p_masked", [((6, 5, 7), 3, 0.6), ((4, 14, 14), 16, 0.75), ((5, 1, 9), 2, 0.5),
                                                  ((3, 12, 12), 1, 0.9), ((2, 8, 3), 5, 0.3)])
def test_avg_dist_vs_scipy(shape, patch, p_masked):
    g = torch.Generator().manual_seed(sum(shape) + patch)
    mask = torch.rand(shape, generator=g) < p_masked
    expect = scipy_avg_dist(mask, patch)
    for be in backends_on("mask_avg_dist"):
        got = mk.mask_avg_dist(mask, patch, backend=be)
        assert got.dtype == torch.float32 and got.shape == (shape[0],)
        torch.testing.assert_close(got.double(), expect, rtol=1e-6, atol=1e-6, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), patch=st.integers(1, 5),
       p_masked=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_avg_dist_hypothesis(batch, h, w, patch, p_masked, seed):
    mask = torch.rand(batch, h, w, generator=torch.Generator().manual_seed(seed)) < p_masked
    expect = scipy_avg_dist(mask, patch)
    for be in backends_on("mask_avg_dist"):
        torch.testing.assert_close(mk.mask_avg_dist(mask, patch, backend=be).double(), expect, rtol=1e-6, atol=1e-6,
                                   equal_nan=True)


def test_avg_dist_degenerate_dtypes_strides():
    mask = torch.tensor([[[0, 0], [0, 0]], [[1, 1], [1, 1]], [[1, 0], [0, 0]]])
    for be in backends_on("mask_avg_dist"):
        got = mk.mask_avg_dist(mask, 4, backend=be)
        assert math.isnan(got[0]) and got[1] == math.inf
        torch.testing.assert_close(got[2:].double(), scipy_avg_dist(mask[2:], 4), rtol=1e-6, atol=0)
        base = torch.rand(8, 9, 10, generator=torch.Generator().manual_seed(0))
        strided = (base > 0.5).transpose(1, 2)[:, ::2]  # non-contiguous bool
        for m in (strided, strided.float(), strided.to(torch.int32)):
            torch.testing.assert_close(mk.mask_avg_dist(m, 3, backend=be).double(), scipy_avg_dist(strided, 3),
                                       rtol=1e-6, atol=1e-6)
        assert mk.mask_avg_dist(torch.zeros(0, 3, 3, dtype=torch.bool), 2, backend=be).shape == (0,)
