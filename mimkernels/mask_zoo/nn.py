"""The mask zoo's modules and DataLoader collators (re-exported by mimkernels.nn)."""
from __future__ import annotations

import functools
import os
import threading
from typing import Callable

import numpy as np
import torch
from torch import nn

from mimkernels import _native, rng
from mimkernels.mask_zoo import (_multiblock_3d_setting, _multiblock_setting, _running_cell_setting, _tube_setting,
                                 _uniform_setting, _UpstreamLists, dino_collate_masks,
                                 multiblock_mask, multiblock_mask_3d, reference, running_cell_mask, tube_mask,
                                 uniform_mask)
from mimkernels.masking import MaskCollator

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------

__all__ += ["MultiBlockMaskCollator", "MultiBlock3DMaskCollator"]


def _grid(size, patch_size: int, name: str) -> tuple[int, int]:
    size = size if isinstance(size, tuple) else (size, size)
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
        raise TypeError(f"{name} must be an int or a pair of ints, got {size!r}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be an int >= 1, got {patch_size!r}")
    return size[0] // patch_size, size[1] // patch_size


class _UpstreamListsCollator(MaskCollator):
    """A collator whose masks are upstream's index lists: `masks(batch, seed) -> (masks_enc, masks_pred)` (its
    mask_fn), one `_UpstreamLists` per mask config (they share a per-thread scratch). With _seed_per_config,
    config k draws with derive_seed(batch seed, k), else with the batch seed."""
    _seed_per_config = False

    def __init__(self, configs: list, seed: int, collate_fn: Callable | None):
        self._configs, self._scratch = configs, {}
        super().__init__(self.masks, seed, collate_fn)

    def __getstate__(self):  # a spawned worker unpickles a copy: it makes its own scratch
        return {**self.__dict__, "_scratch": {}}

    def masks(self, batch: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(masks_enc, masks_pred) of one batch: lists of (batch, K) int64 tensors (MultiBlockMasks.to_upstream)."""
        seed = rng.resolve_seed(seed)  # an int, mod 2^64, as the front doors take it
        if len(self._configs) == 1 and not self._seed_per_config:
            return self._configs[0](batch, seed, None, self._scratch)
        masks_enc, masks_pred = [], []
        for k, lists in enumerate(self._configs):
            enc, pred = lists(batch, seed, k if self._seed_per_config else None, self._scratch)
            masks_enc += enc
            masks_pred += pred
        return masks_enc, masks_pred

    def __call__(self, samples: list):
        collated, (masks_enc, masks_pred) = super().__call__(samples)
        return collated, masks_enc, masks_pred


class MultiBlockMaskCollator(_UpstreamListsCollator):
    """I-JEPA's collate_fn: returns (collated batch, masks_enc, masks_pred) as ijepa's train loop (and
    lightly's IJEPAMaskCollator) gives them: lists of nenc and npred int64 tensors (B, K)
    (MultiBlockMasks.to_upstream; `masks(batch, seed)` alone gives the two lists). The constructor takes
    upstream's arguments and defaults (ijepa src/masks/multiblock.py MaskCollator); I-JEPA's ViT-H/14
    config is patch_size=14, enc_mask_scale=(0.85, 1.0), pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75,
    1.5), npred=4, min_keep=10. Masks from multiblock_mask(..., variant=variant), seeded as
    masking.MaskCollator seeds (seed, epoch, rank, batch index: call set_epoch each epoch), so they do not
    depend on the number of workers."""

    def __init__(self, input_size=(224, 224), patch_size: int = 16, enc_mask_scale=(0.2, 0.8),
                 pred_mask_scale=(0.2, 0.8), aspect_ratio=(0.3, 3.0), nenc: int = 1, npred: int = 2,
                 min_keep: int = 4, allow_overlap: bool = False, *, variant: str = "fixed", seed: int = 0,
                 collate_fn: Callable | None = None):
        height, width = _grid(input_size, patch_size, "input_size")
        settings = (height, width, enc_mask_scale, pred_mask_scale, aspect_ratio, nenc, npred, min_keep,
                    allow_overlap, variant)
        generate = functools.partial(multiblock_mask, height=height, width=width, enc_mask_scale=enc_mask_scale,
                                     pred_mask_scale=pred_mask_scale, aspect_ratio=aspect_ratio, num_enc_masks=nenc,
                                     num_pred_masks=npred, min_keep=min_keep, allow_overlap=allow_overlap,
                                     variant=variant)
        # _multiblock_setting: the arguments' errors at construction, not in a worker
        super().__init__([_UpstreamLists(generate, "multiblock_mask_cpu", _multiblock_setting(*settings), npred, None)],
                         seed, collate_fn)


class MultiBlock3DMaskCollator(_UpstreamListsCollator):
    """V-JEPA's collate_fn (jepa src/masks/multiblock3d.py MaskCollator): returns (collated batch,
    masks_enc, masks_pred), one (B, K) int64 tensor per mask config in each list (`masks(batch, seed)`
    alone gives the two lists). cfgs_mask: dicts with upstream's keys (spatial_scale, temporal_scale,
    aspect_ratio, num_blocks, max_temporal_keep, max_keep), e.g. configs/pretrain/vitl16.yaml's two.
    Config k draws with derive_seed(batch seed, k); batch seeds as masking.MaskCollator's."""
    _seed_per_config = True

    def __init__(self, cfgs_mask, crop_size=(224, 224), num_frames: int = 16, patch_size: int = 16,
                 tubelet_size: int = 2, *, variant: str = "fixed", seed: int = 0, collate_fn: Callable | None = None):
        height, width = _grid(crop_size, patch_size, "crop_size")
        if isinstance(tubelet_size, bool) or not isinstance(tubelet_size, int) or tubelet_size < 1:
            raise ValueError(f"tubelet_size must be an int >= 1, got {tubelet_size!r}")
        frames = num_frames // tubelet_size
        configs = []
        for cfg in cfgs_mask:
            settings = dict(frames=frames, height=height, width=width, spatial_scale=tuple(cfg.get("spatial_scale")),
                            temporal_scale=tuple(cfg.get("temporal_scale", (1.0, 1.0))),
                            aspect_ratio=tuple(cfg.get("aspect_ratio")), num_blocks=cfg.get("num_blocks"),
                            max_temporal_keep=cfg.get("max_temporal_keep", 1.0), variant=variant)
            configs.append(_UpstreamLists(functools.partial(multiblock_mask_3d, **settings), "multiblock_mask_3d_cpu",
                                          _multiblock_3d_setting(**settings), 1, cfg.get("max_keep", None)))
        super().__init__(configs, seed, collate_fn)


