"""Per-patch normalized target, masked MSE (MAE, PixMIM, MaskFeat) and SimMIM's masked L1
(spec/pixel.md): references against a float64 numpy oracle written from the spec; every backend
against the oracle on the same (low-precision) values; gradients against the closed forms and
gradcheck; opcheck and torch.compile; edge cases (constant patches, empty and soft masks); bad input."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.library import opcheck

import mimkernels as mk
from mimkernels import nn as mknn
from mimkernels.pixel import reference
from mimkernels.testing import backends_on, sample_photos

BACKENDS = backends_on("norm_pix_mse_loss")
TRITON = pytest.mark.skipif("triton" not in BACKENDS, reason="triton backend unavailable")


# ---- float64 numpy oracle, written from the spec ---------------------------------------------------

def oracle_patches(imgs: np.ndarray, p: int) -> np.ndarray:
    """(B, C, H, W) -> (B, L, p·p·C): patch l = i·w + j, each patch's (c, p, q) block read as (p, q, c)."""
    b, c, hh, ww = imgs.shape
    rows = [imgs[:, :, i:i + p, j:j + p].transpose(0, 2, 3, 1).reshape(b, -1)
            for i in range(0, hh, p) for j in range(0, ww, p)]
    return np.stack(rows, axis=1).astype(np.float64)


def oracle_norm_target(imgs: np.ndarray, p: int, eps: float = 1e-6) -> np.ndarray:
    t = oracle_patches(imgs, p)
    return (t - t.mean(-1, keepdims=True)) / np.sqrt(t.var(-1, ddof=1, keepdims=True) + eps)


def oracle_mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """(loss, ∂loss/∂pred) = (Σ m·mean_d (pred − t)² / Σ m, 2 (pred − t) m / (D Σ m))."""
    pred, target, mask = (np.asarray(a, dtype=np.float64) for a in (pred, target, mask))
    per_patch = ((pred - target) ** 2).mean(-1)
    loss = (per_patch * mask).sum() / mask.sum()
    return loss, 2 * (pred - target) * mask[..., None] / (pred.shape[-1] * mask.sum())


def oracle_l1(x_rec: np.ndarray, imgs: np.ndarray, mask: np.ndarray, in_chans: int) -> tuple[float, np.ndarray]:
    """(SimMIM loss, ∂loss/∂x_rec) with the mask upsampled by a Kronecker product."""
    x_rec, imgs, mask = (np.asarray(a, dtype=np.float64) for a in (x_rec, imgs, mask))
    cell = imgs.shape[2] // mask.shape[1]
    up = np.kron(mask, np.ones((1, cell, cell)))[:, None]  # (B, 1, H, W)
    den = up.sum() + 1e-5
    return (np.abs(x_rec - imgs) * up).sum() / den / in_chans, np.sign(x_rec - imgs) * up / (den * in_chans)


def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def assert_rel(got: torch.Tensor, expected: float, rel: float = 1e-5):
    got = float(got)
    assert abs(got - expected) <= rel * abs(expected) + 1e-12, (got, expected, abs(got - expected) / abs(expected))


# ---- inputs -----------------------------------------------------------------------------------------

def mae_mask(b: int, length: int, ratio: float = 0.75) -> torch.Tensor:
    """MAE's float32 mask from random_masking: exactly L − int(L(1 − r)) ones per row."""
    keep = int(length * (1 - ratio))
    ranks = torch.rand(b, length).argsort(1).argsort(1)
    return (ranks >= keep).float()


def noncontiguous(t: torch.Tensor) -> torch.Tensor:
    """The same values with a stride-2 last dimension (7s in between) and reversed strides elsewhere."""
    reverse = tuple(reversed(range(t.dim())))
    return torch.stack([t, torch.full_like(t, 7)], dim=-1)[..., 0].permute(*reverse).contiguous().permute(*reverse)


