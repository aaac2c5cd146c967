"""Bad input to the pixel family's front doors: TypeError (wrong type) or ValueError (wrong value, shape
or device) whose message names the argument, before any kernel runs (SPEC.md §8), op by op. The rows of
examples.py (BAD_CALLS against valid_calls) run in python_tests/test_contract.py with every family's."""
import numpy as np
import pytest
import torch

import mimkernels as mk


def test_bad_input_patchify():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        mk.patchify(torch.zeros(1, 3, 10, 8), 4)
    with pytest.raises(ValueError, match="imgs must be 4-D"):
        mk.patchify(torch.zeros(3, 8, 8), 4)
    with pytest.raises(TypeError, match="imgs must be a torch.Tensor"):
        mk.patchify(np.zeros((1, 3, 8, 8)), 4)
    with pytest.raises(ValueError, match="patch_size must be >= 1"):
        mk.patchify(torch.zeros(1, 3, 8, 8), 0)
    with pytest.raises(ValueError, match="not a square grid"):
        mk.unpatchify(torch.zeros(1, 6, 48), 4)
    with pytest.raises(ValueError, match="expected patch_size"):
        mk.unpatchify(torch.zeros(1, 4, 47), 4)
    with pytest.raises(ValueError, match="backend must be one of"):
        mk.patchify(torch.zeros(1, 3, 8, 8), 4, backend="fast")
    with pytest.raises(ValueError, match="not implemented"):
        mk.patchify(torch.zeros(1, 3, 8, 8), 4, backend="cpp")


def test_bad_input_losses():
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


def test_unpatchify_grid_size_must_be_two_ints():
    """Issue 20: (2.9, 2.0) was truncated to (2, 2), (True, 4) accepted, (inf, ...) an OverflowError."""
    x = torch.zeros(1, 4, 48)
    for grid in ((2.9, 2.0), (2.0, 2.0), (True, 4), (float("inf"), 0.5)):
        with pytest.raises(TypeError, match=r"grid_size\[0\] must be an int"):
            mk.unpatchify(x, 4, grid_size=grid)
    for grid in ((0.5, 0.5, float("inf")), (4,), 4):
        with pytest.raises(ValueError, match="grid_size must be a pair"):
            mk.unpatchify(x, 4, grid_size=grid)
    with pytest.raises(ValueError, match=r"grid_size\[1\] must be >= 0"):
        mk.unpatchify(x, 4, grid_size=(2, -2))
    assert mk.unpatchify(x, 4, grid_size=[1, 4]).shape == (1, 3, 4, 16)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_complex_images_refused(backend):
    """Issue 20: complex64 reached the Triton launcher (KeyError 'complex64'); every backend now refuses it."""
    imgs = torch.zeros(2, 3, 8, 8, dtype=torch.complex64)
    with pytest.raises(TypeError, match="imgs must have a real dtype, got complex64"):
        mk.patchify(imgs, 4, backend=backend)
    with pytest.raises(TypeError, match="x must have a real dtype"):
        mk.unpatchify(torch.zeros(2, 4, 48, dtype=torch.complex64), 4, backend=backend)
    with pytest.raises(TypeError, match="imgs must have a real dtype"):
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.int64), 4, backend=backend)



def test_meta_tensors_give_meta_results():
    """Issue 20: meta images raised 'RuntimeError: unsupported scalarType' (torch.autocast on meta); the torch
    backend now gives the shape and dtype (auto resolves to it for meta tensors)."""
    imgs = torch.empty(2, 3, 8, 8, device="meta", dtype=torch.float16)
    out = mk.patch_norm_target(imgs, 4)
    assert out.device.type == "meta" and out.shape == (2, 4, 48) and out.dtype == torch.float16
    loss = mk.norm_pix_mse_loss(torch.empty(2, 4, 48, device="meta"), imgs, torch.ones(2, 4, device="meta"), 4)
    assert loss.device.type == "meta" and loss.shape == ()
