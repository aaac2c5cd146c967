"""The masking family's nn.Modules: one-line forwards over its front doors, arguments in extra_repr
(re-exported by mimkernels.nn)."""
from __future__ import annotations

import torch
from torch import nn

from mimkernels.masking import block_mask, gather_patches, random_masking, simmim_mask, unshuffle_tokens

__all__ = ["RandomMasking", "VisiblePatches", "UnshuffleTokens", "SimMIMMaskGenerator", "BlockMaskGenerator"]


# ---- MAE ----

class RandomMasking(nn.Module):
    """MAE random masking of tokens: x (B, L, D) -> (x_visible (B, K, D), mask (B, L) float32,
    ids_restore (B, L) int64). `seed=None` draws a fresh seed per call from torch's default generator."""

    def __init__(self, mask_ratio: float = 0.75, backend: str = "auto"):
        super().__init__()
        self.mask_ratio, self.backend = mask_ratio, backend

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None, seed: int | torch.Tensor | None = None):
        return random_masking(x, self.mask_ratio, noise=noise, seed=seed, backend=self.backend)

    def extra_repr(self) -> str:
        return f"mask_ratio={self.mask_ratio}, backend={self.backend!r}"


class VisiblePatches(nn.Module):
    """The pixels of the kept patches only: imgs (B, C, H, W), ids_keep (B, K) -> (B, K, p·p·C)."""

    def __init__(self, patch_size: int, backend: str = "auto"):
        super().__init__()
        self.patch_size, self.backend = patch_size, backend

    def forward(self, imgs: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        return gather_patches(imgs, ids_keep, self.patch_size, backend=self.backend)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, backend={self.backend!r}"


class UnshuffleTokens(nn.Module):
    """MAE decoder input with a learned mask token: x (B, P+K, D), ids_restore (B, L) -> (B, P+L, D),
    the P = num_prefix_tokens prefix tokens first (MAE: the cls token; timm: cls + registers)."""

    def __init__(self, dim: int, backend: str = "auto", *, num_prefix_tokens: int = 1):
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.backend = backend
        self.num_prefix_tokens = num_prefix_tokens

    def forward(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        return unshuffle_tokens(x, ids_restore, self.mask_token, num_prefix_tokens=self.num_prefix_tokens,
                                backend=self.backend)

    def extra_repr(self) -> str:
        return (f"dim={self.mask_token.shape[-1]}, num_prefix_tokens={self.num_prefix_tokens}, "
                f"backend={self.backend!r}")


# ---- SimMIM and BEiT/MaskFeat mask generators ----

class SimMIMMaskGenerator(nn.Module):
    """SimMIM's random mask for a batch: forward(batch, seed=None, sample_offset=0) -> (B, n, n) bool,
    True = masked, n = input_size / model_patch_size. Usable as MaskCollator's mask_fn."""

    def __init__(self, input_size: int = 192, mask_patch_size: int = 32, model_patch_size: int = 4,
                 mask_ratio: float = 0.6, device=None, backend: str = "auto"):
        super().__init__()
        self.input_size, self.mask_patch_size, self.model_patch_size = input_size, mask_patch_size, model_patch_size
        self.mask_ratio, self.device, self.backend = mask_ratio, device, backend

    def forward(self, batch: int, seed: int | torch.Tensor | None = None, sample_offset: int = 0) -> torch.Tensor:
        return simmim_mask(batch, self.input_size, self.mask_patch_size, self.model_patch_size, self.mask_ratio,
                           seed=seed, sample_offset=sample_offset, device=self.device, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, mask_patch_size={self.mask_patch_size}, "
                f"model_patch_size={self.model_patch_size}, mask_ratio={self.mask_ratio}, backend={self.backend!r}")


class BlockMaskGenerator(nn.Module):
    """BEiT / MaskFeat block-wise mask for a batch (the official unilm/SlowFast generator):
    forward(batch, seed=None, sample_offset=0) -> (B, height, width) bool, True = masked. Defaults:
    MaskFeat (78/15); BEiT: num_masking_patches=75, min_num_patches=16; variant="mmpretrain": mmpretrain's
    BEiTMaskGenerator (mimkernels.block_mask). Usable as MaskCollator's mask_fn."""

    def __init__(self, height: int = 14, width: int = 14, num_masking_patches: int = 78, min_num_patches: int = 15,
                 max_num_patches: int | None = None, min_aspect: float = 0.3, max_aspect: float | None = None,
                 variant: str = "unilm", device=None, backend: str = "auto"):
        super().__init__()
        self.height, self.width = height, width
        self.num_masking_patches, self.min_num_patches, self.max_num_patches = (num_masking_patches, min_num_patches,
                                                                                max_num_patches)
        self.min_aspect, self.max_aspect, self.variant = min_aspect, max_aspect, variant
        self.device, self.backend = device, backend

    def forward(self, batch: int, seed: int | torch.Tensor | None = None, sample_offset: int = 0) -> torch.Tensor:
        return block_mask(batch, self.height, self.width, self.num_masking_patches, self.min_num_patches,
                          self.max_num_patches, self.min_aspect, self.max_aspect, seed=seed,
                          sample_offset=sample_offset, device=self.device, variant=self.variant,
                          backend=self.backend)

    def extra_repr(self) -> str:
        return (f"height={self.height}, width={self.width}, num_masking_patches={self.num_masking_patches}, "
                f"min_num_patches={self.min_num_patches}, max_num_patches={self.max_num_patches}, "
                f"min_aspect={self.min_aspect}, max_aspect={self.max_aspect}, variant={self.variant!r}, "
                f"backend={self.backend!r}")
