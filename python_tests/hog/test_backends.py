"""Every backend against the reference (exact on integer-valued images, every input dtype) and against
the oracle under the flip-aware bound; layout, units, zero cells, NaN, determinism, no gradient,
hypothesis cases; the GPU tests run by benchmarks/run_gpu.sh."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mimkernels as mk
from mimkernels import _native
from mimkernels.hog import reference
from mimkernels.testing import backends_on
from python_tests.hog.oracles import (assert_within_flip_bound, integer_images, normalized_photos, oracle,
                                      sign_test_bins)

KERNELS = backends_on("hog", exclude=("torch",))
ALL = backends_on("hog")


# ---- every backend ------------------------------------------------------------------------------

CASES = [  # (shape, nbins, pool, gaussian_window, patch_size)
    ((2, 3, 32, 32), 9, 8, 16, 16),
    ((1, 1, 24, 40), 9, 8, 8, 8),
    ((2, 2, 16, 48), 5, 4, 0, 16),
    ((1, 4, 12, 18), 3, 3, 0, 6),
]
MAP_CASES = [  # odd sizes: pool not dividing H or W, non-square, tiny
    ((2, 3, 37, 29), 9, 7, 0),
    ((1, 1, 2, 2), 9, 1, 0),
    ((1, 2, 9, 20), 3, 3, 0),
    ((1, 3, 32, 64), 9, 8, 16),
]


@pytest.mark.parametrize("backend", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.uint8])
def test_backends_equal_reference_on_integer_images(backend, dtype):
    """0..255 is exact in every input dtype and gives exact fp32 gradients: the kernels' sign test and the
    official atan2 chain agree (odd nbins: no boundary is hit exactly), so only summation order differs."""
    few = dtype != torch.float32  # the other dtypes differ only in the load: one case of each op
    for shape, nbins, pool, gw, patch in CASES[:1] if few else CASES:
        imgs = integer_images(shape, dtype=dtype)
        got = mk.hog(imgs, nbins=nbins, pool=pool, gaussian_window=gw, patch_size=patch, backend=backend)
        expected = reference.hog(imgs, nbins, pool, gw, True, patch)
        assert got.dtype == torch.float32 and got.shape == expected.shape and got.is_contiguous()
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    for shape, nbins, pool, gw in MAP_CASES[:1] if few else MAP_CASES:
        imgs = integer_images(shape, seed=3, dtype=dtype)
        got = mk.hog_map(imgs, nbins=nbins, pool=pool, gaussian_window=gw, backend=backend)
        torch.testing.assert_close(got, reference.hog_map(imgs, nbins, pool, gw), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", KERNELS)
def test_backends_unnormalized_sums(backend):
    imgs = integer_images((1, 3, 32, 32), seed=5)
    for gw in (0, 16):
        got = mk.hog(imgs, gaussian_window=gw, norm_out=False, backend=backend)
        torch.testing.assert_close(got, reference.hog(imgs, 9, 8, gw, False, 16), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("nbins", [4, 8])
def test_even_nbins_exact_ties_within_flip_bound(backend, nbins):
    """Even nbins put boundaries at 45°/90°/135°, which integer gradients hit exactly: the kernels bin the
    tie into bin k (exact); official fp32 atan2 rounds it either way (vectorized CPU atan2(g, g)·4/π =
    0.99999994 -> bin 0). Both are within the flip-aware bound (a tie is an ambiguous pixel)."""
    imgs = integer_images((1, 3, 32, 32), seed=7)
    got = mk.hog_map(imgs, nbins=nbins, pool=8, gaussian_window=16, backend=backend)
    assert_within_flip_bound(got, oracle(imgs, nbins, 8, 16), label=f"{backend}, nbins {nbins}")


@pytest.mark.parametrize("backend", ALL)
def test_backends_within_flip_bound_on_photos(backend):
    size = 224 if backend in ("torch", "cpp") else 48  # the interpreter is slow
    imgs = normalized_photos(size)
    o = oracle(imgs)
    flips = np.mean(sign_test_bins(imgs, 9) != o["bins"])
    print(f"kernel rule vs float64 on photos {size} px: {flips:.4%} of pixels change bin")
    assert_within_flip_bound(mk.hog(imgs, backend=backend), o, patch_cells=2, label=f"{backend}, photos {size} px")
    assert_within_flip_bound(mk.hog_map(imgs, gaussian_window=0, backend=backend), oracle(imgs, gw=0),
                             label=f"{backend}, photos {size} px, no window")


@pytest.mark.parametrize("backend", KERNELS)
def test_backends_within_flip_bound_on_randn(backend):
    imgs = torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(2))
    assert_within_flip_bound(mk.hog(imgs, backend=backend), oracle(imgs), patch_cells=2, label=f"{backend}, randn")


@pytest.mark.parametrize("backend", ALL)
def test_non_contiguous_inputs(backend):
    imgs = integer_images((1, 3, 16, 32), seed=9)
    expected = reference.hog(imgs)
    for x in (imgs.contiguous(memory_format=torch.channels_last), torch.stack([imgs, -imgs], -1)[..., 0],
              imgs.transpose(2, 3).contiguous().transpose(2, 3)):
        torch.testing.assert_close(mk.hog(x, backend=backend), expected, rtol=0, atol=1e-6)


# ---- structure and the orientation convention ----------------------------------------------------

@pytest.mark.parametrize("backend", ALL)
def test_units_zero_cells_and_layout(backend):
    imgs = integer_images((2, 3, 32, 32), seed=4)
    imgs[0, 1, :16, :16] = 7.0  # flat: cell (0, 0) and its halo see no gradient in channel 1
    out = mk.hog(imgs, backend=backend)
    assert out.shape == (2, 4, 108)
    vectors = out.view(2, 4, 3, 9, 4).transpose(3, 4)  # [b, l, c, cell, k]: stride 4 between bins
    norms = vectors.norm(dim=-1)
    assert torch.all(norms[0, 0, 1, 0] == 0) and torch.all(vectors[0, 0, 1, 0] == 0)
    nonzero = norms > 0
    torch.testing.assert_close(norms[nonzero], torch.ones_like(norms[nonzero]), rtol=0, atol=1e-5)
    cell_map = mk.hog_map(imgs, backend=backend)
    assert torch.equal(out, reference.to_patches(cell_map, 2))
    assert torch.count_nonzero(mk.hog(torch.full((1, 3, 16, 16), 3.0), backend=backend)) == 0  # constant image


@pytest.mark.parametrize("backend", ALL)
def test_orientation_convention(backend):
    """Interior cell of ramps (SPEC.md §2): gx = left − right, gy = top − bottom, bin of atan2(gx, gy)."""
    i, j = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    expected_bin = {"i": 0, "j": 4, "i+j": 2, "i-j": 6}  # gx=0 -> 0; gy=0 -> p=±4.5 -> 4; -3π/4 -> 2; 3π/4 -> 6
    for name, img in (("i", i), ("j", j), ("i+j", i + j), ("i-j", i - j + 30)):
        cell = mk.hog_map(img[None, None], gaussian_window=0, backend=backend)[0, 0, :, 1, 1]
        assert int(cell.argmax()) == expected_bin[name] and cell.max() == 1.0, name


@pytest.mark.parametrize("backend", ALL)
def test_nan_poisons_the_cells_its_stencil_reaches(backend):
    imgs = integer_images((1, 2, 32, 32), seed=6)
    imgs[0, 0, 8, 20] = float("nan")  # stencil rows 7..9, columns 19..21: cells (0|1, 2)
    got = mk.hog_map(imgs, gaussian_window=0, backend=backend)
    poisoned = torch.zeros(4, 4, dtype=torch.bool)
    poisoned[0:2, 2] = True
    assert torch.all(got[0, 0][:, poisoned].isnan())
    assert not got[0, 0][:, ~poisoned].isnan().any() and not got[0, 1].isnan().any()
    expected = reference.hog_map(imgs, gaussian_window_size=0)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("backend", KERNELS)
def test_deterministic(backend):
    """No atomics, fixed summation order: bit-identical across runs and (cpp) thread counts."""
    imgs = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    first = mk.hog(imgs, backend=backend)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        assert torch.equal(mk.hog(imgs, backend=backend), first)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("backend", ALL)
def test_no_gradient(backend):
    imgs = integer_images((1, 3, 16, 16)).requires_grad_()
    out = mk.hog(imgs, backend=backend)
    assert not out.requires_grad and out.grad_fn is None


@settings(max_examples=12, deadline=None)
@given(b=st.integers(1, 2), c=st.integers(1, 3), cells_h=st.integers(1, 3), cells_w=st.integers(1, 3),
       pool=st.integers(1, 6), extra=st.integers(0, 2), nbins=st.sampled_from([1, 3, 5, 7, 9]),
       windowed=st.booleans(), norm_out=st.booleans(), seed=st.integers(0, 2**16))
def test_hypothesis_maps(b, c, cells_h, cells_w, pool, extra, nbins, windowed, norm_out, seed):
    h, w = max(2, cells_h * pool + extra), max(2, cells_w * pool + extra)
    gw = math.gcd(h, w) if windowed and math.gcd(h, w) > 1 else 0
    imgs = integer_images((b, c, h, w), seed=seed)
    expected = reference.hog_map(imgs, nbins, pool, gw, norm_out)
    for backend in KERNELS:
        got = mk.hog_map(imgs, nbins=nbins, pool=pool, gaussian_window=gw, norm_out=norm_out, backend=backend)
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


# ---- GPU (run by benchmarks/run_gpu.sh) ---------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("backend", backends_on("hog", "cuda", exclude=("torch",)) or ["cuda"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.uint8])
def test_gpu_backends_equal_reference(backend, dtype):
    imgs = integer_images((4, 3, 224, 224), dtype=dtype)
    for kw, ref_args in ((dict(), (9, 8, 16, True, 16)), (dict(gaussian_window=0), (9, 8, 0, True, 16))):
        got = mk.hog(imgs.cuda(), backend=backend, **kw)
        torch.testing.assert_close(got.cpu(), reference.hog(imgs, *ref_args), rtol=0, atol=1e-6)
    for shape, nbins, pool, gw in MAP_CASES:
        x = integer_images(shape, dtype=dtype)
        got = mk.hog_map(x.cuda(), nbins=nbins, pool=pool, gaussian_window=gw, backend=backend)
        torch.testing.assert_close(got.cpu(), reference.hog_map(x, nbins, pool, gw), rtol=0, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", backends_on("hog", "cuda", exclude=("torch",)) or ["cuda"])
def test_gpu_within_flip_bound_on_photos(backend):  # not the official conv: cuDNN may run it in TF32
    imgs = normalized_photos(224)
    got = mk.hog(imgs.cuda(), backend=backend).cpu()
    assert_within_flip_bound(got, oracle(imgs), patch_cells=2, label=f"{backend} on GPU, photos")


@pytest.mark.gpu
@pytest.mark.skipif(not _native.cuda_built(), reason="needs a CUDA build")
def test_gpu_cuda_backend_refuses_cells_beyond_shared_memory():
    imgs = integer_images((1, 1, 128, 128)).cuda()
    torch.testing.assert_close(mk.hog_map(imgs, pool=64, gaussian_window=0, backend="cuda").cpu(),
                               reference.hog_map(imgs.cpu(), 9, 64, 0), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="shared memory"):
        mk.hog_map(integer_images((1, 1, 256, 256)).cuda(), pool=256, gaussian_window=0, backend="cuda")
