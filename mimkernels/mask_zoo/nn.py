"""The mask zoo's modules and DataLoader collators (re-exported by mimkernels.nn)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mimkernels import rng
from mimkernels.mask_zoo import running_cell_mask, tube_mask, uniform_mask

__all__ = []  # each section adds its public names


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------


# ---- VideoMAE tube and running cell ---------------------------------------------------------------
# Drop-ins for the upstream loaders' generator classes: the same constructor arguments, __call__() -> one
# mask as a numpy array of upstream's dtype and shape, so that replacing the import line is the whole
# change; `batch(n, seed=None, sample_offset=0)` draws n at once (a MaskCollator mask_fn).
__all__ += ["TubeMaskingGenerator", "RunningCellMaskingGenerator", "UniformMaskingGenerator"]


class _PerVideoDraws:
    """The seeds of per-video calls. seed=None: every call draws its key from torch's default generator,
    which a DataLoader seeds per worker and epoch (distinct across workers, reproducible under
    torch.manual_seed; upstream's np.random repeats the same masks in every forked worker). seed=int:
    call k of a process draws sample k under key derive_seed(seed, worker id): reproducible given the
    worker layout, the same masks again in a worker started afresh (a new epoch without
    persistent_workers)."""

    def __init__(self, seed):
        self.seed = None if seed is None else rng.resolve_seed(seed)
        self.calls = 0

    def next(self) -> tuple[int, int]:
        """(seed, sample_offset) of the next call."""
        if self.seed is None:
            return rng.resolve_seed() >> 1, 0  # < 2^63: the cached path of the front doors
        info = torch.utils.data.get_worker_info()
        sample = self.calls
        self.calls += 1
        return rng.derive_seed(self.seed, 0 if info is None else info.id), sample % (1 << 32)


class TubeMaskingGenerator:
    """VideoMAE's TubeMaskingGenerator (MCG-NJU/VideoMAE masking_generator.py), drop-in:
    TubeMaskingGenerator(window_size, mask_ratio)() -> (T·H·W,) float64, 1.0 = masked (flat=False:
    (T, H·W), VideoMAE v2's). window_size = (num_frames // tubelet_size, H / patch, W / patch);
    mimkernels.tube_mask draws it (SPEC.md §4)."""

    def __init__(self, input_size, mask_ratio, *, seed: int | None = None, flat: bool = True, dtype=np.float64,
                 backend: str = "auto"):
        self.frames, self.height, self.width = input_size
        self.mask_ratio, self.flat, self.dtype, self.backend = mask_ratio, flat, dtype, backend
        self.num_patches_per_frame = self.height * self.width
        self.total_patches = self.frames * self.num_patches_per_frame
        self.num_masks_per_frame = int(mask_ratio * self.num_patches_per_frame)
        self.total_masks = self.frames * self.num_masks_per_frame
        self._draws = _PerVideoDraws(seed)
        self.batch(0)  # checks the arguments now, as upstream's constructor would fail

    def __repr__(self):
        return f"Tube masking (mimkernels): total patches {self.total_patches}, mask patches {self.total_masks}"

    def batch(self, batch: int, seed: int | None = None, sample_offset: int = 0) -> torch.Tensor:
        """(B, T·H·W) bool, True = masked (mimkernels.tube_mask)."""
        return tube_mask(batch, self.frames, self.height, self.width, self.mask_ratio, seed=seed,
                         sample_offset=sample_offset, backend=self.backend)

    def __call__(self) -> np.ndarray:
        seed, sample = self._draws.next()
        mask = self.batch(1, seed, sample).numpy().astype(self.dtype)
        return mask.reshape(-1) if self.flat else mask.reshape(self.frames, self.num_patches_per_frame)


class RunningCellMaskingGenerator:
    """VideoMAE v2's RunningCellMaskingGenerator (OpenGVLab/VideoMAEv2 dataset/masking_generator.py),
    drop-in: RunningCellMaskingGenerator(window_size, mask_ratio=0.5)() -> (T, H·W) float64, 1.0 = masked
    from the decoder (flat=True: (T·H·W,)). mimkernels.running_cell_mask draws it (SPEC.md §5)."""

    def __init__(self, input_size, mask_ratio=0.5, *, seed: int | None = None, flat: bool = False, dtype=np.float64,
                 backend: str = "auto"):
        self.frames, self.height, self.width = input_size
        self.mask_ratio, self.flat, self.dtype, self.backend = mask_ratio, flat, dtype, backend
        self._draws = _PerVideoDraws(seed)
        self.batch(0)

    def __repr__(self):
        return f"Running Cell Masking (mimkernels) with mask ratio {self.mask_ratio}"

    def batch(self, batch: int, seed: int | None = None, sample_offset: int = 0) -> torch.Tensor:
        """(B, T·H·W) bool, True = masked (mimkernels.running_cell_mask)."""
        return running_cell_mask(batch, self.frames, self.height, self.width, self.mask_ratio, seed=seed,
                                 sample_offset=sample_offset, backend=self.backend)

    def __call__(self) -> np.ndarray:
        seed, sample = self._draws.next()
        mask = self.batch(1, seed, sample).numpy().astype(self.dtype)
        return mask.reshape(-1) if self.flat else mask.reshape(self.frames, self.height * self.width)


# ---- UM-MAE uniform masking -----------------------------------------------------------------------

class UniformMaskingGenerator:
    """UM-MAE's RandomMaskingGenerator (implus/UM-MAE mask_transform.py), drop-in:
    UniformMaskingGenerator(token_size, mask_ratio, regular)() -> (H·W,) float64, 1.0 = masked.
    regular=True (mask_ratio 0.75): the uniform sampling (mimkernels.uniform_mask's mask);
    regular=False: a uniform subset of int(mask_ratio · H·W) tokens (mimkernels.tube_mask, one frame).
    The secondary mask is the model's (SPEC.md §6): `batch(n)` returns (mask, secondary) for
    `vis_mask_ratio` with regular=True."""

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
        self.mask_ratio, self.regular, self.vis_mask_ratio = mask_ratio, regular, vis_mask_ratio
        self.dtype, self.backend = dtype, backend
        self._draws = _PerVideoDraws(seed)
        self.batch(0)

    def __repr__(self):
        return (f"Mask (mimkernels): total patches {self.num_patches}, mask patches {self.num_mask}, "
                f"regular {self.regular}")

    def batch(self, batch: int, seed: int | None = None, sample_offset: int = 0):
        """regular: (mask, secondary), (B, H·W) bool each (mimkernels.uniform_mask); else (B, H·W) bool."""
        if self.regular:
            return uniform_mask(batch, self.height, self.width, self.vis_mask_ratio, seed=seed,
                                sample_offset=sample_offset, backend=self.backend)
        return tube_mask(batch, 1, self.height, self.width, self.mask_ratio, seed=seed, sample_offset=sample_offset,
                         backend=self.backend)

    def __call__(self) -> np.ndarray:
        seed, sample = self._draws.next()
        mask = self.batch(1, seed, sample)
        return (mask[0] if self.regular else mask).numpy().reshape(-1).astype(self.dtype)


# ---- data2vec 2.0 block masks ----------------------------------------------------------------------


# ---- score-guided masks ---------------------------------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
