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

import math

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

__all__ += ["data2vec_block_mask"]

_INT32_LIMIT = 1 << 31
_DATA2VEC_MAX_CALLS = 1 << 32
_DATA2VEC_MAX_WORK = 1 << 32
# The torch references loop in Python over the cells / tokens (selection sampling is sequential) and hold
# every word of a batch: past these, a call runs for minutes or needs gigabytes.
_ORACLE_MAX_CELLS = 1 << 14
_ORACLE_MAX_WORDS = 1 << 27


def _count(value: float) -> int:
    """int(value) as fairseq; an infinite or astronomically large count (huge mask_dropout) refused."""
    if not abs(value) < 2.0**62:
        raise ValueError(f"the number of block centres from mask_prob_adjust and mask_dropout must be finite and "
                         f"< 2^62, got {value!r}")
    return int(value)


def _data2vec_counts(num_patches: int, mask_prob: float, mask_length: int, mask_prob_adjust: float,
                     inverse_mask: bool, mask_dropout: float, non_overlapping: bool) -> tuple[int, int, int]:
    """(side, centres, target) in upstream's float arithmetic (fairseq compute_block_mask_2d): side =
    √L, centres = blocks drawn (non_overlapping: tiles chosen), target = block cells after the count fix."""
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"num_patches must be a square (fairseq takes a d x d grid, d = int(L ** 0.5)), got "
                         f"{num_patches}")
    prob = 1 - mask_prob if inverse_mask else mask_prob
    if non_overlapping:
        tiles_side = math.ceil(side / mask_length)
        tiles = tiles_side * tiles_side
        centres = _count(tiles * (prob + mask_prob_adjust) * (1 + mask_dropout))
        if not 0 <= centres <= tiles:
            raise ValueError(f"non_overlapping draws int(tiles · (p + mask_prob_adjust) · (1 + mask_dropout)) = "
                             f"{centres} of the {tiles} tiles without replacement: it must be in [0, {tiles}] "
                             f"(p = {prob!r}, mask_prob_adjust = {mask_prob_adjust!r}, mask_dropout = {mask_dropout!r})")
    else:
        centres = _count(num_patches * ((prob + mask_prob_adjust) / mask_length**2) * (1 + mask_dropout))
        if centres < 0:
            raise ValueError(f"the number of block centres int(L · (p + mask_prob_adjust) / mask_length² · (1 + "
                             f"mask_dropout)) must be >= 0, got {centres} (mask_prob_adjust = {mask_prob_adjust!r})")
    return side, centres, int(num_patches * prob)


