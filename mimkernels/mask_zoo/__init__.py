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
import threading
from typing import NamedTuple

import numpy as np
import torch

from mimkernels import _backends, _library, _native, rng
from mimkernels.checks import as_device, check_float, check_int, check_tensor
from mimkernels.mask_zoo import ops as _ops  # noqa: F401  (puts the family's ops in the catalogue)
from mimkernels.mask_zoo import reference
from mimkernels.masking import _cache, _device_arg, _seed_arg

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block (SPEC.md §2, §3) ------------------------------------------------

__all__ += ["MultiBlockMasks", "multiblock_mask", "multiblock_mask_3d"]

_MULTIBLOCK_VARIANTS = ("fixed", "official")
_MAX_CELLS = 1 << 31       # cells of a grid (of a sample)
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
    if counts.numel() == 0:
        keep = 0
    elif counts.numel() <= 64 or counts.device.type != "cpu":  # a few counts: tolist + min costs least
        keep = min(map(min, counts.tolist()))
    else:  # many (B = 256): numpy's min, a sixth of tolist + min
        keep = int(counts.numpy().min())
    if max_keep is not None:
        keep = min(keep, max_keep)
    return list(ids.narrow(2, 0, keep).unbind(1))


def _pair(value, name: str, *, minimum: float, maximum: float | None, strict_minimum: bool = False):
    """A (low, high) pair of finite floats in range with low <= high."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a (min, max) pair of numbers, got {value!r}")
    low, high = (check_float(v, name, minimum=minimum, maximum=maximum, strict_minimum=strict_minimum,
                             finite=True) for v in value)
    if low > high:
        raise ValueError(f"{name} must have min <= max, got {value!r}")
    return low, high


def _grid_cells(**sides: int) -> int:
    """The cells of a grid whose sides (name=value) are ints >= 1, fewer than 2^31 in all (Philox counters
    and Floyd's draws are uint32)."""
    cells = 1
    for name, side in sides.items():
        check_int(side, name, minimum=1)
        cells *= side
    if cells >= _MAX_CELLS:
        raise ValueError(f"{' · '.join(sides)} must be < 2^31, got {' · '.join(map(str, sides.values()))}")
    return cells


def _multiblock_common(batch: int, sample_offset: int, setting: tuple, device, backend: str,
                       op: str) -> tuple[torch.device, str]:
    grid, blocks, _ = setting
    check_int(batch, "batch", minimum=0)
    if batch * blocks * math.prod(grid) > _MAX_OUTPUT:
        raise ValueError(f"{op}: {' x '.join(map(str, grid))} cells for batch {batch} and {blocks} blocks: batch x "
                         f"blocks x cells must be <= 2^22 (int64 index lists; split the batch with sample_offset)")
    rng.check_sample_offset(sample_offset, batch)
    dev = _device_arg(device)
    return dev, _backends.resolve(op, backend, dev)


def _multiblock_official(variant: str) -> bool:
    if not isinstance(variant, str) or variant not in _MULTIBLOCK_VARIANTS:
        raise ValueError(f"variant must be one of {_MULTIBLOCK_VARIANTS}, got {variant!r}")
    return variant == "official"


# The per-call fast path (a collator drawing the masks of one sample or one batch per call), as masking's:
# with the cpp backend, plain ints and no device / generator, outside torch.compile, a call whose other
# arguments were validated before (cached by value and type) calls `_C` directly.
_MULTIBLOCK_SETTINGS: dict = {}


def _settings_key(op: str, *values) -> tuple:
    """The cache key of a call's settings: the values and their types, tuples' elements' too (1 == 1.0 ==
    True as dict keys, but the checks refuse bools). Unhashable where a value is (a list): `_cached_setting`
    and `_cache` treat such a key as never cached. One score_mask call per sample pays it: ~0.4 µs."""
    types = tuple(map(type, values))
    key = (op, values, types)
    if tuple in types:  # the pairs' elements (a tuple subclass is keyed by its class and values)
        for value in values:
            if type(value) is tuple:
                key += (tuple(map(type, value)),)
    return key


def _cached_setting(table: dict, key):
    """table[key], or None when absent or unhashable."""
    try:
        return table.get(key)
    except TypeError:  # an unhashable argument: the checks will name it
        return None


def _run_cpu(entry: str, batch: int, setting: tuple, seed: int, sample_offset: int):
    """`_C.<entry>` on fresh CPU outputs; setting = (grid, blocks, per-op arguments)."""
    grid, blocks, args = setting
    cells = 1
    for side in grid:
        cells *= side
    out = (torch.empty(batch, blocks, *grid, dtype=torch.bool), torch.empty(batch, blocks, cells, dtype=torch.int64),
           torch.empty(batch, blocks, dtype=torch.int64))  # sizes as arguments: cheaper to parse than a tuple
    getattr(_native.lib, entry)(*(t.data_ptr() for t in out), batch, *args, seed, 0, sample_offset, True,
                                1 if batch <= 1 else _native.cpu_threads(batch))
    return out


def _multiblock_result(blocks: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor, num_pred: int) -> MultiBlockMasks:
    sizes = (num_pred, blocks.shape[1] - num_pred)  # split_with_sizes: half the cost of six slices (measured)
    (targets, context), (target_ids, context_ids), (target_counts, context_counts) = (
        t.split_with_sizes(sizes, 1) for t in (blocks, ids, counts))
    return MultiBlockMasks(context, targets, context_ids, context_counts, target_ids, target_counts)


class _UpstreamLists:
    """One multi-block config's lists for a collator: `(batch, seed, config, scratch) -> (masks_enc, masks_pred)`
    = `generate(batch, seed=key).to_upstream(max_keep)` bit for bit, key = seed or derive_seed(seed, config).
    With `_C` built, on the CPU: `_C.<entry>` writes the padded outputs, unpadded, into this thread's scratch (in
    `scratch`, which configs share, grown to the largest call seen; the key derived by `_C` from a (seed,
    config) pair, as for a seed tensor: rng.h resolve_key), then only the cut lists are copied out, into
    contiguous (B, K) int64 tensors: no per-call padded outputs to allocate, fault in and split. setting: the
    front door's checked settings (`_multiblock_setting`, `_multiblock_3d_setting`)."""

    def __init__(self, generate, entry: str, setting: tuple, num_pred: int, max_keep: int | None):
        grid, self.blocks, self.args = setting
        self.generate, self.entry, self.num_pred, self.max_keep = generate, entry, num_pred, max_keep
        self.num_enc, self.cells = self.blocks - num_pred, math.prod(grid)

    def __call__(self, batch: int, seed: int, config: int | None, scratch: dict):
        size = batch * self.blocks * self.cells
        if size > _MAX_OUTPUT or not _native.available():
            key = seed if config is None else rng.derive_seed(seed, config)
            return self.generate(batch, seed=key).to_upstream(self.max_keep)
        buffers = scratch.get(threading.get_ident())
        if buffers is None or buffers[0] < size or buffers[1] < batch * self.blocks:
            buffers = _grown_scratch(buffers, size, batch * self.blocks)
            scratch[threading.get_ident()] = buffers
        _, _, seed_pair, masks, ids, counts, seed_step, _ = buffers
        if config is None:
            seed_step = 0
        else:
            seed_pair[0], seed_pair[1] = rng.seed_to_i64(seed), config
        getattr(_native.lib, self.entry)(masks, ids, counts, batch, *self.args, seed, seed_step, 0, False,
                                         1 if batch <= 1 else _native.cpu_threads(batch))  # unpadded: cut below
        keep_pred, keep_enc = _native.lib.multiblock_list_widths_cpu(counts, batch, self.blocks, self.num_pred)
        if self.max_keep is not None:
            keep_enc = min(keep_enc, self.max_keep)
        # one list of a kind is allocated (B, K) as it is: unbind costs as much as the allocation
        num_pred, num_enc = self.num_pred, self.num_enc
        pred = (torch.empty(batch, keep_pred, dtype=torch.int64) if num_pred == 1 else
                torch.empty(num_pred, batch, keep_pred, dtype=torch.int64))
        enc = (torch.empty(batch, keep_enc, dtype=torch.int64) if num_enc == 1 else
               torch.empty(num_enc, batch, keep_enc, dtype=torch.int64))
        _native.lib.multiblock_cut_lists_cpu(ids, batch, self.blocks, self.cells, num_pred, keep_pred, keep_enc,
                                             pred.data_ptr(), enc.data_ptr())
        return [enc] if num_enc == 1 else list(enc.unbind(0)), [pred] if num_pred == 1 else list(pred.unbind(0))


def _grown_scratch(buffers, size: int, count_size: int) -> tuple:
    """(size, count size, the seed pair, the addresses of masks, ids, counts and the seed pair, the arrays):
    numpy arrays, kept alive by the tuple, at least as large as `buffers`'."""
    size, count_size = max(size, 1), max(count_size, 1)
    if buffers is not None:
        size, count_size = max(size, buffers[0]), max(count_size, buffers[1])
    arrays = (np.empty(size, np.uint8), np.empty(size, np.int64), np.empty(count_size, np.int64),
              np.empty(2, np.int64))
    return (size, count_size, arrays[3], *(a.ctypes.data for a in arrays), arrays)


def multiblock_mask(batch: int, height: int = 16, width: int = 16, *,
                    enc_mask_scale: tuple[float, float] = (0.85, 1.0),
                    pred_mask_scale: tuple[float, float] = (0.15, 0.2),
                    aspect_ratio: tuple[float, float] = (0.75, 1.5), num_enc_masks: int = 1,
                    num_pred_masks: int = 4, min_keep: int = 10, allow_overlap: bool = False,
                    variant: str = "fixed", seed: int | torch.Tensor | None = None,
                    generator: torch.Generator | None = None, sample_offset: int = 0, device=None,
                    backend: str = "auto") -> MultiBlockMasks:
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
    setting = (_cached_setting(_MULTIBLOCK_SETTINGS, key)
               if _backends.cpu_fast_path(batch, seed, sample_offset, device, generator, backend) else None)
    if setting is not None:
        if batch * setting[1] * height * width <= _MAX_OUTPUT:
            return _multiblock_result(*_run_cpu("multiblock_mask_cpu", batch, setting, seed, sample_offset),
                                      num_pred_masks)
    seed = _seed_arg(seed)
    setting = _multiblock_setting(height, width, enc_mask_scale, pred_mask_scale, aspect_ratio, num_enc_masks,
                                  num_pred_masks, min_keep, allow_overlap, variant)
    dev, be = _multiblock_common(batch, sample_offset, setting, device, backend, "multiblock_mask")
    seed_key, seed_step = rng.resolve_key(seed, generator, dev)
    args = setting[2]
    if be == "torch":
        height, width, e0, e1, p0, p1, a0, a1, num_enc, num_pred, keep, overlap, official = args
        out = [t.to(dev) for t in reference.multiblock_mask(batch, height, width, (e0, e1), (p0, p1), (a0, a1), num_enc,
                                                            num_pred, keep, overlap, official,
                                                            rng.reference_key(seed_key, seed_step, on_host=True),
                                                            sample_offset)]
    else:
        if be == "cpp" and not torch.compiler.is_compiling():
            _cache(_MULTIBLOCK_SETTINGS, key, setting)
        out = getattr(torch.ops.mimkernels.multiblock_mask, be)(batch, *args, seed_key, seed_step, sample_offset, dev)
    return _multiblock_result(*out, num_pred_masks)


def _multiblock_setting(height, width, enc_mask_scale, pred_mask_scale, aspect_ratio, num_enc_masks, num_pred_masks,
                        min_keep, allow_overlap, variant) -> tuple:
    """multiblock_mask's settings checked: (grid, blocks per sample, `_C` arguments after batch)."""
    official = _multiblock_official(variant)
    cells = _grid_cells(height=height, width=width)
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
    return ((height, width), num_enc_masks + num_pred_masks,
            (height, width, *enc_scale, *pred_scale, *aspect, num_enc_masks, num_pred_masks, min(min_keep, cells),
             allow_overlap, official))


def multiblock_mask_3d(batch: int, frames: int = 8, height: int = 14, width: int = 14, *,
                       spatial_scale: tuple[float, float] = (0.15, 0.15),
                       temporal_scale: tuple[float, float] = (1.0, 1.0),
                       aspect_ratio: tuple[float, float] = (0.75, 1.5), num_blocks: int = 8,
                       max_temporal_keep: float = 1.0, variant: str = "fixed", seed: int | torch.Tensor | None = None,
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
    setting = (_cached_setting(_MULTIBLOCK_SETTINGS, key)
               if _backends.cpu_fast_path(batch, seed, sample_offset, device, generator, backend) else None)
    if setting is not None:
        if batch * 2 * frames * height * width <= _MAX_OUTPUT:
            return _multiblock_result(*_run_cpu("multiblock_mask_3d_cpu", batch, setting, seed, sample_offset), 1)
    seed = _seed_arg(seed)
    setting = _multiblock_3d_setting(frames, height, width, spatial_scale, temporal_scale, aspect_ratio, num_blocks,
                                     max_temporal_keep, variant)
    dev, be = _multiblock_common(batch, sample_offset, setting, device, backend, "multiblock_mask_3d")
    seed_key, seed_step = rng.resolve_key(seed, generator, dev)
    args = setting[2]
    if be == "torch":
        frames, height, width, t0, t1, s0, s1, a0, a1, num_blocks, max_temporal_keep, official = args
        out = [t.to(dev) for t in reference.multiblock_mask_3d(batch, frames, height, width, (t0, t1), (s0, s1),
                                                               (a0, a1), num_blocks, max_temporal_keep, official,
                                                               rng.reference_key(seed_key, seed_step, on_host=True),
                                                               sample_offset)]
    else:
        if be == "cpp" and not torch.compiler.is_compiling():
            _cache(_MULTIBLOCK_SETTINGS, key, setting)
        out = getattr(torch.ops.mimkernels.multiblock_mask_3d, be)(batch, *args, seed_key, seed_step, sample_offset,
                                                                   dev)
    return _multiblock_result(*out, 1)


def _multiblock_3d_setting(frames, height, width, spatial_scale, temporal_scale, aspect_ratio, num_blocks,
                           max_temporal_keep, variant) -> tuple:
    """multiblock_mask_3d's settings checked: (grid, blocks per sample, `_C` arguments after batch)."""
    official = _multiblock_official(variant)
    _grid_cells(frames=frames, height=height, width=width)
    check_int(num_blocks, "num_blocks", minimum=0)
    if num_blocks > _MAX_BLOCKS:
        raise ValueError(f"num_blocks must be <= {_MAX_BLOCKS}, got {num_blocks}")
    s_scale = _pair(spatial_scale, "spatial_scale", minimum=0.0, maximum=1.0)
    t_scale = _pair(temporal_scale, "temporal_scale", minimum=0.0, maximum=1.0)
    aspect = _pair(aspect_ratio, "aspect_ratio", minimum=0.0, maximum=_MAX_ASPECT, strict_minimum=True)
    max_temporal_keep = check_float(max_temporal_keep, "max_temporal_keep", minimum=0.0, maximum=1.0)
    return ((frames, height, width), 2,
            (frames, height, width, *t_scale, *s_scale, *aspect, num_blocks, max_temporal_keep, official))


_MAX_BLOCKS = 64          # blocks per sample (upstream: 1 + 4, and 8)
_MAX_ASPECT = 1e6



# ---- VideoMAE tube and running cell (SPEC.md §4, §5) ---------------------------------------------
# A front door checks its arguments once per setting (cached, as masking's simmim_mask / block_mask): a
# DataLoader transform calling it once per video with the same sizes pays a dict lookup, then `_C`.
__all__ += ["tube_mask", "running_cell_mask", "uniform_mask"]

_VIDEO_SETTINGS: dict = {}


def _settled(key, check):
    """The validated, derived setting of `key` (the arguments with their types), running `check` once."""
    setting = _VIDEO_SETTINGS.get(key)
    if setting is None:
        setting = check()
        _cache(_VIDEO_SETTINGS, key, setting)
    return setting


def _rng_args(batch, seed, generator, sample_offset, device, op: str, backend: str):
    """(device, backend, key, seed tensor or None: rng.resolve_key) of a random mask-zoo op, checked."""
    seed = _seed_arg(seed)
    check_int(batch, "batch", minimum=0)
    rng.check_sample_offset(sample_offset, batch)
    dev = _device_arg(device)
    be = _backends.resolve(op, backend, dev)
    return (dev, be, *rng.resolve_key(seed, generator, dev))




def _tube_setting(frames, height, width, mask_ratio) -> tuple[int, int, int]:
    _grid_cells(frames=frames, height=height, width=width)
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    return frames, height * width, reference.tube_masked_count(height, width, ratio)


def tube_mask(batch: int, frames: int = 8, height: int = 14, width: int = 14, mask_ratio: float = 0.9, *,
              seed: int | torch.Tensor | None = None, generator: torch.Generator | None = None, sample_offset: int = 0,
              device=None, backend: str = "auto") -> torch.Tensor:
    """VideoMAE's tube mask: (B, frames·height·width) bool, True = masked (SPEC.md §4).

    Per video one spatial mask of int(mask_ratio · height·width) cells (a uniform subset), the same in
    every frame, flattened (t, y, x) row-major as VideoMAE's TubeMaskingGenerator; `.view(B, frames,
    height, width)` for the grid. frames is VideoMAE's window_size[0] = num_frames // tubelet_size
    (defaults: 16 frames, tubelet 2, 224 / 16: 8 × 14 × 14, ratio 0.9). mask_ratio in [0, 1]."""
    key_args = (frames, type(frames), height, type(height), width, type(width), mask_ratio, type(mask_ratio))
    if _backends.cpu_fast_path(batch, seed, sample_offset, device, generator, backend):
        frames_, cells, masked = _settled(("tube",) + key_args,
                                          lambda: _tube_setting(frames, height, width, mask_ratio))
        out = torch.empty((batch, frames_ * cells), dtype=torch.bool)
        _native.lib.tube_mask_cpu(out.data_ptr(), batch, frames_, cells, masked, seed, 0, sample_offset,
                                  1 if batch <= 1 else _native.cpu_threads(batch))
        return out
    frames, cells, masked = _tube_setting(frames, height, width, mask_ratio)
    dev, be, key, seed_step = _rng_args(batch, seed, generator, sample_offset, device, "tube_mask", backend)
    if be == "torch":
        return reference.tube_mask(batch, frames, height, width, masked, rng.reference_key(key, seed_step, on_host=True),
                                   sample_offset, dev)
    return getattr(torch.ops.mimkernels.tube_mask, be)(batch, frames, cells, masked, key, seed_step, sample_offset,
                                                        dev)


def _running_cell_setting(frames, height, width, mask_ratio) -> tuple[int, int, int, int]:
    _grid_cells(frames=frames, height=height, width=width)
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    slots = reference.running_cell_slots(ratio)
    if not 0 < slots < 4:
        raise ValueError(f"mask_ratio must give 1, 2 or 3 masked slots of the 2 x 2 cell (int(4 · mask_ratio), "
                         f"VideoMAE v2 asserts it): mask_ratio in [0.25, 1), got {mask_ratio!r}")
    return frames, height, width, slots


def running_cell_mask(batch: int, frames: int = 8, height: int = 14, width: int = 14, mask_ratio: float = 0.5, *,
                      seed: int | torch.Tensor | None = None, generator: torch.Generator | None = None,
                      sample_offset: int = 0, device=None, backend: str = "auto") -> torch.Tensor:
    """VideoMAE v2's running-cell mask (its decoder mask): (B, frames·height·width) bool, True = masked
    (dropped from the decoder's targets) (SPEC.md §5).

    A 2 × 2 cell with int(4 · mask_ratio) masked slots, tiled over the grid; the masked slots rotate by
    one per frame; each sample starts at one of the 4 phases (uniform). Flattened (t, y, x) row-major as
    VideoMAE v2's engine flattens it; odd height / width: the cell pattern continues over the last
    row / column (upstream's map would be 2·(H // 2) × 2·(W // 2), SPEC.md §5). mask_ratio in
    [0.25, 1) (VideoMAE v2 uses 0.5)."""
    key_args = (frames, type(frames), height, type(height), width, type(width), mask_ratio, type(mask_ratio))
    if _backends.cpu_fast_path(batch, seed, sample_offset, device, generator, backend):
        setting = _settled(("running_cell",) + key_args,
                           lambda: _running_cell_setting(frames, height, width, mask_ratio))
        out = torch.empty((batch, setting[0] * setting[1] * setting[2]), dtype=torch.bool)
        _native.lib.running_cell_mask_cpu(out.data_ptr(), batch, *setting, seed, 0, sample_offset,
                                          1 if batch <= 1 else _native.cpu_threads(batch))
        return out
    frames, height, width, slots = _running_cell_setting(frames, height, width, mask_ratio)
    dev, be, key, seed_step = _rng_args(batch, seed, generator, sample_offset, device, "running_cell_mask", backend)
    if be == "torch":
        return reference.running_cell_mask(batch, frames, height, width, slots,
                                           rng.reference_key(key, seed_step), sample_offset, dev)
    return getattr(torch.ops.mimkernels.running_cell_mask, be)(batch, frames, height, width, slots, key, seed_step,
                                                                sample_offset, dev)


# ---- UM-MAE uniform masking (SPEC.md §6) ---------------------------------------------------------

def _uniform_setting(height, width, vis_mask_ratio) -> tuple[int, int, int]:
    _grid_cells(height=height, width=width)
    if height % 2 or width % 2:
        raise ValueError(f"height and width must be even (2 x 2 blocks, as UM-MAE's rearrange requires), "
                         f"got {height} x {width}")
    ratio = check_float(vis_mask_ratio, "vis_mask_ratio", minimum=0.0, maximum=1.0)
    return height, width, reference.uniform_keep_final((height // 2) * (width // 2), ratio)


def uniform_mask(batch: int, height: int = 16, width: int = 16, vis_mask_ratio: float = 0.25, *,
                 seed: int | torch.Tensor | None = None, generator: torch.Generator | None = None,
                 sample_offset: int = 0, device=None, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """UM-MAE's uniform masking: (mask, secondary), (B, height·width) bool each, True = masked
    (SPEC.md §6).

    mask: one visible token per 2 × 2 block (mask ratio 0.75), which of the 4 drawn as UM-MAE's
    mask_transform.py (regular=True) draws it: its loader output, flattened row-major.
    secondary: the visible tokens UM-MAE's model masks in its second phase, blocks −
    int(blocks · (1 − vis_mask_ratio)) of them, a uniform subset (never a token of `mask`): the model's
    new_mask is `mask | secondary`. Defaults: UM-MAE's pre-training recipe (256 / 16: 16 × 16,
    vis_mask_ratio 0.25). height and width even; vis_mask_ratio in [0, 1]."""
    key_args = (height, type(height), width, type(width), vis_mask_ratio, type(vis_mask_ratio))
    if _backends.cpu_fast_path(batch, seed, sample_offset, device, generator, backend):
        setting = _settled(("uniform",) + key_args, lambda: _uniform_setting(height, width, vis_mask_ratio))
        mask = torch.empty((batch, setting[0] * setting[1]), dtype=torch.bool)
        secondary = torch.empty((batch, setting[0] * setting[1]), dtype=torch.bool)
        _native.lib.uniform_mask_cpu(mask.data_ptr(), secondary.data_ptr(), batch, *setting, seed, 0, sample_offset,
                                     1 if batch <= 1 else _native.cpu_threads(batch))
        return mask, secondary
    height, width, keep_final = _uniform_setting(height, width, vis_mask_ratio)
    dev, be, key, seed_step = _rng_args(batch, seed, generator, sample_offset, device, "uniform_mask", backend)
    if be == "torch":
        return reference.uniform_mask(batch, height, width, keep_final, rng.reference_key(key, seed_step, on_host=True),
                                      sample_offset, dev)
    return tuple(getattr(torch.ops.mimkernels.uniform_mask, be)(batch, height, width, keep_final, key, seed_step,
                                                                 sample_offset, dev))


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
                        seed: int | torch.Tensor | None = None, generator: torch.Generator | None = None,
                        sample_offset: int = 0, device=None, backend: str = "auto") -> torch.Tensor:
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
    key, seed_step = rng.resolve_key(seed, generator, dev)
    if be == "torch":
        return reference.data2vec_block_mask(batch, clone_batch, side, mask_length, centres, target, inverse_mask,
                                             require_same_masks, non_overlapping,
                                             rng.reference_key(key, seed_step), sample_offset, dev)
    args = (batch, clone_batch, side, mask_length, centres, target, inverse_mask, require_same_masks, non_overlapping,
            key, seed_step, sample_offset, dev)
    return _library.call("data2vec_block_mask", be, *args)


# ---- score-guided masks (SPEC.md §8) --------------------------------------------------------------

__all__ += ["score_mask"]

_SCORE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# The per-call fast path, as the multi-block masks': a contiguous float32 / float64 CPU tensor whose settings
# (N, dtype and the other arguments, by value and type) were validated before goes straight to `_C`.
_SCORE_SETTINGS: dict = {}


def score_mask(scores: torch.Tensor, mask_ratio: float = 0.75, *, largest: bool = True, score_share: float = 1.0,
               num_masked: int | None = None, hint_pool: float = 0.0, hint_ratio: float = 0.0,
               seed: int | torch.Tensor | None = None, generator: torch.Generator | None = None,
               sample_offset: int = 0, backend: str = "auto") -> torch.Tensor:
    """Score-guided mask (AttMask, HPM; SPEC.md §8): scores (B, N) float32/float64/float16/bfloat16 ->
    (B, N) bool, True = masked, on scores' device, no gradient (scores may require grad).

    M = int(N · mask_ratio) tokens (num_masked= overrides: HPM's N − int(N · (1 − r))); G = int(M ·
    score_share) of them by score: the first G of the masking order (largest=True: descending, AttMask
    "high", HPM's hard tokens; False: ascending, AttMask "low"; equal scores by lower index, NaN above
    +inf, -0.0 == +0.0); the other M − G a uniform subset of the remaining tokens (score_share: HPM's
    rising share of hard tokens). Then AttMask's hints: int(N · hint_ratio) of the first int(N · hint_pool)
    tokens of the order (a uniform subset) unmasked (AttMask-hint: hint_pool = show_max, hint_ratio =
    show_max · mask_ratio)."""
    if type(scores) is torch.Tensor and scores.is_cpu and scores.dim() == 2 and scores.is_contiguous():
        settings_key = _settings_key("score", scores.shape[1], scores.dtype, mask_ratio, largest, score_share,
                                     num_masked, hint_pool, hint_ratio)
        setting = _cached_setting(_SCORE_SETTINGS, settings_key)
        batch = scores.shape[0]
        if setting is not None and _backends.cpu_fast_path(batch, seed, sample_offset, None, generator, backend):
            out = torch.empty_like(scores, dtype=torch.bool)  # contiguous like scores; half torch.empty(shape)'s cost
            _native.lib.score_mask_cpu(out.data_ptr(), scores.data_ptr(), setting[0], batch, *setting[1], seed, 0,
                                       sample_offset, 1 if batch <= 1 else _native.cpu_threads(batch))
            return out
    else:
        settings_key = None
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
    key, seed_step = rng.resolve_key(seed, generator, scores.device)
    guided = int(num_masked * share)
    scores = scores.detach()
    if be == "torch":
        return reference.score_mask(scores, num_masked, guided, pool, hints, largest,
                                    rng.reference_key(key, seed_step), sample_offset)
    if be == "cpp" and settings_key is not None and scores.dtype in (torch.float32, torch.float64):
        _cache(_SCORE_SETTINGS, settings_key, (scores.dtype == torch.float64, (tokens, num_masked, guided, pool, hints,
                                                                                largest)))
    args = (scores, num_masked, guided, pool, hints, largest, key, seed_step, sample_offset)
    return _library.call("score_mask", be, *args)


# ---- DINOv2 / DINOv3 collate masks (SPEC.md §9) ---------------------------------------------------
from mimkernels.masking import check_aspects  # the block mask's aspect bounds, also DINO's

__all__ += ["dino_collate_masks", "DinoMasks"]

_DINO_VERSIONS = ("v2", "v3")
# Rows of a collate: sample counters (word 1) and the slot index of a shuffle key are 32-bit.
_DINO_MAX_BATCH = 1 << 31
# Cells of a mask: below 2^31 (block_mask's sides and counts); the outputs hold B·N cells, and B·N is refused
# past 2^40 (a terabyte of bool) rather than allocated.
_DINO_MAX_CELLS = 1 << 31
_DINO_MAX_TOTAL = 1 << 40


class DinoMasks(NamedTuple):
    """dino_collate_masks' outputs, named as the keys of upstream's collate dict (SPEC.md §9)."""
    collated_masks: torch.Tensor      # (B, N) bool, True = masked
    mask_indices_list: torch.Tensor   # (upperbound,) int64: flat indices of the masked tokens, then 0
    masks_weight: torch.Tensor        # (upperbound,) float32: 1 / (masked tokens of the row), then 0
    n_masked_patches: torch.Tensor    # (1,) int64: the valid length of the two lists

    @property
    def upperbound(self) -> int:
        """Upstream's `upperbound`, Σ int(N · p_{i+1}) over the masked strata: the lists' length."""
        return self.mask_indices_list.shape[0]


def _check_ratio_pair(mask_ratio_min_max) -> tuple[float, float]:
    if not isinstance(mask_ratio_min_max, (tuple, list)) or len(mask_ratio_min_max) != 2:
        raise TypeError(f"mask_ratio_min_max must be a pair (min, max) of floats, got {mask_ratio_min_max!r}")
    lo = check_float(mask_ratio_min_max[0], "mask_ratio_min_max[0]", minimum=0.0, maximum=1.0)
    hi = check_float(mask_ratio_min_max[1], "mask_ratio_min_max[1]", minimum=0.0, maximum=1.0)
    if lo > hi:
        raise ValueError(f"mask_ratio_min_max must have min <= max, got {mask_ratio_min_max!r}")
    return lo, hi


# The strata of each setting on each GPU (a few floats): copied there once, so that later calls copy nothing.
_DINO_STRATA: dict = {}


@torch.compiler.assume_constant_result  # a function of the settings: torch.compile holds its result as a constant
def _dino_strata(cells: int, n_masked: int, bounds: tuple[float, float], dev: torch.device) -> tuple[torch.Tensor, int]:
    """reference.dino_strata with the strata on `dev`: upstream's CPU linspace (its bits are the host's), kept on a
    GPU after the first call of a setting, so that a later call (a captured CUDA graph) copies nothing to it."""
    if dev.type != "cuda":
        return reference.dino_strata(cells, n_masked, bounds)
    key = (cells, n_masked, bounds, dev.index if dev.index is not None else torch.cuda.current_device())
    strata = _DINO_STRATA.get(key)
    if strata is None:
        probs, upperbound = reference.dino_strata(cells, n_masked, bounds)
        strata = (probs.to(dev), upperbound)
        _cache(_DINO_STRATA, key, strata)
    return strata


def dino_collate_masks(batch: int, height: int = 16, width: int = 16, *, mask_ratio_min_max=(0.1, 0.5),
                       mask_probability: float = 0.5, min_num_patches: int = 4, max_num_patches: int | None = None,
                       min_aspect: float = 0.3, max_aspect: float | None = None, version: str = "v2",
                       random_circular_shift: bool = False, seed: int | torch.Tensor | None = None,
                       generator: torch.Generator | None = None, device=None, backend: str = "auto") -> DinoMasks:
    """The iBOT masks of DINOv2's / DINOv3's collate_data_and_cast for `batch` masks (upstream's B: global
    crops x samples) on a height x width patch grid (N = height·width): int(B · mask_probability) masks ask
    for stratified counts over linspace(*mask_ratio_min_max, n + 1) (v2: int(N · U(p_i, p_{i+1})); v3:
    int(N · p_{i+1}), completed to exactly that count; v3's random_circular_shift rolls them), the others
    are empty; the rows are shuffled. The masks are DINOv2's MaskingGenerator (the unilm block mask with
    min_num_patches=4, max_num_patches = N // 2 when None: upstream's 0.5·N). Returns DinoMasks
    (collated_masks (B, N) bool, mask_indices_list and masks_weight padded to upperbound, n_masked_patches
    (1,); `.upperbound` their length): no host sync, no data-dependent shape (SPEC.md §9)."""
    check_int(batch, "batch", minimum=0)
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    cells = height * width
    if batch >= _DINO_MAX_BATCH or cells >= _DINO_MAX_CELLS or batch * cells >= _DINO_MAX_TOTAL:
        raise ValueError(f"batch must be < 2^31, height * width < 2^31 and batch * height * width < 2^40, got "
                         f"batch={batch}, height={height}, width={width}")
    lo, hi = _check_ratio_pair(mask_ratio_min_max)
    probability = check_float(mask_probability, "mask_probability", minimum=0.0, maximum=1.0)
    check_int(min_num_patches, "min_num_patches", minimum=0)
    max_num_patches = int(0.5 * cells) if max_num_patches is None else check_int(max_num_patches, "max_num_patches",
                                                                                minimum=1)
    min_aspect, max_aspect = check_aspects(min_aspect, max_aspect)
    if version not in _DINO_VERSIONS:
        raise ValueError(f"version must be one of {_DINO_VERSIONS}, got {version!r}")
    if not isinstance(random_circular_shift, bool):
        raise TypeError(f"random_circular_shift must be a bool, got {type(random_circular_shift).__name__}")
    if random_circular_shift and version != "v3":
        raise ValueError("random_circular_shift is DINOv3's (version='v3'); DINOv2's collate has no shift")
    dev = as_device(device)
    be = _backends.resolve("dino_collate_masks", backend, dev)
    key, seed_step = rng.resolve_key(seed, generator, dev)
    n_masked = int(batch * probability)
    probs, upperbound = _dino_strata(cells, n_masked, (lo, hi), dev)
    args = (batch, n_masked, height, width, min_num_patches, max_num_patches, math.log(min_aspect),
            math.log(max_aspect), version == "v3", random_circular_shift, key, seed_step)
    if be == "torch":
        masks = _ops.dino_collate_masks_reference(probs, *args)
        return DinoMasks(masks, *reference.dino_index_lists(masks, upperbound))
    masks = _library.call("dino_collate_masks", be, probs, *args)
    if be == "cpp" and not torch.compiler.is_compiling():  # the lists in one C++ pass
        return DinoMasks(masks, *_ops.dino_index_lists_native(masks, upperbound))
    return DinoMasks(masks, *reference.dino_index_lists(masks, upperbound))


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

    def save_heatmap(self, path, title: str = "", what: str = "masked") -> None:
        """A PNG: the coverage heatmap (one panel per frame for 3-D masks; the colour scale from 0 to the
        largest coverage) and the histogram of masked cells per mask; `what` names what a True cell means.
        Needs matplotlib (the [train] extra)."""
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
            ax.set_title(f"frame {t}" if len(frames) > 1 else f"P({what}) per position", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(image, ax=axes[0, :len(frames)].tolist(), fraction=0.04)
        hist = axes[0, -1]
        hist.bar(range(len(self.count_histogram)), self.count_histogram.numpy(), width=1.0)
        hist.set_title(f"{what} cells per mask", fontsize=8)
        seen = self.count_histogram.nonzero().flatten().tolist() or [0]
        hist.set_xlim(seen[0] - 2, seen[-1] + 2)
        s = self.summary()
        fig.suptitle(f"{title}  ({s['masks']} masks; {what} {s['masked_fraction_mean']:.3f}, regions "
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

