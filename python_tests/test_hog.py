"""HOG target (spec/hog.md): the reference against an independent float64 numpy oracle; every backend
against the reference (exact gradients: integer-valued images) and against the oracle under the
spec's flip-aware bound (§9.2: random images, real photographs); layout, units, zero cells, NaN,
errors, no gradient, opcheck, hypothesis cases."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.library import opcheck

import mimkernels as mk
from mimkernels import _native
from mimkernels.hog import bin_cotangents, reference, tables
from mimkernels.nn import HOG
from mimkernels.testing import backends_on, sample_photos

KERNELS = backends_on("hog", exclude=("torch",))
ALL = backends_on("hog")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---- the float64 oracle (spec §1, written from the text) and the flip-aware bound (§9.2) -------

def oracle(imgs: torch.Tensor, nbins=9, pool=8, gw=16, norm_out=True) -> dict:
    """float64 evaluation of §1 on the exact input values. Returns the map (B, C, nbins, h, w), the raw
    sums, and per pixel: bin, magnitude, window weight, δ = 2⁻²¹·Σ|stencil terms| and the phase."""
    x = imgs.double().numpy()
    b, c, hh, ww = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")  # -1 -> 1, H -> H-2

    def at(di, dj):
        return xp[:, :, 1 + di:1 + di + hh, 1 + dj:1 + dj + ww]

    tl, tm, tr, ml, mr, bl, bm, br = (at(-1, -1), at(-1, 0), at(-1, 1), at(0, -1), at(0, 1), at(1, -1), at(1, 0),
                                      at(1, 1))
    gx = (tl + 2 * ml + bl) - (tr + 2 * mr + br)  # left column minus right column
    gy = (tl + 2 * tm + tr) - (bl + 2 * bm + br)  # top row minus bottom row
    magnitude = np.sqrt(gx * gx + gy * gy)
    phase = np.arctan2(gx, gy) / math.pi * nbins
    bins = np.floor(phase).astype(np.int64) % nbins
    if gw:
        t = np.arange(gw)
        bell = np.exp(-0.5 * ((t - (gw - 1) / 2) / (gw // 2)) ** 2)
        window = np.outer(bell, bell) / np.outer(bell, bell).sum()
        weight = np.tile(window, (hh // gw, ww // gw))
    else:
        weight = np.ones((hh, ww))
    abs_terms = (np.abs(tl) + 2 * np.abs(ml) + np.abs(bl) + np.abs(tr) + 2 * np.abs(mr) + np.abs(br)
                 + np.abs(tl) + 2 * np.abs(tm) + np.abs(tr) + np.abs(bl) + 2 * np.abs(bm) + np.abs(br))
    h, w = hh // pool, ww // pool

    def cell_sums(v):  # (B, C, H, W) -> (B, C, h, w)
        return v[:, :, :h * pool, :w * pool].reshape(b, c, h, pool, w, pool).sum((3, 5))

    votes = magnitude * weight
    raw = np.stack([cell_sums(np.where(bins == k, votes, 0.0)) for k in range(nbins)], axis=2)
    norm = np.sqrt((raw * raw).sum(2, keepdims=True))
    out = raw / np.maximum(norm, 1e-12) if norm_out else raw
    return dict(map=out, raw=raw, norm=norm, bins=bins, magnitude=magnitude, weight=weight,
                delta=2.0 ** -21 * abs_terms, phase=phase, cell_sums=cell_sums, nbins=nbins)


def oracle_patches(cell_map: np.ndarray, u: int) -> np.ndarray:
    """(B, C, K, h, w) -> (B, L, C·K·u²) with patch l = py·(w/u) + px and entry ((c·K + k)·u + cy)·u + cx (§3)."""
    b, c, k, h, w = cell_map.shape
    x = cell_map.reshape(b, c, k, h // u, u, w // u, u).transpose(0, 3, 5, 1, 2, 4, 6)
    return x.reshape(b, (h // u) * (w // u), c * k * u * u)


def flip_bound(o: dict) -> tuple[np.ndarray, np.ndarray]:
    """(per-entry bound (B, C, 1, h, w), ambiguous pixels (B, C, H, W)) of §9.2."""
    delta, g, phase, nbins = o["delta"], o["magnitude"], o["phase"], o["nbins"]
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = (nbins / math.pi) * 2 * delta / g + 2e-6
    ambiguous = (g <= 2 * delta) | (np.abs(phase - np.round(phase)) <= margin)
    spread = 3 * o["cell_sums"](np.where(ambiguous, (g + 2 * delta) * o["weight"], 0.0)) \
        + 2 * o["cell_sums"](2 * delta * o["weight"])
    norm = o["norm"][:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(norm > 0, np.minimum(2.0, spread / norm), np.where(spread > 0, 2.0, 0.0)) + 1e-5
    return bound[:, :, None], ambiguous


def assert_within_flip_bound(got: torch.Tensor, o: dict, patch_cells: int = 0, label: str = "") -> float:
    """Asserts |got − oracle| ≤ the flip-aware bound entrywise; returns the fraction of entries > 1e-4."""
    bound, ambiguous = flip_bound(o)
    bound = np.broadcast_to(bound, o["map"].shape)
    expected = o["map"]
    if patch_cells:
        expected, bound = oracle_patches(expected, patch_cells), oracle_patches(np.ascontiguousarray(bound), patch_cells)
    err = np.abs(got.double().numpy() - expected)
    assert np.all(err <= bound), f"{label}: max excess {np.max(err - bound)}"
    frac = float(np.mean(err > 1e-4))
    print(f"{label}: ambiguous pixels {ambiguous.mean():.4%}, entries > 1e-4: {frac:.4%}, max err {err.max():.3g}")
    return frac


def sign_test_bins(imgs: torch.Tensor, nbins: int) -> np.ndarray:
    """The kernels' per-pixel bin (fp32 pairwise gradients, split-cotangent sign test), for the report."""
    x = torch.nn.functional.pad(imgs.float(), (1, 1, 1, 1), mode="reflect")
    hh, ww = imgs.shape[2:]

    def at(di, dj):
        return x[:, :, 1 + di:1 + di + hh, 1 + dj:1 + dj + ww]

    def grad(a0, b0, a1, b1, a2, b2):
        return ((a0 - b0) + 2 * (a1 - b1)) + (a2 - b2)

    gx = grad(at(-1, -1), at(-1, 1), at(0, -1), at(0, 1), at(1, -1), at(1, 1)).double()
    gy = grad(at(-1, -1), at(1, -1), at(-1, 0), at(1, 0), at(-1, 1), at(1, 1)).double()
    cot = bin_cotangents(nbins).double()
    u, v = gx.abs(), torch.where(gx > 0, gy, -gy)
    count = (v[..., None] <= u[..., None] * (cot[:, 0] + cot[:, 1])).sum(-1)
    return torch.where(gx == 0, 0, count).numpy()


