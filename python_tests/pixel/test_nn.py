"""The pixel family's nn.Modules (mimkernels/pixel/nn.py, re-exported by mimkernels.nn): each equals its
functional op and prints its arguments."""
import torch

import mimkernels as mk
from mimkernels.pixel import nn as mknn
from python_tests.pixel.oracles import mae_mask


def test_patchify_modules_round_trip():
    imgs = torch.randn(2, 3, 8, 12)
    x = mknn.Patchify(4)(imgs)
    assert torch.equal(x, mk.patchify(imgs, 4))
    assert torch.equal(mknn.Unpatchify(4, 3, grid_size=(2, 3))(x), imgs)
    assert "patch_size=4" in repr(mknn.Patchify(4))


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

