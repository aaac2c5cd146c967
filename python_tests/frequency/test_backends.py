"""Each backend of the filter ops against the official chain (reference.*_official, float64):
sizes, radii, the band option, empty batches, boxes beyond the kernel's limit, half and
non-contiguous inputs; the catalogue of the family's ops; the truncated DFT at 224 on a GPU."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mimkernels as mk
from mimkernels import _backends
from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD, reference
from mimkernels.testing import backends_on, sample_photos

FILTER_BACKENDS = backends_on("circular_filter")
TARGET_BACKENDS = backends_on("lowfreq_target")


def test_catalogue_names_every_op_and_its_backends():
    """torch.ops.mimkernels.<op> for every public op, one overload per backend: the truncated DFT
    serves the two MFM filters and PixMIM's target; the mask and the loss are their references."""
    triton = ("triton",) if _backends.HAS_TRITON else ()
    expected = {"frequency_mask": ("torch",), "circular_filter": ("torch", *triton),
                "mfm_corrupt": ("torch", *triton), "lowfreq_target": ("torch", *triton), "frequency_loss": ("torch",)}
    for op, backends in expected.items():
        assert _backends.implemented(op) == backends, op
        assert set(backends) - {"torch"} <= set(getattr(torch.ops.mimkernels, op).overloads()), op
    for op in ("frequency_mask", "frequency_loss"):
        assert getattr(torch.ops.mimkernels, op).overloads() == ["torch"]


# ---- MFM filter ------------------------------------------------------------------------------

FILTER_CASES = [((2, 3, 16, 16), 4), ((2, 2, 17, 13), 3.5), ((1, 1, 20, 32), 6), ((3, 1, 5, 7), 1)]


