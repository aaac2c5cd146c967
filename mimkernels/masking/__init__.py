"""Masking family, every front door in this file (the contract: masking/SPEC.md):

    MAE          random_mask_indices, random_masking, gather_patches, unshuffle_tokens   (SPEC.md §2–5)
    SimMIM       simmim_mask                                                              (§6)
    BEiT/MaskFeat block_mask                                                              (§7)
    metric       mask_avg_dist                                                            (§8)
    data loading MaskCollator (a class: draws any of the masks above in data-loader workers)

Each front door validates its arguments once (mimkernels.checks), picks a backend
(`_backends.resolve`: the op's backends are its overloads in the torch.library catalogue, ops.py)
and calls `reference.<op>` for "torch", else `torch.ops.mimkernels.<op>.<backend>`. Kernels:
triton.py (Triton) and csrc/masking (cpp / cuda, the same per-sample bodies in
csrc/include/mimkernels). Every kernel result is bit-identical to "torch" (SPEC.md §1); the random
ops draw from rng.md's Philox streams 1–3 (SPEC.md §1), so a batch split with matching
`sample_offset` gives the masks of the whole batch.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from mimkernels import _backends, rng
from mimkernels.checks import (FLOAT_DTYPES, as_device, check_float, check_int, check_patch_grid, check_same_device,
                               check_tensor)
from mimkernels.masking import ops as _ops  # noqa: F401  (puts the family's ops in the catalogue)
from mimkernels.masking import reference

__all__ = ["random_mask_indices", "random_masking", "gather_patches", "unshuffle_tokens", "simmim_mask", "block_mask",
           "mask_avg_dist", "MaskCollator"]

_NOISE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32)
# Philox counters and the index word of a packed sort key are 32-bit (SPEC.md §2).
_MAX_PATCHES = 1 << 31
# Grid sides and mask-patch counts stay below 2^31: counters, indices and randint ranges are uint32
# in the kernels (and bit 31 of a SimMIM index word marks masked cells).
_MAX_SIDE = 1 << 31
# AvgDist's pixel sides: squared distances up to (H + W)² + W² stay exact in int64 below 2^30.
_MAX_PIXEL_SIDE = 1 << 30


# ---- MAE: random_mask_indices, random_masking (SPEC.md §2, §3) -----------------------------------

def _check_keys(noise, seed, generator, sample_offset, batch: int, num_patches: int,
                device: torch.device | None) -> None:
    """The sort-key arguments: noise (B, L) on `device`, or seed/generator, never both."""
    check_int(sample_offset, "sample_offset", minimum=0)
    if noise is None:
        return
    check_tensor(noise, "noise", ndim=2, dtypes=_NOISE_DTYPES, what="(B, L)")
    if tuple(noise.shape) != (batch, num_patches):
        raise ValueError(f"noise must have shape (B, L) = {(batch, num_patches)}, got {tuple(noise.shape)}")
    if device is not None and noise.device != device:
        raise ValueError(f"noise is on {noise.device}, expected {device}")
    if seed is not None or generator is not None:
        raise ValueError("pass noise or seed/generator, not both")


def _philox_keys(batch: int, num_patches: int, key: int, sample_offset: int, device: torch.device) -> torch.Tensor:
    """(B, L) int64 holding the uint32 sort keys of rng stream 1."""
    i = torch.arange(num_patches, dtype=torch.int64, device=device).unsqueeze(0)
    b = (torch.arange(batch, dtype=torch.int64, device=device) + sample_offset).unsqueeze(1)
    x0, _, _, _ = rng.draw(key, i, b, rng.STREAM_MAE_MASKING, device=device)
    return x0.expand(batch, num_patches).contiguous()


def _mask_indices(batch: int, num_patches: int, ratio: float, noise, seed, generator, sample_offset: int,
                  device: torch.device, be: str):
    """random_mask_indices on backend `be`, arguments validated. Caller noise runs in the Triton
    kernel when it is fp32/fp16/bf16 (exact in fp32), else (and on cpp/cuda) in the reference."""
    len_keep = reference.len_keep(num_patches, ratio)
    if be == "triton":
        from mimkernels.masking.triton import MAX_PATCHES
        if num_patches > MAX_PATCHES:
            raise ValueError(f"random_mask_indices: the triton backend takes num_patches <= {MAX_PATCHES}, "
                             f"got {num_patches}; use backend='torch'")
        if noise is not None and noise.dtype in FLOAT_DTYPES:
            return tuple(torch.ops.mimkernels.random_mask_indices.triton_from_noise(noise, len_keep))
    if noise is not None:
        return reference.random_mask_indices(batch, num_patches, ratio, noise)
    rng.check_sample_offset(sample_offset, batch)
    key = rng.resolve_seed(seed, generator)
    if be == "torch":
        noise = _philox_keys(batch, num_patches, key, sample_offset, device)
        return reference.random_mask_indices(batch, num_patches, ratio, noise)
    kernel = getattr(torch.ops.mimkernels.random_mask_indices, be)
    return tuple(kernel(batch, num_patches, len_keep, rng.seed_to_i64(key), sample_offset, device))


def random_mask_indices(batch: int, num_patches: int, mask_ratio: float = 0.75, *, noise: torch.Tensor | None = None,
                        seed: int | None = None, generator: torch.Generator | None = None, sample_offset: int = 0,
                        device=None, backend: str = "auto"):
    """MAE's random shuffle without the tokens: (ids_keep (B, K) int64, ids_restore (B, L) int64,
    mask (B, L) float32, 1 = masked), K = int(L · (1 − mask_ratio)) (SPEC.md §2).

    noise (B, L): sort keys given by the caller (overrides seed/generator/sample_offset); else the
    Philox keys of rng stream 1. device: defaults to noise's device, else CPU.
    """
    check_int(batch, "batch", minimum=0)
    check_int(num_patches, "num_patches", minimum=1)
    if noise is None and num_patches >= _MAX_PATCHES:
        raise ValueError(f"num_patches must be < 2^31 with Philox keys (counters and the index word of a sort "
                         f"key are 32-bit), got {num_patches}")
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    if device is None and isinstance(noise, torch.Tensor):
        device = noise.device
    dev = as_device(device)
    _check_keys(noise, seed, generator, sample_offset, batch, num_patches, dev)
    be = _backends.resolve("random_mask_indices", backend, dev)
    return _mask_indices(batch, num_patches, ratio, noise, seed, generator, sample_offset, dev, be)


def random_masking(x: torch.Tensor, mask_ratio: float = 0.75, *, noise: torch.Tensor | None = None,
                   seed: int | None = None, generator: torch.Generator | None = None, sample_offset: int = 0,
                   backend: str = "auto"):
    """MAE random_masking: x (B, L, D) -> (x_visible (B, K, D) x.dtype, mask (B, L) float32 1 = masked,
    ids_restore (B, L) int64) (SPEC.md §3). x_visible holds the kept tokens in ascending-key order, as
    MAE. Differentiable in x. Triton: the index kernel, then one row gather (backward: a scatter)."""
    check_tensor(x, "x", ndim=3, what="(B, L, D)")
    batch, length, _ = x.shape
    if length == 0:
        raise ValueError("x must have L >= 1 patches, got L = 0")
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    _check_keys(noise, seed, generator, sample_offset, batch, length, x.device)
    be = _backends.resolve("random_masking", backend, x.device)
    if be == "torch":
        if noise is None:
            rng.check_sample_offset(sample_offset, batch)
            noise = _philox_keys(batch, length, rng.resolve_seed(seed, generator), sample_offset, x.device)
        return reference.random_masking(x, ratio, noise)
    ids_keep, ids_restore, mask = _mask_indices(batch, length, ratio, noise, seed, generator, sample_offset,
                                                x.device, be)
    return getattr(torch.ops.mimkernels.random_masking, be)(x, ids_keep), mask, ids_restore


# ---- MAE: gather_patches, unshuffle_tokens (SPEC.md §4, §5) --------------------------------------

def gather_patches(imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int, *, num_prefix_tokens: int = 0,
                   backend: str = "auto") -> torch.Tensor:
    """patchify(imgs)[b, ids_keep[b, k] − P] in one pass, P = num_prefix_tokens: imgs (B, C, H, W) any
    strides, ids_keep (B, K) int64 -> (B, K, p·p·C) in imgs.dtype, MAE's (p, q, c) layout (SPEC.md §4).
    P = 0 (default): ids are patch indices (MAE's ids_keep). P > 0: ids count P prefix tokens first, as
    lightly's token indices do (patch l is token P + l): lightly's target
    `get_at_index(patchify(images, p), idx_mask - 1)` is `gather_patches(images, idx_mask, p,
    num_prefix_tokens=1)`. Differentiable in imgs (the backward scatters into a zero image). Ids must
    be distinct and in [P, P + L): checked only with MIMKERNELS_DEBUG=1 (a value check syncs the host)."""
    check_tensor(imgs, "imgs", ndim=4, what="(B, C, H, W)")
    check_tensor(ids_keep, "ids_keep", ndim=2, dtypes=(torch.int64,), what="(B, K)")
    h, w = check_patch_grid(imgs.shape[2], imgs.shape[3], patch_size)
    prefix = check_int(num_prefix_tokens, "num_prefix_tokens", minimum=0)
    if ids_keep.shape[0] != imgs.shape[0]:
        raise ValueError(f"ids_keep has batch {ids_keep.shape[0]}, imgs has {imgs.shape[0]}")
    dev = check_same_device(imgs=imgs, ids_keep=ids_keep)
    if _backends.debug_checks() and ids_keep.numel() and (
            int(ids_keep.min()) < prefix or int(ids_keep.max()) >= prefix + h * w):
        raise ValueError(f"ids_keep values must be in [P, P + L) = [{prefix}, {prefix + h * w})")
    be = _backends.resolve("gather_patches", backend, dev)
    if be == "torch":
        return reference.gather_patches(imgs, ids_keep, patch_size, prefix)
    return getattr(torch.ops.mimkernels.gather_patches, be)(imgs, ids_keep, patch_size, prefix)


def unshuffle_tokens(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor, *,
                     num_prefix_tokens: int = 1, backend: str = "auto") -> torch.Tensor:
    """MAE decoder input (SPEC.md §5): x (B, P+K, D) with P = num_prefix_tokens prefix tokens first
    (default 1: MAE's cls; timm: cls + register tokens; 0: none), ids_restore (B, L) int64, mask_token
    (D,) or (1, 1, D) -> (B, P+L, D): out[:, :P] = x[:, :P]; out[:, P+l] = x[:, P+r] if
    r = ids_restore[:, l] < K else mask_token. Differentiable in x and mask_token. ids_restore must be
    a permutation of [0, L) (MAE's is); its values are checked only with MIMKERNELS_DEBUG=1."""
    check_tensor(x, "x", ndim=3, what="(B, P+K, D)")
    check_tensor(ids_restore, "ids_restore", ndim=2, dtypes=(torch.int64,), what="(B, L)")
    check_tensor(mask_token, "mask_token")
    prefix = check_int(num_prefix_tokens, "num_prefix_tokens", minimum=0)
    batch, tokens, d = x.shape
    if tokens < prefix:
        raise ValueError(f"x must hold the num_prefix_tokens = {prefix} prefix tokens first, "
                         f"got shape {tuple(x.shape)}")
    if ids_restore.shape[0] != batch:
        raise ValueError(f"ids_restore has batch {ids_restore.shape[0]}, x has {batch}")
    if ids_restore.shape[1] < tokens - prefix:
        raise ValueError(f"ids_restore has L = {ids_restore.shape[1]} < K = x.shape[1] - num_prefix_tokens = "
                         f"{tokens - prefix}")
    if tuple(mask_token.shape) not in ((d,), (1, 1, d)):
        raise ValueError(f"mask_token must have shape ({d},) or (1, 1, {d}), got {tuple(mask_token.shape)}")
    if not mask_token.is_floating_point() or not x.is_floating_point():
        raise TypeError(f"x and mask_token must be floating point, got {x.dtype} and {mask_token.dtype}")
    dev = check_same_device(x=x, ids_restore=ids_restore, mask_token=mask_token)
    if _backends.debug_checks() and ids_restore.numel() and (
            int(ids_restore.min()) < 0 or int(ids_restore.max()) >= ids_restore.shape[1]):
        raise ValueError("ids_restore values must be in [0, L)")
    be = _backends.resolve("unshuffle_tokens", backend, dev)
    if be == "torch":
        return reference.unshuffle_tokens(x, ids_restore, mask_token, prefix)
    return getattr(torch.ops.mimkernels.unshuffle_tokens, be)(x, ids_restore, mask_token, prefix)


# ---- SimMIM mask, block mask, AvgDist (SPEC.md §6–8) ---------------------------------------------

def _check_batch(batch: int, sample_offset: int) -> None:
    check_int(batch, "batch", minimum=0)
    rng.check_sample_offset(sample_offset, batch)


def simmim_mask(batch: int, input_size: int = 192, mask_patch_size: int = 32, model_patch_size: int = 4,
                mask_ratio: float = 0.6, *, seed: int | None = None, generator: torch.Generator | None = None,
                sample_offset: int = 0, device=None, backend: str = "auto") -> torch.Tensor:
    """SimMIM's random mask: (B, n, n) bool, n = input_size / model_patch_size, True = masked (SPEC.md §6).

    Exactly ceil(token_count · mask_ratio) of the (input_size / mask_patch_size)² mask patches are
    masked in every sample (float64, as np.ceil), a uniformly random subset, each mask patch a
    constant (mask_patch_size / model_patch_size)² block of the model's grid. SimMIM's own mask is
    int64; bool is a drop-in (`mask.long()` for the original dtype). mask_ratio in [0, 1].
    """
    for name, value in (("input_size", input_size), ("mask_patch_size", mask_patch_size),
                        ("model_patch_size", model_patch_size)):
        check_int(value, name, minimum=1)
    if input_size % mask_patch_size:
        raise ValueError(f"input_size {input_size} must be divisible by mask_patch_size {mask_patch_size}")
    if mask_patch_size % model_patch_size:
        raise ValueError(f"mask_patch_size {mask_patch_size} must be divisible by model_patch_size "
                         f"{model_patch_size}")
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    rand_size, scale = input_size // mask_patch_size, mask_patch_size // model_patch_size
    if rand_size * rand_size >= _MAX_SIDE:
        raise ValueError(f"(input_size / mask_patch_size)² must be < 2^31, got {rand_size}²")
    _check_batch(batch, sample_offset)
    dev = as_device(device)
    be = _backends.resolve("simmim_mask", backend, dev)
    key = rng.resolve_seed(seed, generator)
    mask_count = reference.simmim_mask_count(rand_size, ratio)
    if be == "torch":
        return reference.simmim_mask(batch, rand_size, scale, mask_count, key, sample_offset, dev)
    return getattr(torch.ops.mimkernels.simmim_mask, be)(batch, rand_size, scale, mask_count, rng.seed_to_i64(key),
                                                         sample_offset, dev)


def block_mask(batch: int, height: int = 14, width: int = 14, num_masking_patches: int = 78,
               min_num_patches: int = 15, max_num_patches: int | None = None, min_aspect: float = 0.3,
               max_aspect: float | None = None, *, seed: int | None = None,
               generator: torch.Generator | None = None, sample_offset: int = 0, device=None,
               variant: str = "unilm", backend: str = "auto") -> torch.Tensor:
    """BEiT / MaskFeat block-wise mask: (B, height, width) bool, True = masked (SPEC.md §7).

    The official generator (unilm beit/masking_generator.py, SlowFast MaskingGenerator) per sample:
    blocks of random area in [min_num_patches, cap] (cap = min(remaining, max_num_patches)) and
    log-uniform aspect in [min_aspect, max_aspect], placed with inclusive bounds, strictly narrower and
    shorter than the grid, accepted when they add 0 < new <= cap cells (overlap allowed); 10 attempts
    per block; the mask stops early when a block cannot be placed, so it may hold fewer than
    num_masking_patches cells (MaskFeat 78/15: 70% exact), never more. Defaults: MaskFeat's (78/15);
    BEiT uses num_masking_patches=75, min_num_patches=16. max_num_patches None means
    num_masking_patches; max_aspect None or 0 means 1 / min_aspect. num_masking_patches <= 0 gives
    empty masks.

    variant="mmpretrain": mmpretrain's BEiTMaskGenerator instead, whose randint excludes its upper
    bound (the last row and column are never masked) and which retries until exactly
    num_masking_patches cells (0 <= num_masking_patches <= (height - 1)(width - 1) is required; where
    mmpretrain would loop forever, the kernels stop after 2^16 blocks).
    """
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    if height >= _MAX_SIDE or width >= _MAX_SIDE:
        raise ValueError(f"height and width must be < 2^31, got {height} x {width}")
    check_int(num_masking_patches, "num_masking_patches")
    check_int(min_num_patches, "min_num_patches", minimum=0)
    if max_num_patches is None:
        max_num_patches = num_masking_patches
    else:
        check_int(max_num_patches, "max_num_patches", minimum=0)
    min_aspect = check_float(min_aspect, "min_aspect", minimum=0.0, strict_minimum=True, finite=True)
    max_aspect = 1 / min_aspect if max_aspect is None or max_aspect == 0 else check_float(
        max_aspect, "max_aspect", minimum=0.0, strict_minimum=True, finite=True)
    if min_aspect > max_aspect:
        raise ValueError(f"min_aspect {min_aspect} must be <= max_aspect {max_aspect}")
    if variant not in ("unilm", "mmpretrain"):
        raise ValueError(f"variant must be 'unilm' or 'mmpretrain', got {variant!r}")
    mmpretrain = variant == "mmpretrain"
    if mmpretrain and not 0 <= num_masking_patches <= (height - 1) * (width - 1):
        raise ValueError(f"variant='mmpretrain' masks exactly num_masking_patches cells outside the last row and "
                         f"column: it must be in [0, {(height - 1) * (width - 1)}], got {num_masking_patches}")
    log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
    _check_batch(batch, sample_offset)
    dev = as_device(device)
    be = _backends.resolve("block_mask", backend, dev)
    key = rng.resolve_seed(seed, generator)
    if be == "torch":
        return reference.block_mask(batch, height, width, num_masking_patches, min_num_patches, max_num_patches,
                                    log_aspect_ratio, key, sample_offset, mmpretrain).to(dev)
    return getattr(torch.ops.mimkernels.block_mask, be)(batch, height, width, num_masking_patches, min_num_patches,
                                                        max_num_patches, *log_aspect_ratio, mmpretrain,
                                                        rng.seed_to_i64(key), sample_offset, dev)


def mask_avg_dist(mask: torch.Tensor, patch_size: int, *, backend: str = "auto") -> torch.Tensor:
    """SimMIM's AvgDist (SPEC.md §8): mask (B, h, w) of any dtype, nonzero = masked, each cell
    patch_size² pixels -> (B,) float32: the mean over masked pixels of the Euclidean distance (pixel
    centres) to the nearest visible pixel; NaN when nothing is masked, +inf when nothing is visible.
    Equals scipy.ndimage.distance_transform_edt(pixels)[pixels].mean(). Exact distance transform
    (Meijster's separable passes on cpp/cuda), no all-pairs search."""
    check_tensor(mask, "mask", ndim=3, what="(B, h, w)")
    check_int(patch_size, "patch_size", minimum=1)
    if mask.shape[1] == 0 or mask.shape[2] == 0:
        raise ValueError(f"mask must have a non-empty grid, got shape {tuple(mask.shape)}")
    if mask.shape[1] * patch_size >= _MAX_PIXEL_SIDE or mask.shape[2] * patch_size >= _MAX_PIXEL_SIDE:
        raise ValueError(f"mask grid {tuple(mask.shape[1:])} times patch_size {patch_size} must be < 2^30 pixels")
    be = _backends.resolve("mask_avg_dist", backend, mask.device)
    if be == "torch":
        return reference.mask_avg_dist(mask, patch_size)
    return getattr(torch.ops.mimkernels.mask_avg_dist, be)(mask != 0, patch_size)


# ---- data loading (SPEC.md §10) ------------------------------------------------------------------

class MaskCollator:
    """DataLoader collate_fn that adds a batch of masks: returns (collate_fn(samples), masks).

    masks = mask_fn(len(samples), seed=derive_seed(base, rank, worker, step)) with rank from
    torch.distributed (0 when not initialised), worker from torch.utils.data.get_worker_info() (0 in
    the main process), step = the number of batches this copy of the collator has made, and base =
    derive_seed(seed, epoch). Masks therefore differ across ranks, workers, steps and epochs, and a
    run is reproducible from `seed` (same sampler order, world size and num_workers). Call
    `set_epoch(epoch)` before each epoch, as with DistributedSampler: workers that are not persistent
    start from a fresh copy (step 0) every epoch. mask_fn: e.g. `functools.partial(block_mask,
    num_masking_patches=75, min_num_patches=16)` or a mimkernels.nn mask generator.
    """

    def __init__(self, mask_fn: Callable[..., torch.Tensor], seed: int = 0,
                 collate_fn: Callable | None = None):
        self.mask_fn, self.seed, self.epoch, self.step = mask_fn, rng.resolve_seed(seed), 0, 0
        self.collate_fn = collate_fn or torch.utils.data.default_collate

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_int(epoch, "epoch", minimum=0)

    def step_seed(self) -> int:
        """The seed of the next batch of this copy: derive_seed(derive_seed(seed, epoch), rank, worker, step)."""
        dist = torch.distributed
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        return rng.derive_seed(rng.derive_seed(self.seed, self.epoch), rank, worker, self.step)

    def __call__(self, samples: list):
        seed = self.step_seed()
        self.step += 1
        return self.collate_fn(samples), self.mask_fn(len(samples), seed=seed)
