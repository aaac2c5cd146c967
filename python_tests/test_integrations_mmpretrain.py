"""mmpretrain-style MIMK* modules against step-by-step re-derivations of mmpretrain's
PixelReconstructionLoss, MAEPretrainHead and SimMIMHead (mmpretrain @ee7f2e8; mmpretrain itself
needs mmcv, which does not install here), registered in the real mmengine registry."""
import pytest
import torch

mmengine_registry = pytest.importorskip("mmengine.registry")

from mimkernels.integrations import mmpretrain as mkm  # noqa: E402


def pixel_reconstruction_loss(pred, target, mask, criterion, channel=None):
    loss = torch.nn.functional.l1_loss(pred, target, reduction="none") if criterion == "L1" else \
        torch.nn.functional.mse_loss(pred, target, reduction="none")
    if len(loss.shape) == 3:
        loss = loss.mean(dim=-1)
    if mask is None:
        return loss.mean()
    return (loss * mask).sum() / mask.sum() / (channel if channel is not None else 1)


def mae_head_loss(pred, imgs, mask, norm_pix, p):
    h = w = imgs.shape[2] // p
    target = torch.einsum("nchpwq->nhwpqc", imgs.reshape(imgs.shape[0], 3, h, p, w, p)).reshape(imgs.shape[0], h * w, -1)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.e-6) ** .5
    return pixel_reconstruction_loss(pred, target, mask, "L2")


def simmim_head_loss(pred, target, mask, p, channel):
    mask = mask.repeat_interleave(p, 1).repeat_interleave(p, 2).unsqueeze(1).contiguous()
    return pixel_reconstruction_loss(pred, target, mask, "L1", channel)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("norm_pix", [True, False])
@pytest.mark.parametrize("pred_dtype", [torch.float32, torch.bfloat16])
def test_mae_head_equals_mmpretrain(norm_pix, pred_dtype):
    head = mkm.MIMKMAEPretrainHead(dict(type="PixelReconstructionLoss", criterion="L2"), norm_pix=norm_pix, patch_size=4)
    imgs = torch.randn(3, 3, 16, 16, generator=_gen(1))
    pred = torch.randn(3, 16, 48, generator=_gen(2)).to(pred_dtype).requires_grad_()
    mask = (torch.rand(3, 16, generator=_gen(3)) < 0.75).float()
    got = head.loss(pred, imgs, mask)
    got.backward()
    grad = pred.grad.clone()
    pred.grad = None
    want = mae_head_loss(pred.double(), imgs.double(), mask.double(), norm_pix, 4)
    want.backward()
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=0)
    torch.testing.assert_close(grad.double(), pred.grad.double(), rtol=1e-2 if pred_dtype == torch.bfloat16 else 1e-5,
                               atol=1e-6)
    patches = torch.einsum("nchpwq->nhwpqc", imgs.reshape(3, 3, 4, 4, 4, 4)).reshape(3, 16, 48)
    if norm_pix:
        patches = (patches - patches.mean(-1, keepdim=True)) / (patches.var(-1, keepdim=True) + 1e-6) ** .5
    torch.testing.assert_close(head.construct_target(imgs), patches, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.bool, torch.float32])
def test_simmim_head_equals_mmpretrain(mask_dtype):
    head = mkm.MIMKSimMIMHead(4, dict(type="PixelReconstructionLoss", criterion="L1", channel=3))
    target = torch.randn(2, 3, 16, 16, generator=_gen(1))
    pred = torch.randn(2, 3, 16, 16, generator=_gen(2), requires_grad=True)
    mask = (torch.rand(2, 4, 4, generator=_gen(3)) < 0.6).to(mask_dtype)
    got = head(pred, target, mask)
    got.backward()
    grad = pred.grad.clone()
    pred.grad = None
    want = simmim_head_loss(pred.double(), target.double(), mask.double(), 4, 3)
    want.backward()
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad.double(), pred.grad.double(), rtol=1e-5, atol=1e-8)
    assert torch.isnan(head(pred, target, torch.zeros_like(mask)))   # no eps, as mmpretrain


@pytest.mark.parametrize("criterion,shape,mask_shape", [("L2", (2, 5, 6), (2, 5)), ("L1", (2, 3, 8, 8), (2, 1, 8, 8)),
                                                        ("L1", (2, 5, 6), (2, 5)), ("L2", (2, 3, 8, 8), (2, 1, 8, 8)),
                                                        ("L2", (2, 5, 6), None)])
