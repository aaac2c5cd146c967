# examples/dropin_hf_vitmae.py: transformers' ViTMAEForPreTraining with mimkernels' masking and loss
import copy

import torch

from mimkernels.integrations import patch_hf_vitmae   # first: lets transformers' ViTMAE import beside CPU torch
from transformers import ViTMAEConfig, ViTMAEForPreTraining

config = ViTMAEConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, decoder_hidden_size=32, decoder_num_hidden_layers=1,
                      decoder_num_attention_heads=4, decoder_intermediate_size=64, norm_pix_loss=True)
torch.manual_seed(0)
upstream = ViTMAEForPreTraining(config)             # or ViTMAEForPreTraining.from_pretrained("facebook/vit-mae-base")
model = patch_hf_vitmae(copy.deepcopy(upstream), decoder=True)   # masking=, loss= (True), decoder= (False), rng=

pixel_values = torch.rand(4, 3, 32, 32)
noise = torch.rand(4, 16)                           # optional, as upstream: else drawn where upstream draws it
out, want = model(pixel_values, noise=noise), upstream(pixel_values, noise=noise)
assert torch.equal(out.mask, want.mask) and torch.equal(out.ids_restore, want.ids_restore)
torch.testing.assert_close(out.loss, want.loss)
out.loss.backward()
print(f"{model.__class__.__name__}: loss {out.loss.item():.6f} (upstream {want.loss.item():.6f})")
