"""A small ViT for the trainer: encoder, MAE's light decoder, and the linear pixel head of
SimMIM / MaskFeat / MFM. Plain torch; every MIM op is called by train/methods.py.

Tokens are patch rows in MAE's (p, q, c) layout (`patchify` / `gather_patches`), embedded by a
Linear: the same map as timm's Conv2d patch embedding once its (E, C, p, p) weight is permuted to
(E, p, q, C) (mimkernels/pixel/SPEC.md §1). Positions are fixed 2-D sin-cos (MAE), with a zero row for
the cls token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sincos_positions(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """(1 + h·w, dim) MAE 2-D sin-cos embedding: half the channels encode the row, half the column;
    row 0 (cls) is zero. dim must be a multiple of 4."""
    if dim % 4:
        raise ValueError(f"embedding dim must be a multiple of 4 for 2-D sin-cos positions, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4.0))
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    def encode(pos):
        angles = pos.flatten()[:, None] * omega[None]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    table = torch.cat([encode(cols), encode(rows)], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table]).float()


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v)                      # (B, heads, N, d/heads)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


def _init_weights(module: nn.Module) -> None:
    """MAE's init: xavier-uniform Linears with zero bias, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Encoder(nn.Module):
    """ViT encoder over patch rows. grid (h, w): the patch grid of the image; patch_dim = p·p·C."""

    def __init__(self, grid: tuple[int, int], patch_dim: int, dim: int = 128, depth: int = 4, heads: int = 4,
                 mask_token: bool = False):
        super().__init__()
        self.grid, self.dim = grid, dim
        self.patch_embed = nn.Linear(patch_dim, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        # SimMIM / MaskFeat replace masked patch embeddings by this token (before positions)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim)) if mask_token else None
        self.register_buffer("pos_embed", sincos_positions(dim, grid), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        _init_weights(self)
        nn.init.normal_(self.cls_token, std=0.02)
        if self.mask_token is not None:
            nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, rows: torch.Tensor, ids: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """rows (B, K, p·p·C): all L patches (ids None) or the patches at ids (B, K) (MAE's visible
        set). mask (B, L), 1 = masked: blend in the mask token (SimMIM). -> (B, 1 + K, dim), cls first."""
        x = self.patch_embed(rows)
        if mask is not None:
            w = mask.to(x.dtype).unsqueeze(-1)
            x = x * (1 - w) + self.mask_token.to(x.dtype) * w
        pos = self.pos_embed[1:]
        x = x + (pos.unsqueeze(0) if ids is None else pos[ids])
        cls = (self.cls_token + self.pos_embed[:1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls.to(x.dtype), x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    @torch.no_grad()
    def features(self, rows: torch.Tensor) -> torch.Tensor:
        """Probe features (B, 2·dim): the cls token beside the mean of the patch tokens."""
        x = self(rows)
        return torch.cat([x[:, 0], x[:, 1:].mean(1)], dim=1)


class Decoder(nn.Module):
    """MAE's light decoder: embed the encoder tokens, (mask tokens are unshuffled in by the method),
    add positions, a few blocks, predict the p·p·C pixels of every patch."""

    def __init__(self, grid: tuple[int, int], encoder_dim: int, patch_dim: int, dim: int = 64, depth: int = 2,
                 heads: int = 4):
        super().__init__()
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_positions(dim, grid), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, patch_dim)
        _init_weights(self)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1 + L, dim): embedded tokens with mask tokens in place -> (B, L, p·p·C), cls dropped."""
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))[:, 1:]


class LinearHead(nn.Module):
    """SimMIM's one-layer prediction head: each patch token -> out_dim values (pixels or HOG).
    init_std None: xavier-uniform (MAE's init); a float: truncated normal of that std, zero bias
    (MaskFeat's head, mmselfsup's LinearNeck: std 0.02)."""

    def __init__(self, dim: int, out_dim: int, init_std: float | None = None):
        super().__init__()
        self.linear = nn.Linear(dim, out_dim)
        _init_weights(self)
        if init_std is not None:
            nn.init.trunc_normal_(self.linear.weight, std=init_std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, 1 + L, dim) -> (B, L, out_dim), cls dropped."""
        return self.linear(tokens[:, 1:])
