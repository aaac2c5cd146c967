"""SimMIM mask, BEiT/MaskFeat block mask, AvgDist and MaskCollator (spec/masking.md §4–7).

Oracles: literal ports of the official generators driven by ordinary RNGs (numpy for SimMIM, Python's
`random` for unilm's MaskingGenerator), compared in distribution; scipy's exact distance transform
for AvgDist. The torch references are compared bit for bit with the cpp (and cuda) kernels.
"""
import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, stats

import mimkernels as mk
from mimkernels import _native, nn as mk_nn
from mimkernels.testing import (OfficialMaskingGenerator, OfficialMMPretrainBEiTMaskGenerator, OfficialSimMIMMaskGenerator,
                                backends_on)

native = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")

SEEDS = [0, 12345, 2**63, 2**64 - 1]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The references run many small int64 ops, which are up to 40x slower with 2 intra-op threads
    on a busy 2-core machine; the cpp tests over 10k samples switch back to 2 threads (OpenMP)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cpp_on_two_threads(fn, *args, **kw):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return fn(*args, backend="cpp", **kw)
    finally:
        torch.set_num_threads(threads)


# ---- statistics ---------------------------------------------------------------------------------

def official_block_masks(n, seed, variant="unilm", **kw):
    if variant == "unilm":
        gen = OfficialMaskingGenerator(14, rnd=random.Random(seed), **kw)
    else:
        gen = OfficialMMPretrainBEiTMaskGenerator(14, rs=np.random.RandomState(seed), **kw)
    return torch.from_numpy(np.stack([gen() for _ in range(n)])).bool()


def count_histogram_pvalue(ours, theirs, target):
    """χ² homogeneity test of the per-mask count histograms, tail <= target - 3 pooled (and any count
    above the target, which the official generator never makes, in one more bin)."""
    def hist(masks):
        counts = masks.flatten(1).sum(1).clamp(min=target - 3, max=target + 1).numpy()
        return [int((counts == k).sum()) for k in range(target - 3, target + 2)]

    table = np.array([hist(ours), hist(theirs)])
    assert table.sum(1).min() > 0 and (table[:, -2] > 0).all()
    table = table[:, table.sum(0) > 0]
    return stats.chi2_contingency(table)[1] if table.shape[1] > 1 else 1.0


def two_proportion_z(k1, n1, k2, n2):
    p = (k1 + k2) / (n1 + n2)
    se = np.sqrt(np.maximum(p * (1 - p) * (1 / n1 + 1 / n2), 1e-300))
    return (k1 / n1 - k2 / n2) / se


def neighbour_pairs(masks):
    """(B,) horizontal + vertical 4-neighbour pairs that are both masked."""
    m = masks.long()
    return ((m[:, :, 1:] * m[:, :, :-1]).sum((1, 2)) + (m[:, 1:] * m[:, :-1]).sum((1, 2))).double()


# ---- SimMIM -------------------------------------------------------------------------------------

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


@native
def test_simmim_cpp_equals_torch_10k():
    for seed in SEEDS:
        batch = 10_000 if seed == 0 else 500
        ref = mk.simmim_mask(batch, seed=seed, sample_offset=7, backend="torch")
        assert torch.equal(cpp_on_two_threads(mk.simmim_mask, batch, seed=seed, sample_offset=7), ref)
    ref = mk.simmim_mask(2_000, 224, 32, 16, 0.6, seed=3, backend="torch")
    assert torch.equal(mk.simmim_mask(2_000, 224, 32, 16, 0.6, seed=3, backend="cpp"), ref)


@native
@settings(max_examples=40, deadline=None)
@given(rand_size=st.integers(1, 12), scale=st.integers(1, 5), model_patch=st.integers(1, 4),
       ratio=st.floats(0.0, 1.0), batch=st.integers(0, 9), offset=st.integers(0, 2**32 - 10),
       seed=st.integers(0, 2**64 - 1))
def test_simmim_hypothesis(rand_size, scale, model_patch, ratio, batch, offset, seed):
    args = (batch, rand_size * scale * model_patch, scale * model_patch, model_patch, ratio)
    ref = mk.simmim_mask(*args, seed=seed, sample_offset=offset, backend="torch")
    assert torch.equal(mk.simmim_mask(*args, seed=seed, sample_offset=offset, backend="cpp"), ref)
    cells = ref[:, ::scale, ::scale].flatten(1).sum(1)
    assert (cells == math.ceil(rand_size * rand_size * ratio)).all()
    assert ref.shape == (batch, rand_size * scale, rand_size * scale)


