"""The eager oracle of every mask-zoo op ("torch" backend), written step by step like the upstream
generators, with the draws of rng.md in place of numpy's / Python's random."""
from __future__ import annotations

import math

import torch

from mimkernels import rng


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------

# Placements per relaxation level of I-JEPA's rejection loop (upstream's `timeout`), and the bound on
# V-JEPA's redraws of a sample whose context came out empty (upstream redraws without end).
MULTIBLOCK_TIMEOUT = 20
MULTIBLOCK_3D_REDRAWS = 20


def _below(word: int, n: int) -> int:
    """rng.below on Python ints: uniform in [0, n) from a uint32 word."""
    return (word * n) >> 32


def _unit_float(word: int) -> float:
    """rng.unit_float on a Python int: the float32 value (exact in a Python float)."""
    return (word >> 8) * 2.0 ** -24


def _batch_words(seed: int, stream: int) -> tuple[int, int, int, int]:
    """The draw shared by the whole batch: Philox at counter (0, 0, stream, 1)."""
    return tuple(int(x) for x in rng.philox4x32_10(0, 0, stream, 1, seed))


def _rounded_side(x: float, side: int) -> int:
    """min(round(x), side), round half to even, for x >= 0 possibly infinite."""
    return side if x >= side else int(round(x))


def _span(start: torch.Tensor, length: int, side: int) -> torch.Tensor:
    """(B, side) bool: start[b] <= i < start[b] + length."""
    i = torch.arange(side)
    return (i >= start[:, None]) & (i < start[:, None] + length)


