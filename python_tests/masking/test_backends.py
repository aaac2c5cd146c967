"""Every kernel backend against the torch reference, bit for bit: random_mask_indices (triton, cpp,
cuda; Philox keys and caller noise with ties, ±0, ±inf, NaN), random_masking, gather_patches and
unshuffle_tokens (triton), simmim_mask, block_mask and mask_avg_dist (cpp, cuda). Triton runs under
the interpreter on tiny shapes; the cuda cases are GPU tests."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mimkernels as mk
from mimkernels import _native, rng
from mimkernels.masking import reference
from mimkernels.testing import TOLERANCES, backends_on
from python_tests.masking.oracles import (BLOCK_SETTINGS, SEEDS, assert_same, awkward_noise, cpp_on_two_threads,
                                          make_ids, native, needs_triton, oracle, random_ids)


# ---- random_mask_indices, random_masking ---------------------------------------------------------

@pytest.mark.parametrize("backend", backends_on("random_mask_indices", "cpu"))
@pytest.mark.parametrize("b,length,ratio,offset", [(3, 49, 0.75, 0), (2, 196, 0.75, 5), (2, 10, 0.9, 0),
                                                    (1, 7, 1.0, 0), (2, 8, 0.0, 0), (3, 1, 0.0, 0),
                                                    (4, 17, 0.5, 2 ** 32 - 4), (0, 5, 0.5, 0)])
@pytest.mark.parametrize("seed", [0, 1234, 2 ** 64 - 1, 2 ** 63 + 5])
def test_indices_backends_bit_identical(backend, b, length, ratio, offset, seed):
    want = mk.random_mask_indices(b, length, ratio, seed=seed, sample_offset=offset, backend="torch")
    got = mk.random_mask_indices(b, length, ratio, seed=seed, sample_offset=offset, backend=backend)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape and torch.equal(g, w)


@pytest.mark.skipif("triton" not in backends_on("random_mask_indices", "cpu"), reason="triton not runnable here")
def test_triton_index_op():
    from torch.library import opcheck

    opcheck(torch.ops.mimkernels.random_mask_indices.triton, (2, 16, 4, 77, None, 3, torch.device("cpu")))
    with pytest.raises(ValueError, match="num_patches"):
        mk.random_mask_indices(1, (1 << 14) + 1, 0.5, seed=0, backend="triton")
    # caller-given noise: sorted by the kernel, equal to the oracle
    noise = torch.rand(2, 9)
    a = mk.random_mask_indices(2, 9, 0.5, noise=noise, backend="triton")
    for u, v in zip(a, oracle(noise.numpy(), 0.5)):
        np.testing.assert_array_equal(u.numpy(), v)


RATIOS = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0]) | st.floats(0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(0, 3), length=st.integers(1, 40), ratio=RATIOS, seed=st.integers(0, 2 ** 64 - 1),
       offset=st.integers(0, 2 ** 32 - 4), ties=st.booleans())
def test_property_indices_all_backends_equal_oracle(b, length, ratio, seed, offset, ties):
    i = torch.arange(length, dtype=torch.int64)[None]
    s = torch.arange(b, dtype=torch.int64)[:, None] + offset
    keys = rng.draw(seed, i, s, rng.STREAM_MAE_MASKING)[0].expand(b, length).numpy()
    want = oracle(keys, ratio)
    for backend in backends_on("random_mask_indices"):
        got = mk.random_mask_indices(b, length, ratio, seed=seed, sample_offset=offset, backend=backend)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    noise = torch.from_numpy(keys % 5 if ties else keys).to(torch.float32)   # exact in fp32; ties when asked
    want = oracle(noise.numpy(), ratio)
    for backend in backends_on("random_mask_indices"):
        got = mk.random_mask_indices(b, length, ratio, noise=noise, backend=backend)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(1, 3), length=st.integers(1, 30), d=st.integers(1, 9), ratio=RATIOS,
       seed=st.integers(0, 2 ** 63), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
def test_property_random_masking_all_backends_equal_oracle(b, length, d, ratio, seed, dtype):
    x = torch.randn(b, length, d, generator=torch.Generator().manual_seed(seed % 2 ** 32)).to(dtype)
    ids_keep, ids_restore, mask = mk.random_mask_indices(b, length, ratio, seed=seed, backend="torch")
    want_x = np.take_along_axis(x.float().numpy(), ids_keep.numpy()[..., None], axis=1)
    for backend in backends_on("random_masking"):
        x_vis, m, r = mk.random_masking(x, ratio, seed=seed, backend=backend)
        assert x_vis.dtype == dtype
        np.testing.assert_array_equal(x_vis.float().numpy(), want_x)
        assert torch.equal(m, mask) and torch.equal(r, ids_restore)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("b,length,ratio", [(3, 49, 0.75), (2, 17, 0.5), (1, 1, 0.0), (2, 10, 0.9), (2, 7, 1.0)])
def test_indices_from_noise_equal_reference(dtype, b, length, ratio):
    noise = awkward_noise(b, length, dtype, seed=length)
    assert_same(mk.random_mask_indices(b, length, ratio, noise=noise, backend="triton"),
                reference.random_mask_indices(b, length, ratio, noise))


@needs_triton
def test_indices_from_noise_equal_mae_on_tie_free_noise():
    noise = torch.rand(4, 196, generator=torch.Generator().manual_seed(0))
    assert all(torch.unique(row).numel() == 196 for row in noise)
    ids_shuffle = torch.argsort(noise, dim=1)                  # MAE models_mae.py random_masking
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(4, 196)
    mask[:, :49] = 0
    got = mk.random_mask_indices(4, 196, 0.75, noise=noise, backend="triton")
    assert_same(got, (ids_shuffle[:, :49], ids_restore, torch.gather(mask, 1, ids_restore)))


@needs_triton
def test_non_contiguous_noise_and_other_dtypes():
    noise = awkward_noise(9, 4, torch.float32, seed=1).t()    # (4, 9), strided
    assert_same(mk.random_mask_indices(4, 9, 0.5, noise=noise, backend="triton"),
                reference.random_mask_indices(4, 9, 0.5, noise))
    for dtype in (torch.float64, torch.int64):                 # not exact in fp32: the reference runs
        n = (torch.rand(2, 9, dtype=torch.float64) * 100).to(dtype)
        assert_same(mk.random_mask_indices(2, 9, 0.5, noise=n, backend="triton"),
                    reference.random_mask_indices(2, 9, 0.5, n))


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("keys", ["seed", "noise"])
def test_random_masking_equals_reference(dtype, keys):
    x = torch.randn(3, 13, 10, dtype=dtype)[:, :, ::2]         # non-contiguous D
    kwargs = {"seed": 11, "sample_offset": 4} if keys == "seed" else {"noise": awkward_noise(3, 13, dtype, 2)}
    assert_same(mk.random_masking(x, 0.6, backend="triton", **kwargs),
                mk.random_masking(x, 0.6, backend="torch", **kwargs))


@needs_triton
def test_random_masking_empty_batch_and_all_masked():
    x_vis, mask, ids_restore = mk.random_masking(torch.zeros(0, 5, 3), 0.5, seed=0, backend="triton")
    assert x_vis.shape == (0, 2, 3) and mask.shape == (0, 5) and ids_restore.shape == (0, 5)
    x_vis, mask, _ = mk.random_masking(torch.randn(2, 5, 3), 1.0, seed=0, backend="triton")
    assert x_vis.shape == (2, 0, 3) and np.all(mask.numpy() == 1)


# ---- gather_patches, unshuffle_tokens ------------------------------------------------------------

@pytest.mark.parametrize("backend", backends_on("gather_patches"))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gather_patches_backends_equal_reference(backend, dtype):
    imgs = torch.randn(3, 3, 10, 15).to(dtype)
    ids = random_ids(3, 6, 4)
    expected = reference.gather_patches(imgs, ids, 5)
    for x in (imgs, imgs.contiguous(memory_format=torch.channels_last), torch.stack([imgs, -imgs], -1)[..., 0]):
        got = mk.gather_patches(x, ids, 5, backend=backend)
        assert got.dtype == dtype and torch.equal(got, expected)
    ids_t = ids.t().contiguous().t()  # non-contiguous ids
    assert torch.equal(mk.gather_patches(imgs, ids_t, 5, backend=backend), expected)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 3), w=st.integers(1, 3), p=st.integers(1, 3),
       prefix=st.sampled_from([0, 1, 5]), data=st.data())
def test_property_gather_patches_equals_patchify_then_index(b, c, h, w, p, prefix, data):
    """num_prefix_tokens = P: ids count P prefix tokens first (lightly's idx_mask), patch l is id P + l."""
    k = data.draw(st.integers(0, h * w))
    imgs = torch.randn(b, c, h * p, w * p)
    ids = random_ids(b, h * w, k)
    expected = mk.patchify(imgs, p, backend="torch")[torch.arange(b)[:, None], ids]
    for backend in backends_on("gather_patches"):
        assert torch.equal(mk.gather_patches(imgs, ids + prefix, p, num_prefix_tokens=prefix, backend=backend),
                           expected)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("d", [5, 33])
@pytest.mark.parametrize("kept,token_shape,prefix", [(0, "flat", 1), (3, "3d", 1), (6, "flat", 1), (6, "3d", 1),
                                                     (3, "flat", 0), (2, "3d", 5)])
def test_unshuffle_triton_equals_reference(dtype, d, kept, token_shape, prefix):
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


@needs_triton
def test_unshuffle_non_contiguous_inputs_and_mixed_token_dtype():
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


@needs_triton
def test_unshuffle_empty_batch_and_zero_width():
    ids = torch.zeros(0, 4, dtype=torch.int64)
    out = mk.unshuffle_tokens(torch.zeros(0, 2, 3), ids, torch.zeros(3), backend="triton")
    assert out.shape == (0, 5, 3)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(0, 3), length=st.integers(1, 20), d=st.integers(1, 9), prefix=st.sampled_from([0, 1, 5]),
       data=st.data(), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
def test_property_unshuffle_equals_index_by_index_oracle(b, length, d, prefix, data, dtype):
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


# ---- simmim_mask, block_mask, mask_avg_dist: cpp == torch ---------------------------------------

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
    kw = {"variant": "official", **kw}  # upstream behaviour for the impossible rows (variant="unilm" raises)
    for seed in SEEDS:
        ref = mk.block_mask(300, seed=seed, backend="torch", **kw)
        assert torch.equal(mk.block_mask(300, seed=seed, backend="cpp", **kw), ref)
        target = kw.get("num_masking_patches", 78)
        assert (ref.flatten(1).sum(1) <= max(target, 0)).all()
        if kw.get("variant") == "mmpretrain":
            assert (ref.flatten(1).sum(1) == target).all() and not ref[:, -1].any() and not ref[:, :, -1].any()


@native
@pytest.mark.parametrize("height, width", [(64, 64), (40, 70), (70, 40), (65, 9), (9, 65), (3, 63), (5, 57),
                                           (13, 17), (2, 3)])
def test_block_cpp_equals_torch_both_sides_of_the_row_words(height, width):
    """The cpp build keeps grids of up to 64 rows and 64 columns as one 64-bit word per row, larger ones as
    bytes: both equal the reference, odd widths and tiny grids included (the words' byte output), and blocks
    of width 0 at the column past the last (min_num_patches=0, aspects far from 1)."""
    cells = height * width
    for kw in ({"num_masking_patches": int(0.4 * cells), "min_num_patches": min(16, cells // 4)},
               {"num_masking_patches": int(0.6 * cells), "min_num_patches": 0, "min_aspect": 0.02},
               {"num_masking_patches": int(0.3 * cells), "min_num_patches": 1, "variant": "mmpretrain"}):
        kw = {"variant": "official", **kw}
        for seed in SEEDS[:2]:
            ref = mk.block_mask(24, height, width, seed=seed, backend="torch", **kw)
            assert ref.any()
            assert torch.equal(cpp_on_two_threads(mk.block_mask, 24, height, width, seed=seed, **kw), ref)
            assert torch.equal(mk.block_mask(1, height, width, seed=seed, sample_offset=23, backend="cpp", **kw),
                               ref[23:])


@native
@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), frac=st.floats(0, 1.2), min_num=st.integers(0, 20),
       max_num=st.one_of(st.none(), st.integers(0, 40)), min_aspect=st.floats(0.05, 1.0),
       stretch=st.floats(1.0, 25.0), batch=st.integers(0, 6), seed=st.integers(0, 2**64 - 1))
def test_block_hypothesis(h, w, frac, min_num, max_num, min_aspect, stretch, batch, seed):
    kw = dict(height=h, width=w, num_masking_patches=int(frac * h * w), min_num_patches=min_num,
              max_num_patches=max_num, min_aspect=min_aspect, max_aspect=min_aspect * stretch,
              variant="official")  # upstream behaviour whatever the setting (variant="unilm" refuses impossible ones)
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


@native
def test_avg_dist_cpp_equals_torch_on_generated_masks():
    for mask, patch in ((mk.block_mask(64, seed=1), 16), (mk.simmim_mask(32, seed=2)[:, ::8, ::8], 32),
                        (mk.simmim_mask(4, seed=3), 4)):
        torch.testing.assert_close(cpp_on_two_threads(mk.mask_avg_dist, mask, patch),
                                   mk.mask_avg_dist(mask, patch, backend="torch"), rtol=1e-6, atol=0)


# ---- GPU (run by benchmarks/run_gpu.sh) ---------------------------------------------------------

def _prefix_tokens_triton_equals_torch(prefix, dtype, device):
    """unshuffle_tokens and gather_patches with P prefix tokens: the triton backend (eager, then under
    torch.compile, where it is a triton_op traced into the kernels) against the torch one."""
    b, length, kept, d, p = 4, 196, 49, 96, 16
    ids_restore = torch.argsort(torch.rand(b, length, device=device), dim=1)
    ids_keep = torch.argsort(ids_restore, dim=1)[:, :kept] + prefix
    x = torch.randn(b, prefix + kept, d, device=device).to(dtype).requires_grad_()
    token = torch.randn(d, device=device).to(dtype).requires_grad_()
    imgs = torch.randn(b, 3, 224, 224, device=device).to(dtype).requires_grad_()

    def step(backend, compiled=False):
        def fn(x, token, imgs):
            return (mk.unshuffle_tokens(x, ids_restore, token, num_prefix_tokens=prefix, backend=backend),
                    mk.gather_patches(imgs, ids_keep, p, num_prefix_tokens=prefix, backend=backend))
        tokens, patches = (torch.compile(fn, fullgraph=True) if compiled else fn)(x, token, imgs)
        grads = torch.autograd.grad((tokens.float().sin().sum() + patches.float().cos().sum()), (x, token, imgs))
        return tokens, patches, *grads

    want = step("torch")
    for compiled in (False, True):
        torch._dynamo.reset()
        tokens, patches, g_x, g_token, g_imgs = step("triton", compiled)
        assert torch.equal(tokens, want[0]) and torch.equal(patches, want[1])
        assert torch.equal(g_x, want[2]) and torch.equal(g_imgs, want[4])   # scatters: exact
        torch.testing.assert_close(g_token.float(), want[3].float(), rtol=1e-2, atol=1e-2)


@pytest.mark.gpu
@pytest.mark.parametrize("prefix", [0, 1, 5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_prefix_tokens_triton_equals_torch(prefix, dtype):
    _prefix_tokens_triton_equals_torch(prefix, dtype, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs CUDA build + GPU")
def test_generators_cuda_equals_torch():
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


# ---- unshuffle_tokens backward: parallel over rows (tiles of ROWS rows), bad ids (SPEC.md §3, §5) -----

def _unshuffle_oracle(x, ids, token, prefix):
    """out[P+l] = x[P+r] for r in [0, K), the token for r in [K, L), zeros for r outside [0, L)."""
    b, length = ids.shape
    kept, d = x.shape[1] - prefix, x.shape[2]
    out = torch.zeros(b, prefix + length, d, dtype=x.dtype)
    out[:, :prefix] = x[:, :prefix]
    for s in range(b):
        for l in range(length):
            r = int(ids[s, l])
            if 0 <= r < kept:
                out[s, prefix + l] = x[s, prefix + r]
            elif kept <= r < length:
                out[s, prefix + l] = token.reshape(-1).to(x.dtype)
    return out


def _unshuffle_grad_oracle(g, ids, kept, prefix):
    """grad_x (fp64, rows scattered, repeated kept ids summed) and grad_token (fp64): rows of ids outside
    [0, L) are dropped."""
    b, length = ids.shape
    gx = torch.zeros(b, prefix + kept, g.shape[2], dtype=torch.float64)
    gx[:, :prefix] = g[:, :prefix].double()
    gt = torch.zeros(g.shape[2], dtype=torch.float64)
    for s in range(b):
        for l in range(length):
            r = int(ids[s, l])
            if 0 <= r < kept:
                gx[s, prefix + r] += g[s, prefix + l].double()
            elif kept <= r < length:
                gt += g[s, prefix + l].double()
    return gx, gt


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("b,length,kept,d,prefix", [(2, 70, 17, 300, 5), (3, 33, 0, 9, 0), (1, 40, 40, 257, 1),
                                                    (2, 96, 24, 64, 1)])
def test_unshuffle_backward_many_tiles(dtype, b, length, kept, d, prefix):
    """Several row tiles per sample (P + L > 32, tiles straddling the prefix), several column blocks
    (D > 256), D not a power of two, non-contiguous g: grad_x exact, grad_token within the fp32 sum's
    rounding, and the same bits on a second run (no atomics)."""
    ids = make_ids(b, length, seed=length + d)
    x = torch.randn(b, prefix + kept, d).to(dtype)
    token = torch.randn(d).to(dtype)
    g = torch.randn(b, prefix + length, 2 * d).to(dtype)[..., ::2]
    gx, gt = torch.ops.mimkernels.unshuffle_tokens.triton_backward(g, x, ids, token, prefix, [True, True])
    want_gx, want_gt = _unshuffle_grad_oracle(g, ids, kept, prefix)
    assert gx.dtype == dtype and torch.equal(gx, want_gx.to(dtype))
    atol, rtol = TOLERANCES.get(dtype, (1e-12, 1e-12))
    torch.testing.assert_close(gt, want_gt.to(dtype), atol=atol, rtol=rtol)
    again = torch.ops.mimkernels.unshuffle_tokens.triton_backward(g, x, ids, token, prefix, [True, True])
    assert torch.equal(again[0], gx) and torch.equal(again[1], gt)


def _bad_ids(b, length, kept):
    ids = make_ids(b, length, seed=9)
    ids[0, 0], ids[0, 1] = length, -1                  # just outside [0, L)
    ids[-1, -1], ids[-1, 2] = 2 ** 40, -(2 ** 62)      # far outside
    return ids


@needs_triton
@pytest.mark.parametrize("prefix", [0, 1, 3])
def test_unshuffle_out_of_range_ids_give_zeros_and_drop_their_gradient(prefix):
    """SPEC.md §5: ids outside [0, L) read nothing (zero rows) and their gradient rows are dropped."""
    b, length, kept, d = 2, 12, 4, 6
    ids = _bad_ids(b, length, kept)
    x = torch.randn(b, prefix + kept, d)
    token = torch.randn(d)
    got = mk.unshuffle_tokens(x, ids, token, num_prefix_tokens=prefix, backend="triton")
    assert torch.equal(got, _unshuffle_oracle(x, ids, token, prefix))
    assert (got[0, prefix] == 0).all() and (got[0, prefix + 1] == 0).all()
    g = torch.randn(b, prefix + length, d)
    gx, gt = torch.ops.mimkernels.unshuffle_tokens.triton_backward(g, x, ids, token, prefix, [True, True])
    want_gx, want_gt = _unshuffle_grad_oracle(g, ids, kept, prefix)
    assert torch.equal(gx, want_gx.float())
    torch.testing.assert_close(gt, want_gt.float(), atol=1e-5, rtol=1e-5)


@needs_triton
def test_unshuffle_backward_non_permutation_ids():
    """A non-permutation ids_restore whose kept ids are distinct (repeated masked ids, kept ids missing):
    the backward is exact (each masked row counts once in the token's gradient; an unread kept row gets
    zero). A kept id twice would race in the scatter: MIMKERNELS_DEBUG=1 refuses it in the backward."""
    b, length, kept, d = 2, 8, 3, 5
    ids = torch.tensor([[0, 5, 5, 7, 2, 5, 6, 6], [7, 7, 7, 7, 7, 7, 7, 1]])
    x = torch.randn(b, 1 + kept, d, dtype=torch.float64)
    token = torch.randn(d, dtype=torch.float64)
    g = torch.randn(b, 1 + length, d, dtype=torch.float64)
    gx, gt = torch.ops.mimkernels.unshuffle_tokens.triton_backward(g, x, ids, token, 1, [True, True])
    want_gx, want_gt = _unshuffle_grad_oracle(g, ids, kept, 1)
    assert torch.equal(gx, want_gx)
    torch.testing.assert_close(gt, want_gt, atol=1e-12, rtol=1e-12)
    xr, tr = x.clone().requires_grad_(True), token.clone().requires_grad_(True)
    ref = torch.autograd.grad(reference.unshuffle_tokens(xr, ids, tr), (xr, tr), g)
    assert torch.equal(gx, ref[0])


@needs_triton
def test_unshuffle_duplicate_kept_ids_refused_in_debug_mode(monkeypatch):
    ids = torch.tensor([[0, 1, 1, 3], [2, 0, 1, 3]])   # kept id 1 twice in sample 0 (K = 3)
    x = torch.randn(2, 4, 5, requires_grad=True)
    token = torch.randn(5, requires_grad=True)
    out = mk.unshuffle_tokens(x, ids, token, backend="triton")
    assert torch.equal(out, reference.unshuffle_tokens(x, ids, token))   # the forward is exact
    monkeypatch.setenv("MIMKERNELS_DEBUG", "1")
    with pytest.raises(ValueError, match="kept id"):
        torch.ops.mimkernels.unshuffle_tokens.triton_backward(torch.randn(2, 5, 5), x.detach(), ids,
                                                              token.detach(), 1, [True, True])
    ok = torch.tensor([[0, 1, 2, 3], [2, 0, 1, 3]])
    torch.ops.mimkernels.unshuffle_tokens.triton_backward(torch.randn(2, 5, 5), x.detach(), ok, token.detach(), 1,
                                                          [True, True])


@needs_triton
def test_random_masking_row_copy_bounds_its_ids():
    """random_masking's gather with ids outside [0, L): zero rows, never a read outside x; the backward
    (the scatter) drops those rows (SPEC.md §3)."""
    x = torch.randn(2, 6, 4)
    ids = torch.tensor([[0, 6, 2], [-1, 5, 2 ** 50]])
    got = torch.ops.mimkernels.random_masking.triton(x, ids)
    want = torch.zeros(2, 3, 4)
    want[0, 0], want[0, 2], want[1, 1] = x[0, 0], x[0, 2], x[1, 5]
    assert torch.equal(got, want)
    g = torch.randn(2, 3, 4)
    (gx,) = torch.ops.mimkernels.random_masking.triton_backward(g, x, ids, [True])
    want_gx = torch.zeros(2, 6, 4)
    want_gx[0, 0], want_gx[0, 2], want_gx[1, 5] = g[0, 0], g[0, 2], g[1, 1]
    assert torch.equal(gx, want_gx)


_HUGE_IDS_SCRIPT = r"""
import torch, mimkernels as mk
from mimkernels.masking import triton as M
x = torch.randn(2, 4, 8)
ids = torch.tensor([[0, 10**6, -10**6, 2**62], [-(2**63), 1, 2**63 - 1, 3]])
out = M.unshuffle_tokens(x[:, :3], ids, torch.ones(8), 1)
assert (out[0, 2:4] == 0).all() and (out[1, 1] == 0).all() and (out[0, 4] == 0).all(), out
gx, gt = M.unshuffle_tokens_backward(torch.ones(2, 5, 8), x[:, :3], ids, torch.ones(8), 1, [True, True])
assert torch.isfinite(gx).all() and torch.isfinite(gt).all()
rows = M.random_masking(x, ids)
assert (rows[0, 1:] == 0).all() and (rows[1, 0] == 0).all() and (rows[1, 2] == 0).all()
(gxr,) = M.random_masking_backward(torch.ones(2, 4, 8), x, ids, [True])
assert gxr.sum() == 8 * 3
print("ok")
"""


@needs_triton
def test_huge_ids_do_not_crash_the_interpreter():
    """Ids far outside the tensors (±2^62, int64 extremes): a segmentation fault under the interpreter would
    kill pytest, so the calls run in a child process, which must exit cleanly."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, TRITON_INTERPRET="1", MIMKERNELS_DEBUG="0")
    done = subprocess.run([sys.executable, "-c", _HUGE_IDS_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and "ok" in done.stdout, (done.returncode, done.stdout, done.stderr[-3000:])
