"""Test helpers of the pixel family: float64 numpy oracles written from SPEC.md (independent of the
reference's torch code), the inputs the tests share, and the comparisons."""
from __future__ import annotations

import numpy as np
import torch


# ---- oracles ----------------------------------------------------------------------------------------

def oracle_patchify(imgs: np.ndarray, p: int) -> np.ndarray:
    """Index by index, SPEC.md §1: patch l = i·w + j, element (pi·p + qj)·C + c."""
    b, c, hh, ww = imgs.shape
    h, w = hh // p, ww // p
    out = np.empty((b, h * w, p * p * c), dtype=imgs.dtype)
    for i in range(h):
        for j in range(w):
            for pi in range(p):
                for qj in range(p):
                    for ch in range(c):
                        out[:, i * w + j, (pi * p + qj) * c + ch] = imgs[:, ch, i * p + pi, j * p + qj]
    return out


def oracle_patches(imgs: np.ndarray, p: int) -> np.ndarray:
    """(B, C, H, W) -> (B, L, p·p·C): patch l = i·w + j, each patch's (c, p, q) block read as (p, q, c)."""
    b, c, hh, ww = imgs.shape
    rows = [imgs[:, :, i:i + p, j:j + p].transpose(0, 2, 3, 1).reshape(b, -1)
            for i in range(0, hh, p) for j in range(0, ww, p)]
    return np.stack(rows, axis=1).astype(np.float64)


def oracle_norm_target(imgs: np.ndarray, p: int, eps: float = 1e-6) -> np.ndarray:
    t = oracle_patches(imgs, p)
    return (t - t.mean(-1, keepdims=True)) / np.sqrt(t.var(-1, ddof=1, keepdims=True) + eps)


def oracle_mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """(loss, ∂loss/∂pred) = (Σ m·mean_d (pred − t)² / Σ m, 2 (pred − t) m / (D Σ m))."""
    pred, target, mask = (np.asarray(a, dtype=np.float64) for a in (pred, target, mask))
    per_patch = ((pred - target) ** 2).mean(-1)
    loss = (per_patch * mask).sum() / mask.sum()
    return loss, 2 * (pred - target) * mask[..., None] / (pred.shape[-1] * mask.sum())


def oracle_l1(x_rec: np.ndarray, imgs: np.ndarray, mask: np.ndarray, in_chans: int) -> tuple[float, np.ndarray]:
    """(SimMIM loss, ∂loss/∂x_rec) with the mask upsampled by a Kronecker product."""
    x_rec, imgs, mask = (np.asarray(a, dtype=np.float64) for a in (x_rec, imgs, mask))
    cell = imgs.shape[2] // mask.shape[1]
    up = np.kron(mask, np.ones((1, cell, cell)))[:, None]  # (B, 1, H, W)
    den = up.sum() + 1e-5
    return (np.abs(x_rec - imgs) * up).sum() / den / in_chans, np.sign(x_rec - imgs) * up / (den * in_chans)


# ---- comparisons ------------------------------------------------------------------------------------

def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def assert_rel(got: torch.Tensor, expected: float, rel: float = 1e-5):
    got = float(got)
    assert abs(got - expected) <= rel * abs(expected) + 1e-12, (got, expected, abs(got - expected) / abs(expected))


# ---- inputs -----------------------------------------------------------------------------------------

def mae_mask(b: int, length: int, ratio: float = 0.75) -> torch.Tensor:
    """MAE's float32 mask from random_masking: exactly L − int(L(1 − r)) ones per row."""
    keep = int(length * (1 - ratio))
    ranks = torch.rand(b, length).argsort(1).argsort(1)
    return (ranks >= keep).float()


def noncontiguous(t: torch.Tensor) -> torch.Tensor:
    """The same values with a stride-2 last dimension (7s in between) and reversed strides elsewhere."""
    reverse = tuple(reversed(range(t.dim())))
    return torch.stack([t, torch.full_like(t, 7)], dim=-1)[..., 0].permute(*reverse).contiguous().permute(*reverse)


def layouts(*tensors: torch.Tensor):
    """The tensors as given, then all of them non-contiguous."""
    yield tensors
    yield tuple(noncontiguous(t) for t in tensors)


MSE_CASES = [  # (B, C, H, W, p)
    (2, 3, 8, 12, 4),
    (3, 1, 6, 9, 3),    # C = 1, H ≠ W, p = 3
    (2, 2, 4, 10, 2),   # p = 2
    (1, 5, 14, 7, 7),   # odd D = 245
]
