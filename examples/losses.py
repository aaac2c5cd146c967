# examples/losses.py: MAE's, SimMIM's and MaskFeat's losses (and their masks and targets)
import torch

import mimkernels as mk

torch.manual_seed(0)

# MAE (models_mae.py forward_loss): one pass over imgs and pred, no patchified copy, no saved target
imgs = torch.rand(4, 3, 224, 224)
pred = torch.randn(4, 196, 16 * 16 * 3, requires_grad=True)       # the decoder's (B, L, p·p·C) output
mask = mk.random_mask_indices(4, 196, 0.75, seed=0)[2]            # (B, L) float, 1 = masked
loss = mk.norm_pix_mse_loss(pred, imgs, mask, 16, norm_pix=True)  # = forward_loss(imgs, pred, mask)
loss.backward()
print(f"MAE loss {loss.item():.4f}")

imgs = torch.rand(4, 3, 192, 192)

# SimMIM (models/simmim.py): the (B, h, w) mask is read in place, never upsampled to pixels
mask = mk.simmim_mask(4, input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6, seed=0)  # (4, 48, 48)
x_rec = torch.rand(4, 3, 192, 192, requires_grad=True)          # your model's reconstruction
loss = mk.masked_l1_loss(x_rec, imgs, mask, in_chans=3)          # SimMIM's value, + 1e-5 in the denominator included
loss.backward()
print(f"SimMIM loss {loss.item():.4f}, masked tokens {int(mask[0].sum())} of {mask[0].numel()}")

# MaskFeat (mmpretrain / SlowFast): HOG of each 16 px patch is the target of the masked patches
imgs = torch.rand(4, 3, 224, 224)
mask = mk.block_mask(4, 14, 14, num_masking_patches=78, min_num_patches=15, seed=0)     # (4, 14, 14) bool
target = mk.hog(imgs, nbins=9, pool=8, gaussian_window=16, patch_size=16)              # (4, 196, 108)
pred = torch.randn(4, 196, 108, requires_grad=True)                                    # your head's output
loss = mk.masked_mse_loss(pred, target, mask.flatten(1))
loss.backward()
print(f"MaskFeat loss {loss.item():.4f}, HOG target {tuple(target.shape)}, masked {mask.flatten(1).sum(1).tolist()}")