@native
def test_simmim_uniform_subset_vs_official():
    """Our cells vs the official numpy generator: marginal map and pair rate, N = 20 000 each."""
    n = 20_000
    ours = mk.simmim_mask(n, 224, 32, 32, 0.6, seed=11, backend="cpp").flatten(1)
    gen = OfficialSimMIMMaskGenerator(224, 32, 32, 0.6, rs=np.random.RandomState(5))
    theirs = torch.from_numpy(np.stack([gen() for _ in range(n)])).bool().flatten(1)
    assert (ours.sum(1) == 30).all() and (theirs.sum(1) == 30).all()
    z = two_proportion_z(ours.sum(0).numpy(), n, theirs.sum(0).numpy(), n)
    assert np.abs(z).max() < 4.5
    # P(two given cells) = m(m-1)/(T(T-1)): cells 0 and 48 (opposite corners), 3 and 4 (neighbours).
    for a, b in ((0, 48), (3, 4)):
        both = int((ours[:, a] & ours[:, b]).sum())
        expect = n * 30 * 29 / (49 * 48)
        assert abs(both - expect) < 4.5 * math.sqrt(expect)


def test_simmim_ratio_edges():
    for be in backends_on("simmim_mask"):
        assert not mk.simmim_mask(3, mask_ratio=0.0, seed=1, backend=be).any()
        assert mk.simmim_mask(3, mask_ratio=1.0, seed=1, backend=be).all()
        assert mk.simmim_mask(0, seed=1, backend=be).shape == (0, 48, 48)
        assert mk.simmim_mask(2, 32, 32, 32, 0.5, seed=1, backend=be).shape == (2, 1, 1)  # one cell: ceil(0.5) = 1


# ---- block mask ---------------------------------------------------------------------------------

BLOCK_SETTINGS = {
    "maskfeat": dict(num_masking_patches=78, min_num_patches=15),
    "beit": dict(num_masking_patches=75, min_num_patches=16),
    "mmpretrain": dict(num_masking_patches=78, min_num_patches=15, variant="mmpretrain"),
}


@native
def test_block_cpp_equals_torch_10k():
    ref = mk.block_mask(10_000, seed=2**64 - 1, sample_offset=2**32 - 10_000, backend="torch")
    assert torch.equal(cpp_on_two_threads(mk.block_mask, 10_000, seed=2**64 - 1, sample_offset=2**32 - 10_000), ref)


@native
@pytest.mark.parametrize("kw", [
    dict(num_masking_patches=75, min_num_patches=16),
    dict(num_masking_patches=75, min_num_patches=4),
    dict(num_masking_patches=78, min_num_patches=15, max_num_patches=20, min_aspect=0.5, max_aspect=3.0),
    dict(height=7, width=20, num_masking_patches=50, min_num_patches=3),
    dict(height=1, width=9), dict(height=9, width=1),
    dict(num_masking_patches=0), dict(num_masking_patches=-3),
    dict(num_masking_patches=400, min_num_patches=4),  # more than H*W: stops when stuck
    dict(min_num_patches=0, min_aspect=0.01), dict(min_aspect=1.0), dict(max_num_patches=0),
    dict(height=32, width=32, num_masking_patches=400, min_num_patches=16),
    dict(variant="mmpretrain"), dict(variant="mmpretrain", num_masking_patches=150, min_num_patches=4),
    dict(variant="mmpretrain", height=1, width=5, num_masking_patches=0),
    dict(variant="mmpretrain", height=7, width=20, num_masking_patches=50, min_num_patches=3, max_num_patches=10),
])
def test_block_cpp_equals_torch(kw):
    for seed in SEEDS:
        ref = mk.block_mask(300, seed=seed, backend="torch", **kw)
        assert torch.equal(mk.block_mask(300, seed=seed, backend="cpp", **kw), ref)
        target = kw.get("num_masking_patches", 78)
        assert (ref.flatten(1).sum(1) <= max(target, 0)).all()
        if kw.get("variant") == "mmpretrain":
            assert (ref.flatten(1).sum(1) == target).all() and not ref[:, -1].any() and not ref[:, :, -1].any()


@native
@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), frac=st.floats(0, 1.2), min_num=st.integers(0, 20),
       max_num=st.one_of(st.none(), st.integers(0, 40)), min_aspect=st.floats(0.05, 1.0),
       stretch=st.floats(1.0, 25.0), batch=st.integers(0, 6), seed=st.integers(0, 2**64 - 1))
