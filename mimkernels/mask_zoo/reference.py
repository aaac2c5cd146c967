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


def _sample_calls(seed: int, stream: int, batch: int, sample_offset: int, calls: int) -> list[list[tuple]]:
    """calls[b][i]: the four words of Philox at counter (i, sample_offset + b, stream, 0)."""
    i = torch.arange(calls, dtype=torch.int64)[None, :]
    sample = sample_offset + torch.arange(batch, dtype=torch.int64)[:, None]
    words = torch.stack(rng.draw(seed, i, sample, stream), dim=-1)
    return words.tolist()


class _Words:
    """A sample's Philox calls in counter order; `call()` the next call, `word()` the next single word
    (x0, x1, x2, x3 of a fresh call, in that order)."""

    def __init__(self, calls: list[tuple]):
        self.calls, self.next_call, self.pending = calls, 0, []

    def call(self) -> tuple:
        self.next_call += 1
        return self.calls[self.next_call - 1]

    def word(self) -> int:
        if not self.pending:
            self.pending = list(self.call())[::-1]
        return self.pending.pop()


def _shuffle(ids: list, words: _Words) -> None:
    """Fisher-Yates from the end: slot j swaps with below(word, j + 1), j = n - 1 .. 1."""
    for j in range(len(ids) - 1, 0, -1):
        k = _below(words.word(), j + 1)
        ids[j], ids[k] = ids[k], ids[j]


def _rounded_side(x: float, side: int) -> int:
    """min(round(x), side), round half to even, for x >= 0 possibly infinite."""
    return side if x >= side else int(round(x))


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


