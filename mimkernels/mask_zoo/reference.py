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


def _lists(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, K, N) and counts (B, K) of blocks (B, K, N) bool: block k's cells first, ascending, then 0."""
    n = blocks.shape[-1]
    ids = torch.sort((~blocks).to(torch.int8), dim=-1, stable=True).indices
    counts = blocks.sum(-1)
    ids[torch.arange(n) >= counts[..., None]] = 0
    return ids, counts


def _shuffle(ids: torch.Tensor, counts: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """Lists ids (..., N) with their counts (...) and words (..., N): each list's first count entries in a
    uniformly random order, as multiblock_mask.h multiblock_shuffle: for i = 1, 2, ..., entry i swaps with
    entry j = below(word i, i + 1). Python ints list by list (the pass is sequential; a torch op per step
    would cost ~100x more per swap)."""
    rows = ids.flatten(0, -2).tolist()
    for row, n, w in zip(rows, counts.flatten().tolist(), words.flatten(0, -2).tolist()):
        for i in range(1, n):
            j = _below(w[i], i + 1)
            row[i], row[j] = row[j], row[i]
    return torch.tensor(rows, dtype=torch.int64).view(ids.shape)


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
    block), ids (B, P + E, H·W) int64 (a block's cells, ascending; context cells shuffled (_shuffle) unless
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
    ids, counts = _lists(blocks.flatten(2))
    if not official:  # context block e: word family e (word3 = 2 + e)
        words = rng.words(seed, samples.view(-1, 1), stream, height * width, word3=2 + torch.arange(num_enc))
        ids[:, num_pred:] = _shuffle(ids[:, num_pred:], counts[:, num_pred:], words)
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
    complement), ids (B, 2, T·H·W) int64 (ascending if official, else shuffled; then 0) and
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
    ids, counts = _lists(blocks.flatten(2))
    if not official:  # the target with word family 0, the context with family 1
        ids = _shuffle(ids, counts, rng.words(seed, samples.view(-1, 1), stream, frames * height * width,
                                              word3=2 + torch.arange(2)))
    return blocks, ids, counts


# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------

def floyd_pick(row, n: int, count: int, picked: int, words, cell=lambda t: t) -> None:
    """Floyd's sampling of `count` distinct items of [0, n) (0 <= count <= n < 2^31), one word each from
    the iterator `words`: for j = n − count .. n − 1, t = below(word, j + 1), and j itself when t is
    picked already. row[cell(t)] holds `picked` once item t is chosen (and must not before)."""
    for j in range(n - count, n):
        t = (next(words) * (j + 1)) >> 32
        if row[cell(t)] == picked:
            t = j
        row[cell(t)] = picked


def random_subset_row(n: int, masked: int, words) -> bytearray:
    """n bytes with `masked` ones, a uniform subset: Floyd picks the smaller of the subset and its
    complement (min(masked, n − masked) words)."""
    pick_masked = masked <= n - masked
    row = bytearray(b"\x00" if pick_masked else b"\x01") * n
    floyd_pick(row, n, masked if pick_masked else n - masked, 1 if pick_masked else 0, words)
    return row


def _bool_rows(rows: list, width: int, device) -> torch.Tensor:
    """(len(rows), width) bool from bytearrays of 0/1."""
    flat = torch.frombuffer(bytearray(b"".join(rows)), dtype=torch.uint8) if rows else torch.empty(0, dtype=torch.uint8)
    return flat.view(len(rows), width).to(device=device, dtype=torch.bool)


def tube_masked_count(height: int, width: int, mask_ratio: float) -> int:
    """VideoMAE's num_masks_per_frame = int(mask_ratio · (H·W)) in float64, truncated (the product with the
    cell count, as upstream: 0.03 · 30 · 30 would give 26, upstream's 0.03 · 900 gives 27)."""
    return int(mask_ratio * (height * width))


def tube_mask(batch: int, frames: int, height: int, width: int, masked: int, seed: int, sample_offset: int,
              device) -> torch.Tensor:
    """VideoMAE's TubeMaskingGenerator for a batch: (B, T·H·W) bool, True = masked. One frame of H·W
    cells with `masked` of them masked, a uniform subset (np.random.shuffle of a 0/1 vector upstream,
    Floyd's sampling here, stream 7, one sample at a time in plain Python), tiled over the T frames and
    flattened (t, y, x) row-major."""
    cells = height * width
    words = rng.words(seed, torch.arange(batch) + sample_offset, rng.STREAM_TUBE_MASK,
                      min(masked, cells - masked)).tolist()
    frame = _bool_rows([random_subset_row(cells, masked, iter(w)) for w in words], cells, device)
    return frame.unsqueeze(1).expand(batch, frames, cells).reshape(batch, frames * cells)


