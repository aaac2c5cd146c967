"""Drop-in nn.Modules over the functional ops: one-line forwards, arguments in extra_repr.
Each family adds its modules in its own section."""
from __future__ import annotations

import torch
from torch import nn

import mimkernels as mk


# ---- pixel: patchify ----

class Patchify(nn.Module):
    """(B, C, H, W) -> (B, L, p·p·C), MAE's (p, q, c) layout."""

    def __init__(self, patch_size: int, backend: str = "auto"):
        super().__init__()
        self.patch_size, self.backend = patch_size, backend

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return mk.patchify(imgs, self.patch_size, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, backend={self.backend!r}"


class Unpatchify(nn.Module):
    """(B, L, p·p·C) -> (B, C, h·p, w·p); grid_size (h, w) defaults to the square grid."""

    def __init__(self, patch_size: int, channels: int = 3, grid_size: tuple[int, int] | None = None,
                 backend: str = "auto"):
        super().__init__()
        self.patch_size, self.channels, self.grid_size, self.backend = patch_size, channels, grid_size, backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mk.unpatchify(x, self.patch_size, self.channels, grid_size=self.grid_size, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, channels={self.channels}, grid_size={self.grid_size}"


# ---- masking: MAE ----

class RandomMasking(nn.Module):
    """MAE random masking of tokens: x (B, L, D) -> (x_visible (B, K, D), mask (B, L) float32,
    ids_restore (B, L) int64). `seed=None` draws a fresh seed per call from torch's default generator."""

    def __init__(self, mask_ratio: float = 0.75, backend: str = "auto"):
        super().__init__()
        self.mask_ratio, self.backend = mask_ratio, backend

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None, seed: int | None = None):
        return mk.random_masking(x, self.mask_ratio, noise=noise, seed=seed, backend=self.backend)

    def extra_repr(self) -> str:
        return f"mask_ratio={self.mask_ratio}, backend={self.backend!r}"


class VisiblePatches(nn.Module):
    """The pixels of the kept patches only: imgs (B, C, H, W), ids_keep (B, K) -> (B, K, p·p·C)."""

    def __init__(self, patch_size: int, backend: str = "auto"):
        super().__init__()
        self.patch_size, self.backend = patch_size, backend

    def forward(self, imgs: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        return mk.gather_patches(imgs, ids_keep, self.patch_size, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, backend={self.backend!r}"


class UnshuffleTokens(nn.Module):
    """MAE decoder input with a learned mask token: x (B, 1+K, D), ids_restore (B, L) -> (B, 1+L, D)."""

    def __init__(self, dim: int, backend: str = "auto"):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.backend = backend

    def forward(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        return mk.unshuffle_tokens(x, ids_restore, self.mask_token, backend=self.backend)

    def extra_repr(self) -> str:
        return f"dim={self.mask_token.shape[-1]}, backend={self.backend!r}"


# ---- pixel: losses ----

class NormPixLoss(nn.Module):
    """MAE's forward_loss: pred (B, L, p·p·C), imgs (B, C, H, W), mask (B, L) 1 = masked -> float32 scalar;
    per-patch normalized target when norm_pix (every published recipe), one fused pass."""

    def __init__(self, patch_size: int, norm_pix: bool = True, eps: float = 1e-6, backend: str = "auto"):
        super().__init__()
        self.patch_size, self.norm_pix, self.eps, self.backend = patch_size, norm_pix, eps, backend

    def forward(self, pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mk.norm_pix_mse_loss(pred, imgs, mask, self.patch_size, self.norm_pix, self.eps, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, norm_pix={self.norm_pix}, eps={self.eps}, backend={self.backend!r}"


class MaskedL1Loss(nn.Module):
    """SimMIM's loss: x_rec, imgs (B, C, H, W), mask (B, h, w) 1 = masked -> float32 scalar, the mean
    |x_rec − imgs| over masked pixels and channels (in_chans defaults to C)."""

    def __init__(self, in_chans: int | None = None, backend: str = "auto"):
        super().__init__()
        self.in_chans, self.backend = in_chans, backend

    def forward(self, x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mk.masked_l1_loss(x_rec, imgs, mask, self.in_chans, backend=self.backend)

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}, backend={self.backend!r}"


# ---- hog ----

class HOG(nn.Module):
    """MaskFeat HOG target: imgs (B, C, H, W) float32/float16/bfloat16/uint8 -> output="patches":
    (B, L, C·nbins·(patch_size/pool)²) float32, mmpretrain's HOGGenerator (defaults); output="map":
    (B, C, nbins, H/pool, W/pool), SlowFast's HOGLayerC (gaussian_window=0 for SlowFast's MaskFeat).
    No gradient, no parameters: the window and bin tables are built per call from a cache."""

    def __init__(self, nbins: int = 9, pool: int = 8, gaussian_window: int = 16, norm_out: bool = True,
                 patch_size: int = 16, output: str = "patches", backend: str = "auto"):
        super().__init__()
        if output not in ("patches", "map"):
            raise ValueError(f"output must be 'patches' or 'map', got {output!r}")
        self.nbins, self.pool, self.gaussian_window, self.norm_out = nbins, pool, gaussian_window, norm_out
        self.patch_size, self.output, self.backend = patch_size, output, backend

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        if self.output == "map":
            return mk.hog_map(imgs, nbins=self.nbins, pool=self.pool, gaussian_window=self.gaussian_window,
                              norm_out=self.norm_out, backend=self.backend)
        return mk.hog(imgs, nbins=self.nbins, pool=self.pool, gaussian_window=self.gaussian_window,
                      norm_out=self.norm_out, patch_size=self.patch_size, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"nbins={self.nbins}, pool={self.pool}, gaussian_window={self.gaussian_window}, "
                f"norm_out={self.norm_out}, patch_size={self.patch_size}, output={self.output!r}, "
                f"backend={self.backend!r}")
