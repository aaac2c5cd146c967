"""Every backend of the pixel family against the reference or the float64 oracle: patchify/unpatchify
bit-exact on every layout; the losses and the target on the same (low-precision) values, gradients
against the closed forms; edge cases (constant patches, empty and soft masks); the canonical batch on a GPU."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mimkernels as mk
from mimkernels.pixel import examples, reference
from mimkernels.testing import backends_on, sample_photos
from python_tests.pixel.oracles import (MSE_CASES, assert_rel, layouts, mae_mask, np64, oracle_l1, oracle_mse,
                                        oracle_norm_target, oracle_patches)

BACKENDS = backends_on("norm_pix_mse_loss")
TRITON = pytest.mark.skipif("triton" not in BACKENDS, reason="triton backend unavailable")


# ---- patchify / unpatchify ------------------------------------------------------------------------------

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


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 3), w=st.integers(1, 3), p=st.integers(1, 4))
def test_property_round_trip(b, c, h, w, p):
    imgs = torch.randn(b, c, h * p, w * p)
    for backend in backends_on("patchify"):
        x = mk.patchify(imgs, p, backend=backend)
        assert x.shape == (b, h * w, p * p * c)
        assert torch.equal(mk.unpatchify(x, p, c, grid_size=(h, w), backend=backend), imgs)



@TRITON
def test_gather_patches_launchers():
    """The copy through patch ids that the masking family's gather_patches registers (its kernel is this
    family's patch copy): rows ids − num_prefix_tokens of patchify, and the backward scatters them into zeros."""
    from mimkernels.pixel import triton as kernels

    imgs = torch.randn(2, 3, 8, 12)
    ids = torch.tensor([[5, 1, 3], [2, 4, 1]])
    for prefix in (0, 1):
        rows = kernels.gather_patches(imgs, ids, 4, prefix)
        expected = torch.stack([reference.patchify(imgs, 4)[b, ids[b] - prefix] for b in range(2)])
        assert torch.equal(rows, expected)
        (grad,) = kernels.gather_patches_backward(rows, imgs, ids, 4, prefix, [True])
        kept = torch.zeros(2, 6, 1)
        for b in range(2):
            kept[b, ids[b] - prefix] = 1
        assert torch.equal(grad, reference.unpatchify(reference.patchify(imgs, 4) * kept, 4, 3, (2, 3)))

# ---- losses and the normalized target against the oracle ---------------------------------------------

