# examples/mae_fused_ops.py: MAE's encoder, decoder input and loss with the fused ops
import torch
from torch import nn

import mimkernels as mk

B, C, S, p, E, D = 4, 3, 32, 8, 64, 32          # batch, channels, image side, patch, encoder/decoder width
L = (S // p) ** 2                               # 16 patches
torch.manual_seed(0)
patch_embed = nn.Conv2d(C, E, p, stride=p)      # timm's PatchEmbed, as in MAE
cls_token, pos_embed = nn.Parameter(torch.zeros(1, 1, E)), nn.Parameter(0.02 * torch.randn(1, 1 + L, E))
encoder = nn.Sequential(nn.TransformerEncoderLayer(E, 4, 2 * E, 0.0, batch_first=True, norm_first=True), nn.LayerNorm(E))
decoder_embed, mask_token = nn.Linear(E, D), nn.Parameter(torch.zeros(1, 1, D))
decoder_pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + L, D))
decoder = nn.Sequential(nn.TransformerEncoderLayer(D, 4, 2 * D, 0.0, batch_first=True, norm_first=True), nn.LayerNorm(D),
                        nn.Linear(D, p * p * C))


def forward_encoder(imgs, mask_ratio=0.75, noise=None, seed=None):
    """Embeds only the K visible patches, read from the image in place (no patchified copy)."""
    ids_keep, ids_restore, mask = mk.random_mask_indices(imgs.shape[0], L, mask_ratio, noise=noise, seed=seed)
    w = patch_embed.weight.permute(0, 2, 3, 1).reshape(E, p * p * C)     # Conv2d (c, p, q) -> our (p, q, c) rows
    x = mk.gather_patches(imgs, ids_keep, p) @ w.t() + patch_embed.bias   # (B, K, E)
    x = x + pos_embed[0, 1:][ids_keep]                                     # the kept patches' positions
    cls = (cls_token + pos_embed[:, :1]).expand(imgs.shape[0], -1, -1)
    return encoder(torch.cat([cls, x], dim=1)), mask, ids_restore


def forward_decoder(latent, ids_restore):
    x = mk.unshuffle_tokens(decoder_embed(latent), ids_restore, mask_token)   # MAE's cat + gather + cat: (B, 1 + L, D)
    return decoder(x + decoder_pos_embed)[:, 1:]                              # (B, L, p·p·C)


imgs = torch.rand(B, C, S, S)
latent, mask, ids_restore = forward_encoder(imgs, seed=0)
pred = forward_decoder(latent, ids_restore)
loss = mk.norm_pix_mse_loss(pred, imgs, mask, p)   # MAE's forward_loss (norm_pix_loss=True) in one pass, fp32
loss.backward()
print(f"loss {loss.item():.4f}, visible tokens {tuple(latent.shape)}, masked {int(mask.sum())} of {B * L}")

# With MAE's own noise, the visible tokens equal MAE's all-patch embedding followed by random_masking
noise = torch.rand(B, L)
everything = patch_embed(imgs).flatten(2).transpose(1, 2) + pos_embed[:, 1:]
x_masked, mask_mae, _ = mk.random_masking(everything, 0.75, noise=noise)
latent, mask, _ = forward_encoder(imgs, noise=noise)
cls = (cls_token + pos_embed[:, :1]).expand(B, -1, -1)
torch.testing.assert_close(latent, encoder(torch.cat([cls, x_masked], dim=1)), rtol=1e-5, atol=1e-5)
assert torch.equal(mask, mask_mae)
