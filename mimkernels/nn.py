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
