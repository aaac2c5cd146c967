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
from mimkernels.masking import _FAST, _SEED_LIMIT, _cache, _device_arg, _seed_arg

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------

__all__ += ["MultiBlockMasks", "multiblock_mask", "multiblock_mask_3d"]

_MULTIBLOCK_VARIANTS = ("fixed", "official")
_MAX_CELLS = 1 << 31       # cells of a grid
_MAX_OUTPUT = 1 << 22      # batch x blocks x cells: 32 MiB of int64 index lists (split larger batches)


class MultiBlockMasks(NamedTuple):
    """The masks of one batch from multiblock_mask (E context blocks, P targets, grid G = (H, W)) or
    multiblock_mask_3d (E = P = 1, G = (T, H, W)); N = the cells of G. Block masks: True = the cell is in
    the block (context blocks: the encoder sees it; targets: the predictor predicts it).

    context: (B, E, *G) bool. targets: (B, P, *G) bool.
    context_ids: (B, E, N) int64, the first context_counts[b, k] entries are the cells of context block k
        (ascending with variant="official", in a uniformly random order otherwise), the rest 0.
    context_counts: (B, E) int64. target_ids: (B, P, N), target_counts: (B, P), the same for the targets.
    """
    context: torch.Tensor
    targets: torch.Tensor
    context_ids: torch.Tensor
    context_counts: torch.Tensor
    target_ids: torch.Tensor
    target_counts: torch.Tensor

    def to_upstream(self, max_keep: int | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(masks_enc, masks_pred) as I-JEPA's / V-JEPA's collators return them: a list of E (and of P)
        int64 tensors (B, K), every index list cut to the batch minimum K of its kind (context: at most
        max_keep, V-JEPA's option). With variant="official" the lists are upstream's, bit for bit
        (ascending, so the cut drops the last rows / frames); otherwise the lists are in random order, so
        the cut keeps a uniformly random subset of each (no positional bias), and stay in that order
        (apply_masks gathers: the order of a list does not matter to the models). Reads the counts on
        the host: for DataLoader collators (CPU), not for a training step."""
        return (_cut_lists(self.context_ids, self.context_counts, max_keep),
                _cut_lists(self.target_ids, self.target_counts, None))


def _cut_lists(ids: torch.Tensor, counts: torch.Tensor, max_keep: int | None) -> list[torch.Tensor]:
    keep = int(counts.min()) if counts.numel() else 0
    if max_keep is not None:
        keep = min(keep, max_keep)
    return list(ids[:, :, :keep].unbind(1))


def _pair(value, name: str, *, minimum: float, maximum: float | None, strict_minimum: bool = False):
    """A (low, high) pair of finite floats in range with low <= high."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a (min, max) pair of numbers, got {value!r}")
    low, high = (check_float(v, name, minimum=minimum, maximum=maximum, strict_minimum=strict_minimum,
                             finite=True) for v in value)
    if low > high:
        raise ValueError(f"{name} must have min <= max, got {value!r}")
    return low, high


def _multiblock_common(variant: str, batch: int, sample_offset: int, sides: dict, blocks: int, device, backend: str,
                       op: str) -> tuple[bool, torch.device, str]:
    if not isinstance(variant, str) or variant not in _MULTIBLOCK_VARIANTS:
        raise ValueError(f"variant must be one of {_MULTIBLOCK_VARIANTS}, got {variant!r}")
    cells = 1
    for name, side in sides.items():
        check_int(side, name, minimum=1)
        cells *= side
    check_int(batch, "batch", minimum=0)
    if cells >= _MAX_CELLS or batch * blocks * cells > _MAX_OUTPUT:
        raise ValueError(f"{op}: {' x '.join(sides)} = {' x '.join(map(str, sides.values()))} cells for batch {batch} "
                         f"and {blocks} blocks: batch x blocks x cells must be <= 2^22 (int64 index lists; split "
                         f"the batch with sample_offset)")
    rng.check_sample_offset(sample_offset, batch)
    dev = _device_arg(device)
    return variant == "official", dev, _backends.resolve(op, backend, dev)


# The per-call fast path (a collator drawing the masks of one sample or one batch per call), as masking's:
# with the cpp backend, plain ints and no device / generator, outside torch.compile, a call whose other
# arguments were validated before (cached by value and type) calls `_C` directly.
_MULTIBLOCK_SETTINGS: dict = {}


def _settings_key(op: str, *values):
    """The cache key of a call's settings (values and their types, tuples element-wise); None when unhashable."""
    flat = []
    for v in values:
        flat.append((v, type(v), tuple(map(type, v)) if isinstance(v, tuple) else ()))
    key = (op, tuple(flat))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _fast_call(batch, seed, sample_offset, device, generator, backend) -> bool:
    return (_FAST and device is None and generator is None and (backend == "auto" or backend == "cpp")
            and type(batch) is int and type(seed) is int and type(sample_offset) is int and 0 <= seed < _SEED_LIMIT
            and 0 <= batch and 0 <= sample_offset and sample_offset + batch <= (1 << 32)
            and not torch.compiler.is_compiling())


def _run_cpu(entry: str, batch: int, setting: tuple, seed: int, sample_offset: int):
    """`_C.<entry>` on fresh CPU outputs; setting = (grid, blocks, per-op arguments)."""
    grid, blocks, args = setting
    cells = 1
    for side in grid:
        cells *= side
    out = (torch.empty((batch, blocks, *grid), dtype=torch.bool), torch.empty((batch, blocks, cells), dtype=torch.int64),
           torch.empty((batch, blocks), dtype=torch.int64))
    getattr(_native.lib, entry)(*(t.data_ptr() for t in out), batch, *args, seed, sample_offset,
                                1 if batch <= 1 else _native.cpu_threads(batch))
    return out


def _multiblock_result(blocks: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor, num_pred: int) -> MultiBlockMasks:
    return MultiBlockMasks(blocks[:, num_pred:], blocks[:, :num_pred], ids[:, num_pred:], counts[:, num_pred:],
                           ids[:, :num_pred], counts[:, :num_pred])


def multiblock_mask(batch: int, height: int = 16, width: int = 16, *,
                    enc_mask_scale: tuple[float, float] = (0.85, 1.0),
                    pred_mask_scale: tuple[float, float] = (0.15, 0.2),
                    aspect_ratio: tuple[float, float] = (0.75, 1.5), num_enc_masks: int = 1,
                    num_pred_masks: int = 4, min_keep: int = 10, allow_overlap: bool = False,
                    variant: str = "fixed", seed: int | None = None, generator: torch.Generator | None = None,
                    sample_offset: int = 0, device=None, backend: str = "auto") -> MultiBlockMasks:
    """I-JEPA's multi-block masks on a height x width patch grid (SPEC.md §2): MultiBlockMasks with
    num_enc_masks context blocks and num_pred_masks targets per sample. Defaults: I-JEPA's
    in1k_vith14_ep300.yaml (224 px, patch 14).

    Per batch, one uniform sets the targets' scale and aspect, another the context's scale (aspect 1).
    Per sample, the targets are placed at random, then each context block is placed until it keeps more
    than min_keep cells outside the targets (allow_overlap=False), dropping one target from the
    constraint after every 20 failed placements; once no target is left the placement is accepted.

    variant="official": upstream's MaskCollator exactly (facebookresearch/ijepa src/masks/multiblock.py):
    placements exclude the last row and column (ijepa#40), and `to_upstream` cuts the ascending index
    lists to the batch minimum (ijepa#60). Where upstream never returns (a block of <= min_keep cells,
    ijepa#68), this stops as the default does. variant="fixed" (default): inclusive placement bounds,
    blocks up to the whole grid; the context lists are in random order, so the batch-minimum cut of
    `to_upstream` drops a uniformly random subset; a context block that cannot keep more than min_keep
    cells is accepted once it keeps all of them.
    """
    key = _settings_key("2d", height, width, enc_mask_scale, pred_mask_scale, aspect_ratio, num_enc_masks,
                        num_pred_masks, min_keep, allow_overlap, variant)
    if _fast_call(batch, seed, sample_offset, device, generator, backend) and key in _MULTIBLOCK_SETTINGS:
        setting = _MULTIBLOCK_SETTINGS[key]
        if batch * setting[1] * height * width <= _MAX_OUTPUT:
            return _multiblock_result(*_run_cpu("multiblock_mask_cpu", batch, setting, seed, sample_offset),
                                      num_pred_masks)
    seed = _seed_arg(seed)
    check_int(num_enc_masks, "num_enc_masks", minimum=0)
    check_int(num_pred_masks, "num_pred_masks", minimum=0)
    if num_enc_masks + num_pred_masks > _MAX_BLOCKS:
        raise ValueError(f"num_enc_masks + num_pred_masks must be <= {_MAX_BLOCKS}, got {num_enc_masks} + "
                         f"{num_pred_masks}")
    check_int(min_keep, "min_keep", minimum=0)
    if not isinstance(allow_overlap, bool):
        raise TypeError(f"allow_overlap must be a bool, got {type(allow_overlap).__name__}")
    enc_scale = _pair(enc_mask_scale, "enc_mask_scale", minimum=0.0, maximum=1.0)
    pred_scale = _pair(pred_mask_scale, "pred_mask_scale", minimum=0.0, maximum=1.0)
    aspect = _pair(aspect_ratio, "aspect_ratio", minimum=0.0, maximum=_MAX_ASPECT, strict_minimum=True)
    official, dev, be = _multiblock_common(variant, batch, sample_offset, {"height": height, "width": width},
                                           num_enc_masks + num_pred_masks, device, backend, "multiblock_mask")
    min_keep = min(min_keep, height * width)
    seed_key = rng.resolve_seed(seed, generator)
    args = (batch, height, width, *enc_scale, *pred_scale, *aspect, num_enc_masks, num_pred_masks, min_keep,
            allow_overlap, official)
    if be == "torch":
        out = [t.to(dev) for t in reference.multiblock_mask(batch, height, width, enc_scale, pred_scale, aspect,
                                                            num_enc_masks, num_pred_masks, min_keep, allow_overlap,
                                                            official, seed_key, sample_offset)]
    else:
        if be == "cpp" and key is not None:
            _cache(_MULTIBLOCK_SETTINGS, key, ((height, width), num_enc_masks + num_pred_masks, args[1:]))
        out = getattr(torch.ops.mimkernels.multiblock_mask, be)(*args, rng.seed_to_i64(seed_key), sample_offset, dev)
    return _multiblock_result(*out, num_pred_masks)


def multiblock_mask_3d(batch: int, frames: int = 8, height: int = 14, width: int = 14, *,
                       spatial_scale: tuple[float, float] = (0.15, 0.15),
                       temporal_scale: tuple[float, float] = (1.0, 1.0),
                       aspect_ratio: tuple[float, float] = (0.75, 1.5), num_blocks: int = 8,
                       max_temporal_keep: float = 1.0, variant: str = "fixed", seed: int | None = None,
                       generator: torch.Generator | None = None, sample_offset: int = 0, device=None,
                       backend: str = "auto") -> MultiBlockMasks:
    """V-JEPA's 3-D multi-block masks on a frames x height x width token grid (SPEC.md §3): one
    generator of facebookresearch/jepa src/masks/multiblock3d.py. MultiBlockMasks with one target (the
    union of num_blocks blocks, one size per batch, each spanning temporal_scale of the frames) and one
    context (its complement within the first max(1, int(frames · max_temporal_keep)) frames). Defaults:
    the first generator of configs/pretrain/vitl16.yaml (16 frames / tubelet 2, 224 px / patch 16); its
    second is spatial_scale=(0.7, 0.7), num_blocks=2. A sample whose context comes out empty is redrawn,
    at most 20 times (upstream: without end), then kept.

    variant="official": upstream exactly (ascending lists; `to_upstream` cuts them to the batch minimum,
    which keeps the first frames' tokens: jepa#50). variant="fixed" (default): both lists in random
    order, so the cut keeps a uniformly random subset; blocks at least 1 x 1 (upstream's can be empty).
    """
    key = _settings_key("3d", frames, height, width, spatial_scale, temporal_scale, aspect_ratio, num_blocks,
                        max_temporal_keep, variant)
    if _fast_call(batch, seed, sample_offset, device, generator, backend) and key in _MULTIBLOCK_SETTINGS:
        setting = _MULTIBLOCK_SETTINGS[key]
        if batch * 2 * frames * height * width <= _MAX_OUTPUT:
            return _multiblock_result(*_run_cpu("multiblock_mask_3d_cpu", batch, setting, seed, sample_offset), 1)
    seed = _seed_arg(seed)
    check_int(num_blocks, "num_blocks", minimum=0)
    if num_blocks > _MAX_BLOCKS:
        raise ValueError(f"num_blocks must be <= {_MAX_BLOCKS}, got {num_blocks}")
    s_scale = _pair(spatial_scale, "spatial_scale", minimum=0.0, maximum=1.0)
    t_scale = _pair(temporal_scale, "temporal_scale", minimum=0.0, maximum=1.0)
    aspect = _pair(aspect_ratio, "aspect_ratio", minimum=0.0, maximum=_MAX_ASPECT, strict_minimum=True)
    max_temporal_keep = check_float(max_temporal_keep, "max_temporal_keep", minimum=0.0, maximum=1.0)
    official, dev, be = _multiblock_common(variant, batch, sample_offset,
                                           {"frames": frames, "height": height, "width": width}, 2, device,
                                           backend, "multiblock_mask_3d")
    seed_key = rng.resolve_seed(seed, generator)
    if be == "torch":
        out = [t.to(dev) for t in reference.multiblock_mask_3d(batch, frames, height, width, t_scale, s_scale,
                                                               aspect, num_blocks, max_temporal_keep, official,
                                                               seed_key, sample_offset)]
    else:
        args = (frames, height, width, *t_scale, *s_scale, *aspect, num_blocks, max_temporal_keep, official)
        if be == "cpp" and key is not None:
            _cache(_MULTIBLOCK_SETTINGS, key, ((frames, height, width), 2, args))
        out = getattr(torch.ops.mimkernels.multiblock_mask_3d, be)(batch, *args, rng.seed_to_i64(seed_key),
                                                                   sample_offset, dev)
    return _multiblock_result(*out, 1)


_MAX_BLOCKS = 64          # blocks per sample (upstream: 1 + 4, and 8)
_MAX_ASPECT = 1e6



# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------


# ---- data2vec 2.0 block masks (SPEC.md §7) --------------------------------------------------------


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------


# ---- mask report (SPEC.md §10) ------------------------------------------------------------------
