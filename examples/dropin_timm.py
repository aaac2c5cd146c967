# examples/dropin_timm.py: MAE pre-training of an unmodified timm VisionTransformer
import torch
from torch import nn

import mimkernels as mk
from mimkernels.integrations import forward_masked   # first: lets timm (and torchvision) import beside CPU torch
from timm.models.vision_transformer import VisionTransformer

torch.manual_seed(0)
vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_classes=0, reg_tokens=2)
decoder_embed, mask_token = nn.Linear(64, 32), nn.Parameter(torch.zeros(1, 1, 32))
decoder = nn.Sequential(nn.TransformerEncoderLayer(32, 4, 64, 0.0, batch_first=True), nn.Linear(32, 8 * 8 * 3))

imgs = torch.rand(4, 3, 32, 32)
latent, mask, ids_restore = forward_masked(vit, imgs, 0.75)   # latent: num_prefix_tokens + K tokens
x = mk.unshuffle_tokens(decoder_embed(latent), ids_restore, mask_token, num_prefix_tokens=vit.num_prefix_tokens)
pred = decoder(x)[:, vit.num_prefix_tokens:]                    # (4, 16, 192): one row per patch
loss = mk.norm_pix_mse_loss(pred, imgs, mask, 8)
loss.backward()
print(f"loss {loss.item():.4f}, latent {tuple(latent.shape)} = {vit.num_prefix_tokens} prefix + 4 visible tokens")

with torch.no_grad():                  # nothing masked, noise in patch order: exactly timm's own forward_features
    assert torch.equal(forward_masked(vit, imgs, 0.0, noise=torch.arange(16.0).expand(4, 16))[0],
                       vit.forward_features(imgs))
