"""The mask zoo's modules and DataLoader collators (re-exported by mimkernels.nn)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------


# ---- VideoMAE tube and running cell ---------------------------------------------------------------


# ---- UM-MAE uniform masking -----------------------------------------------------------------------


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------

__all__ += ["Data2vecMaskGenerator"]


class Data2vecMaskGenerator(nn.Module):
    """data2vec 2.0's block masks for a batch (mimkernels.data2vec_block_mask, fairseq compute_block_mask_2d):
    forward(batch, seed=None, sample_offset=0) -> (B·K, L) bool, True = masked, K = clone_batch masks per
    image (row b·K + k: clone k of image b, the order of data2vec 2.0's repeat_interleave). Defaults: the
    data2vec 2.0 image config. Usable as MaskCollator's mask_fn (a loader yields each batch with its
    B·K masks, as fairseq's MaeImageDataset precomputed_mask)."""

    def __init__(self, num_patches: int = 196, mask_prob: float = 0.8, mask_length: int = 3, *,
                 mask_prob_adjust: float = 0.07, inverse_mask: bool = True, require_same_masks: bool = True,
                 mask_dropout: float = 0.0, non_overlapping: bool = False, clone_batch: int = 16, device=None,
                 backend: str = "auto"):
        super().__init__()
        self.num_patches, self.mask_prob, self.mask_length = num_patches, mask_prob, mask_length
        self.mask_prob_adjust, self.inverse_mask, self.require_same_masks = (mask_prob_adjust, inverse_mask,
                                                                             require_same_masks)
        self.mask_dropout, self.non_overlapping, self.clone_batch = mask_dropout, non_overlapping, clone_batch
        self.device, self.backend = device, backend

    def forward(self, batch: int, seed: int | None = None, sample_offset: int = 0) -> torch.Tensor:
        from mimkernels.mask_zoo import data2vec_block_mask
        return data2vec_block_mask(batch, self.num_patches, self.mask_prob, self.mask_length,
                                   mask_prob_adjust=self.mask_prob_adjust, inverse_mask=self.inverse_mask,
                                   require_same_masks=self.require_same_masks, mask_dropout=self.mask_dropout,
                                   non_overlapping=self.non_overlapping, clone_batch=self.clone_batch, seed=seed,
                                   sample_offset=sample_offset, device=self.device, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"num_patches={self.num_patches}, mask_prob={self.mask_prob}, mask_length={self.mask_length}, "
                f"mask_prob_adjust={self.mask_prob_adjust}, inverse_mask={self.inverse_mask}, "
                f"require_same_masks={self.require_same_masks}, mask_dropout={self.mask_dropout}, "
                f"non_overlapping={self.non_overlapping}, clone_batch={self.clone_batch}, backend={self.backend!r}")


# ---- score-guided masks ---------------------------------------------------------------------------

__all__ += ["ScoreMasking"]


class ScoreMasking(nn.Module):
    """Score-guided masks (mimkernels.score_mask): forward(scores (B, N), seed=None, sample_offset=0) ->
    (B, N) bool, True = masked, no gradient. AttMask-high: defaults with mask_ratio = pred_ratio;
    AttMask-low: largest=False; AttMask-hint: hint_pool = show_max, hint_ratio = show_max · mask_ratio;
    HPM: largest=True and score_share = hpm_share(epoch, total_epochs), updated by the training loop."""

    def __init__(self, mask_ratio: float = 0.75, *, largest: bool = True, score_share: float = 1.0,
                 hint_pool: float = 0.0, hint_ratio: float = 0.0, backend: str = "auto"):
        super().__init__()
        self.mask_ratio, self.largest, self.score_share = mask_ratio, largest, score_share
        self.hint_pool, self.hint_ratio, self.backend = hint_pool, hint_ratio, backend

    @staticmethod
    def hpm_share(epoch: int, total_epochs: int) -> float:
        """HPM's share of hard tokens at `epoch` (0-based): (epoch + 1) / total_epochs · 0.5, as its generate_mask."""
        return float((epoch + 1) / total_epochs) * 0.5

    def forward(self, scores: torch.Tensor, seed: int | None = None, sample_offset: int = 0) -> torch.Tensor:
        from mimkernels.mask_zoo import score_mask
        return score_mask(scores, self.mask_ratio, largest=self.largest, score_share=self.score_share,
                          hint_pool=self.hint_pool, hint_ratio=self.hint_ratio, seed=seed, sample_offset=sample_offset,
                          backend=self.backend)

    def extra_repr(self) -> str:
        return (f"mask_ratio={self.mask_ratio}, largest={self.largest}, score_share={self.score_share}, "
                f"hint_pool={self.hint_pool}, hint_ratio={self.hint_ratio}, backend={self.backend!r}")


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
