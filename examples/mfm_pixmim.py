# examples/mfm_pixmim.py: MFM's corruption and loss, PixMIM's low-frequency target
import torch

import mimkernels as mk

torch.manual_seed(0)
imgs01 = torch.rand(4, 3, 64, 64)                                   # images in [0, 1]
model = torch.nn.Conv2d(3, 3, 3, padding=1)                          # your network: image -> image
mean, std = torch.tensor(mk.IMAGENET_MEAN)[:, None, None], torch.tensor(mk.IMAGENET_STD)[:, None, None]

# MFM: per-sample low/high-pass (P(low) = 0.5; 0.3 for ResNet-50), clamp, normalize: one pass
x_in, freq_mask, is_low = mk.mfm_corrupt(imgs01, radius=16, low_pass_prob=0.5, seed=0,
                                         mean=mk.IMAGENET_MEAN, std=mk.IMAGENET_STD)
pred = model(x_in)                                                  # normalized pixel space
loss = mk.frequency_loss(pred, (imgs01 - mean) / std, freq_mask)   # graded on the removed frequencies
loss.backward()
print(f"MFM loss {loss.item():.4f}, low-pass samples {is_low.tolist()}")

# PixMIM: the low-frequency target of the normalized input (official asymmetric disc), then MAE's loss
inputs = (imgs01 - mean) / std
target = mk.lowfreq_target(inputs, radius=40)                       # (4, 3, 64, 64), same space as inputs
pred = torch.randn(4, 16, 16 * 16 * 3, requires_grad=True)          # your decoder's (B, L, p·p·C) output
mask = mk.random_mask_indices(4, 16, 0.75, seed=0)[2]               # (B, L), 1 = masked
loss = mk.norm_pix_mse_loss(pred, target, mask, 16)                 # per-patch norm + masked MSE, one pass
loss.backward()
print(f"PixMIM loss {loss.item():.4f}")
