"""Eager references of the pixel family, step by step as the official code: the oracles of the
kernels and the torch backend.
"""
from __future__ import annotations

import torch


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p·p·C), MAE's (p, q, c) layout, patch l = i·w + j.
    Source: facebookresearch/mae models_mae.py MaskedAutoencoderViT.patchify (generalised to any C, H ≠ W)."""
    b, c, hh, ww = imgs.shape
    p = patch_size
    h, w = hh // p, ww // p
    x = imgs.reshape(b, c, h, p, w, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(b, h * w, p * p * c)


def unpatchify(x: torch.Tensor, patch_size: int, channels: int, grid_size: tuple[int, int]) -> torch.Tensor:
    """(B, L, p·p·C) -> (B, C, h·p, w·p), the inverse of patchify. Source: MAE models_mae.py unpatchify."""
    p = patch_size
    h, w = grid_size
    x = x.reshape(x.shape[0], h, w, p, p, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(x.shape[0], channels, h * p, w * p)
