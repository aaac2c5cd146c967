# examples/dropin_mae.py: facebookresearch/mae's model with mimkernels' masking, decoder unshuffle and loss
import copy

import torch

from mimkernels.integrations import patch_mae, unpatch   # first: lets timm (and torchvision) import beside CPU torch
import models_mae   # your clone of facebookresearch/mae; here examples/models_mae.py, a small stand-in

torch.manual_seed(0)
model = models_mae.mae_vit_tiny_patch8(img_size=32, norm_pix_loss=True)   # e.g. mae_vit_base_patch16(...)
upstream = copy.deepcopy(model)
patch_mae(model)            # masking=, unshuffle=, loss= (all True), rng="torch" | "philox", backend="auto"

imgs = torch.rand(8, 3, 32, 32)
for m in (model, upstream):            # same torch RNG state: same masks, same loss, as the unpatched model
    torch.manual_seed(1)
    loss, pred, mask = m(imgs, mask_ratio=0.75)
    print(f"{type(m).__name__}: loss {loss.item():.6f}, masked {int(mask.sum())} of {mask.numel()}")

optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for step in range(3):
    loss, _, _ = model(imgs)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
unpatch(model)              # the model's own methods again; parameters and state_dict were never touched
