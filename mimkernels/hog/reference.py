"""Eager reference of the MaskFeat HOG target (SPEC.md §2, §3), step by step as the official
code: SlowFast `slowfast/models/operators.py` HOGLayerC and mmpretrain `mmpretrain/models/selfsup/
maskfeat.py` HOGGenerator (the same math). It is the oracle of the kernels and the torch backend.

Generalised where the official code hard-codes or crashes (SPEC.md §9): any C (groups=C instead of
3), the window tiled (H/gw, W/gw) instead of (H/gw, H/gw), the per-patch unfold size
patch_size // pool instead of (H // pool) // 14, and any input dtype (upcast to fp32 first, exact).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_window(window: int, device=None) -> torch.Tensor:
    """(window, window) fp32: the bell exp(-½((t - mean)/(window//2))²) outer itself, divided by its sum,
    with the official torch ops (mmpretrain HOGGenerator.get_gaussian_kernel ≡ SlowFast get_gkern)."""
    n = torch.arange(0, window).float()
    n -= n.mean()
    n /= window // 2
    w = torch.exp(-0.5 * n ** 2)
    kernel_2d = w[:, None] * w[None, :]
    return (kernel_2d / kernel_2d.sum()).to(device)


def sobel_weights(channels: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Depthwise (C, 1, 3, 3) fp32 cross-correlation kernels: gx = left column − right column,
    gy = its transpose, top row − bottom row."""
    weight_x = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], device=device)
    weight_x = weight_x.view(1, 1, 3, 3).repeat(channels, 1, 1, 1).contiguous()
    return weight_x, weight_x.transpose(2, 3).contiguous()


@torch.no_grad()
def hog_map(imgs: torch.Tensor, nbins: int = 9, pool: int = 8, gaussian_window_size: int = 16,
            norm_out: bool = True) -> torch.Tensor:
    """(B, C, H, W) any dtype -> (B, C, nbins, H // pool, W // pool) fp32: HOGLayerC's output before
    the per-patch reshape."""
    x = imgs.to(torch.float32)
    channels = x.shape[1]
    weight_x, weight_y = sobel_weights(channels, x.device)
    x = F.pad(x, pad=(1, 1, 1, 1), mode="reflect")
    gx = F.conv2d(x, weight_x, bias=None, stride=1, padding=0, groups=channels)
    gy = F.conv2d(x, weight_y, bias=None, stride=1, padding=0, groups=channels)
    norm = torch.stack([gx, gy], dim=-1).norm(dim=-1)
    phase = torch.atan2(gx, gy)
    phase = phase / math.pi * nbins  # [-nbins, nbins]

    b, c, h, w = norm.shape
    out = torch.zeros((b, c, nbins, h, w), dtype=torch.float, device=x.device)
    phase = phase.view(b, c, 1, h, w)
    norm = norm.view(b, c, 1, h, w)
    if gaussian_window_size:
        kernel = gaussian_window(gaussian_window_size, x.device)
        norm *= kernel.repeat([h // gaussian_window_size, w // gaussian_window_size])

    out.scatter_add_(2, phase.floor().long() % nbins, norm)

    out = out.unfold(3, pool, pool)
    out = out.unfold(4, pool, pool)
    out = out.sum(dim=[-1, -2])
    if norm_out:
        out = F.normalize(out, p=2, dim=2)
    return out


def to_patches(hog: torch.Tensor, cells_per_patch: int) -> torch.Tensor:
    """(B, C, nbins, h, w) -> (B, L, C·nbins·u²), u = cells_per_patch: mmpretrain HOGGenerator._reshape
    (≡ SlowFast masked.py _get_hog_label_2d), entry ((c·nbins + k)·u + cy)·u + cx."""
    u = cells_per_patch
    hog = hog.flatten(1, 2)
    hog = hog.permute(0, 2, 3, 1)
    hog = hog.unfold(1, u, u).unfold(2, u, u)
    return hog.flatten(1, 2).flatten(2)


def hog(imgs: torch.Tensor, nbins: int = 9, pool: int = 8, gaussian_window_size: int = 16, norm_out: bool = True,
        patch_size: int = 16) -> torch.Tensor:
    """(B, C, H, W) any dtype -> (B, L, C·nbins·(patch_size // pool)²) fp32, mmpretrain's per-patch layout."""
    return to_patches(hog_map(imgs, nbins, pool, gaussian_window_size, norm_out), patch_size // pool)