def test_block_hypothesis(h, w, frac, min_num, max_num, min_aspect, stretch, batch, seed):
    kw = dict(height=h, width=w, num_masking_patches=int(frac * h * w), min_num_patches=min_num,
              max_num_patches=max_num, min_aspect=min_aspect, max_aspect=min_aspect * stretch)
    ref = mk.block_mask(batch, seed=seed, backend="torch", **kw)
    assert ref.shape == (batch, h, w)
    assert torch.equal(mk.block_mask(batch, seed=seed, backend="cpp", **kw), ref)
    assert (ref.flatten(1).sum(1) <= kw["num_masking_patches"]).all()
    if h == 1 or w == 1:  # the strict test h < H, w < W leaves no block a cell
        assert not ref.any()


@native
def test_block_sample_offset_and_generator():
    whole = mk.block_mask(64, seed=9, backend="cpp")
    parts = [mk.block_mask(k, seed=9, sample_offset=o, backend=be) for k, o, be in
             ((10, 0, "cpp"), (1, 10, "torch"), (53, 11, "cpp"))]
    assert torch.equal(torch.cat(parts), whole)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(mk.block_mask(8, generator=g1, backend="cpp"), mk.block_mask(8, generator=g2, backend="torch"))
    assert not torch.equal(mk.block_mask(8, generator=g1, backend="cpp"), mk.block_mask(8, seed=4, backend="cpp"))


@pytest.fixture(scope="module")
def block_samples():
    """N = 20 000 masks per setting from our cpp backend and from the official generator."""
    if not _native.available():
        pytest.skip("mimkernels._C not built")
    n = 20_000
    return {name: (mk.block_mask(n, seed=100 + i, backend="cpp", **kw), official_block_masks(n, seed=i, **kw))
            for i, (name, kw) in enumerate(BLOCK_SETTINGS.items())}


@pytest.mark.parametrize("name", list(BLOCK_SETTINGS))
def test_block_distribution_vs_official(block_samples, name):
    ours, theirs = block_samples[name]
    n, target = ours.shape[0], BLOCK_SETTINGS[name]["num_masking_patches"]
    assert count_histogram_pvalue(ours, theirs, target) > 1e-3
    z = two_proportion_z(ours.sum(0).numpy(), n, theirs.sum(0).numpy(), n)
    assert np.abs(z).max() < 4.5, f"marginal map differs, max |z| = {np.abs(z).max():.1f}"
    a, b = neighbour_pairs(ours), neighbour_pairs(theirs)
    z_pairs = (a.mean() - b.mean()) / math.sqrt(a.var() / n + b.var() / n)
    assert abs(z_pairs) < 4.0, f"neighbour-pair rate differs, z = {z_pairs:.1f}"


def test_block_spec_table(block_samples):
    """The [sim] numbers of spec §5 (N = 1e5) within 5 standard errors at N = 2e4."""
    table = {"maskfeat": (0.705, 0.209, 0.732, 0.044, 0.359), "beit": (0.664, 0.233, 0.715, 0.041, 0.344),
             "mmpretrain": (1.0, 0.0, 0.790, 0.066, 0.3625)}
    for name, (p_exact, p_minus1, centre, corner, pair) in table.items():
        ours = block_samples[name][0]
        n, target = ours.shape[0], BLOCK_SETTINGS[name]["num_masking_patches"]
        counts = ours.flatten(1).sum(1)
        last = 12 if name == "mmpretrain" else 13  # mmpretrain never masks row 13 and column 13
        for observed, expected in (((counts == target).double().mean(), p_exact),
                                   ((counts == target - 1).double().mean(), p_minus1),
                                   (ours[:, 6:8, 6:8].double().mean(), centre),
                                   (ours[:, [0, 0, last, last], [0, last, 0, last]].double().mean(), corner)):
            assert abs(float(observed) - expected) < 5 * math.sqrt(expected * (1 - expected) / n) + 0.002
        # P(horizontal neighbours both masked), averaged over the 14·13 pairs.
        horizontal = (ours[:, :, 1:] & ours[:, :, :-1]).double().mean()
        assert abs(float(horizontal) - pair) < 0.01


# ---- AvgDist ------------------------------------------------------------------------------------

def scipy_avg_dist(mask, patch):
    out = []
    for m in mask.numpy():
        pixels = np.kron(m != 0, np.ones((patch, patch), dtype=bool))
        d = ndimage.distance_transform_edt(pixels)
        out.append(d[pixels].mean() if pixels.any() and not pixels.all() else (np.nan if not pixels.any() else np.inf))
    return torch.tensor(out, dtype=torch.float64)


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


@native
def test_avg_dist_cpp_equals_torch_on_generated_masks():
    for mask, patch in ((mk.block_mask(64, seed=1), 16), (mk.simmim_mask(32, seed=2)[:, ::8, ::8], 32),
                        (mk.simmim_mask(4, seed=3), 4)):
        torch.testing.assert_close(cpp_on_two_threads(mk.mask_avg_dist, mask, patch),
                                   mk.mask_avg_dist(mask, patch, backend="torch"), rtol=1e-6, atol=0)


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


