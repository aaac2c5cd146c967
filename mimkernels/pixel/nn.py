"""nn.Modules of the pixel family: one-line forwards over the front doors, arguments in extra_repr."""
from __future__ import annotations

import torch
from torch import nn


class Patchify(nn.Module):
    """(B, C, H, W) -> (B, L, p·p·C), MAE's (p, q, c) layout."""

    def __init__(self, patch_size: int, backend: str = "auto"):
        super().__init__()
        self.patch_size, self.backend = patch_size, backend

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        from mimkernels.pixel import patchify

        return patchify(imgs, self.patch_size, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, backend={self.backend!r}"


class Unpatchify(nn.Module):
    """(B, L, p·p·C) -> (B, C, h·p, w·p); grid_size (h, w) defaults to the square grid."""

    def __init__(self, patch_size: int, channels: int = 3, grid_size: tuple[int, int] | None = None,
                 backend: str = "auto"):
        super().__init__()
        self.patch_size, self.channels, self.grid_size, self.backend = patch_size, channels, grid_size, backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from mimkernels.pixel import unpatchify

        return unpatchify(x, self.patch_size, self.channels, grid_size=self.grid_size, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, channels={self.channels}, grid_size={self.grid_size}"


class NormPixLoss(nn.Module):
    """MAE's forward_loss: pred (B, L, p·p·C), imgs (B, C, H, W), mask (B, L) 1 = masked -> float32 scalar;
    per-patch normalized target when norm_pix (every published recipe), one fused pass."""

    def __init__(self, patch_size: int, norm_pix: bool = True, eps: float = 1e-6, backend: str = "auto"):
        super().__init__()
        self.patch_size, self.norm_pix, self.eps, self.backend = patch_size, norm_pix, eps, backend

    def forward(self, pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from mimkernels.pixel import norm_pix_mse_loss

        return norm_pix_mse_loss(pred, imgs, mask, self.patch_size, self.norm_pix, self.eps, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, norm_pix={self.norm_pix}, eps={self.eps}, backend={self.backend!r}"


class MaskedL1Loss(nn.Module):
    """SimMIM's loss: x_rec, imgs (B, C, H, W), mask (B, h, w) 1 = masked -> float32 scalar, the mean
    |x_rec − imgs| over masked pixels and channels (in_chans defaults to C)."""

    def __init__(self, in_chans: int | None = None, backend: str = "auto"):
        super().__init__()
        self.in_chans, self.backend = in_chans, backend

    def forward(self, x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from mimkernels.pixel import masked_l1_loss

        return masked_l1_loss(x_rec, imgs, mask, self.in_chans, backend=self.backend)

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, backend={self.backend!r}"