@pytest.mark.parametrize("backend", FILTER_BACKENDS)
@pytest.mark.parametrize("shape,radius", FILTER_CASES)
def test_backends_equal_official_chain(backend, shape, radius):
    x = torch.rand(shape)
    high_pass = torch.arange(shape[0]) % 2 == 1
    masks = reference.frequency_mask(shape[2], shape[3], radius)
    masks = torch.where(high_pass[:, None, None], 1 - masks, masks)
    c = shape[1]
    mean, std = (0.485, 0.456, 0.406)[:c] * (c // 3 + 1), (0.229, 0.224, 0.225)[:c] * (c // 3 + 1)
    mean, std = mean[:c], std[:c]
    for clamp, mu, sd, tol in [(None, None, None, 2e-6), ((0.0, 1.0), None, None, 2e-6),
                               ((0.0, 1.0), mean, std, 2e-6 / 0.224)]:
        expected = reference.mfm_filter_official(x.double(), masks, clamp, mu, sd)
        got = mk.circular_filter(x, radius, high_pass, clamp=clamp, mean=mu, std=sd, backend=backend)
        assert got.dtype == torch.float32 and got.shape == x.shape
        torch.testing.assert_close(got.double(), expected, atol=tol, rtol=0)

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_band_option_and_bool_high_pass(backend):
    x = torch.rand(2, 3, 16, 18)
    for outer in (6.0, 999.0):
        for high in (False, True):
            mask = reference.frequency_mask(16, 18, 3, high, "mfm", outer)
            expected = reference.mfm_filter_official(x.double(), mask, None)
            got = mk.circular_filter(x, 3, high, clamp=None, outer_radius=outer, backend=backend)
            torch.testing.assert_close(got.double(), expected, atol=2e-6, rtol=0)

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
@settings(max_examples=12, deadline=None)
@given(h=st.integers(1, 24), w=st.integers(1, 24), radius=st.floats(0, 14), seed=st.integers(0, 2 ** 16))
def test_low_plus_high_is_x_before_clamp(backend, h, w, radius, seed):
    """SPEC.md §7.1 for any size and radius, and each against the official chain."""
    x = torch.rand(2, 2, h, w, generator=torch.Generator().manual_seed(seed))
    low = mk.circular_filter(x, radius, False, clamp=None, backend=backend)
    high = mk.circular_filter(x, radius, True, clamp=None, backend=backend)
    torch.testing.assert_close(low + high, x, atol=2e-6, rtol=0)
    expected = reference.mfm_filter_official(x.double(), reference.frequency_mask(h, w, radius), None)
    torch.testing.assert_close(low.double(), expected, atol=2e-6, rtol=0)

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_radius_regimes(backend):
    x = torch.rand(2, 3, 10, 12)
    zero_low = mk.circular_filter(x, 0, False, clamp=None, backend=backend)
    assert torch.equal(zero_low, torch.zeros_like(x))
    torch.testing.assert_close(mk.circular_filter(x, 0, True, clamp=None, backend=backend), x, atol=2e-6, rtol=0)
    channel_mean = x.mean((2, 3), keepdim=True).expand_as(x)
    torch.testing.assert_close(mk.circular_filter(x, 1, False, backend=backend), channel_mean, atol=2e-6, rtol=0)
    torch.testing.assert_close(mk.circular_filter(x, 8, False, backend=backend), x, atol=2e-6, rtol=0)  # 8² > 5²+6²
    assert mk.circular_filter(x, 8, True, clamp=None, backend=backend).abs().max() < 2e-6

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_empty_batch_and_single_pixel(backend):
    for shape in [(0, 3, 8, 8), (2, 3, 1, 1), (1, 3, 1, 5)]:
        x = torch.rand(shape)
        assert mk.circular_filter(x, 1, False, backend=backend).shape == x.shape
        assert mk.lowfreq_target(x, 1, backend=backend).shape == x.shape
        assert mk.mfm_corrupt(x, 1, seed=0, backend=backend)[0].shape == x.shape
    x = torch.rand(2, 3, 1, 1)
    torch.testing.assert_close(mk.circular_filter(x, 1, False, clamp=None, backend=backend), x)
    assert torch.isnan(mk.frequency_loss(torch.rand(0, 3, 4, 4), torch.rand(0, 3, 4, 4), None))

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_boxes_beyond_the_kernel_limit(backend):
    """A box wider than MAX_BOX frequencies (radius 200 on a 300-wide image) runs the torch.fft path."""
    x = torch.rand(2, 1, 3, 300)
    for high in (False, True):
        expected = reference.mfm_filter_official(x.double(), reference.frequency_mask(3, 300, 200, high), None)
        got = mk.circular_filter(x, 200, high, clamp=None, backend=backend)
        torch.testing.assert_close(got.double(), expected, atol=2e-6, rtol=0)
    z = torch.randn(1, 3, 3, 300)
    expected = reference.pixmim_target_official(z.double(), reference.frequency_mask(3, 300, 200, False, "pixmim"),
                                                IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(mk.lowfreq_target(z, 200, backend=backend).double(), expected, atol=1e-5, rtol=0)

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs(backend, dtype):
    """Computed in fp32, returned in the input dtype: one output ulp from the fp32 result."""
    x = torch.rand(2, 3, 16, 20).to(dtype)
    high_pass = torch.tensor([False, True])
    got = mk.circular_filter(x, 5, high_pass, mean=IMAGENET_MEAN, std=IMAGENET_STD, backend=backend)
    expected = mk.circular_filter(x.float(), 5, high_pass, mean=IMAGENET_MEAN, std=IMAGENET_STD, backend="torch")
    assert got.dtype == dtype
    ulp = torch.finfo(dtype).eps * expected.abs().clamp_min(1.0)
    assert ((got.float() - expected).abs() <= ulp + 1e-5).all()

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_non_contiguous_inputs(backend):
    base = torch.rand(2, 3, 16, 16)
    expected = mk.circular_filter(base, 4, True, backend=backend)
    for x in (base.contiguous(memory_format=torch.channels_last), base.transpose(2, 3).contiguous().transpose(2, 3),
              torch.stack([base, -base], -1)[..., 0]):
        torch.testing.assert_close(mk.circular_filter(x, 4, True, backend=backend), expected, atol=1e-6, rtol=0)


# ---- mfm_corrupt -----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", FILTER_BACKENDS)
def test_corrupt_triple_is_consistent(backend):
    x = torch.rand(6, 3, 16, 16)
    out, freq_mask, is_low = mk.mfm_corrupt(x, 4, 0.5, seed=7, mean=IMAGENET_MEAN, std=IMAGENET_STD, backend=backend)
    assert out.shape == x.shape and freq_mask.shape == (6, 16, 16) and freq_mask.dtype == torch.float32
    assert is_low.dtype == torch.bool and is_low.shape == (6,)
    low = reference.frequency_mask(16, 16, 4)
    for b in range(6):
        assert torch.equal(freq_mask[b], low if is_low[b] else 1 - low)
    expected = reference.mfm_filter_official(x.double(), freq_mask, (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(out.double(), expected, atol=2e-6 / 0.224, rtol=0)


# ---- PixMIM target ---------------------------------------------------------------------------

TARGET_CASES = [((2, 3, 16, 16), 5), ((1, 3, 17, 15), 4), ((2, 3, 17, 17), 3), ((1, 3, 12, 20), 6.5),
                ((1, 3, 9, 8), 0.5)]


@pytest.mark.parametrize("backend", TARGET_BACKENDS)
@pytest.mark.parametrize("shape,radius", TARGET_CASES)
def test_target_backends_equal_official(backend, shape, radius):
    z = torch.randn(shape)
    for exact in (True, False):
        mask = reference.frequency_mask(shape[2], shape[3], radius, False, "pixmim" if exact else "mfm")
        expected = reference.pixmim_target_official(z.double(), mask, IMAGENET_MEAN, IMAGENET_STD)
        got = mk.lowfreq_target(z, radius, exact=exact, backend=backend)
        assert got.dtype == torch.float32 and not got.requires_grad
        torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)
    pixel = torch.rand(shape)
    mask = reference.frequency_mask(shape[2], shape[3], radius, False, "pixmim")
    torch.testing.assert_close(mk.lowfreq_target(pixel, radius, mean=None, std=None, backend=backend).double(),
                               reference.pixmim_target_official(pixel.double(), mask), atol=1e-5, rtol=0)

@pytest.mark.parametrize("backend", TARGET_BACKENDS)
@settings(max_examples=8, deadline=None)
@given(h=st.integers(1, 24), w=st.integers(1, 24), radius=st.floats(0, 14), seed=st.integers(0, 2 ** 16))
def test_target_any_size_and_radius(backend, h, w, radius, seed):
    """The asymmetric rim (SPEC.md §3) at every parity, inclusive radius, against the official chain."""
    z = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
    expected = reference.pixmim_target_official(z.double(), reference.frequency_mask(h, w, radius, False, "pixmim"),
                                                IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(mk.lowfreq_target(z, radius, backend=backend).double(), expected, atol=1e-5, rtol=0)

@pytest.mark.parametrize("backend", TARGET_BACKENDS)
def test_target_regimes_and_half_inputs(backend):
    z = torch.randn(2, 3, 10, 10)
    m, s = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(mk.lowfreq_target(z, 0.5, backend=backend), ((0 - m) / s).expand_as(z))
    torch.testing.assert_close(mk.lowfreq_target(z, 8, backend=backend), ((z * s + m).abs() - m) / s,
                               atol=1e-5, rtol=0)
    for dtype in (torch.float16, torch.bfloat16):
        got = mk.lowfreq_target(z.to(dtype), 3, backend=backend)
        expected = mk.lowfreq_target(z.to(dtype).float(), 3, backend="torch")
        assert got.dtype == dtype
        assert ((got.float() - expected).abs() <= torch.finfo(dtype).eps * expected.abs().clamp_min(1) + 1e-5).all()


# ---- the 3xTF32 products at the canonical geometry (interpreter: the split is emulated exactly) --

@pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")
def test_tf32x3_products_meet_the_tolerance_at_224():
    """The kernels split every fp32 operand into TF32 hi + lo and take three TF32 products
    (triton._mma); under TRITON_INTERPRET=1 a tl.dot of TF32-exact operands is exact in fp32, so this
    checks the precision a GPU gets, at 224 px: MFM's filter (r = 16, low and high pass, clamp) within
    2e-6 and PixMIM's exact target (r = 40, the 80 × 80 box) within 1e-5 of the float64 chains."""
    from mimkernels.frequency import triton as kernels

    x = sample_photos(224)[:1]
    high_pass = torch.tensor([True])
    plan = kernels.filter_plan(kernels.MaskGeometry(224, 224, 16.0, False, "mfm", None), x.device, torch.float32,
                               True)
    assert (plan.ky, plan.kys, plan.kxp) == (32, 32, 16)
    for complement in (None, high_pass):
        got = kernels.truncated_dft_filter(x, plan, complement=complement, clamp=(0.0, 1.0), precision="tf32x3")
        mask = reference.frequency_mask(224, 224, 16, complement is not None)
        expected = reference.mfm_filter_official(x.double(), mask, (0.0, 1.0))
        assert (got.double() - expected).abs().max().item() <= 2e-6
    z = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    plan = kernels.filter_plan(kernels.MaskGeometry(224, 224, 40.0, False, "pixmim", None), x.device, torch.float32,
                               False)
    assert (plan.ky, plan.kys, plan.kxp) == (128, 80, 80)
    got = mk.lowfreq_target(z, 40, backend="triton")
    expected = reference.pixmim_target_official(z.double(), reference.frequency_mask(224, 224, 40, False, "pixmim"),
                                                IMAGENET_MEAN, IMAGENET_STD)
    assert (got.double() - expected).abs().max().item() <= 1e-5


# ---- GPU: the truncated DFT at the canonical size (run by benchmarks/run_gpu.sh) -------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_truncated_dft_at_224(dtype):
    x = sample_photos(224).repeat(4, 1, 1, 1).cuda()
    high_pass = torch.tensor([False, True] * 4, device="cuda")
    masks = torch.where(high_pass[:, None, None].cpu(), *(reference.frequency_mask(224, 224, 16, hp)
                                                          for hp in (True, False))).cuda()
    x = x.to(dtype)  # the reference filters the same (rounded) input
    expected = reference.mfm_filter_official(x.double(), masks, (0.0, 1.0))
    got = mk.circular_filter(x, 16, high_pass, backend="triton")
    tol = 2e-6 if dtype == torch.float32 else torch.finfo(dtype).eps + 2e-6
    assert (got.double() - expected).abs().max().item() <= tol
    z = ((x.float() - torch.tensor(IMAGENET_MEAN, device="cuda").view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD, device="cuda").view(1, 3, 1, 1)).to(dtype)
    target = reference.pixmim_target_official(z.double(), mk.frequency_mask(224, 224, 40, center="pixmim",
                                                                            device="cuda"), IMAGENET_MEAN,
                                              IMAGENET_STD)
    got_t = mk.lowfreq_target(z, 40, backend="triton").double()
    scale = 1e-5 if dtype == torch.float32 else torch.finfo(dtype).eps * target.abs().max().item() + 1e-5
    assert (got_t - target).abs().max().item() <= scale

@pytest.mark.gpu
@pytest.mark.parametrize("precision,tol", [("ieee", 2e-6), ("tf32x3", 2e-6), ("tf32", 2e-2)])
def test_gpu_dot_precision(precision, tol):
    """What each precision gives at 224, fp32: ieee and tf32x3 (the default) meet SPEC.md
    §10's 2e-6; plain TF32 (10-bit mantissa) is only held to a sanity bound (it misses, SPEC.md §7.5)."""
    from mimkernels.frequency import triton as kernels

    x = sample_photos(224).cuda()
    plan = kernels.filter_plan(kernels.MaskGeometry(224, 224, 16.0, False, "mfm", None), x.device, torch.float32,
                               True)
    got = kernels.truncated_dft_filter(x, plan, precision=precision)
    expected = reference.mfm_filter_official(x.double(), reference.frequency_mask(224, 224, 16).cuda(), None)
    err = (got.double() - expected).abs().max().item()
    assert err <= tol, f"{precision}: max error {err:.2e}"