def integer_images(shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).to(dtype)


def normalized_photos(size) -> torch.Tensor:
    """The two sample photographs, ImageNet-normalized as mmpretrain feeds the HOG (fp32)."""
    x = sample_photos(size)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# ---- the reference against the oracle ----------------------------------------------------------

@pytest.mark.parametrize("shape,pool,gw", [((2, 3, 32, 32), 8, 16), ((2, 3, 32, 48), 8, 0), ((1, 1, 21, 30), 7, 0),
                                           ((1, 2, 16, 16), 4, 8)])
def test_reference_equals_oracle_on_integer_images(shape, pool, gw):
    imgs = integer_images(shape)
    o = oracle(imgs, 9, pool, gw)
    np.testing.assert_allclose(reference.hog_map(imgs, 9, pool, gw).numpy(), o["map"], rtol=0, atol=2e-6)
    if shape[2] % 16 == 0 and shape[3] % 16 == 0 and 16 % pool == 0:
        np.testing.assert_allclose(reference.hog(imgs, 9, pool, gw, True, 16).numpy(),
                                   oracle_patches(o["map"], 16 // pool), rtol=0, atol=2e-6)


def test_reference_within_flip_bound_on_photos_and_randn():
    imgs = normalized_photos(64)
    assert_within_flip_bound(reference.hog_map(imgs), oracle(imgs), label="reference, photos 64 px")
    randn = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert_within_flip_bound(reference.hog(randn), oracle(randn), patch_cells=2, label="reference, randn")


def test_window_table_and_cotangents():
    g = reference.gaussian_window(16).double().numpy()
    t = np.arange(16)
    bell = np.exp(-0.5 * ((t - 7.5) / 8) ** 2)
    np.testing.assert_allclose(g, np.outer(bell, bell) / np.outer(bell, bell).sum(), rtol=1e-6)
    for nbins in (2, 4, 8, 9, 12):
        cot = bin_cotangents(nbins).double()
        exact = torch.tensor([1 / math.tan(k * math.pi / nbins) for k in range(1, nbins)], dtype=torch.float64)
        assert torch.allclose(cot.sum(1), exact, rtol=0, atol=1e-14)
        for k in range(1, nbins):  # the rational boundaries are stored exactly
            if 4 * k in (nbins, 3 * nbins) or 2 * k == nbins:
                assert cot[k - 1, 1] == 0 and cot[k - 1, 0] in (-1.0, 0.0, 1.0)
    assert bin_cotangents(1).shape == (0, 2)


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
    """Interior cell of ramps (spec §1.2, §1.4): gx = left − right, gy = top − bottom, bin of atan2(gx, gy)."""
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


def test_errors():
    x = torch.zeros(1, 3, 32, 32)
    bad = [
        (lambda: mk.hog(x[0]), ValueError, "4-D"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 1, 8), pool=1, gaussian_window=0), ValueError, ">= 2"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 8, 6), pool=8, gaussian_window=0), ValueError, "pool"),
        (lambda: mk.hog_map(x, nbins=0), ValueError, "nbins"),
        (lambda: mk.hog_map(x, pool=0), ValueError, "pool"),
        (lambda: mk.hog_map(x, gaussian_window=-1), ValueError, "gaussian_window"),
        (lambda: mk.hog_map(x, gaussian_window=1), ValueError, "gaussian_window"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 24, 24)), ValueError, "gaussian_window"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 16, 24)), ValueError, "gaussian_window"),
        (lambda: mk.hog(x, pool=7, gaussian_window=0), ValueError, "multiple of pool"),
        (lambda: mk.hog(torch.zeros(1, 3, 32, 40), gaussian_window=8), ValueError, "divisible by patch_size"),
        (lambda: mk.hog(torch.zeros(1, 0, 32, 32)), ValueError, "C >= 1"),
        (lambda: mk.hog(x.double()), TypeError, "dtype"),
        (lambda: mk.hog(x, nbins=9.0), TypeError, "nbins"),
        (lambda: mk.hog(x, norm_out=1), TypeError, "norm_out"),
        (lambda: mk.hog(x, backend="nope"), ValueError, "backend"),
    ]
    for call, exc, words in bad:
        with pytest.raises(exc, match=words):
            call()
    assert mk.hog(torch.zeros(0, 3, 32, 32)).shape == (0, 4, 108)


