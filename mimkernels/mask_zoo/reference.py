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

def dino_strata(n_tokens: int, n_masked: int, mask_ratio_min_max: tuple[float, float]) -> tuple[torch.Tensor, int]:
    """(probs, upperbound): upstream's `torch.linspace(*mask_ratio_tuple, n_samples_masked + 1)` (float32, on
    the CPU, as upstream) and its `upperbound` = Σ int(N · probs[i + 1]) over the masked strata (N · p in
    float32, as upstream's tensor arithmetic). A function of the arguments only: computed on the host."""
    probs = torch.linspace(*mask_ratio_min_max, n_masked + 1)
    return probs, int((n_tokens * probs[1:]).to(torch.int64).sum())


def dino_slot_plan(batch: int, height: int, width: int, probs: torch.Tensor, n_masked: int, v3: bool,
                   circular_shift: bool, seed: int):
    """The collate's own draws (stream STREAM_DINO_COLLATE, batch-wide: counter (j, 0, stream, 1) for slot j),
    then upstream's shuffle. Slot j < n_masked is stratum j (v2: count int(N · U(p_j, p_{j+1})) with
    U = p_j + (p_{j+1} − p_j) · unit_float(x1), every step in float32 as upstream's 0-d float32 tensors; v3:
    int(N · p_{j+1})); slots past n_masked ask for 0 cells. v3 with circular_shift: shift (below(x2, H),
    below(x3, W)) for the masked slots. random.shuffle: the slots in ascending order of (x0, j). Returns the
    (B,) int64 counts and row / column shifts of the rows of the batch, in the shuffled order."""
    cells = height * width
    j = torch.arange(batch, dtype=torch.int64)
    x0, x1, x2, x3 = rng.philox4x32_10(j, 0, rng.STREAM_DINO_COLLATE, 1, seed)
    masked = j < n_masked
    lo, hi = probs[:-1], probs[1:]
    if v3:
        ratio = hi
    else:
        ratio = lo + (hi - lo) * rng.unit_float(x1[:n_masked])
    counts = torch.zeros(batch, dtype=torch.int64)
    counts[:n_masked] = (cells * ratio).to(torch.int64)
    shift = v3 and circular_shift
    shift_rows = torch.where(masked, rng.below(x2, height), 0) if shift else torch.zeros(batch, dtype=torch.int64)
    shift_cols = torch.where(masked, rng.below(x3, width), 0) if shift else torch.zeros(batch, dtype=torch.int64)
    order = torch.argsort(x0, stable=True)
    return counts[order], shift_rows[order], shift_cols[order]


def dino_complete(masks: torch.Tensor, counts: torch.Tensor, seed: int) -> torch.Tensor:
    """DINOv3's `complete_mask_randomly`: each (H, W) mask of `masks` (B, H, W) bool gets
    counts[b] − masked[b] more cells, a uniformly random subset of its free cells (np.random.choice without
    replacement): the free cells with the smallest keys x0 at counter (t, b, STREAM_DINO_COLLATE, 0), ties by
    index t. A mask already at (or past) its count is unchanged."""
    batch, height, width = masks.shape
    flat = masks.reshape(batch, height * width)
    t = torch.arange(flat.shape[1], dtype=torch.int64).unsqueeze(0)
    b = torch.arange(batch, dtype=torch.int64).unsqueeze(1)
    keys = rng.draw(seed, t, b, rng.STREAM_DINO_COLLATE)[0].expand(flat.shape).clone()
    keys[flat] = 1 << 32                                    # masked cells sort after every free cell
    rank = torch.argsort(torch.argsort(keys, dim=1, stable=True), dim=1, stable=True)
    need = (counts - flat.sum(1)).unsqueeze(1)
    return (flat | (rank < need)).reshape(batch, height, width)


def dino_roll(masks: torch.Tensor, shift_rows: torch.Tensor, shift_cols: torch.Tensor) -> torch.Tensor:
    """torch.roll(mask_b, (shift_rows[b], shift_cols[b]), (0, 1)) for every mask of (B, H, W)."""
    batch, height, width = masks.shape
    rows = (torch.arange(height).unsqueeze(0) - shift_rows.unsqueeze(1)) % height
    cols = (torch.arange(width).unsqueeze(0) - shift_cols.unsqueeze(1)) % width
    masks = masks.gather(1, rows.unsqueeze(2).expand(batch, height, width))
    return masks.gather(2, cols.unsqueeze(1).expand(batch, height, width))


def dino_collate_masks(batch: int, height: int, width: int, probs: torch.Tensor, n_masked: int, min_num_patches: int,
                       max_num_patches: int, log_aspect_ratio: tuple[float, float], v3: bool, circular_shift: bool,
                       seed: int) -> torch.Tensor:
    """The collated masks (B, H·W) bool on the CPU, True = masked, step by step as upstream's collate:
    the strata and the shuffle (dino_slot_plan), each row's block mask with its count (DINOv2's
    MaskingGenerator = the official block mask, stream 3 at sample b; masking.reference.block_mask), v3's
    random completion to the exact count (dino_complete), v3's circular shift (dino_roll)."""
    from mimkernels.masking import reference as masking_reference

    counts, shift_rows, shift_cols = dino_slot_plan(batch, height, width, probs, n_masked, v3, circular_shift, seed)
    masks = masking_reference.block_mask(batch, height, width, counts.tolist(), min_num_patches, max_num_patches,
                                         log_aspect_ratio, seed, 0)
    if v3:
        masks = dino_complete(masks, counts, seed)
    if v3 and circular_shift:
        masks = dino_roll(masks, shift_rows, shift_cols)
    return masks.reshape(batch, height * width)


def dino_index_lists(masks: torch.Tensor, upperbound: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Upstream's outputs from the collated masks (B, N) bool, without a data-dependent shape: mask_indices_list
    (upperbound,) int64 = masks.flatten().nonzero() padded with 0, masks_weight (upperbound,) float32 =
    1 / max(masked cells of the token's row, 1) per masked token padded with 0, n_masked_patches (1,) int64.
    Every masked token has a slot: the masks never hold more than upperbound cells (SPEC.md §9); were they
    to, the tokens past upperbound would be dropped, never written out of bounds."""
    flat = masks.flatten()
    rank = torch.cumsum(flat, 0) - 1
    slot = torch.where(flat & (rank < upperbound), rank, upperbound)     # unmasked (and overflow) -> a spare slot
    positions = torch.arange(flat.numel(), dtype=torch.int64, device=masks.device)
    indices = torch.zeros(upperbound + 1, dtype=torch.int64, device=masks.device).scatter_(0, slot, positions)
    row_weight = 1 / masks.sum(-1).clamp(min=1.0)
    weights = torch.zeros(upperbound + 1, dtype=row_weight.dtype, device=masks.device)
    weights.scatter_(0, slot, row_weight.unsqueeze(-1).expand_as(masks).flatten())
    n_masked_patches = flat.sum().reshape(1)
    return indices[:upperbound], weights[:upperbound], n_masked_patches


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