def _cell_keys(seed: int, stream: int, samples: torch.Tensor, n: int, families: int) -> torch.Tensor:
    """(B, families, n) int64: the sort key of cell c in key family j, word c mod 4 of Philox at
    (c div 4, sample, stream, 2 + j)."""
    counter = torch.arange(-(-n // 4), dtype=torch.int64).view(1, 1, -1)
    family = 2 + torch.arange(families, dtype=torch.int64).view(1, -1, 1)
    words = rng.philox4x32_10(counter, samples.view(-1, 1, 1), stream, family, seed)
    return torch.stack(words, dim=-1).flatten(-2)[..., :n]


def _lists(blocks: torch.Tensor, keys: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, K, N) and counts (B, K) of blocks (B, K, N) bool: block k's cells first, in ascending
    (keys[b, k, cell], cell) order (ascending cells where keys is None), then 0."""
    n = blocks.shape[-1]
    order = (~blocks).to(torch.int64) << 32
    if keys is not None:
        order = order + keys
    ids = torch.sort(order, dim=-1, stable=True).indices
    counts = blocks.sum(-1)
    ids[torch.arange(n) >= counts[..., None]] = 0
    return ids, counts


def multiblock_block_size(u: float, scale: tuple[float, float], aspect: tuple[float, float], height: int,
                          width: int, official: bool) -> tuple[int, int]:
    """I-JEPA's `_sample_block_size` from its one uniform u (scale and aspect from the same u).
    official: sides capped at height - 1, width - 1 (upstream's while loops); else in [1, height], [1, width]."""
    mask_scale = scale[0] + u * (scale[1] - scale[0])
    max_keep = int(height * width * mask_scale)
    ratio = aspect[0] + u * (aspect[1] - aspect[0])
    h = _rounded_side(math.sqrt(max_keep * ratio), height)
    w = _rounded_side(math.sqrt(max_keep / ratio), width)
    if official:
        return min(h, height - 1), min(w, width - 1)
    return max(h, 1), max(w, 1)


def multiblock_calls(num_enc: int, num_pred: int, allow_overlap: bool) -> int:
    """Upper bound of the Philox calls (placements) one I-JEPA sample makes: one per target, at most
    MULTIBLOCK_TIMEOUT · regions + 1 per context block."""
    regions = 0 if allow_overlap else num_pred
    return num_pred + num_enc * (MULTIBLOCK_TIMEOUT * regions + 1)


def multiblock_mask(batch: int, height: int, width: int, enc_scale: tuple[float, float],
                    pred_scale: tuple[float, float], aspect: tuple[float, float], num_enc: int, num_pred: int,
                    min_keep: int, allow_overlap: bool, official: bool, seed: int,
                    sample_offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """I-JEPA multi-block masks (SPEC.md §2), placement by placement, every sample of the batch at once.
    Returns blocks (B, P + E, H, W) bool (the P targets, then the E context blocks; True = in the
    block), ids (B, P + E, H·W) int64 (a block's cells, ascending; context cells in key order unless
    official; then 0) and counts (B, P + E) int64."""
    stream = rng.STREAM_MULTIBLOCK_2D
    words = _batch_words(seed, stream)
    pred_h, pred_w = multiblock_block_size(_unit_float(words[0]), pred_scale, aspect, height, width, official)
    enc_h, enc_w = multiblock_block_size(_unit_float(words[1]), enc_scale, (1.0, 1.0), height, width, official)
    inclusive = 0 if official else 1
    samples = sample_offset + torch.arange(batch, dtype=torch.int64)

    def place(x0: torch.Tensor, x1: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, H, W): each sample's h x w block placed by the words x0 (top), x1 (left) of its call."""
        top, left = rng.below(x0, height - h + inclusive), rng.below(x1, width - w + inclusive)
        return _span(top, h, height)[:, :, None] & _span(left, w, width)[:, None, :]

    blocks = torch.zeros((batch, num_pred + num_enc, height, width), dtype=torch.bool)
    # targets: never constrained, so every placement keeps h·w cells; where h·w <= min_keep upstream
    # retries forever (ijepa#68) and we keep the first placement
    for k in range(num_pred):
        x0, x1, _, _ = rng.draw(seed, k, samples, stream)
        blocks[:, k] = place(x0, x1, pred_h, pred_w)
    regions = 0 if allow_overlap else num_pred
    # first_target[b, r, c]: the first target holding the cell (regions if none): a cell is outside the
    # first n targets iff first_target >= n
    first_target = torch.full((batch, height, width), regions, dtype=torch.int64)
    for k in reversed(range(regions)):
        first_target[blocks[:, k]] = k
    keep = min_keep if official else min(min_keep, enc_h * enc_w - 1)
    calls = torch.full((batch,), num_pred, dtype=torch.int64)
    for e in range(num_enc):
        active = torch.ones(batch, dtype=torch.bool)
        used = torch.zeros(batch, dtype=torch.int64)
        # a block of <= keep cells fails every constrained placement: straight to the first unconstrained one
        attempt = MULTIBLOCK_TIMEOUT * regions if keep >= enc_h * enc_w else 0
        while bool(active.any()):
            if attempt % MULTIBLOCK_TIMEOUT == 0:  # the calls of the next MULTIBLOCK_TIMEOUT placements
                drawn = rng.draw(seed, calls[:, None] + attempt + torch.arange(MULTIBLOCK_TIMEOUT), samples[:, None],
                                 stream)
                first = attempt
            # upstream's `tries` (targets dropped from the constraint) after `attempt` failed placements
            constraining = max(regions - attempt // MULTIBLOCK_TIMEOUT, 0)
            cells = (place(drawn[0][:, attempt - first], drawn[1][:, attempt - first], enc_h, enc_w)
                     & (first_target >= constraining))
            # unconstrained, every placement keeps enc_h·enc_w cells: accept it
            accept = active & ((cells.flatten(1).sum(1) > keep) | (constraining == 0))
            blocks[accept, num_pred + e] = cells[accept]
            used[accept] = attempt + 1
            active &= ~accept
            attempt += 1
        calls += used
    keys = None
    if not official:  # context block e: key family e
        keys = torch.cat([torch.zeros((batch, num_pred, height * width), dtype=torch.int64),
                          _cell_keys(seed, stream, samples, height * width, num_enc)], dim=1)
    ids, counts = _lists(blocks.flatten(2), keys)
    return blocks, ids, counts


def multiblock_3d_block_size(words: tuple, temporal_scale: tuple[float, float],
                             spatial_scale: tuple[float, float], aspect: tuple[float, float], frames: int,
                             height: int, width: int, official: bool) -> tuple[int, int, int]:
    """V-JEPA's `_sample_block_size` from three uniforms (x0, x1, x2 of the batch draw): (t, h, w).
    Not official: h, w at least 1 (upstream's can be 0 on small grids: an empty block)."""
    u_t, u_s, u_a = (_unit_float(x) for x in words[:3])
    t = max(1, int(frames * (temporal_scale[0] + u_t * (temporal_scale[1] - temporal_scale[0]))))
    keep = int(height * width * (spatial_scale[0] + u_s * (spatial_scale[1] - spatial_scale[0])))
    ratio = aspect[0] + u_a * (aspect[1] - aspect[0])
    h = _rounded_side(math.sqrt(keep * ratio), height)
    w = _rounded_side(math.sqrt(keep / ratio), width)
    return (t, h, w) if official else (t, max(h, 1), max(w, 1))


def multiblock_mask_3d(batch: int, frames: int, height: int, width: int, temporal_scale: tuple[float, float],
                       spatial_scale: tuple[float, float], aspect: tuple[float, float], num_blocks: int,
                       max_temporal_keep: float, official: bool, seed: int,
                       sample_offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """V-JEPA 3-D multi-block masks (SPEC.md §3), draw by draw, every sample of the batch at once.
    Returns blocks (B, 2, T, H, W) bool (0: the target, the union of the blocks; 1: the context, its
    complement), ids (B, 2, T·H·W) int64 (ascending if official, else in key order; then 0) and
    counts (B, 2) int64. Redraw r of a sample uses the calls r·num_blocks + k."""
    stream = rng.STREAM_MULTIBLOCK_3D
    t, h, w = multiblock_3d_block_size(_batch_words(seed, stream), temporal_scale, spatial_scale, aspect, frames,
                                       height, width, official)
    context_frames = max(1, int(frames * max_temporal_keep))
    samples = sample_offset + torch.arange(batch, dtype=torch.int64)
    context = torch.zeros((batch, frames, height, width), dtype=torch.bool)
    active = torch.ones(batch, dtype=torch.bool)
    for redraw in range(MULTIBLOCK_3D_REDRAWS):
        drawn = torch.ones((batch, frames, height, width), dtype=torch.bool)
        for k in range(num_blocks):
            x0, x1, x2, _ = rng.draw(seed, redraw * num_blocks + k, samples, stream)
            top, left = rng.below(x0, height - h + 1), rng.below(x1, width - w + 1)
            start = rng.below(x2, frames - t + 1)
            box = (_span(start, t, frames)[:, :, None, None] & _span(top, h, height)[:, None, :, None]
                   & _span(left, w, width)[:, None, None, :])
            drawn &= ~box
        drawn[:, context_frames:] = False
        context[active] = drawn[active]
        active &= ~drawn.flatten(1).any(1)
        if not bool(active.any()):
            break
    blocks = torch.stack([~context, context], dim=1)
    # target and context hold disjoint cells: one key family for both
    keys = None if official else _cell_keys(seed, stream, samples, frames * height * width, 1).expand(-1, 2, -1)
    ids, counts = _lists(blocks.flatten(2), keys)
    return blocks, ids, counts


# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