def data2vec_block_mask(batch: int, num_patches: int = 196, mask_prob: float = 0.8, mask_length: int = 3, *,
                        mask_prob_adjust: float = 0.07, inverse_mask: bool = True, require_same_masks: bool = True,
                        mask_dropout: float = 0.0, non_overlapping: bool = False, clone_batch: int = 16,
                        seed: int | None = None, generator: torch.Generator | None = None, sample_offset: int = 0,
                        device=None, backend: str = "auto") -> torch.Tensor:
    """data2vec 2.0's block mask (fairseq compute_block_mask_2d; SPEC.md §7): (B·K, L) bool, True =
    masked, K = clone_batch masks per image, row b·K + k = clone k of image b (fairseq's
    repeat_interleave order). Defaults: data2vec 2.0's image config (mask_prob 0.8, mask_length 3,
    mask_prob_adjust 0.07, inverse_mask, clone_batch 16, L = 196). inverse_mask: the blocks mark the
    visible tokens. require_same_masks: every row holds exactly int(L · p) block cells, p = 1 −
    mask_prob when inverse_mask else mask_prob (157 masked, 39 visible of 196 at the defaults).
    num_patches must be a square."""
    check_int(batch, "batch", minimum=0)
    check_int(num_patches, "num_patches", minimum=1)
    if num_patches >= _INT32_LIMIT:
        raise ValueError(f"num_patches must be < 2^31, got {num_patches}")
    check_int(mask_length, "mask_length", minimum=2)
    if mask_length >= _INT32_LIMIT:
        raise ValueError(f"mask_length must be < 2^31, got {mask_length}")
    check_int(clone_batch, "clone_batch", minimum=1)
    mask_prob = check_float(mask_prob, "mask_prob", minimum=0.0, maximum=1.0)
    mask_prob_adjust = check_float(mask_prob_adjust, "mask_prob_adjust", finite=True)
    mask_dropout = check_float(mask_dropout, "mask_dropout", minimum=0.0, finite=True)
    for name, flag in (("inverse_mask", inverse_mask), ("require_same_masks", require_same_masks),
                       ("non_overlapping", non_overlapping)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    side, centres, target = _data2vec_counts(num_patches, mask_prob, mask_length, mask_prob_adjust, inverse_mask,
                                             mask_dropout, non_overlapping)
    tiles_side = -(-side // mask_length)
    calls = reference.data2vec_calls_per_clone(tiles_side * tiles_side if non_overlapping else centres, num_patches)
    if clone_batch * calls > _DATA2VEC_MAX_CALLS:
        raise ValueError(f"clone_batch · Philox calls per clone must be <= 2^32 (counter word 0), got {clone_batch} · "
                         f"{calls}: lower clone_batch, num_patches or the number of block centres")
    check_int(sample_offset, "sample_offset", minimum=0)
    rng.check_sample_offset(sample_offset, batch)
    rows = batch * clone_batch
    block_cells = min(mask_length, side) ** 2
    if rows * (centres * block_cells + num_patches) > _DATA2VEC_MAX_WORK:
        raise ValueError(f"batch · clone_batch · (centres · min(mask_length, √L)² + num_patches) must be <= 2^32 "
                         f"(the cells written: past it a call runs for minutes), got {rows} · ({centres} · "
                         f"{block_cells} + {num_patches}); lower mask_dropout, mask_prob_adjust or the batch")
    dev = as_device(device)
    be = _backends.resolve("data2vec_block_mask", backend, dev)
    if be == "torch" and (num_patches > _ORACLE_MAX_CELLS or rows * 4 * calls > _ORACLE_MAX_WORDS):
        raise ValueError(f"backend='torch' (the eager oracle: a Python loop over the cells, every draw held) takes "
                         f"num_patches <= 2^14 and batch · clone_batch · 4 · calls <= 2^27, got num_patches = "
                         f"{num_patches}, batch · clone_batch = {rows}, calls = {calls}; use backend='cpp'")
    key = rng.resolve_seed(seed, generator)
    if be == "torch":
        return reference.data2vec_block_mask(batch, clone_batch, side, mask_length, centres, target, inverse_mask,
                                             require_same_masks, non_overlapping, key, sample_offset, dev)
    args = (batch, clone_batch, side, mask_length, centres, target, inverse_mask, require_same_masks, non_overlapping,
            rng.seed_to_i64(key), sample_offset, dev)
    if be == "cpp" and not torch.compiler.is_compiling():
        return _ops.data2vec_block_mask_native(*args)  # the catalogue op's body, without its dispatch (~35 µs)
    return getattr(torch.ops.mimkernels.data2vec_block_mask, be)(*args)


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------

__all__ += ["score_mask"]

_SCORE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def score_mask(scores: torch.Tensor, mask_ratio: float = 0.75, *, largest: bool = True, score_share: float = 1.0,
               num_masked: int | None = None, hint_pool: float = 0.0, hint_ratio: float = 0.0,
               seed: int | None = None, generator: torch.Generator | None = None, sample_offset: int = 0,
               backend: str = "auto") -> torch.Tensor:
    """Score-guided mask (AttMask, HPM; SPEC.md §8): scores (B, N) float32/float64/float16/bfloat16 ->
    (B, N) bool, True = masked, on scores' device, no gradient (scores may require grad).

    M = int(N · mask_ratio) tokens (num_masked= overrides: HPM's N − int(N · (1 − r))); G = int(M ·
    score_share) of them by score: the first G of the masking order (largest=True: descending, AttMask
    "high", HPM's hard tokens; False: ascending, AttMask "low"; equal scores by lower index, NaN above
    +inf, -0.0 == +0.0); the other M − G a uniform subset of the remaining tokens (score_share: HPM's
    rising share of hard tokens). Then AttMask's hints: int(N · hint_ratio) of the first int(N · hint_pool)
    tokens of the order (a uniform subset) unmasked (AttMask-hint: hint_pool = show_max, hint_ratio =
    show_max · mask_ratio)."""
    check_tensor(scores, "scores", ndim=2, dtypes=_SCORE_DTYPES, what="(B, N)")
    batch, tokens = scores.shape
    if tokens >= _INT32_LIMIT:
        raise ValueError(f"scores must have N < 2^31 tokens, got {tokens}")
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    if not isinstance(largest, bool):
        raise TypeError(f"largest must be a bool, got {type(largest).__name__}")
    share = check_float(score_share, "score_share", minimum=0.0, maximum=1.0)
    if num_masked is None:
        num_masked = int(tokens * ratio)
    elif check_int(num_masked, "num_masked", minimum=0) > tokens:
        raise ValueError(f"num_masked must be in [0, N] = [0, {tokens}], got {num_masked}")
    pool = int(tokens * check_float(hint_pool, "hint_pool", minimum=0.0, maximum=1.0))
    hints = int(tokens * check_float(hint_ratio, "hint_ratio", minimum=0.0, maximum=1.0))
    if hints > pool:
        raise ValueError(f"hint_ratio reveals int(N · hint_ratio) = {hints} tokens of the int(N · hint_pool) = {pool} "
                         f"first in order: hint_ratio must be <= hint_pool, got {hint_ratio!r} > {hint_pool!r}")
    check_int(sample_offset, "sample_offset", minimum=0)
    rng.check_sample_offset(sample_offset, batch)
    be = _backends.resolve("score_mask", backend, scores.device)
    if be == "torch" and tokens > _ORACLE_MAX_CELLS:
        raise ValueError(f"backend='torch' (the eager oracle: a Python loop over the tokens) takes scores with "
                         f"N <= 2^14 tokens, got {tokens}; use backend='cpp' or 'cuda'")
    key = rng.resolve_seed(seed, generator)
    guided = int(num_masked * share)
    scores = scores.detach()
    if be == "torch":
        return reference.score_mask(scores, num_masked, guided, pool, hints, largest, key, sample_offset)
    args = (scores, num_masked, guided, pool, hints, largest, rng.seed_to_i64(key), sample_offset)
    if be == "cpp" and not torch.compiler.is_compiling():
        return _ops.score_mask_native(*args)  # the catalogue op's body, without its dispatch (~35 µs)
    return getattr(torch.ops.mimkernels.score_mask, be)(*args)


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
