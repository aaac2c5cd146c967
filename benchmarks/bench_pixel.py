"""Pixel family benchmarks at MAE's canonical batch (B=256, 3x224x224, patch 16): patchify and
unpatchify (copies: bytes = one read + one write, the bandwidth yardstick), patch_norm_target, MAE's
norm_pix MSE loss, MaskFeat's masked_mse_loss on HOG targets and SimMIM's L1 loss (forward,
forward+backward); the eager reference vs its torch.compile vs the Triton kernels."""
import pytest
import torch

import mimkernels as mk
from mimkernels.pixel import reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")


@pytest.mark.parametrize("batch", [8, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile", "triton"])
def test_patchify(timed, batch, dtype, provider):
    imgs = torch.randn(batch, 3, 224, 224, device="cuda", dtype=dtype)
    fns = {
        "eager": lambda t: reference.patchify(t, 16).contiguous(),
        "compile": torch.compile(lambda t: reference.patchify(t, 16).contiguous()),
        "triton": lambda t: mk.patchify(t, 16, backend="triton"),
    }
    timed(fns[provider], imgs, bytes_moved=2 * imgs.numel() * imgs.element_size(),
          kernel="patchify", provider=provider, batch=batch, dtype=str(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile", "triton"])
def test_unpatchify(timed, dtype, provider):
    rows = torch.randn(256, 196, 768, device="cuda", dtype=dtype)
    fns = {
        "eager": lambda x: reference.unpatchify(x, 16, 3, (14, 14)).contiguous(),
        "compile": torch.compile(lambda x: reference.unpatchify(x, 16, 3, (14, 14)).contiguous()),
        "triton": lambda x: mk.unpatchify(x, 16, 3, backend="triton"),
    }
    timed(fns[provider], rows, bytes_moved=2 * rows.numel() * rows.element_size(),
          kernel="unpatchify", provider=provider, dtype=str(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile", "triton"])
def test_patch_norm_target(timed, dtype, provider):
    """mmpretrain's MAE head target: one read of the image, one write of the normalized rows."""
    imgs = torch.randn(256, 3, 224, 224, device="cuda", dtype=dtype)
    fns = {
        "eager": lambda t: reference.patch_norm_target(t, 16),
        "compile": torch.compile(lambda t: reference.patch_norm_target(t, 16)),
        "triton": lambda t: mk.patch_norm_target(t, 16, backend="triton"),
    }
    timed(fns[provider], imgs, bytes_moved=2 * imgs.numel() * imgs.element_size(),
          kernel="patch_norm_target", provider=provider, dtype=str(dtype))


# ---- losses: MAE norm_pix MSE and SimMIM L1 at the canonical batch ----
# Roofline bytes: one read of imgs and pred (x_rec), plus one write of grad_pred in forward+backward.

def _mae_inputs(dtype):
    imgs = torch.randn(256, 3, 224, 224, device="cuda")
    pred = torch.randn(256, 196, 768, device="cuda", dtype=dtype, requires_grad=True)
    keep = int(196 * (1 - 0.75))
    mask = (torch.rand(256, 196, device="cuda").argsort(1).argsort(1) >= keep).float()
    return imgs, pred, mask


def _loss_and_backward(loss_fn, pred):
    def run(*args):
        loss = loss_fn(*args)
        loss.backward()
        pred.grad = None
        return loss
    return run


def _loss_bytes(imgs, pred, mode):
    read = imgs.numel() * imgs.element_size() + pred.numel() * pred.element_size()
    return read + (pred.numel() * pred.element_size() if mode == "forward+backward" else 0)


@pytest.mark.parametrize("mode", ["forward", "forward+backward"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile", "triton"])
def test_norm_pix_mse_loss(timed, mode, dtype, provider):
    imgs, pred, mask = _mae_inputs(dtype)
    fns = {
        "eager": lambda p, x, m: reference.norm_pix_mse_loss(p, x, m, 16),
        "compile": torch.compile(lambda p, x, m: reference.norm_pix_mse_loss(p, x, m, 16)),
        "triton": lambda p, x, m: mk.norm_pix_mse_loss(p, x, m, 16, backend="triton"),
    }
    fn = fns[provider] if mode == "forward" else _loss_and_backward(fns[provider], pred)
    timed(fn, pred, imgs, mask, bytes_moved=_loss_bytes(imgs, pred, mode), kernel="norm_pix_mse_loss",
          provider=provider, mode=mode, dtype=str(dtype))


@pytest.mark.parametrize("mode", ["forward", "forward+backward"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile", "triton"])
def test_masked_l1_loss(timed, mode, dtype, provider):
    """SimMIM ViT-B at 224 px: the mask is 14 x 14 cells of 16 px, 60% masked."""
    imgs = torch.randn(256, 3, 224, 224, device="cuda")
    x_rec = torch.randn(256, 3, 224, 224, device="cuda", dtype=dtype, requires_grad=True)
    cells = (torch.rand(256, 14, 14, device="cuda") < 0.6).long()
    fns = {
        "eager": lambda r, x, m: reference.masked_l1_loss(r, x, m, 3),
        "compile": torch.compile(lambda r, x, m: reference.masked_l1_loss(r, x, m, 3)),
        "triton": lambda r, x, m: mk.masked_l1_loss(r, x, m, backend="triton"),
    }
    fn = fns[provider] if mode == "forward" else _loss_and_backward(fns[provider], x_rec)
    timed(fn, x_rec, imgs, cells, bytes_moved=_loss_bytes(imgs, x_rec, mode), kernel="masked_l1_loss",
          provider=provider, mode=mode, dtype=str(dtype))


@pytest.mark.parametrize("mode", ["forward", "forward+backward"])
@pytest.mark.parametrize("provider", ["eager", "compile", "triton"])
def test_masked_mse_loss(timed, mode, provider):
    """MaskFeat ViT-B: HOG targets (B, 196, 108) float32, block masks of ~40% (bool)."""
    pred = torch.randn(256, 196, 108, device="cuda", requires_grad=True)
    target = torch.randn(256, 196, 108, device="cuda")
    mask = torch.rand(256, 196, device="cuda") < 0.4
    fns = {
        "eager": lambda p, t, m: reference.masked_mse_loss(p, t, m),
        "compile": torch.compile(lambda p, t, m: reference.masked_mse_loss(p, t, m)),
        "triton": lambda p, t, m: mk.masked_mse_loss(p, t, m, backend="triton"),
    }
    fn = fns[provider] if mode == "forward" else _loss_and_backward(fns[provider], pred)
    timed(fn, pred, target, mask, bytes_moved=_loss_bytes(target, pred, mode), kernel="masked_mse_loss",
          provider=provider, mode=mode)
