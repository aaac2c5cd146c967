"""The frequency family's nn.Modules: one-line forwards over its front doors, arguments in extra_repr
(`mimkernels.nn` re-exports them)."""
from __future__ import annotations

import torch
from torch import nn

from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD, frequency_loss, lowfreq_target, mfm_corrupt

__all__ = ["MFMCorruption", "LowFreqTarget", "FrequencyLoss"]


class MFMCorruption(nn.Module):
    """MFM's input corruption: imgs (B, C, H, W) in [0, 1] -> (encoder input (B, C, H, W), freq_mask
    (B, H, W) float32 pass masks, is_low_pass (B,) bool); low- or high-pass per sample, clamp to
    [0, 1], then (y - mean)/std (mean=std=None: no normalization). `seed=None` draws a seed per call
    from torch's default generator."""

    def __init__(self, radius: float = 16, low_pass_prob: float = 0.5, *, outer_radius: float | None = None,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, backend: str = "auto"):
        super().__init__()
        self.radius, self.low_pass_prob, self.outer_radius = radius, low_pass_prob, outer_radius
        self.mean, self.std, self.backend = mean, std, backend

    def forward(self, imgs: torch.Tensor, seed: int | torch.Tensor | None = None, sample_offset: int = 0):
        return mfm_corrupt(imgs, self.radius, self.low_pass_prob, seed=seed, sample_offset=sample_offset,
                           outer_radius=self.outer_radius, mean=self.mean, std=self.std, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"radius={self.radius}, low_pass_prob={self.low_pass_prob}, outer_radius={self.outer_radius}, "
                f"backend={self.backend!r}")


class LowFreqTarget(nn.Module):
    """PixMIM's low-frequency target of normalized images, (B, C, H, W) -> (B, C, H, W), no grad."""

    def __init__(self, radius: float = 40, *, mean=IMAGENET_MEAN, std=IMAGENET_STD, exact: bool = True,
                 backend: str = "auto"):
        super().__init__()
        self.radius, self.mean, self.std, self.exact, self.backend = radius, mean, std, exact, backend

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return lowfreq_target(imgs, self.radius, mean=self.mean, std=self.std, exact=self.exact,
                              backend=self.backend)

    def extra_repr(self) -> str:
        return f"radius={self.radius}, exact={self.exact}, backend={self.backend!r}"


class FrequencyLoss(nn.Module):
    """MFM's frequency loss over the removed frequencies (1 - freq_mask), batch-wide masked mean;
    freq_mask=None: the mean over all frequencies. Returns a 0-d fp32 tensor."""

    def __init__(self, gamma: float = 1.0, backend: str = "auto"):
        super().__init__()
        self.gamma, self.backend = gamma, backend

    def forward(self, pred: torch.Tensor, target: torch.Tensor, freq_mask: torch.Tensor | None = None):
        return frequency_loss(pred, target, freq_mask, gamma=self.gamma, backend=self.backend)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, backend={self.backend!r}"
