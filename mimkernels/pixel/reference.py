"""Eager references of the pixel family, step by step as the official code: the oracles of the
kernels and the torch backend.
"""
from __future__ import annotations

import contextlib

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


def _no_autocast(device: torch.device):
    """Autocast off on `device` (a meta tensor has no autocast state: nothing to turn off)."""
    return contextlib.nullcontext() if device.type == "meta" else torch.autocast(device.type, enabled=False)


def _accumulation_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 when any input is float64 (gradcheck), else float32: the loss dtype of the family."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def normalized_patches(imgs: torch.Tensor, patch_size: int, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch normalized target (B, L, p·p·C) in float32 (float64 for float64 imgs).
    Source: MAE models_mae.py forward_loss (norm_pix_loss branch): unbiased variance, eps inside the root.
    Autocast is off: under CUDA AMP, MAE's einsum would round the fp32 images to fp16 (SPEC.md §6)."""
    with _no_autocast(imgs.device):
        target = patchify(imgs, patch_size).to(_accumulation_dtype(imgs))
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + eps) ** .5


def patch_norm_target(imgs: torch.Tensor, patch_size: int, eps: float = 1e-6) -> torch.Tensor:
    """normalized_patches in imgs.dtype (mmselfsup/mmpretrain MAEPretrainHead.construct_target)."""
    return normalized_patches(imgs, patch_size, eps).to(imgs.dtype)


def masked_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_bl m_bl · mean_d (pred − target)² / Σ_bl m_bl, float32 (float64 for float64 inputs); mask (B, L)
    of any dtype, 1 = masked. Source: MAE models_mae.py forward_loss, after the target; upcast first."""
    acc = _accumulation_dtype(pred, target)
    mask = mask.to(acc)
    loss = (pred.to(acc) - target.to(acc)) ** 2
    loss = loss.mean(dim=-1)  # [N, L], mean loss per patch
    return (loss * mask).sum() / mask.sum()  # mean loss on removed patches


def norm_pix_mse_loss(pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, patch_size: int,
                      norm_pix: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """MAE forward_loss(imgs, pred, mask) with the target computed in float32, autocast or not (SPEC.md §4, §6)."""
    with _no_autocast(imgs.device):
        target = normalized_patches(imgs, patch_size, eps) if norm_pix else patchify(imgs, patch_size)
    return masked_mse_loss(pred, target, mask)


def masked_l1_loss(x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, in_chans: int) -> torch.Tensor:
    """SimMIM's loss: x_rec, imgs (B, C, H, W), mask (B, h, w) of any dtype, 1 = masked, cells of
    p = H / h pixels. Source: SimMIM models/simmim.py SimMIM.forward; computed in float32."""
    acc = _accumulation_dtype(x_rec, imgs)
    p = imgs.shape[2] // mask.shape[1]
    mask = mask.repeat_interleave(p, 1).repeat_interleave(p, 2).unsqueeze(1).contiguous()
    loss_recon = torch.nn.functional.l1_loss(imgs.to(acc), x_rec.to(acc), reduction="none")
    # int64 for bool/int masks (exact; + 1e-5 then gives float32, as in SimMIM), float32 for float masks
    count = mask.sum(dtype=acc if mask.is_floating_point() else torch.int64)
    return (loss_recon * mask).sum() / (count.to(acc) + 1e-5) / in_chans