@native
def test_avg_dist_spec_reference_values():
    """spec §6 [sim, N = 2000]: SimMIM 192/32/0.6 -> 15.30 (sd 2.53); MaskFeat 78/15 -> 20.64 (5.40)."""
    n = 400
    simmim = mk.mask_avg_dist(mk.simmim_mask(n, seed=5)[:, ::8, ::8], 32).double()
    assert abs(simmim.mean() - 15.30) < 4 * 2.53 / math.sqrt(n)
    maskfeat = mk.mask_avg_dist(mk.block_mask(n, seed=5), 16).double()
    assert abs(maskfeat.mean() - 20.64) < 4 * 5.40 / math.sqrt(n)


# ---- bad input (spec §7) ------------------------------------------------------------------------

@pytest.mark.parametrize("kw,exc,match", [
    (dict(mask_ratio=1.5), ValueError, "mask_ratio"), (dict(mask_ratio=-0.1), ValueError, "mask_ratio"),
    (dict(mask_ratio=float("nan")), ValueError, "mask_ratio"), (dict(mask_ratio="0.5"), TypeError, "mask_ratio"),
    (dict(input_size=200), ValueError, "input_size"), (dict(model_patch_size=5), ValueError, "model_patch_size"),
    (dict(mask_patch_size=0), ValueError, "mask_patch_size"), (dict(input_size=192.0), TypeError, "input_size"),
    (dict(batch=-1), ValueError, "batch"), (dict(sample_offset=-1), ValueError, "sample_offset"),
    (dict(seed=1, generator=torch.Generator()), ValueError, "seed or generator"),
    (dict(backend="triton"), ValueError, "not implemented"), (dict(backend="nope"), ValueError, "backend"),
])
def test_simmim_bad_input(kw, exc, match):
    kw = {"batch": 2, "seed": 0, **kw}
    with pytest.raises(exc, match=match):
        mk.simmim_mask(kw.pop("batch"), **kw)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(height=0), ValueError, "height"), (dict(width=0), ValueError, "width"),
    (dict(height=2.0), TypeError, "height"), (dict(min_aspect=0.0), ValueError, "min_aspect"),
    (dict(min_aspect=-1.0), ValueError, "min_aspect"), (dict(min_aspect=float("inf")), ValueError, "min_aspect"),
    (dict(min_aspect=2.0, max_aspect=1.0), ValueError, "max_aspect"), (dict(max_aspect=-2.0), ValueError, "max_aspect"),
    (dict(min_num_patches=-1), ValueError, "min_num_patches"),
    (dict(max_num_patches=-1), ValueError, "max_num_patches"),
    (dict(num_masking_patches=7.5), TypeError, "num_masking_patches"), (dict(batch=-2), ValueError, "batch"),
    (dict(sample_offset=2**32), ValueError, "sample_offset"), (dict(backend="triton"), ValueError, "not implemented"),
    (dict(variant="slowfast"), ValueError, "variant"),
    (dict(variant="mmpretrain", num_masking_patches=170), ValueError, "num_masking_patches"),
    (dict(variant="mmpretrain", num_masking_patches=-1), ValueError, "num_masking_patches"),
])
def test_block_bad_input(kw, exc, match):
    kw = {"batch": 2, "seed": 0, **kw}
    with pytest.raises(exc, match=match):
        mk.block_mask(kw.pop("batch"), **kw)


def test_avg_dist_bad_input():
    with pytest.raises(ValueError, match="3-D"):
        mk.mask_avg_dist(torch.ones(4, 4, dtype=torch.bool), 2)
    with pytest.raises(TypeError, match="mask"):
        mk.mask_avg_dist([[[1]]], 2)
    with pytest.raises(ValueError, match="patch_size"):
        mk.mask_avg_dist(torch.ones(1, 4, 4), 0)
    with pytest.raises(ValueError, match="non-empty"):
        mk.mask_avg_dist(torch.ones(1, 0, 4), 2)


# ---- torch.library, modules, data loading -------------------------------------------------------