def running_cell_slots(mask_ratio: float) -> int:
    """VideoMAE v2's num_masks_per_cell = int(4 · mask_ratio) (upstream asserts 0 < it < 4)."""
    return int(4 * mask_ratio)


def running_cell_mask(batch: int, frames: int, height: int, width: int, masked_slots: int, seed: int,
                      sample_offset: int, device) -> torch.Tensor:
    """VideoMAE v2's RunningCellMaskingGenerator for a batch: (B, T·H·W) bool, True = masked.

    Upstream builds 4 maps, one per start pointer p of a 4-slot queue (masked_slots ones, then zeros);
    before frame t the pointer advances, so cell slot s = 2·(y % 2) + x % 2 of frame t reads the queue
    at (s + p + t + 1) % 4; the 2 × 2 cell is tiled over the grid. Each sample takes map
    p = np.random.randint(4) (here below(word 0, 4), stream 8)."""
    words = rng.words(seed, torch.arange(batch) + sample_offset, rng.STREAM_RUNNING_CELL_MASK, 1, device=device)
    return running_cell_maps(frames, height, width, masked_slots, device)[rng.below(words[:, 0], 4)]


def running_cell_maps(frames: int, height: int, width: int, masked_slots: int, device=None) -> torch.Tensor:
    """The 4 maps of running_cell_mask: (4, T·H·W) bool, row p = start pointer p."""
    p = torch.arange(4, device=device).view(4, 1, 1, 1)
    t = torch.arange(frames, device=device).view(1, frames, 1, 1)
    y = torch.arange(height, device=device).view(1, 1, height, 1)
    x = torch.arange(width, device=device).view(1, 1, 1, width)
    slot = 2 * (y % 2) + x % 2
    return ((slot + p + t + 1) % 4 < masked_slots).reshape(4, frames * height * width)


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------

def uniform_candidate_rows(cells: int) -> int:
    """UM-MAE's candidate list length: 4 rows per round until rows · 4 >= 2 · cells, i.e. the least
    positive multiple of 4 that is >= cells / 2."""
    return 4 * max(1, -(-cells // 8))


def uniform_keep_final(blocks: int, vis_mask_ratio: float) -> int:
    """UM-MAE's vis_final_cnt = int(vis_cnt · (1. − vis_mask_ratio)), vis_cnt = one token per block."""
    return int(blocks * (1. - vis_mask_ratio))


def uniform_mask(batch: int, height: int, width: int, keep_final: int, seed: int, sample_offset: int,
                 device) -> tuple[torch.Tensor, torch.Tensor]:
    """UM-MAE's uniform sampling and secondary masking for a batch: (mask, secondary), (B, H·W) bool each,
    one sample at a time in plain Python (the draws from one Philox tensor).

    1. mask_transform.py (regular=True): rows of a candidate list (row r keeps slot r % 4 of a 2 × 2
       block) shuffled, the first (H/2)(W/2) laid out row-major over the blocks. Here the shuffle's first
       rows by a partial Fisher-Yates: step k swaps rows k and k + below(word k, rows − k) (stream 9).
       The block's slot 2·p1 + p2 is its visible token; all others are masked.
    2. models_mae_swin.py's secondary mask: blocks − keep_final of the visible tokens, a uniform subset
       (Floyd over the blocks, the words after step 1's): `secondary` marks them (never a masked token).
    """
    half_w = width // 2
    blocks, rows = (height // 2) * half_w, uniform_candidate_rows(height * width)
    hidden = blocks - keep_final
    pick_hidden = hidden <= keep_final
    words = rng.words(seed, torch.arange(batch) + sample_offset, rng.STREAM_UNIFORM_MASK,
                      blocks + min(hidden, keep_final))
    masks, seconds = [], []
    for sample_words in words.tolist():
        draws = iter(sample_words)
        perm = [r % 4 for r in range(rows)]
        for k in range(blocks):
            j = k + ((next(draws) * (rows - k)) >> 32)
            perm[k], perm[j] = perm[j], perm[k]
        visible = [(2 * (k // half_w) + perm[k] // 2) * width + 2 * (k % half_w) + perm[k] % 2 for k in range(blocks)]
        mask, second = bytearray(b"\x01") * (height * width), bytearray(height * width)
        for token in visible:
            mask[token] = 0
            second[token] = 0 if pick_hidden else 1
        floyd_pick(second, blocks, hidden if pick_hidden else keep_final, 1 if pick_hidden else 0, draws,
                   visible.__getitem__)
        masks.append(mask)
        seconds.append(second)
    return _bool_rows(masks, height * width, device), _bool_rows(seconds, height * width, device)


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------

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
    words = rng.words(seed, samples, rng.STREAM_DATA2VEC_MASK, 4 * calls, first_call=(r % clone_batch) * calls)
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
    words = rng.words(seed, samples, rng.STREAM_SCORE_MASK, 4 * (fill_calls + -(-hint_pool // 4)))
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

