"""Eager references of MAE random masking (spec/masking.md §2) and the decoder unshuffle (§3),
step by step as facebookresearch/mae models_mae.py: the oracles of any kernel and the torch backend.

Ties in `noise` break by lower index first (argsort(stable=True)); with tie-free noise this equals
MAE bit for bit.
"""
from __future__ import annotations

import torch

from mimkernels.pixel.reference import patchify


def len_keep(num_patches: int, mask_ratio: float) -> int:
    """K = int(L · (1 − mask_ratio)) in Python float64, truncated toward zero, exactly as MAE
    (int(10·(1−0.9)) == 0, not 1: never compute it as L − ceil(L·r), round() or in float32)."""
    return int(num_patches * (1 - mask_ratio))


def random_mask_indices(batch: int, num_patches: int, mask_ratio: float, noise: torch.Tensor):
    """(ids_keep (B,K) int64, ids_restore (B,L) int64, mask (B,L) float32, 1 = masked) from noise (B, L):
    ascending noise is kept first, ties by index."""
    k = len_keep(num_patches, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1, stable=True)
    ids_restore = torch.argsort(ids_shuffle, dim=1, stable=True)
    ids_keep = ids_shuffle[:, :k]
    mask = (ids_restore >= k).to(torch.float32)
    return ids_keep, ids_restore, mask


def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor):
    """MAE random_masking: x (N, L, D) -> (x_masked (N, K, D), mask (N, L) float32, ids_restore (N, L))."""
    n, length, d = x.shape
    ids_keep, ids_restore, mask = random_mask_indices(n, length, mask_ratio, noise)
    x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).expand(-1, -1, d))
    return x_masked, mask, ids_restore


def unshuffle_tokens(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor) -> torch.Tensor:
    """MAE forward_decoder input: x (N, 1+K, D) cls first, ids_restore (N, L), mask_token (D,) or
    (1, 1, D) -> (N, 1+L, D). mask_token is cast to x.dtype."""
    n, _, d = x.shape
    length = ids_restore.shape[1]
    token = mask_token.reshape(1, 1, d).to(x.dtype)
    mask_tokens = token.expand(n, length + 1 - x.shape[1], d)
    x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
    x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).expand(-1, -1, d))
    return torch.cat([x[:, :1, :], x_], dim=1)


def gather_patches(imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int) -> torch.Tensor:
    """patchify(imgs) gathered at ids_keep (B, K) -> (B, K, p·p·C), as MAE's torch.gather with the ids
    expanded over D (spec/masking.md §3)."""
    x = patchify(imgs, patch_size)
    return torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