@native
def test_opcheck_native_ops():
    cpu = torch.device("cpu")
    torch.library.opcheck(torch.ops.mimkernels.simmim_mask_native.default, (3, 6, 8, 22, -5, 2, cpu))
    torch.library.opcheck(torch.ops.mimkernels.block_mask_native.default,
                          (3, 14, 14, 78, 15, 78, math.log(0.3), -math.log(0.3), False, 2**63 - 1, 0, cpu))
    torch.library.opcheck(torch.ops.mimkernels.block_mask_native.default,
                          (2, 14, 14, 78, 15, 78, math.log(0.3), -math.log(0.3), True, 5, 9, cpu))
    torch.library.opcheck(torch.ops.mimkernels.mask_avg_dist_native.default,
                          (torch.rand(3, 5, 6) < 0.5, 4))


@native
def test_torch_compile_fullgraph():
    def masks(m):
        return (mk.block_mask(4, seed=3, backend="cpp"), mk.simmim_mask(2, seed=1, backend="cpp"),
                mk.mask_avg_dist(m, 4, backend="cpp"))

    m = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(0)) < 0.5
    for got, expect in zip(torch.compile(masks, fullgraph=True, backend="aot_eager")(m), masks(m)):
        assert torch.equal(got, expect)


def test_nn_generators_and_repr():
    sim = mk_nn.SimMIMMaskGenerator(224, 32, 16, 0.6)
    block = mk_nn.BlockMaskGenerator(num_masking_patches=75, min_num_patches=16)
    assert torch.equal(sim(5, seed=3), mk.simmim_mask(5, 224, 32, 16, 0.6, seed=3))
    assert torch.equal(block(5, seed=3, sample_offset=2),
                       mk.block_mask(5, num_masking_patches=75, min_num_patches=16, seed=3, sample_offset=2))
    assert "mask_ratio=0.6" in repr(sim) and "num_masking_patches=75" in repr(block)


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 24

    def __getitem__(self, i):
        return torch.full((3, 4, 4), float(i))


def _epoch(loader):
    return [(x[:, 0, 0, 0].long(), m) for x, m in loader]


def test_mask_collator_workers_steps_epochs():
    collator = mk.MaskCollator(mk_nn.BlockMaskGenerator(), seed=7)
    loader = torch.utils.data.DataLoader(_Images(), batch_size=4, collate_fn=collator)
    first = _epoch(loader)
    assert len(first) == 6 and all(m.shape == (4, 14, 14) and m.dtype == torch.bool for _, m in first)
    assert torch.equal(first[0][0], torch.arange(4))
    # step s of worker 0, rank 0: the seed derive_seed(derive_seed(7, 0), 0, 0, s).
    for s, (_, m) in enumerate(first):
        assert torch.equal(m, mk.block_mask(4, seed=mk.rng.derive_seed(mk.rng.derive_seed(7, 0), 0, 0, s)))
    assert len({m.numpy().tobytes() for _, m in first}) == 6
    # two workers: batch k comes from worker k % 2 at its step k // 2; reproducible run to run.
    workers = torch.utils.data.DataLoader(_Images(), batch_size=4, num_workers=2,
                                          collate_fn=mk.MaskCollator(mk_nn.BlockMaskGenerator(), seed=7))
    run1, run2 = _epoch(workers), _epoch(workers)
    for k, ((x1, m1), (x2, m2)) in enumerate(zip(run1, run2)):
        assert torch.equal(x1, x2) and torch.equal(m1, m2)
        assert torch.equal(m1, mk.block_mask(4, seed=mk.rng.derive_seed(mk.rng.derive_seed(7, 0), 0, k % 2, k // 2)))
    collator.set_epoch(1)
    assert not any(torch.equal(a, b) for (_, a), (_, b) in zip(_epoch(loader), first))


# ---- GPU ----------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs CUDA build + GPU")
def test_cuda_equals_torch():
    for config in ((192, 32, 4, 0.6), (224, 32, 16, 0.6), (224, 16, 16, 0.75)):
        ref = mk.simmim_mask(4_096, *config, seed=5, sample_offset=3, backend="torch")
        got = mk.simmim_mask(4_096, *config, seed=5, sample_offset=3, device="cuda", backend="cuda")
        assert torch.equal(got.cpu(), ref)
    for kw in (*BLOCK_SETTINGS.values(), dict(height=7, width=20, num_masking_patches=50)):
        ref = mk.block_mask(10_000, seed=2**64 - 1, backend="cpp", **kw)  # cpp == torch: tests above
        got = mk.block_mask(10_000, seed=2**64 - 1, device="cuda", backend="cuda", **kw)
        assert torch.equal(got.cpu(), ref)
    for mask, patch in ((mk.block_mask(256, seed=1), 16), (mk.simmim_mask(64, seed=2), 4)):
        cpu = mk.mask_avg_dist(mask, patch, backend="cpp")
        assert torch.equal(mk.mask_avg_dist(mask.cuda(), patch, backend="cuda").cpu(), cpu)
