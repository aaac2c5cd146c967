"""The eager oracle of every mask-zoo op ("torch" backend), written step by step like the upstream
generators, with the draws of rng.md in place of numpy's / Python's random."""
from __future__ import annotations

import torch

from mimkernels import rng


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------


# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------

def mask_stats(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """masks (B, *grid) bool, grid 2-D or 3-D -> coverage (*grid) float64 (the fraction of masks that
    hide each position), masked_fraction (B,) float64, count_histogram (cells + 1,) int64 (how many masks
    hide k cells), num_blocks (B,) int64 (connected masked regions: 4-neighbours in 2-D, 6 in 3-D)."""
    batch, grid = masks.shape[0], tuple(masks.shape[1:])
    cells = masks[0].numel() if batch else torch.Size(grid).numel()
    flat = masks.reshape(batch, cells)
    counts = flat.sum(1)
    coverage = flat.to(torch.float64).mean(0).reshape(grid) if batch else torch.zeros(grid, dtype=torch.float64)
    histogram = torch.zeros(cells + 1, dtype=torch.int64).scatter_add_(0, counts, torch.ones_like(counts))
    return coverage, counts.to(torch.float64) / max(cells, 1), histogram, _connected_regions(masks)


def _connected_regions(masks: torch.Tensor) -> torch.Tensor:
    """(B,) int64: the number of face-connected regions of True cells in each mask (B, *grid). Label
    propagation: every masked cell takes the smallest cell index among itself and its neighbours, then the
    label of its label (pointer jumping), until nothing changes; a region is counted at the cell whose
    label is its own index."""
    batch, grid = masks.shape[0], masks.shape[1:]
    cells = torch.Size(grid).numel()
    own = torch.arange(cells, dtype=torch.int64).reshape(grid).expand(masks.shape)
    outside = torch.full(masks.shape, cells, dtype=torch.int64)
    labels = torch.where(masks, own, outside)
    while True:
        new = labels
        for dim in range(1, masks.dim()):
            size = masks.shape[dim]
            if size < 2:
                continue
            edge = outside.narrow(dim, 0, 1)
            new = torch.minimum(new, torch.cat([labels.narrow(dim, 1, size - 1), edge], dim))  # next neighbour
            new = torch.minimum(new, torch.cat([edge, labels.narrow(dim, 0, size - 1)], dim))  # previous
        new = torch.where(masks, new, outside).reshape(batch, cells)
        new = torch.where(new < cells, new.gather(1, new.clamp(max=max(cells - 1, 0))), new).reshape(masks.shape)
        if torch.equal(new, labels):
            return (masks & (labels == own)).reshape(batch, cells).sum(1)
        labels = new

