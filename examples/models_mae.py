"""A small stand-in for facebookresearch/mae's `models_mae.py` (not a package), for examples/dropin_mae.py:
the same attribute names and methods (`patch_embed`, `random_masking(x, mask_ratio)`,
`forward_decoder(x, ids_restore)`, `forward_loss(imgs, pred, mask)`, `forward(imgs, mask_ratio)` ->
(loss, pred, mask)) on timm's PatchEmbed and Block, as the original; restated, with fixed random
positional embeddings instead of its 2-D sin-cos table. In your clone, `import models_mae` gets the real one."""
import torch
from timm.models.vision_transformer import Block, PatchEmbed
from torch import nn


class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0, norm_pix_loss=False):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(0.02 * torch.randn(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, n + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(0.02 * torch.randn(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(0.02 * torch.randn(1, n + 1, decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True)
                                             for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size ** 2 * in_chans)
        self.norm_pix_loss = norm_pix_loss

    def patchify(self, imgs):                      # (N, 3, H, W) -> (N, L, p·p·3), (p, q, c) order
        p, h = self.patch_embed.patch_size[0], imgs.shape[2] // self.patch_embed.patch_size[0]
        x = imgs.reshape(imgs.shape[0], 3, h, p, h, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(imgs.shape[0], h * h, p * p * 3)

    def random_masking(self, x, mask_ratio):       # per-sample shuffle by argsort of uniform noise
        n, length, dim = x.shape
        keep = int(length * (1 - mask_ratio))
        ids_shuffle = torch.argsort(torch.rand(n, length, device=x.device), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        x_masked = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, dim))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :keep] = 0
        return x_masked, torch.gather(mask, 1, ids_restore), ids_restore

    def forward_encoder(self, x, mask_ratio):
        x = self.patch_embed(x) + self.pos_embed[:, 1:]
        x, mask, ids_restore = self.random_masking(x, mask_ratio)
        x = torch.cat([(self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1), x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        tokens = torch.cat([x[:, 1:], self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)], 1)
        tokens = torch.gather(tokens, 1, ids_restore[:, :, None].expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1], tokens], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
        return (((pred - target) ** 2).mean(-1) * mask).sum() / mask.sum()

    def forward(self, imgs, mask_ratio=0.75):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


def mae_vit_tiny_patch8(**kwargs):
    return MaskedAutoencoderViT(patch_size=8, embed_dim=64, depth=2, num_heads=4, decoder_embed_dim=32,
                                decoder_depth=1, decoder_num_heads=4, mlp_ratio=2.0, **kwargs)