def multiblock_calls(height: int, width: int, num_enc: int, num_pred: int, allow_overlap: bool,
                     official: bool) -> int:
    """Upper bound of the Philox calls one I-JEPA sample makes: one per target, at most
    MULTIBLOCK_TIMEOUT · regions + 1 placements per context block, and its shuffle (fixed)."""
    regions = 0 if allow_overlap else num_pred
    shuffle = 0 if official else -(-height * width // 4)
    return num_pred + num_enc * (MULTIBLOCK_TIMEOUT * regions + 1 + shuffle)


def _write_block(blocks: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor, k: int, cells: list) -> None:
    blocks.view(blocks.shape[0], -1)[k, cells] = True
    ids[k, :len(cells)] = torch.tensor(cells, dtype=torch.int64)
    counts[k] = len(cells)


def multiblock_mask(batch: int, height: int, width: int, enc_scale: tuple[float, float],
                    pred_scale: tuple[float, float], aspect: tuple[float, float], num_enc: int, num_pred: int,
                    min_keep: int, allow_overlap: bool, official: bool, seed: int,
                    sample_offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """I-JEPA multi-block masks (SPEC.md §2), step by step. Returns blocks (B, P + E, H, W) bool (the P
    targets, then the E context blocks; True = in the block), ids (B, P + E, H·W) int64 (the block's
    cells, ascending; context cells in shuffled order unless official; padded with 0) and counts
    (B, P + E) int64."""
    n_cells = height * width
    words = _batch_words(seed, rng.STREAM_MULTIBLOCK_2D)
    pred_h, pred_w = multiblock_block_size(_unit_float(words[0]), pred_scale, aspect, height, width, official)
    enc_h, enc_w = multiblock_block_size(_unit_float(words[1]), enc_scale, (1.0, 1.0), height, width, official)
    inclusive = 0 if official else 1
    enc_keep = min_keep if official else min(min_keep, enc_h * enc_w - 1)
    blocks = torch.zeros((batch, num_pred + num_enc, height, width), dtype=torch.bool)
    ids = torch.zeros((batch, num_pred + num_enc, n_cells), dtype=torch.int64)
    counts = torch.zeros((batch, num_pred + num_enc), dtype=torch.int64)
    calls = multiblock_calls(height, width, num_enc, num_pred, allow_overlap, official)
    for b, sample_calls in enumerate(_sample_calls(seed, rng.STREAM_MULTIBLOCK_2D, batch, sample_offset, calls)):
        draws = _Words(sample_calls)

        def place(h: int, w: int) -> torch.Tensor:
            x0, x1, _, _ = draws.call()
            top, left = _below(x0, height - h + inclusive), _below(x1, width - w + inclusive)
            rect = torch.zeros((height, width), dtype=torch.bool)
            rect[top:top + h, left:left + w] = True
            return rect

        # targets: never constrained, so every placement keeps h·w cells; where h·w <= min_keep upstream
        # retries forever (ijepa#68) and we keep the first placement
        targets = [place(pred_h, pred_w) for _ in range(num_pred)]
        for k, rect in enumerate(targets):
            _write_block(blocks[b], ids[b], counts[b], k, rect.flatten().nonzero().flatten().tolist())
        regions = [] if allow_overlap else targets
        for e in range(num_enc):
            tries, timeout = 0, MULTIBLOCK_TIMEOUT
            while True:
                cells = place(enc_h, enc_w)
                for rect in regions[:max(len(regions) - tries, 0)]:
                    cells &= ~rect
                # unconstrained (no region left), every placement keeps enc_h·enc_w cells: accept it
                if int(cells.sum()) > enc_keep or tries >= len(regions):
                    break
                timeout -= 1
                if timeout == 0:
                    tries, timeout = tries + 1, MULTIBLOCK_TIMEOUT
            kept = cells.flatten().nonzero().flatten().tolist()
            if not official:
                _shuffle(kept, draws)
            _write_block(blocks[b], ids[b], counts[b], num_pred + e, kept)
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


def multiblock_3d_calls(frames: int, height: int, width: int, num_blocks: int, official: bool) -> int:
    """Upper bound of the Philox calls of one V-JEPA sample: the redraws and the two shuffles (fixed)."""
    return MULTIBLOCK_3D_REDRAWS * num_blocks + (0 if official else 2 * -(-frames * height * width // 4))


def multiblock_mask_3d(batch: int, frames: int, height: int, width: int, temporal_scale: tuple[float, float],
                       spatial_scale: tuple[float, float], aspect: tuple[float, float], num_blocks: int,
                       max_temporal_keep: float, official: bool, seed: int,
                       sample_offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """V-JEPA 3-D multi-block masks (SPEC.md §3), step by step. Returns blocks (B, 2, T, H, W) bool
    (0: the target, the union of the blocks; 1: the context, its complement), ids (B, 2, T·H·W) int64
    (ascending if official, else shuffled; padded with 0) and counts (B, 2) int64."""
    n_cells = frames * height * width
    t, h, w = multiblock_3d_block_size(_batch_words(seed, rng.STREAM_MULTIBLOCK_3D), temporal_scale,
                                       spatial_scale, aspect, frames, height, width, official)
    context_frames = max(1, int(frames * max_temporal_keep))
    blocks = torch.zeros((batch, 2, frames, height, width), dtype=torch.bool)
    ids = torch.zeros((batch, 2, n_cells), dtype=torch.int64)
    counts = torch.zeros((batch, 2), dtype=torch.int64)
    calls = multiblock_3d_calls(frames, height, width, num_blocks, official)
    for b, sample_calls in enumerate(_sample_calls(seed, rng.STREAM_MULTIBLOCK_3D, batch, sample_offset, calls)):
        draws = _Words(sample_calls)
        for _ in range(MULTIBLOCK_3D_REDRAWS):
            context = torch.ones((frames, height, width), dtype=torch.bool)
            for _ in range(num_blocks):
                x0, x1, x2, _ = draws.call()
                top, left, start = _below(x0, height - h + 1), _below(x1, width - w + 1), _below(x2, frames - t + 1)
                context[start:start + t, top:top + h, left:left + w] = False
            context[context_frames:] = False
            if bool(context.any()):
                break
        kept = context.flatten().nonzero().flatten().tolist()
        hidden = (~context).flatten().nonzero().flatten().tolist()
        if not official:
            _shuffle(kept, draws)
            _shuffle(hidden, draws)
        _write_block(blocks[b], ids[b], counts[b], 0, hidden)
        _write_block(blocks[b], ids[b], counts[b], 1, kept)
    return blocks, ids, counts



# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
