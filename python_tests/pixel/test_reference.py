"""The pixel family's references (mimkernels/pixel/reference.py) against independent float64 oracles
(oracles.py, written from SPEC.md) and against the official code restated op for op."""
import numpy as np
import pytest
import torch

from mimkernels.pixel import reference
from python_tests.pixel.oracles import (MSE_CASES, assert_rel, mae_mask, oracle_l1, oracle_mse, oracle_norm_target,
                                        oracle_patches, oracle_patchify)


@pytest.mark.parametrize("shape,p", [((2, 3, 8, 8), 4), ((1, 1, 6, 9), 3), ((3, 5, 4, 12), 2), ((2, 3, 7, 7), 7)])
def test_reference_matches_oracle(shape, p):
    imgs = torch.randn(shape, dtype=torch.float64)
    expected = oracle_patchify(imgs.numpy(), p)
    np.testing.assert_array_equal(reference.patchify(imgs, p).numpy(), expected)
    h, w = shape[2] // p, shape[3] // p
    assert torch.equal(reference.unpatchify(torch.from_numpy(expected), p, shape[1], (h, w)), imgs)


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
