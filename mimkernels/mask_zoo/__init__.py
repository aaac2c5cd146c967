"""The mask zoo: the masks the field uses after MAE, batched, exact to the upstream generators and
reproducible (the contract: mask_zoo/SPEC.md). Every front door is in this file:

    I-JEPA / V-JEPA    multiblock_mask, multiblock_mask_3d                        (SPEC.md §2, §3)
    VideoMAE           tube_mask, running_cell_mask                               (§4, §5)
    UM-MAE             uniform_mask                                               (§6)
    data2vec 2.0       data2vec_block_mask                                        (§7)
    AttMask / HPM      score_mask                                                 (§8)
    DINOv2 / DINOv3    dino_collate_masks                                         (§9)
    report             mask_stats                                                 (§10)

As in the masking family: each front door validates once (mimkernels.checks), picks a backend
(`_backends.resolve`) and calls `reference.<op>` for "torch", else `torch.ops.mimkernels.<op>.<backend>`
(ops.py). The random ops draw from rng.md's Philox streams 5–12 (`rng.STREAM_*`): the same seed gives the
same masks on every backend and batch split (`sample_offset`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from mimkernels import _backends, _native, rng
from mimkernels.checks import as_device, check_float, check_int, check_tensor
from mimkernels.mask_zoo import ops as _ops  # noqa: F401  (puts the family's ops in the catalogue)
from mimkernels.mask_zoo import reference

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------


# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------

class MaskStats(NamedTuple):
    """What a batch of masks looks like (mask_stats). Per position: `coverage` (*grid) float64, the fraction
    of masks hiding it. Per mask (B,): `masked_fraction` float64, `num_blocks` int64 (face-connected masked
    regions), `avg_dist` float32 (SimMIM's AvgDist in cells: the mean distance of a masked cell to the
    nearest visible one; 3-D masks: the mean over frames that hide something; NaN where nothing is hidden,
    inf where nothing is visible). `count_histogram` (cells + 1,) int64: how many masks hide k cells."""
    coverage: torch.Tensor
    masked_fraction: torch.Tensor
    count_histogram: torch.Tensor
    num_blocks: torch.Tensor
    avg_dist: torch.Tensor

    def summary(self) -> dict[str, float]:
        """Scalars of the report: masks, cells, masked fraction (mean, std, min, max), blocks (mean, min,
        max), AvgDist (mean over masks where it is finite), coverage (min, max, max/min)."""
        frac, blocks, cov = self.masked_fraction, self.num_blocks.to(torch.float64), self.coverage
        dist = self.avg_dist[torch.isfinite(self.avg_dist)].to(torch.float64)
        nan = float("nan")
        return {"masks": frac.numel(), "cells": cov.numel(),
                "masked_fraction_mean": frac.mean().item() if frac.numel() else nan,
                "masked_fraction_std": frac.std(correction=0).item() if frac.numel() else nan,
                "masked_fraction_min": frac.min().item() if frac.numel() else nan,
                "masked_fraction_max": frac.max().item() if frac.numel() else nan,
                "blocks_mean": blocks.mean().item() if blocks.numel() else nan,
                "blocks_min": blocks.min().item() if blocks.numel() else nan,
                "blocks_max": blocks.max().item() if blocks.numel() else nan,
                "avg_dist_mean": dist.mean().item() if dist.numel() else nan,
                "coverage_min": cov.min().item(), "coverage_max": cov.max().item()}

    def save_heatmap(self, path, title: str = "") -> None:
        """A PNG: the coverage heatmap (one panel per frame for 3-D masks; the colour scale from 0 to the
        largest coverage) and the histogram of masked cells per mask. Needs matplotlib (the [train] extra)."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("MaskStats.save_heatmap needs matplotlib: pip install 'mimkernels[train]'") from e
        frames = self.coverage if self.coverage.dim() == 3 else self.coverage.unsqueeze(0)
        fig, axes = plt.subplots(1, len(frames) + 1, figsize=(2.6 * (len(frames) + 1) + 1, 2.8), squeeze=False,
                                 layout="constrained")
        top = max(float(self.coverage.max()), 1e-12)
        for t, (ax, frame) in enumerate(zip(axes[0], frames)):
            image = ax.imshow(frame.numpy(), vmin=0.0, vmax=top, cmap="viridis")
            ax.set_title(f"frame {t}" if len(frames) > 1 else "P(masked) per position", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=axes[0, :len(frames)].tolist(), fraction=0.04)
        hist = axes[0, -1]
        hist.bar(range(len(self.count_histogram)), self.count_histogram.numpy(), width=1.0)
        hist.set_title("masked cells per mask", fontsize=8)
        seen = self.count_histogram.nonzero().flatten().tolist() or [0]
        hist.set_xlim(seen[0] - 2, seen[-1] + 2)
        s = self.summary()
        fig.suptitle(f"{title}  ({s['masks']} masks; masked {s['masked_fraction_mean']:.3f}, blocks "
                     f"{s['blocks_mean']:.1f}, AvgDist {s['avg_dist_mean']:.2f})", fontsize=9)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)


def mask_stats(masks: torch.Tensor, grid: tuple[int, ...] | None = None, *, backend: str = "auto") -> MaskStats:
    """The mask report (SPEC.md §10): masks (B, H, W) or (B, T, H, W), any dtype, nonzero = masked; flat
    masks (B, N) with `grid` = (H, W) or (T, H, W), N = the product. Returns MaskStats (per-position
    coverage, realised-ratio histogram, block counts, AvgDist). A report, not a training op: it reads the
    masks back to the host (CPU tensors out)."""
    check_tensor(masks, "masks", what="(B, H, W), (B, T, H, W) or (B, N) with grid")
    if grid is not None:
        if not isinstance(grid, (tuple, list)) or not all(type(g) is int and g >= 1 for g in grid) or len(grid) not in (2, 3):
            raise ValueError(f"grid must be (H, W) or (T, H, W) of positive ints, got {grid!r}")
        if masks.dim() != 2 or masks.shape[1] != torch.Size(grid).numel():
            raise ValueError(f"masks must be (B, N) with N = prod(grid) = {torch.Size(grid).numel()} when grid is "
                             f"given, got shape {tuple(masks.shape)}")
        masks = masks.reshape(masks.shape[0], *grid)
    if masks.dim() not in (3, 4):
        raise ValueError(f"masks must be (B, H, W) or (B, T, H, W) (or (B, N) with grid=), got shape "
                         f"{tuple(masks.shape)}")
    if any(side == 0 for side in masks.shape[1:]):
        raise ValueError(f"masks must have a non-empty grid, got shape {tuple(masks.shape)}")
    if masks.dtype.is_complex:
        raise TypeError(f"masks must be bool, integer or real floating point, got {masks.dtype}")
    _backends.resolve("mask_stats", backend, masks.device)  # "torch" only: a report, run on the host
    masks = masks.detach().to("cpu") != 0
    coverage, fraction, histogram, blocks = torch.ops.mimkernels.mask_stats.torch(masks)
    frames = masks.reshape(-1, *masks.shape[-2:])
    from mimkernels.masking import mask_avg_dist
    dist = mask_avg_dist(frames, 1).reshape(masks.shape[0], -1) if frames.shape[0] else torch.zeros(0, 1)
    hides = frames.reshape(frames.shape[0], -1).any(1).reshape(dist.shape)
    avg_dist = torch.where(hides, dist, 0).sum(1) / hides.sum(1)  # frames hiding nothing do not count
    return MaskStats(coverage, fraction, histogram, blocks, avg_dist.to(torch.float32))


__all__ += ["MaskStats", "mask_stats"]