def test_pixel_reconstruction_loss_every_layout(criterion, shape, mask_shape):
    loss = mkm.MIMKPixelReconstructionLoss(criterion, channel=3)
    pred, target = torch.randn(*shape, generator=_gen(1)), torch.randn(*shape, generator=_gen(2))
    mask = None if mask_shape is None else (torch.rand(*mask_shape, generator=_gen(3)) < 0.5).float()
    want = pixel_reconstruction_loss(pred.double(), target.double(), None if mask is None else mask.double(),
                                     criterion, 3)
    torch.testing.assert_close(loss(pred, target, mask).double(), want, rtol=1e-6, atol=0)
    with pytest.raises(NotImplementedError):
        mkm.MIMKPixelReconstructionLoss("L3")


def test_registered_in_mmengine():
    models = mmengine_registry.MODELS
    built = models.build(dict(type="MIMKMAEPretrainHead", norm_pix=True, patch_size=16,
                              loss=dict(type="PixelReconstructionLoss", criterion="L2")))
    assert isinstance(built, mkm.MIMKMAEPretrainHead) and isinstance(built.loss_module, mkm.MIMKPixelReconstructionLoss)
    assert models.get("MIMKSimMIMHead") is mkm.MIMKSimMIMHead
    with pytest.raises(KeyError):   # force=False: a second class under the same name is refused
        models.register_module(name="MIMKSimMIMHead", module=type("Other", (), {}))
    mkm.register_as_defaults()
    assert models.get("PixelReconstructionLoss") is mkm.MIMKPixelReconstructionLoss


@pytest.mark.parametrize("size", [32, 48])
def test_hog_generator_layout_and_state(size):
    import mimkernels as mk

    gen = mkm.MIMKHOGGenerator(nbins=9, pool=8, gaussian_window=16)
    x = torch.randn(2, 3, size, size, generator=_gen(1))
    got = gen(x)
    assert got.shape == (2, (size // 16) ** 2, 108) and not got.requires_grad
    assert torch.equal(got, mk.hog(x, nbins=9, pool=8, gaussian_window=16, patch_size=16))
    assert torch.equal(gen.out, mk.hog_map(x)) and (gen.h, gen.w) == (size, size)
    # mmpretrain's _reshape on .out: unfold the cell map into 2x2-cell patches
    feat = gen.out.flatten(1, 2).permute(0, 2, 3, 1)
    feat = feat.unfold(1, 2, 2).unfold(2, 2, 2).flatten(1, 2).flatten(2)
    assert torch.equal(got, feat)


def test_simmim_mask_transform():
    import numpy as np

    t = mmengine_registry.TRANSFORMS.build(dict(type="MIMKSimMIMMaskGenerator", input_size=192, mask_patch_size=32,
                                                model_patch_size=4, mask_ratio=0.6))
    np.random.seed(0)
    results = t({"img": None})
    mask = results["mask"]
    assert isinstance(mask, np.ndarray) and mask.dtype == np.int64 and mask.shape == (48, 48)
    cells = mask[::8, ::8]
    assert cells.sum() == 22 and (np.repeat(np.repeat(cells, 8, 0), 8, 1) == mask).all()   # ceil(36 · 0.6)
    np.random.seed(0)
    assert (t({})["mask"] == mask).all()                      # numpy's global RNG keys it, as upstream
    assert not (t({})["mask"] == mask).all()


@pytest.mark.parametrize("semantics", ["mmpretrain", "unilm"])
def test_beit_mask_transform(semantics):
    import numpy as np

    t = mkm.MIMKBEiTMaskGenerator(input_size=14, num_masking_patches=75, min_num_patches=16, semantics=semantics)
    np.random.seed(1)
    masks = np.stack([t({})["mask"] for _ in range(40)])
    assert masks.dtype == np.int64 and masks.shape == (40, 14, 14)
    counts = masks.sum((1, 2))
    if semantics == "mmpretrain":          # exact count; numpy's exclusive randint never reaches the last row/column
        assert (counts == 75).all() and masks[:, 13, :].sum() == 0 and masks[:, :, 13].sum() == 0
    else:
        assert (counts <= 75).all() and masks[:, 13, :].sum() + masks[:, :, 13].sum() > 0
    assert mmengine_registry.TRANSFORMS.get("MIMKBEiTMaskGenerator") is mkm.MIMKBEiTMaskGenerator
    with pytest.raises(ValueError, match="semantics"):
        mkm.MIMKBEiTMaskGenerator(14, 75, semantics="beit")