def layouts(*tensors: torch.Tensor):
    """The tensors as given, then all of them non-contiguous."""
    yield tensors
    yield tuple(noncontiguous(t) for t in tensors)


MSE_CASES = [  # (B, C, H, W, p)
    (2, 3, 8, 12, 4),
    (3, 1, 6, 9, 3),    # C = 1, H ≠ W, p = 3
    (2, 2, 4, 10, 2),   # p = 2
    (1, 5, 14, 7, 7),   # odd D = 245
]


# ---- references against the oracle ------------------------------------------------------------------

@pytest.mark.parametrize("b,c,h,w,p", MSE_CASES)
def test_reference_equals_oracle(b, c, h, w, p):
    imgs = torch.randn(b, c, h, w, dtype=torch.float64) * 2 + 0.5
    length, d = (h // p) * (w // p), p * p * c
    pred = torch.randn(b, length, d, dtype=torch.float64)
    mask = mae_mask(b, length, 0.5)
    target = oracle_norm_target(imgs.numpy(), p)
    np.testing.assert_allclose(reference.patch_norm_target(imgs, p).numpy(), target, rtol=1e-12, atol=1e-12)
    for norm_pix, t in ((True, target), (False, oracle_patches(imgs.numpy(), p))):
        expected, _ = oracle_mse(pred.numpy(), t, mask.numpy())
        assert_rel(reference.norm_pix_mse_loss(pred, imgs, mask, p, norm_pix), expected, 1e-12)
    cells = torch.rand(b, h // p, w // p) < 0.6
    x_rec = imgs + torch.randn_like(imgs)
    expected, _ = oracle_l1(x_rec.numpy(), imgs.numpy(), cells.numpy(), c)
    assert_rel(reference.masked_l1_loss(x_rec, imgs, cells.long(), c), expected, 1e-12)


def test_reference_equals_mae_and_simmim_code():
    """The official computations restated op for op (MAE models_mae.py forward_loss with norm_pix_loss; SimMIM
    models/simmim.py), including their torch.var default (unbiased) and the + 1e-5."""
    imgs = torch.randn(2, 3, 32, 32)
    p, mask = 16, mae_mask(2, 4)
    pred = torch.randn(2, 4, 768)
    target = torch.einsum("nchpwq->nhwpqc", imgs.reshape(2, 3, 2, 16, 2, 16)).reshape(2, 4, 768)
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + 1.e-6) ** .5
    loss = ((pred - target) ** 2).mean(dim=-1)
    loss = (loss * mask).sum() / mask.sum()
    torch.testing.assert_close(reference.norm_pix_mse_loss(pred, imgs, mask, p), loss, rtol=1e-6, atol=0)
    x_rec, cells = torch.randn(2, 3, 32, 32), (torch.rand(2, 8, 8) < 0.6).long()
    mask_up = cells.repeat_interleave(4, 1).repeat_interleave(4, 2).unsqueeze(1).contiguous()
    loss_recon = torch.nn.functional.l1_loss(imgs, x_rec, reduction="none")
    loss = (loss_recon * mask_up).sum() / (mask_up.sum() + 1e-5) / 3
    torch.testing.assert_close(reference.masked_l1_loss(x_rec, imgs, cells, 3), loss, rtol=1e-6, atol=0)


# ---- backends against the oracle ----------------------------------------------------------------------

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
    amplified up to 1/√eps, so it is compared at 1e-3 (spec §7)."""
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


# ---- gradients, opcheck, compile ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(backend):
    """float64 gradcheck of every differentiable input, the imgs gradient through the normalization included."""
    imgs = (torch.randn(2, 2, 6, 9, dtype=torch.float64) + 1).requires_grad_()
    pred = torch.randn(2, 6, 18, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 0, 0]], dtype=torch.bool)
    fast = backend != "torch"  # the interpreter is slow: random projections instead of one call per element
    for norm_pix in (True, False):
        assert torch.autograd.gradcheck(lambda a, x: mk.norm_pix_mse_loss(a, x, mask, 3, norm_pix, backend=backend),
                                        (pred, imgs), fast_mode=fast)
    assert torch.autograd.gradcheck(lambda x: mk.patch_norm_target(x, 3, backend=backend), (imgs,), fast_mode=fast)
    target = torch.randn(2, 6, 18, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, t: mk.masked_mse_loss(a, t, mask.double() * 0.7, backend=backend),
                                    (pred, target), fast_mode=fast)
    x_rec = (imgs.detach() + torch.randn_like(imgs)).requires_grad_()  # |x_rec − imgs| far from the kink at 0
    cells = torch.tensor([[[1, 0, 1], [0, 1, 1]], [[0, 0, 1], [1, 0, 0]]])
    assert torch.autograd.gradcheck(lambda a, x: mk.masked_l1_loss(a, x, cells, backend=backend), (x_rec, imgs),
                                    fast_mode=fast)


# The Triton ops on CPU tensors under the interpreter (custom_op), and on a GPU (triton_op: traced by compile).
KERNEL_DEVICES = [pytest.param("cpu", marks=TRITON), pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_opcheck(device):
    imgs = torch.randn(2, 3, 8, 4, device=device, requires_grad=True)
    pred = torch.randn(2, 2, 48, device=device, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]], device=device)
    one = torch.tensor(1.0, device=device)
    ops = torch.ops.mimkernels
    opcheck(ops.patch_norm_target.default, (imgs, 4, 1e-6))
    opcheck(ops.patch_norm_target_backward.default, (torch.randn(2, 2, 48, device=device), imgs.detach(), 4, 1e-6))
    opcheck(ops.norm_pix_mse_loss.default, (pred, imgs, mask, 4, True, 1e-6))
    opcheck(ops.norm_pix_mse_loss.default, (pred, imgs.detach(), mask.bool(), 4, False, 1e-6))
    opcheck(ops.norm_pix_mse_loss_backward.default, (one, pred.detach(), imgs.detach(), mask, 4, True, 1e-6, True,
                                                    False))
    target = torch.randn(2, 2, 48, device=device, requires_grad=True)
    opcheck(ops.masked_mse_loss.default, (pred, target, mask.long()))
    opcheck(ops.masked_mse_loss_backward.default, (2 * one, pred.detach(), target.detach(), mask, False, True))
    cells = torch.tensor([[[1, 0]], [[1, 1]]], device=device)
    x_rec = torch.randn(2, 3, 4, 8, device=device, requires_grad=True)
    opcheck(ops.masked_l1_loss.default, (x_rec, imgs.transpose(2, 3), cells, 3))
    opcheck(ops.masked_l1_loss_backward.default, (one, x_rec.detach(), imgs.detach().transpose(2, 3), cells, 3, True,
                                                 True))


@pytest.mark.parametrize("device", KERNEL_DEVICES)
def test_compile_fullgraph(device):
    imgs = torch.randn(2, 3, 8, 8, device=device)
    pred = torch.randn(2, 4, 48, device=device, requires_grad=True)
    mask = mae_mask(2, 4, 0.5).to(device)
    cells = torch.rand(2, 4, 4, device=device) < 0.5

    def losses(pred, imgs, mask, cells):
        mse = mk.norm_pix_mse_loss(pred, imgs, mask, 4, backend="triton")
        l1 = mk.masked_l1_loss(mk.unpatchify(pred, 4, 3, backend="triton"), imgs, cells, backend="triton")
        return mse + l1 + mk.patch_norm_target(imgs, 4, backend="triton").sum()

    torch._dynamo.reset()
    compiled = torch.compile(losses, fullgraph=True)
    got = compiled(pred, imgs, mask, cells)
    expected = losses(pred, imgs, mask, cells)
    torch.testing.assert_close(got, expected)
    (g_got,) = torch.autograd.grad(got, pred)
    (g_expected,) = torch.autograd.grad(expected, pred)
    torch.testing.assert_close(g_got, g_expected)


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


# ---- bad input (spec §8) ----------------------------------------------------------------------------

def test_bad_input():
    imgs, pred, mask = torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 48), torch.ones(2, 4)
    with pytest.raises(ValueError, match="pred and target must have the same shape"):
        mk.masked_mse_loss(pred, torch.zeros(2, 4, 47), mask)
    with pytest.raises(ValueError, match=r"mask must have shape \(B, L\)"):
        mk.masked_mse_loss(pred, pred, torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"mask must have shape \(B, L\)"):
        mk.norm_pix_mse_loss(pred, imgs, torch.ones(4, 2), 4)
    with pytest.raises(ValueError, match="mask must be 2-D"):
        mk.norm_pix_mse_loss(pred, imgs, torch.ones(2, 4, 1), 4)
    with pytest.raises(TypeError, match="mask must have dtype"):
        mk.masked_mse_loss(pred, pred, torch.ones(2, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="imgs must be 4-D"):
        mk.norm_pix_mse_loss(pred, torch.zeros(3, 8, 8), mask, 4)
    with pytest.raises(ValueError, match="imgs must be 4-D"):
        mk.patch_norm_target(torch.zeros(3, 8, 8), 4)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        mk.norm_pix_mse_loss(pred, torch.zeros(2, 3, 8, 10), mask, 4)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        mk.patch_norm_target(torch.zeros(2, 3, 9, 8), 4)
    with pytest.raises(ValueError, match=r"pred must have shape \(B, L, p·p·C\) = \(2, 4, 48\)"):
        mk.norm_pix_mse_loss(torch.zeros(2, 4, 16), imgs, mask, 4)
    with pytest.raises(ValueError, match="p·p·C >= 2"):
        mk.norm_pix_mse_loss(torch.zeros(2, 64, 1), torch.zeros(2, 1, 8, 8), torch.ones(2, 64), 1)
    with pytest.raises(ValueError, match="p·p·C >= 2"):
        mk.patch_norm_target(torch.zeros(2, 1, 8, 8), 1)
    mk.norm_pix_mse_loss(torch.zeros(2, 64, 1), torch.zeros(2, 1, 8, 8), torch.ones(2, 64), 1, norm_pix=False)
    with pytest.raises(ValueError, match="eps must be a number >= 0"):
        mk.norm_pix_mse_loss(pred, imgs, mask, 4, eps=-1e-6)
    with pytest.raises(ValueError, match="eps must be a number >= 0"):
        mk.patch_norm_target(imgs, 4, eps=float("nan"))
    with pytest.raises(TypeError, match="pred must have dtype"):
        mk.norm_pix_mse_loss(pred.long(), imgs, mask, 4)
    with pytest.raises(TypeError, match="imgs must have dtype"):
        mk.norm_pix_mse_loss(pred, imgs.to(torch.uint8), mask, 4)
    with pytest.raises(TypeError, match="target must have dtype"):
        mk.masked_mse_loss(pred, pred.int(), mask)
    with pytest.raises(TypeError, match="x_rec must have dtype"):
        mk.masked_l1_loss(imgs.int(), imgs, torch.ones(2, 2, 2))
    with pytest.raises(TypeError, match="norm_pix must be a bool"):
        mk.norm_pix_mse_loss(pred, imgs, mask, 4, norm_pix=1)
    meta = torch.zeros(2, 4, device="meta")
    with pytest.raises(ValueError, match="tensors must be on one device"):
        mk.norm_pix_mse_loss(pred, imgs, meta, 4)
    with pytest.raises(ValueError, match="mask is not differentiable"):
        mk.norm_pix_mse_loss(pred, imgs, mask.requires_grad_(), 4)


def test_bad_input_masked_l1():
    imgs = torch.zeros(2, 3, 8, 12)
    cells = torch.ones(2, 2, 3)
    with pytest.raises(ValueError, match="x_rec and imgs must have the same shape"):
        mk.masked_l1_loss(torch.zeros(2, 3, 8, 8), imgs, cells)
    with pytest.raises(ValueError, match="mask has batch 1"):
        mk.masked_l1_loss(imgs, imgs, torch.ones(1, 2, 3))
    with pytest.raises(ValueError, match="must tile imgs 8x12 with square cells"):
        mk.masked_l1_loss(imgs, imgs, torch.ones(2, 3, 3))      # H % h != 0
    with pytest.raises(ValueError, match="must tile imgs 8x12 with square cells"):
        mk.masked_l1_loss(imgs, imgs, torch.ones(2, 2, 2))      # H / h = 4 != W / w = 6
    with pytest.raises(ValueError, match="mask must be 3-D"):
        mk.masked_l1_loss(imgs, imgs, torch.ones(2, 6))
    with pytest.raises(ValueError, match="in_chans must be >= 1"):
        mk.masked_l1_loss(imgs, imgs, cells, in_chans=0)
    with pytest.raises(TypeError, match="in_chans must be an int"):
        mk.masked_l1_loss(imgs, imgs, cells, in_chans=3.0)
    with pytest.raises(ValueError, match="backend must be one of"):
        mk.masked_l1_loss(imgs, imgs, cells, backend="cuda_fast")
    with pytest.raises(ValueError, match="not implemented"):
        mk.masked_l1_loss(imgs, imgs, cells, backend="cpp")


@TRITON
def test_patch_rows_longer_than_one_program():
    """p = 96 at C = 2: 18432 values per patch. auto takes the reference; an explicit triton raises."""
    imgs = torch.randn(1, 2, 96, 96)
    assert torch.equal(mk.patch_norm_target(imgs, 96), reference.patch_norm_target(imgs, 96))
    with pytest.raises(ValueError, match="at most 16384 elements in one program, got D = 18432"):
        mk.patch_norm_target(imgs, 96, backend="triton")


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
    with torch.autocast("cuda"):  # MAE's AMP: the reference must not round the target to fp16 (spec §1)
        torch.testing.assert_close(reference.norm_pix_mse_loss(pred, imgs, mask, 16), loss, rtol=1e-5, atol=0)
    loss2 = mk.norm_pix_mse_loss(pred, imgs, mask, 16, backend="triton")
    (grad2,) = torch.autograd.grad(loss2, pred)
    assert torch.equal(loss, loss2) and torch.equal(grad, grad2)
    cells = (torch.rand(256, 14, 14, device="cuda") < 0.6).long()
    x_rec = (imgs + torch.randn_like(imgs)).to(dtype)
    l1 = mk.masked_l1_loss(x_rec, imgs, cells, backend="triton")
    assert_rel(l1, float(reference.masked_l1_loss(x_rec.double(), imgs.double(), cells, 3)))
    assert torch.equal(l1, mk.masked_l1_loss(x_rec, imgs, cells, backend="triton"))


def test_nn_modules_equal_the_functional_ops():
    imgs, pred, mask = torch.randn(2, 3, 8, 8), torch.randn(2, 4, 48), mae_mask(2, 4, 0.5)
    loss = mknn.NormPixLoss(4)
    assert torch.equal(loss(pred, imgs, mask), mk.norm_pix_mse_loss(pred, imgs, mask, 4))
    raw = mknn.NormPixLoss(4, norm_pix=False, backend="torch")
    assert torch.equal(raw(pred, imgs, mask), mk.norm_pix_mse_loss(pred, imgs, mask, 4, False, backend="torch"))
    assert "patch_size=4, norm_pix=True, eps=1e-06" in repr(loss)
    cells = torch.rand(2, 2, 2) < 0.5
    l1 = mknn.MaskedL1Loss()
    assert torch.equal(l1(pred.sum() + imgs, imgs, cells), mk.masked_l1_loss(pred.sum() + imgs, imgs, cells))
    assert "in_chans=None" in repr(l1)