# ---- torch.library, hypothesis, module ---------------------------------------------------------

def test_opcheck():
    imgs = integer_images((1, 1, 16, 16))
    cot, window = tables(9, 16, torch.device("cpu"))
    for patch in (16, 0):
        if _native.available():
            opcheck(torch.ops.mimkernels.hog_native.default, (imgs, cot, window, 9, 8, 16, patch, True))
        if "triton" in KERNELS:
            opcheck(torch.ops.mimkernels.hog.default, (imgs, cot, window, 9, 8, 16, patch, True))


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_fullgraph():
    imgs = integer_images((1, 3, 16, 16))
    for backend in KERNELS:
        compiled = torch.compile(lambda x: mk.hog(x, backend=backend), fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(imgs), reference.hog(imgs), rtol=0, atol=1e-6)


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


def test_nn_module():
    module = HOG()
    imgs = integer_images((1, 3, 32, 32))
    torch.testing.assert_close(module(imgs), reference.hog(imgs), rtol=0, atol=1e-6)
    assert "gaussian_window=16" in repr(module)
    maskfeat = HOG(gaussian_window=0, output="map")
    torch.testing.assert_close(maskfeat(imgs), reference.hog_map(imgs, gaussian_window_size=0), rtol=0, atol=1e-6)


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