# ---- VideoMAE tube and running cell ---------------------------------------------------------------
# Drop-ins for the upstream loaders' generator classes: the same constructor arguments, __call__() -> one
# mask as a numpy array of upstream's dtype and shape, so that replacing the import line is the whole
# change; `batch(n, seed=None, sample_offset=0)` draws n at once (a MaskCollator mask_fn).
__all__ += ["TubeMaskingGenerator", "RunningCellMaskingGenerator", "UniformMaskingGenerator"]


# The processes this one descends from by fork: a copy of a generator in a forked DataLoader worker sees
# a new count and draws its own key (below).
_FORKS = [0]
os.register_at_fork(after_in_child=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


class _PerVideoGenerator:
    """One mask per call, as the upstream loaders call their generators, for a subclass that sets
    `_op` (its front door), `_native_name` (its `_C` cpu entry), `_args` (the entry's arguments after
    out, batch: the front door's validated setting) and `_cells` (bytes per mask).

    Seeds: call k in a process draws sample k under a key fixed at the process's first call: drawn from
    torch's default generator (seed=None: a DataLoader seeds it per worker and per epoch, as it seeds
    numpy's for upstream's np.random, so workers and epochs differ and torch.manual_seed reproduces a
    run), or derive_seed(seed, worker id) (seed=int: reproducible for a given worker layout; a
    worker started afresh, e.g. each epoch without persistent_workers, repeats its masks). The cpp path
    writes into a per-thread buffer and returns `astype(dtype)` of it, without a torch tensor."""

    def _init_draws(self, seed, backend):
        self.seed = None if seed is None else rng.resolve_seed(seed)
        self.backend = backend
        self._fork, self._key, self._calls, self._buffers = -1, 0, 0, {}
        self._direct = _native.available() and backend in ("auto", "cpp")

    def __getstate__(self):  # a spawned worker unpickles a copy: it draws its own key
        state = dict(self.__dict__)
        state.update(_fork=-1, _buffers={})
        return state

    def batch(self, batch: int, seed: int | None = None, sample_offset: int = 0):
        """A batch of masks from the front door, (B, ...) bool, True = masked (a MaskCollator mask_fn)."""
        return self._op(batch, *self._front_args, seed=seed, sample_offset=sample_offset, backend=self.backend)

    def _next_draw(self) -> tuple[int, int]:
        if self._fork != _FORKS[0]:
            info = torch.utils.data.get_worker_info()
            worker = 0 if info is None else info.id
            self._key = rng.resolve_seed() if self.seed is None else rng.derive_seed(self.seed, worker)
            self._fork, self._calls = _FORKS[0], 0
        sample = self._calls
        self._calls = (sample + 1) % (1 << 32)
        return self._key, sample

    def _one(self) -> np.ndarray:
        """One mask, flat, as numpy bytes (0/1) or bool."""
        key, sample = self._next_draw()
        if not self._direct:
            mask = self.batch(1, key, sample)
            return (mask[0] if isinstance(mask, tuple) else mask).numpy().reshape(-1)
        buffer = self._buffers.get(threading.get_ident())
        if buffer is None:
            array = np.empty(self._cells * self._outputs, dtype=np.uint8)
            pointers = tuple(array.ctypes.data + k * self._cells for k in range(self._outputs))
            buffer = self._buffers[threading.get_ident()] = (array, getattr(_native.lib, self._native_name), pointers)
        buffer[1](*buffer[2], 1, *self._args, key, 0, sample, 1)
        return buffer[0][:self._cells]


class TubeMaskingGenerator(_PerVideoGenerator):
    """VideoMAE's TubeMaskingGenerator (MCG-NJU/VideoMAE masking_generator.py), drop-in:
    TubeMaskingGenerator(window_size, mask_ratio)() -> (T·H·W,) float64, 1.0 = masked (flat=False:
    (T, H·W), VideoMAE v2's). window_size = (num_frames // tubelet_size, H / patch, W / patch);
    mimkernels.tube_mask draws it (SPEC.md §4). Seeds: _PerVideoGenerator."""
    _op, _native_name, _outputs = staticmethod(tube_mask), "tube_mask_cpu", 1

    def __init__(self, input_size, mask_ratio, *, seed: int | None = None, flat: bool = True, dtype=np.float64,
                 backend: str = "auto"):
        self.frames, self.height, self.width = input_size
        self.mask_ratio, self.flat, self.dtype = mask_ratio, flat, dtype
        frames, cells, masked = _tube_setting(self.frames, self.height, self.width, mask_ratio)
        self.num_patches_per_frame = cells
        self.total_patches = frames * cells
        self.num_masks_per_frame = masked
        self.total_masks = frames * masked
        self._front_args = (self.frames, self.height, self.width, mask_ratio)
        self._args, self._cells = (frames, cells, masked), frames * cells
        self._init_draws(seed, backend)

    def __repr__(self):
        return f"Tube masking (mimkernels): total patches {self.total_patches}, mask patches {self.total_masks}"

    def __call__(self) -> np.ndarray:
        mask = self._one().astype(self.dtype)
        return mask if self.flat else mask.reshape(self.frames, self.num_patches_per_frame)


class RunningCellMaskingGenerator(_PerVideoGenerator):
    """VideoMAE v2's RunningCellMaskingGenerator (OpenGVLab/VideoMAEv2 dataset/masking_generator.py),
    drop-in: RunningCellMaskingGenerator(window_size, mask_ratio=0.5)() -> (T, H·W) float64, 1.0 = masked
    from the decoder (flat=True: (T·H·W,)). mimkernels.running_cell_mask draws it (SPEC.md §5)."""
    _op, _native_name, _outputs = staticmethod(running_cell_mask), "running_cell_mask_cpu", 1

    def __init__(self, input_size, mask_ratio=0.5, *, seed: int | None = None, flat: bool = False, dtype=np.float64,
                 backend: str = "auto"):
        self.frames, self.height, self.width = input_size
        self.mask_ratio, self.flat, self.dtype = mask_ratio, flat, dtype
        self._args = _running_cell_setting(self.frames, self.height, self.width, mask_ratio)
        self._front_args = (self.frames, self.height, self.width, mask_ratio)
        self._cells = self.frames * self.height * self.width
        self._init_draws(seed, backend)
        # As upstream: the 4 maps made once, a call copies the one its draw picks (the batched op's draw:
        # below(word 0 of Philox (0, sample, stream 8, 0), 4), so the mask is running_cell_mask's, bit for bit)
        maps = reference.running_cell_maps(*self._args).numpy().astype(dtype)
        self._maps = maps if flat else maps.reshape(4, self.frames, self.height * self.width)

    def __repr__(self):
        return f"Running Cell Masking (mimkernels) with mask ratio {self.mask_ratio}"

    def __call__(self) -> np.ndarray:
        if not self._direct:
            mask = self._one().astype(self.dtype)
            return mask if self.flat else mask.reshape(self.frames, self.height * self.width)
        key, sample = self._next_draw()
        words = getattr(_WORDS, "buffer", None)
        if words is None:  # a per-thread buffer and its address (`.ctypes.data` costs more than the draw)
            array = np.empty(4, dtype=np.uint32)
            words = _WORDS.buffer = (array, array.ctypes.data)
        _native.lib.philox_fill_cpu(words[1], 1, 0, sample, rng.STREAM_RUNNING_CELL_MASK, 0, key, 1)
        return self._maps[(int(words[0][0]) * 4) >> 32].copy()


_WORDS = threading.local()  # RunningCellMaskingGenerator's draw: one Philox call's 4 words


# ---- UM-MAE uniform masking -----------------------------------------------------------------------

class UniformMaskingGenerator(_PerVideoGenerator):
    """UM-MAE's RandomMaskingGenerator (implus/UM-MAE mask_transform.py), drop-in:
    UniformMaskingGenerator(token_size, mask_ratio, regular)() -> (H·W,) float64, 1.0 = masked.
    regular=True (mask_ratio 0.75): the uniform sampling (mimkernels.uniform_mask's mask);
    regular=False: a uniform subset of int(mask_ratio · H·W) tokens (mimkernels.tube_mask, one frame).
    The secondary mask is the model's (SPEC.md §6): with regular=True, `batch(n)` returns
    (mask, secondary) for `vis_mask_ratio`."""

    def __init__(self, input_size, mask_ratio, regular: bool = False, *, vis_mask_ratio: float = 0.0,
                 seed: int | None = None, dtype=np.float64, backend: str = "auto"):
        if not isinstance(input_size, tuple):
            input_size = (input_size,) * 2
        self.height, self.width = input_size
        self.num_patches = self.height * self.width
        self.num_mask = int(mask_ratio * self.num_patches)
        if regular and mask_ratio != 0.75:
            raise ValueError(f"regular=True (uniform sampling) masks 3 of every 2 x 2 tokens: mask_ratio must be "
                             f"0.75, got {mask_ratio!r}")
        self.mask_ratio, self.regular, self.vis_mask_ratio, self.dtype = mask_ratio, regular, vis_mask_ratio, dtype
        if regular:
            self._op, self._native_name, self._outputs = uniform_mask, "uniform_mask_cpu", 2
            self._args = _uniform_setting(self.height, self.width, vis_mask_ratio)
            self._front_args = (self.height, self.width, vis_mask_ratio)
        else:
            self._op, self._native_name, self._outputs = tube_mask, "tube_mask_cpu", 1
            self._args = _tube_setting(1, self.height, self.width, mask_ratio)
            self._front_args = (1, self.height, self.width, mask_ratio)
        self._cells = self.num_patches
        self._init_draws(seed, backend)

    def __repr__(self):
        return (f"Mask (mimkernels): total patches {self.num_patches}, mask patches {self.num_mask}, "
                f"regular {self.regular}")

    def __call__(self) -> np.ndarray:
        return self._one().astype(self.dtype)


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

    def forward(self, batch: int, seed: int | torch.Tensor | None = None, sample_offset: int = 0) -> torch.Tensor:
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

    def forward(self, scores: torch.Tensor, seed: int | torch.Tensor | None = None,
                sample_offset: int = 0) -> torch.Tensor:
        from mimkernels.mask_zoo import score_mask
        return score_mask(scores, self.mask_ratio, largest=self.largest, score_share=self.score_share,
                          hint_pool=self.hint_pool, hint_ratio=self.hint_ratio, seed=seed, sample_offset=sample_offset,
                          backend=self.backend)

    def extra_repr(self) -> str:
        return (f"mask_ratio={self.mask_ratio}, largest={self.largest}, score_share={self.score_share}, "
                f"hint_pool={self.hint_pool}, hint_ratio={self.hint_ratio}, backend={self.backend!r}")


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
__all__ += ["DinoMaskCollator"]


class DinoMaskCollator(MaskCollator):
    """DINOv2's / DINOv3's `collate_data_and_cast` as a DataLoader collate_fn, its masks from
    dino_collate_masks: samples are (crops, target) with crops["global_crops"] and crops["local_crops"] lists
    of tensors (DataAugmentationDINO's output); returns upstream's dict: collated_global_crops and
    collated_local_crops (cast to dtype, crop-major as upstream), collated_masks (B, N) bool with B =
    n_global_crops · len(samples), mask_indices_list, masks_weight, upperbound, n_masked_patches.

    Seeding is masking.MaskCollator's (SPEC.md §10 of masking): batch k of epoch e on rank r draws with seed
    derive_seed(derive_seed(seed, e), r, k), the same whatever num_workers; call set_epoch(e) each epoch.
    mask_kwargs: dino_collate_masks' settings (mask_ratio_min_max, mask_probability, version,
    random_circular_shift, min_num_patches, max_num_patches, ...)."""

    def __init__(self, height: int, width: int | None = None, *, dtype: torch.dtype = torch.float32, seed: int = 0,
                 **mask_kwargs):
        width = height if width is None else width
        dino_collate_masks(0, height, width, seed=0, **mask_kwargs)  # validates the settings once, here
        super().__init__(functools.partial(dino_collate_masks, height=height, width=width, **mask_kwargs), seed=seed)
        self.dtype = dtype

    def __call__(self, samples: list) -> dict:
        seed = self.step_seed()
        self.step += 1
        crops = [sample[0] for sample in samples]
        n_global, n_local = len(crops[0]["global_crops"]), len(crops[0]["local_crops"])
        global_crops = torch.stack([c["global_crops"][i] for i in range(n_global) for c in crops])
        local_crops = torch.stack([c["local_crops"][i] for i in range(n_local) for c in crops]) if n_local else None
        masks = self.mask_fn(len(global_crops), seed=seed)
        return {
            "collated_global_crops": global_crops.to(self.dtype),
            "collated_local_crops": None if local_crops is None else local_crops.to(self.dtype),
            "collated_masks": masks.collated_masks,
            "mask_indices_list": masks.mask_indices_list,
            "masks_weight": masks.masks_weight,
            "upperbound": masks.upperbound,
            "n_masked_patches": masks.n_masked_patches,
        }