DTYPE_CASES = [  # (pred dtype, imgs dtype, case)
    *[(torch.float32, torch.float32, case) for case in MSE_CASES],
    (torch.float16, torch.float16, MSE_CASES[0]),
    (torch.bfloat16, torch.bfloat16, MSE_CASES[1]),
    (torch.bfloat16, torch.float32, MSE_CASES[0]),  # AMP: bf16 decoder output, fp32 images
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pred_dtype,img_dtype,case", DTYPE_CASES)
def test_norm_pix_mse_loss_and_gradient(backend, pred_dtype, img_dtype, case):
    """Loss within 1e-5 of float64 on the same values (fp32 accumulation is the only error); gradient
    within 1e-5 (fp32) / 1e-2 (bf16, fp16 outputs) of the closed form; contiguous and strided inputs."""
    b, c, h, w, p = case
    length, d = (h // p) * (w // p), p * p * c
    imgs = (torch.randn(b, c, h, w) * 2 + 0.5).to(img_dtype)
    pred = torch.randn(b, length, d).to(pred_dtype)
    mask = mae_mask(b, length, 0.6)
    grad_rtol = 1e-5 if pred_dtype == torch.float32 else 1e-2
    for norm_pix in (True, False):
        target = oracle_norm_target(np64(imgs), p) if norm_pix else oracle_patches(np64(imgs), p)
        expected, expected_grad = oracle_mse(np64(pred), target, mask.numpy())
        for pr, x, m in layouts(pred, imgs, mask):
            pr = pr.detach().requires_grad_()
            loss = mk.norm_pix_mse_loss(pr, x, m, p, norm_pix, backend=backend)
            assert loss.dtype == torch.float32 and loss.shape == ()
            assert_rel(loss, expected)
            (grad,) = torch.autograd.grad(loss, pr)
            assert grad.dtype == pred_dtype
            np.testing.assert_allclose(np64(grad), expected_grad, rtol=grad_rtol, atol=grad_rtol * 1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_patch_norm_target(backend, dtype):
    """Within 1e-5 of float64 on fp32 input (targets are O(1)); one output rounding on fp16/bf16."""
    imgs = (torch.randn(3, 3, 12, 8) * 3 - 1).to(dtype)
    expected = oracle_norm_target(np64(imgs), 4)
    atol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    for (x,) in layouts(imgs):
        got = mk.patch_norm_target(x, 4, backend=backend)
        assert got.dtype == dtype and got.shape == (3, 6, 48)
        np.testing.assert_allclose(np64(got), expected, atol=atol, rtol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_masked_mse_loss_precomputed_target(backend, dtype):
    """MaskFeat: a precomputed (HOG) target, bool mask, counts varying per sample; ∂/∂target = −∂/∂pred."""
    pred, target = torch.randn(3, 10, 27).to(dtype), torch.randn(3, 27, 10).transpose(1, 2)
    mask = torch.rand(3, 10) < 0.4
    mask[0, 0] = True
    expected, expected_grad = oracle_mse(np64(pred), target.numpy(), mask.numpy())
    rtol = 1e-5 if dtype == torch.float32 else 1e-2
    for pr, tg, m in layouts(pred, target, mask):
        pr, tg = pr.detach().requires_grad_(), tg.detach().requires_grad_()
        loss = mk.masked_mse_loss(pr, tg, m, backend=backend)
        assert_rel(loss, expected)
        g_pred, g_target = torch.autograd.grad(loss, (pr, tg))
        np.testing.assert_allclose(np64(g_pred), expected_grad, rtol=rtol, atol=rtol * 1e-2)
        np.testing.assert_allclose(np64(g_target), -expected_grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("xr_dtype,img_dtype", [(torch.float32, torch.float32), (torch.bfloat16, torch.float32),
                                                (torch.float16, torch.float16)])
def test_masked_l1_loss_and_gradient(backend, xr_dtype, img_dtype):
    """SimMIM's loss with the low-resolution mask read in place (int64 as SimMIM, bool, uint8, float);
    C = 3 = in_chans, cells of 4 px, H ≠ W; contiguous and strided inputs."""
    imgs = torch.randn(2, 3, 12, 20).to(img_dtype)
    x_rec = (imgs.float() + torch.randn(2, 3, 12, 20)).to(xr_dtype)
    cells = (torch.rand(2, 3, 5) < 0.6).long()
    expected, expected_grad = oracle_l1(np64(x_rec), np64(imgs), cells.numpy(), 3)
    rtol = 1e-5 if xr_dtype == torch.float32 else 1e-2
    for xr, im, m in layouts(x_rec, imgs, cells):
        xr = xr.detach().requires_grad_()
        loss = mk.masked_l1_loss(xr, im, m, backend=backend)
        assert loss.dtype == torch.float32
        assert_rel(loss, expected)
        (grad,) = torch.autograd.grad(loss, xr)
        assert grad.dtype == xr_dtype
        np.testing.assert_allclose(np64(grad), expected_grad, rtol=rtol, atol=0)
    for mask_dtype in (torch.bool, torch.uint8, torch.float32):
        assert_rel(mk.masked_l1_loss(x_rec, imgs, cells.to(mask_dtype), backend=backend), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_l1_in_chans_and_imgs_gradient(backend):
    """in_chans divides the sum (SimMIM passes encoder.in_chans); ∂/∂imgs = −∂/∂x_rec; where x_rec == imgs
    the gradient is 0 (sign(0) = 0, as autograd of abs)."""
    imgs = torch.randn(1, 2, 8, 8)
    x_rec = torch.randn(1, 2, 8, 8)
    x_rec[..., :3] = imgs[..., :3]
    imgs.requires_grad_()
    x_rec.requires_grad_()
    cells = torch.tensor([[[1, 0], [1, 1]]])
    expected, expected_grad = oracle_l1(np64(x_rec), np64(imgs), cells.numpy(), 5)
    loss = mk.masked_l1_loss(x_rec, imgs, cells, in_chans=5, backend=backend)
    assert_rel(loss, expected)
    g_xr, g_img = torch.autograd.grad(loss, (x_rec, imgs))
    np.testing.assert_allclose(g_xr.numpy(), expected_grad, rtol=1e-6)
    assert torch.equal(g_img, -g_xr) and (g_xr[..., :3] == 0).all() and (g_xr[..., 3:] != 0).any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_photos(backend):
    """sklearn's two photographs at 64 px, MAE (p = 16, ratio 0.75) and SimMIM (mask cells of 8 px), as
    [0, 1] floats and as 0..255 pixel values (|μ| ≫ σ: a one-pass Σx² would cancel)."""
    for scale in (1.0, 255.0):
        imgs = sample_photos(64) * scale
        mask = mae_mask(2, 16)
        pred = torch.randn(2, 16, 768)
        target = oracle_norm_target(imgs.numpy(), 16)
        np.testing.assert_allclose(mk.patch_norm_target(imgs, 16, backend=backend).numpy(), target, atol=1e-4)
        assert_rel(mk.norm_pix_mse_loss(pred, imgs, mask, 16, backend=backend), oracle_mse(pred.numpy(), target,
                                                                                            mask.numpy())[0])
        cells = torch.rand(2, 8, 8) < 0.6
        x_rec = imgs + 0.1 * scale * torch.randn_like(imgs)
        assert_rel(mk.masked_l1_loss(x_rec, imgs, cells, backend=backend),
                   oracle_l1(x_rec.numpy(), imgs.numpy(), cells.numpy(), 3)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_catastrophic_cancellation(backend):
    """Patches with mean 1000 and std 0.05 (variance/mean² = 2.5e-9 ≪ fp32 eps): statistics must be two-pass."""
    torch.manual_seed(0)
    imgs = (1000 + 0.05 * torch.randn(2, 3, 8, 8)).float()
    expected = oracle_norm_target(imgs.numpy(), 4)
    np.testing.assert_allclose(mk.patch_norm_target(imgs, 4, backend=backend).numpy(), expected, atol=5e-3)


# ---- edge cases --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_and_near_constant_patches(backend):
    """A constant patch has variance 0: target 0 (eps keeps it finite); a near-constant one (v < 1e-4) is
    amplified up to 1/√eps, so it is compared at 1e-3 (SPEC.md §9)."""
    imgs = torch.randn(2, 3, 8, 8)
    imgs[0, :, :4, :4] = 0.37                                    # constant patch (0, 0)
    imgs[1, :, 4:, 4:] = 0.37 + 1e-3 * torch.randn(3, 4, 4)       # near-constant patch (1, 3)
    target = mk.patch_norm_target(imgs, 4, backend=backend)
    assert torch.equal(target[0, 0], torch.zeros(48))
    expected = oracle_norm_target(imgs.numpy(), 4)
    np.testing.assert_allclose(target.numpy(), expected, atol=1e-3, rtol=1e-3)
    pred = torch.randn(2, 4, 48, requires_grad=True)
    mask = torch.ones(2, 4)
    loss = mk.norm_pix_mse_loss(pred, imgs, mask, 4, backend=backend)
    assert_rel(loss, oracle_mse(pred.detach().numpy(), expected, mask.numpy())[0], 1e-4)
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_mask(backend):
    """All-zero mask: MSE is 0/0 = NaN like MAE (NaN gradient too, as autograd of MAE's code); L1 is
    0 / 1e-5 = 0 like SimMIM, with a zero gradient. Not detected: that would sync the host."""
    pred = torch.randn(2, 4, 48, requires_grad=True)
    imgs = torch.randn(2, 3, 8, 8)
    loss = mk.norm_pix_mse_loss(pred, imgs, torch.zeros(2, 4), 4, backend=backend)
    assert torch.isnan(loss)
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.isnan(grad).all()
    x_rec = torch.randn(2, 3, 8, 8, requires_grad=True)
    loss = mk.masked_l1_loss(x_rec, imgs, torch.zeros(2, 2, 2, dtype=torch.bool), backend=backend)
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, x_rec)
    assert torch.equal(grad, torch.zeros_like(grad))
    one_pixel = torch.zeros(1, 4, 4)
    one_pixel[0, 1, 2] = 1  # SimMIM's + 1e-5 is visible only for tiny counts: |d| / (1 + 1e-5)
    x_rec, im = torch.full((1, 1, 4, 4), 2.0), torch.full((1, 1, 4, 4), 0.5)
    assert float(mk.masked_l1_loss(x_rec, im, one_pixel, backend=backend)) == np.float32(1.5) / np.float32(1 + 1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_soft_mask_weighs_and_unmasked_patches_get_zero_gradient(backend):
    pred, imgs = torch.randn(2, 4, 12, requires_grad=True), torch.randn(2, 3, 4, 4)
    weights = torch.tensor([[0.0, 0.5, 1.0, 2.0], [0.25, 0.0, 0.0, 1.0]])
    target = oracle_norm_target(imgs.numpy(), 2)
    expected, expected_grad = oracle_mse(pred.detach().numpy(), target, weights.numpy())
    loss = mk.norm_pix_mse_loss(pred, imgs, weights, 2, backend=backend)
    assert_rel(loss, expected)
    (grad,) = torch.autograd.grad(loss, pred)
    np.testing.assert_allclose(grad.numpy(), expected_grad, rtol=1e-5, atol=1e-9)
    assert (grad[weights == 0] == 0).all()
    cells = torch.tensor([[[0.5, 0.0], [1.0, 0.25]]])
    x_rec, im = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    assert_rel(mk.masked_l1_loss(x_rec, im, cells, backend=backend), oracle_l1(x_rec.numpy(), im.numpy(),
                                                                               cells.numpy(), 3)[0])


@settings(max_examples=10, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 3), w=st.integers(1, 3), p=st.integers(2, 4),
       norm_pix=st.booleans(), data=st.data())
def test_property_backends_agree(b, c, h, w, p, norm_pix, data):
    length, d = h * w, p * p * c
    imgs = torch.randn(b, c, h * p, w * p) * data.draw(st.sampled_from([0.1, 1.0, 30.0]))
    pred = torch.randn(b, length, d, requires_grad=True)
    mask = (torch.rand(b, length) < data.draw(st.floats(0.2, 1.0))).float()
    mask[0, 0] = 1.0
    cells = torch.rand(b, h, w) < 0.5
    results = []
    for backend in BACKENDS:
        loss = mk.norm_pix_mse_loss(pred, imgs, mask, p, norm_pix, backend=backend)
        (grad,) = torch.autograd.grad(loss, pred)
        l1 = mk.masked_l1_loss(imgs + pred.detach().mean(), imgs, cells, backend=backend)
        results.append((loss, grad, l1))
    for loss, grad, l1 in results[1:]:
        torch.testing.assert_close(loss, results[0][0], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(grad, results[0][1], rtol=1e-4, atol=1e-8)
        torch.testing.assert_close(l1, results[0][2], rtol=1e-5, atol=1e-7)


@TRITON
def test_patch_rows_longer_than_one_program():
    """p = 96 at C = 2: 18432 values per patch. auto takes the reference; an explicit triton raises."""
    imgs = torch.randn(1, 2, 96, 96)
    assert torch.equal(mk.patch_norm_target(imgs, 96), reference.patch_norm_target(imgs, 96))
    with pytest.raises(ValueError, match="at most 16384 elements in one program, got D = 18432"):
        mk.patch_norm_target(imgs, 96, backend="triton")


# ---- the table of valid calls (examples.py) and the catalogue's reference overloads ----------------------

@pytest.mark.parametrize("op", sorted(examples.valid_calls(torch.device("cpu"))))
def test_valid_calls_agree_on_every_backend(op):
    """What `python -m mimkernels.info` sanity-runs: each backend of each op on its tiny call equals torch."""
    args, kwargs = examples.valid_calls(torch.device("cpu"))[op]
    fn = getattr(mk, op)
    expected = fn(*args, **kwargs, backend="torch")
    for backend in backends_on(op):
        torch.testing.assert_close(fn(*args, **kwargs, backend=backend), expected, rtol=1e-4, atol=1e-5)


def test_catalogue_reference_overloads():
    """torch.ops.mimkernels.<op>.torch (registered on every install, with or without triton) is the reference."""
    (imgs, p), _ = examples.valid_calls(torch.device("cpu"))["patchify"]
    ops = torch.ops.mimkernels
    assert torch.equal(ops.patchify.torch(imgs, p), reference.patchify(imgs, p))
    rows = reference.patchify(imgs, p)
    assert torch.equal(ops.unpatchify.torch(rows, p, 3, 8, 8), imgs)
    assert torch.equal(ops.patch_norm_target.torch(imgs, p, 1e-6), reference.patch_norm_target(imgs, p))
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    assert torch.equal(ops.masked_mse_loss.torch(rows, rows.flip(0), mask),
                       reference.masked_mse_loss(rows, rows.flip(0), mask))
    assert torch.equal(ops.norm_pix_mse_loss.torch(rows, imgs, mask, p, True, 1e-6),
                       reference.norm_pix_mse_loss(rows, imgs, mask, p))
    cells = mask.reshape(2, 2, 2)
    assert torch.equal(ops.masked_l1_loss.torch(imgs.flip(0), imgs, cells, 3),
                       reference.masked_l1_loss(imgs.flip(0), imgs, cells, 3))


# ---- GPU (benchmarks/run_gpu.sh) --------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_canonical_batch_matches_reference_and_is_deterministic(dtype):
    """B = 256, 3x224x224, p = 16: loss within 1e-5 of the float64 recomputation, bit-identical on reruns."""
    imgs = torch.randn(256, 3, 224, 224, device="cuda")
    pred = torch.randn(256, 196, 768, device="cuda").to(dtype).requires_grad_()
    mask = mae_mask(256, 196).cuda()
    loss = mk.norm_pix_mse_loss(pred, imgs, mask, 16, backend="triton")
    (grad,) = torch.autograd.grad(loss, pred)
    expected = reference.norm_pix_mse_loss(pred.double(), imgs.double(), mask, 16)
    assert_rel(loss, float(expected))
    with torch.autocast("cuda"):  # MAE's AMP: the reference must not round the target to fp16 (SPEC.md §6)
        torch.testing.assert_close(reference.norm_pix_mse_loss(pred, imgs, mask, 16), loss, rtol=1e-5, atol=0)
    loss2 = mk.norm_pix_mse_loss(pred, imgs, mask, 16, backend="triton")
    (grad2,) = torch.autograd.grad(loss2, pred)
    assert torch.equal(loss, loss2) and torch.equal(grad, grad2)
    cells = (torch.rand(256, 14, 14, device="cuda") < 0.6).long()
    x_rec = (imgs + torch.randn_like(imgs)).to(dtype)
    l1 = mk.masked_l1_loss(x_rec, imgs, cells, backend="triton")
    assert_rel(l1, float(reference.masked_l1_loss(x_rec.double(), imgs.double(), cells, 3)))
    assert torch.equal(l1, mk.masked_l1_loss(x_rec, imgs, cells, backend="triton"))
