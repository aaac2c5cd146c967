"""The eager oracle of every mask-zoo op ("torch" backend), written step by step like the upstream
generators, with the draws of rng.md in place of numpy's / Python's random."""
from __future__ import annotations

import torch

from mimkernels import rng


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------


# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------

def _words(seed: int, samples: torch.Tensor, first_call: torch.Tensor, calls: int, stream: int) -> torch.Tensor:
    """(R, 4·calls) int64 uint32 words: row r holds the Philox calls (first_call[r] + j, samples[r], stream, 0),
    j < calls, word w of call j at column 4·j + w (samples, first_call: (R,) int64)."""
    i = first_call.unsqueeze(1) + torch.arange(calls, dtype=torch.int64, device=samples.device)
    words = torch.stack(rng.draw(seed, i, samples.unsqueeze(1), stream, device=samples.device), dim=-1)
    return words.reshape(samples.shape[0], 4 * calls)


def select_uniform(candidates: torch.Tensor, count: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """Selection sampling (Knuth's Algorithm S) in every row: `count` (R,) of the True entries of
    candidates (R, n) bool, a uniform subset of exactly that size: walking the columns in order,
    candidate p is taken when below(words[:, p], E) < t, E the candidates at columns >= p, t the count
    still to take. words: (R, n) uint32 in int64."""
    left = candidates.flip(1).cumsum(1).flip(1)              # E: candidates at columns >= p
    to_take = count.clone()
    chosen = torch.zeros_like(candidates)
    for p in range(candidates.shape[1]):
        take = candidates[:, p] & (rng.below(words[:, p], left[:, p]) < to_take)
        chosen[:, p] = take
        to_take -= take.to(torch.int64)
    return chosen


def data2vec_block_mask(batch: int, clone_batch: int, side: int, mask_length: int, centres: int,
                        target: int, inverse_mask: bool, require_same_masks: bool, non_overlapping: bool,
                        seed: int, sample_offset: int, device: torch.device) -> torch.Tensor:
    """fairseq compute_block_mask_2d for B images × K clones, step by step: (B·K, L) bool, L = side²,
    row b·K + k = clone k of image b, True = masked. `centres`: the number of block centres drawn
    (non_overlapping: of tiles chosen), `target`: the block cells every row holds after the count fix
    (require_same_masks); both computed by the front door in upstream's float arithmetic.

    Draws (rng.md stream 11): row (b, k) reads the uint32 words q of calls (k·S + q // 4, sample_offset + b),
    word q % 4, S = data2vec_calls_per_clone(...): the centres / tile choices at q < D, the count fix at
    q = 4·ceil(D / 4) + p for cell p."""
    cells = side * side
    tiles_side = -(-side // mask_length)
    rows = batch * clone_batch
    draws = tiles_side * tiles_side if non_overlapping else centres
    calls = data2vec_calls_per_clone(draws, cells)
    r = torch.arange(rows, dtype=torch.int64, device=device)
    samples = r // clone_batch + sample_offset
    words = _words(seed, samples, (r % clone_batch) * calls, calls, rng.STREAM_DATA2VEC_MASK)
    block = torch.zeros(rows, side, side, dtype=torch.bool, device=device)
    if non_overlapping:
        # multinomial over the uniform tiles without replacement: a uniform subset of `centres` tiles
        tiles = select_uniform(torch.ones(rows, tiles_side * tiles_side, dtype=torch.bool, device=device),
                               torch.full((rows,), centres, dtype=torch.int64, device=device), words[:, :draws])
        tiles = tiles.reshape(rows, tiles_side, tiles_side)
        block = tiles.repeat_interleave(mask_length, 1).repeat_interleave(mask_length, 2)[:, :side, :side]
    elif centres:
        centre = rng.below(words[:, :centres], cells)                               # randint(0, L)
        offsets = torch.arange(mask_length, dtype=torch.int64, device=device) - mask_length // 2
        top = (centre // side).unsqueeze(2) + offsets                              # (R, C, m)
        left = (centre % side).unsqueeze(2) + offsets
        top, left = top.clamp(0, side - 1), left.clamp(0, side - 1)
        cell = (top.unsqueeze(3) * side + left.unsqueeze(2)).reshape(rows, centres * mask_length**2)  # each (i, j)
        block.view(rows, cells).scatter_(1, cell, True)
    block = block.reshape(rows, cells)
    if require_same_masks:
        n = block.sum(1)
        too_many = n > target
        # unmask n - target of the block cells, or mask target - n of the others, a uniform subset
        flip = select_uniform(block == too_many.unsqueeze(1), (n - target).abs(), words[:, 4 * -(-draws // 4):])
        block = block ^ flip
    return ~block if inverse_mask else block


def data2vec_calls_per_clone(draws: int, cells: int) -> int:
    """Philox calls each clone owns: ceil(draws / 4) for the centres / tiles, ceil(cells / 4) for the fix."""
    return -(-draws // 4) + -(-cells // 4)


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------

def score_order(scores: torch.Tensor, largest: bool) -> torch.Tensor:
    """(B, N) int64: the tokens of each row in masking order: descending scores (largest=True) or
    ascending, equal scores by lower index first, NaN above +inf (first when largest, last otherwise),
    -0.0 == +0.0; compared in float64 (exact for every floating dtype)."""
    return torch.argsort(scores.detach().to(torch.float64), dim=1, descending=largest, stable=True)


def score_mask(scores: torch.Tensor, num_masked: int, num_guided: int, hint_pool: int, num_hints: int,
               largest: bool, seed: int, sample_offset: int) -> torch.Tensor:
    """(B, N) bool, True = masked, step by step: the first num_guided tokens of score_order masked, then
    num_masked - num_guided of the other tokens (a uniform subset: the random fill), then num_hints of the
    first hint_pool tokens of score_order revealed (a uniform subset: AttMask's hints).

    Draws (rng.md stream 12): sample b reads the uint32 words q of calls (q // 4, sample_offset + b),
    word q % 4: the fill at q = p for token p (selection in index order), the hints at
    q = 4·ceil(N / 4) + r for the token of rank r < hint_pool (selection in rank order)."""
    batch, n = scores.shape
    device = scores.device
    order = score_order(scores, largest)
    fill_calls = -(-n // 4)
    samples = torch.arange(batch, dtype=torch.int64, device=device) + sample_offset
    words = _words(seed, samples, torch.zeros_like(samples), fill_calls + -(-hint_pool // 4), rng.STREAM_SCORE_MASK)
    rank = torch.argsort(order, dim=1)
    mask = rank < num_guided
    fill = select_uniform(~mask, torch.full((batch,), num_masked - num_guided, dtype=torch.int64, device=device),
                          words[:, :n])
    mask |= fill
    if num_hints:
        pool = torch.ones(batch, hint_pool, dtype=torch.bool, device=device)
        hints = select_uniform(pool, torch.full((batch,), num_hints, dtype=torch.int64, device=device),
                               words[:, 4 * fill_calls:4 * fill_calls + hint_pool])
        mask.scatter_(1, order[:, :hint_pool], mask.gather(1, order[:, :hint_pool]) & ~hints)
    return mask


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
