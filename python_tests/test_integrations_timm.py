"""forward_masked on a tiny model shaped like timm's VisionTransformer.

timm imports torchvision, whose PyPI wheels do not load beside torch 2.13's CPU build, so the
real package cannot be imported in CI: `TinyTimmViT` re-derives VisionTransformer._pos_embed and
forward_features step by step (timm 1.0.x, timm/models/vision_transformer.py; integration.md §5):
cls then register tokens, pos_embed with or without prefix rows (`no_embed_class`), or none.
"""
import pytest
import torch
from torch import nn

import mimkernels as mk
from mimkernels.integrations.timm import forward_masked

P, IMG, D = 4, 16, 16
L = (IMG // P) ** 2


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_size, self.grid_size, self.num_patches = (P, P), (IMG // P, IMG // P), L
        self.proj = nn.Conv2d(3, D, P, stride=P)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TinyTimmViT(nn.Module):
    def __init__(self, class_token=True, reg_tokens=0, no_embed_class=False, pos_embed="learn"):
        super().__init__()
        self.num_prefix_tokens = (1 if class_token else 0) + reg_tokens
        self.no_embed_class, self.dynamic_img_size = no_embed_class, False
        self.patch_embed = PatchEmbed()
        self.cls_token = nn.Parameter(torch.randn(1, 1, D)) if class_token else None
        self.reg_token = nn.Parameter(torch.randn(1, reg_tokens, D)) if reg_tokens else None
        embed_len = L if no_embed_class else L + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, D)) if pos_embed == "learn" else None
        self.pos_drop, self.patch_drop, self.norm_pre = nn.Dropout(0.0), nn.Identity(), nn.LayerNorm(D)
        self.blocks = nn.Sequential(nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=True))
        self.norm = nn.LayerNorm(D)

    def _pos_embed(self, x):
        to_cat = []
        if self.cls_token is not None:
            to_cat.append(self.cls_token.expand(x.shape[0], -1, -1))
        if self.reg_token is not None:
            to_cat.append(self.reg_token.expand(x.shape[0], -1, -1))
        if self.pos_embed is None:
            return torch.cat(to_cat + [x.view(x.shape[0], -1, x.shape[-1])], dim=1)
        if self.no_embed_class:
            x = x + self.pos_embed
            if to_cat:
                x = torch.cat(to_cat + [x], dim=1)
        else:
            if to_cat:
                x = torch.cat(to_cat + [x], dim=1)
            x = x + self.pos_embed
        return self.pos_drop(x)

    def forward_features(self, x):
        x = self.patch_embed(x)
        x = self._pos_embed(x)
        x = self.patch_drop(x)
        x = self.norm_pre(x)
        x = self.blocks(x)
        return self.norm(x)


VARIANTS = [dict(), dict(reg_tokens=4), dict(no_embed_class=True), dict(no_embed_class=True, reg_tokens=2),
            dict(class_token=False), dict(pos_embed="none")]


def _imgs(batch=3):
    return torch.randn(batch, 3, IMG, IMG, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("variant", VARIANTS)
def test_nothing_masked_equals_forward_features(variant):
    torch.manual_seed(0)
    vit = TinyTimmViT(**variant).eval()
    ordered = torch.arange(L, dtype=torch.float32).expand(3, -1)   # keeps every patch, in place
    latent, mask, ids_restore = forward_masked(vit, _imgs(), 0.0, noise=ordered)
    torch.testing.assert_close(latent, vit.forward_features(_imgs()), rtol=1e-6, atol=1e-6)
    assert not mask.any() and torch.equal(ids_restore, torch.arange(L).expand(3, -1))


@pytest.mark.parametrize("variant", VARIANTS)
def test_masked_equals_timm_tokens_gathered(variant):
    torch.manual_seed(0)
    vit = TinyTimmViT(**variant).eval()
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(2))
    latent, mask, ids_restore = forward_masked(vit, _imgs(), 0.75, noise=noise)
    ids_keep, ids_restore_ref, mask_ref = mk.random_mask_indices(3, L, 0.75, noise=noise)
    npt = vit.num_prefix_tokens
    tokens = vit._pos_embed(vit.patch_embed(_imgs()))            # timm's own embedding of all tokens
    rows = torch.cat([torch.arange(npt).expand(3, -1), ids_keep + npt], dim=1)
    want = vit.norm(vit.blocks(vit.norm_pre(torch.gather(tokens, 1, rows.unsqueeze(-1).expand(-1, -1, D)))))
    assert latent.shape == (3, npt + L // 4, D)
    torch.testing.assert_close(latent, want, rtol=1e-6, atol=1e-6)
    assert torch.equal(mask, mask_ref) and torch.equal(ids_restore, ids_restore_ref)


def test_rng_modes_gradients_and_errors():
    torch.manual_seed(0)
    vit = TinyTimmViT(reg_tokens=1)
    torch.manual_seed(4)
    noise = torch.rand(2, L)
    torch.manual_seed(4)
    a = forward_masked(vit, _imgs(2), 0.75)                       # draws torch.rand(B, L) as MAE
    b = forward_masked(vit, _imgs(2), 0.75, noise=noise)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    c = forward_masked(vit, _imgs(2), 0.75, rng="philox", generator=torch.Generator().manual_seed(9))
    d = forward_masked(vit, _imgs(2), 0.75, rng="philox", generator=torch.Generator().manual_seed(9))
    assert torch.equal(c[1], d[1])
    c[0].sum().backward()
    assert vit.cls_token.grad is not None and vit.reg_token.grad is not None and vit.patch_embed.proj.weight.grad is not None
    with pytest.raises(ValueError, match="patch_embed"):
        forward_masked(nn.Linear(2, 2), _imgs(2))
    with pytest.raises(ValueError, match="patch positions"):
        forward_masked(vit, torch.randn(2, 3, 2 * IMG, 2 * IMG))
