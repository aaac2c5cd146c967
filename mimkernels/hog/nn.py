"""nn.Module of the HOG family."""
from __future__ import annotations

import torch
from torch import nn


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
        from mimkernels.hog import hog, hog_map

        if self.output == "map":
            return hog_map(imgs, nbins=self.nbins, pool=self.pool, gaussian_window=self.gaussian_window,
                           norm_out=self.norm_out, backend=self.backend)
        return hog(imgs, nbins=self.nbins, pool=self.pool, gaussian_window=self.gaussian_window,
                   norm_out=self.norm_out, patch_size=self.patch_size, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"nbins={self.nbins}, pool={self.pool}, gaussian_window={self.gaussian_window}, "
                f"norm_out={self.norm_out}, patch_size={self.patch_size}, output={self.output!r}, "
                f"backend={self.backend!r}")
