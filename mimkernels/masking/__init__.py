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
`sample_offset` gives the masks of the whole batch. random_mask_indices / random_masking take a (B,)
ratio tensor and block_mask a (B,) count tensor: per-sample ratios and counts (SPEC.md §2a, §7a). Every
`seed=` also takes a seed tensor (rng.seed_tensor, on the op's device): the kernels read it on the device,
so the ops capture into CUDA graphs and compile once (SPEC.md §1).
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Callable

import torch

from mimkernels import _backends, _native, rng
from mimkernels.checks import (FLOAT_DTYPES, as_device, check_float, check_int, check_patch_grid, check_real_tensor,
                               check_same_device, check_tensor)
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
# AvgDist's pixels per mask: the work is O(H·W) per mask; past 2^28 pixels (16384²) a call would run for
# minutes (patch_size = 2^29 on one cell: 2^58 pixels, a hang), so it is refused.
_MAX_PIXELS = 1 << 28


def _seed_arg(seed):
    """numpy integer scalars (np.int64(3), ...) as Python ints; anything else as given (resolve_seed checks)."""
    if seed is None or type(seed) is int or isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        return seed
    return int(seed)


def _device_arg(device) -> torch.device:
    """as_device, with a clear error for a CUDA device on a machine (or a torch build) without one."""
    dev = as_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise ValueError(f"device={device!r}: {why} (torch.cuda.is_available() is False); use device='cpu'")
    return dev


# The per-sample fast path (a DataLoader transform draws one mask per call): outside torch.compile, with
# the cpp backend and plain Python ints, simmim_mask / block_mask call `_C` directly. The validated
# settings are cached (key: the arguments exactly as passed, their types included) so that a repeated
# call costs a dict lookup and a few int comparisons; everything else goes through the full checks and
# the catalogue op (torch.ops.mimkernels.<op>.cpp), which is also what torch.compile traces.
# The test is `_backends.cpu_fast_path`, written out inline in these two front doors: the call to it costs
# 0.12 µs, 5% of a 2.4 µs SimMIM call (measured with timeit, one thread).
_FAST = _native.available()
_SIMMIM_SETTINGS: dict = {}
_BLOCK_SETTINGS: dict = {}
_MAX_CACHED_SETTINGS = 256
_SEED_LIMIT = 1 << 63


def _cache(table: dict, key, value) -> None:
    if len(table) >= _MAX_CACHED_SETTINGS:
        table.clear()
    try:
        table[key] = value
    except TypeError:  # an unhashable argument (a list where a tuple is documented): this call is not cached
        pass


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




def _philox_keys(batch: int, num_patches: int, key: int | torch.Tensor, sample_offset: int,
                 device: torch.device) -> torch.Tensor:
    """(B, L) int64 holding the uint32 sort keys of rng stream 1 (key: an int or rng.reference_key's tensor)."""
    i = torch.arange(num_patches, dtype=torch.int64, device=device).unsqueeze(0)
    b = (torch.arange(batch, dtype=torch.int64, device=device) + sample_offset).unsqueeze(1)
    x0, _, _, _ = rng.draw(key, i, b, rng.STREAM_MAE_MASKING, device=device)
    return x0.expand(batch, num_patches).contiguous()


def _index_backend(be: str, num_patches: int, device: torch.device, auto: bool) -> str:
    """The backend of random_mask_indices: `be`, except triton past its sort size (L > 2^14), where "auto"
    falls back to the next backend that takes any L (issue 20: cuda, else torch) and an explicit
    backend="triton" raises."""
    if be != "triton" or num_patches <= _triton_max_patches():
        return be
    if not auto:
        raise ValueError(f"random_mask_indices: the triton backend takes num_patches <= {_triton_max_patches()}, "
                         f"got {num_patches}; use backend='torch'")
    return "cuda" if "cuda" in _backends.implemented("random_mask_indices") and \
        _backends.unavailable_reason("cuda", device) is None else "torch"


def _check_ratio_tensor(mask_ratio: torch.Tensor, batch: int, max_keep, num_patches: int,
                        device: torch.device | None) -> int:
    """Per-sample ratios (SPEC.md §2a): mask_ratio (B,) floating point on `device`; returns max_keep (the width
    of ids_keep, default L). Values are checked only with MIMKERNELS_DEBUG=1 (the check syncs the host)."""
    check_tensor(mask_ratio, "mask_ratio", ndim=1, dtypes=(*FLOAT_DTYPES, torch.float64), what="(B,) per-sample ratios")
    if mask_ratio.shape[0] != batch:
        raise ValueError(f"mask_ratio must have shape (B,) = ({batch},), got {tuple(mask_ratio.shape)}")
    if device is not None and mask_ratio.device != device:
        raise ValueError(f"mask_ratio is on {mask_ratio.device}, expected {device}")
    max_keep = num_patches if max_keep is None else check_int(max_keep, "max_keep", minimum=0)
    if max_keep > num_patches:
        raise ValueError(f"max_keep must be in [0, L = {num_patches}], got {max_keep}")
    if _backends.debug_checks() and mask_ratio.numel() and not bool(((mask_ratio >= 0) & (mask_ratio <= 1)).all()):
        raise ValueError("mask_ratio values must be in [0, 1] (MIMKERNELS_DEBUG=1)")
    return max_keep


def _check_no_max_keep(max_keep) -> None:
    if max_keep is not None:
        raise ValueError(f"max_keep bounds the ids_keep width of per-sample ratios: pass mask_ratio as a (B,) "
                         f"tensor, or leave max_keep None (got {max_keep!r} with a float mask_ratio)")


def _mask_indices_per_sample(batch: int, num_patches: int, ratio: torch.Tensor, max_keep: int, noise, seed,
                             generator, sample_offset: int, device: torch.device, be: str, auto: bool = False):
    """random_mask_indices with per-sample ratios on backend `be`, arguments validated: (ids_keep
    (B, max_keep), ids_restore, mask, kept (B,) int64). Caller noise runs in the reference on every backend."""
    kept = reference.keep_counts(ratio, num_patches, max_keep)
    be = _index_backend(be, num_patches, device, auto)
    if noise is None:
        rng.check_sample_offset(sample_offset, batch)
        key, seed_step = rng.resolve_key(seed, generator, device)
        if be != "torch":
            kernel = getattr(torch.ops.mimkernels.random_mask_indices, be + "_per_sample")
            return (*kernel(kept, num_patches, max_keep, key, seed_step, sample_offset), kept)
        noise = _philox_keys(batch, num_patches, rng.reference_key(key, seed_step), sample_offset, device)
    return (*reference.random_mask_indices_per_sample(noise, kept, max_keep), kept)


def _mask_indices(batch: int, num_patches: int, ratio: float, noise, seed, generator, sample_offset: int,
                  device: torch.device, be: str, auto: bool = False):
    """random_mask_indices on backend `be`, arguments validated. Caller noise runs in the Triton
    kernel when it is fp32/fp16/bf16 (exact in fp32), else (and on cpp/cuda) in the reference."""
    len_keep = reference.len_keep(num_patches, ratio)
    if batch == 0:  # nothing to draw or sort (keys and sort workspaces of L = 2^31 - 1 are 16 GiB each)
        return _ops._mask_indices_fake(0, num_patches, len_keep, 0, None, 0, device)
    be = _index_backend(be, num_patches, device, auto)
    if be == "triton":
        if noise is not None and noise.dtype in FLOAT_DTYPES:
            return tuple(torch.ops.mimkernels.random_mask_indices.triton_from_noise(noise, len_keep))
    if noise is not None:
        return reference.random_mask_indices(batch, num_patches, ratio, noise)
    rng.check_sample_offset(sample_offset, batch)
    key, seed_step = rng.resolve_key(seed, generator, device)
    if be == "torch":
        noise = _philox_keys(batch, num_patches, rng.reference_key(key, seed_step), sample_offset, device)
        return reference.random_mask_indices(batch, num_patches, ratio, noise)
    kernel = getattr(torch.ops.mimkernels.random_mask_indices, be)
    return tuple(kernel(batch, num_patches, len_keep, key, seed_step, sample_offset, device))


def random_mask_indices(batch: int, num_patches: int, mask_ratio: float | torch.Tensor = 0.75, *,
                        noise: torch.Tensor | None = None, seed: int | torch.Tensor | None = None,
                        generator: torch.Generator | None = None, sample_offset: int = 0, device=None,
                        max_keep: int | None = None, backend: str = "auto"):
    """MAE's random shuffle without the tokens: (ids_keep (B, K) int64, ids_restore (B, L) int64,
    mask (B, L) float32, 1 = masked), K = int(L · (1 − mask_ratio)) (SPEC.md §2).

    noise (B, L): sort keys given by the caller (overrides seed/generator/sample_offset); else the
    Philox keys of rng stream 1 (seed: an int, or a seed tensor on `device`, rng.seed_tensor). device:
    defaults to noise's device, else CPU.

    Per-sample ratios (SPEC.md §2a): mask_ratio a (B,) float tensor on `device` -> (ids_keep (B, max_keep),
    ids_restore (B, L), mask (B, L), kept (B,) int64) with kept[b] = min(int(L · (1 − r_b)), max_keep)
    (max_keep defaults to L); row b of ids_keep holds its kept[b] kept patches first, then the next patches of
    its sorted order (valid: `arange(max_keep) < kept[:, None]`). No host sync, no data-dependent shape.
    """
    seed = _seed_arg(seed)
    check_int(batch, "batch", minimum=0)
    check_int(num_patches, "num_patches", minimum=1)
    if noise is None and num_patches >= _MAX_PATCHES:
        raise ValueError(f"num_patches must be < 2^31 with Philox keys (counters and the index word of a sort "
                         f"key are 32-bit), got {num_patches}")
    per_sample = isinstance(mask_ratio, torch.Tensor)
    if not per_sample:
        ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
        _check_no_max_keep(max_keep)
    if device is None and isinstance(noise, torch.Tensor):
        device = noise.device
    dev = _device_arg(device)
    _check_keys(noise, seed, generator, sample_offset, batch, num_patches, dev)
    be = _backends.resolve("random_mask_indices", backend, dev)
    if per_sample:
        max_keep = _check_ratio_tensor(mask_ratio, batch, max_keep, num_patches, dev)
        return _mask_indices_per_sample(batch, num_patches, mask_ratio, max_keep, noise, seed, generator,
                                        sample_offset, dev, be, auto=backend == "auto")
    return _mask_indices(batch, num_patches, ratio, noise, seed, generator, sample_offset, dev, be,
                         auto=backend == "auto")


def random_masking(x: torch.Tensor, mask_ratio: float | torch.Tensor = 0.75, *, noise: torch.Tensor | None = None,
                   seed: int | torch.Tensor | None = None, generator: torch.Generator | None = None,
                   sample_offset: int = 0, max_keep: int | None = None, backend: str = "auto"):
    """MAE random_masking: x (B, L, D) -> (x_visible (B, K, D) x.dtype, mask (B, L) float32 1 = masked,
    ids_restore (B, L) int64) (SPEC.md §3). x_visible holds the kept tokens in ascending-key order, as
    MAE. Differentiable in x. Triton: the index kernel, then one row gather (backward: a scatter).

    Per-sample ratios (SPEC.md §2a, §3): mask_ratio a (B,) float tensor on x's device -> (x_visible
    (B, max_keep, D), mask, ids_restore, kept (B,) int64), rows k >= kept[b] of x_visible zero."""
    seed = _seed_arg(seed)
    check_tensor(x, "x", ndim=3, what="(B, L, D)")
    batch, length, _ = x.shape
    if length == 0:
        raise ValueError("x must have L >= 1 patches, got L = 0")
    if isinstance(mask_ratio, torch.Tensor):
        return _random_masking_per_sample(x, mask_ratio, noise, seed, generator, sample_offset, max_keep, backend)
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    _check_no_max_keep(max_keep)
    _check_keys(noise, seed, generator, sample_offset, batch, length, x.device)
    be = _backends.resolve("random_masking", backend, x.device)
    if backend == "auto" and noise is None:
        index_be = _backends.resolve("random_mask_indices", "auto", x.device)
        if be == "torch" and index_be == "cpp" or be == "triton" and length > _triton_max_patches():
            # The CPU (and, on CUDA, L past the Triton sort): the indices from the native kernel, the rows
            # by torch.gather as the reference (bit-identical: the same ids, the same gather).
            ids_keep, ids_restore, mask = _mask_indices(batch, length, ratio, None, seed, generator, sample_offset,
                                                        x.device, index_be, auto=True)
            x_visible = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[2]))
            return x_visible, mask, ids_restore
    if be == "torch":
        if noise is None:
            rng.check_sample_offset(sample_offset, batch)
            noise = _philox_keys(batch, length, rng.reference_key(*rng.resolve_key(seed, generator, x.device)),
                                 sample_offset, x.device)
        return reference.random_masking(x, ratio, noise)
    ids_keep, ids_restore, mask = _mask_indices(batch, length, ratio, noise, seed, generator, sample_offset,
                                                x.device, be)
    return getattr(torch.ops.mimkernels.random_masking, be)(x, ids_keep), mask, ids_restore


def _random_masking_per_sample(x: torch.Tensor, mask_ratio: torch.Tensor, noise, seed, generator, sample_offset,
                               max_keep, backend: str):
    """random_masking with per-sample ratios: the indices of the backend's index kernel (auto on the CPU: cpp,
    as the scalar path), the rows gathered (triton: its row gather, differentiable; else torch.gather as the
    reference) and the padding rows zeroed."""
    batch, length, _ = x.shape
    _check_keys(noise, seed, generator, sample_offset, batch, length, x.device)
    be = _backends.resolve("random_masking", backend, x.device)
    max_keep = _check_ratio_tensor(mask_ratio, batch, max_keep, length, x.device)
    index_be = _backends.resolve("random_mask_indices", "auto", x.device) if backend == "auto" else be
    ids_keep, ids_restore, mask, kept = _mask_indices_per_sample(batch, length, mask_ratio, max_keep, noise, seed,
                                                                 generator, sample_offset, x.device, index_be,
                                                                 auto=backend == "auto")
    if be == "triton":
        rows = torch.ops.mimkernels.random_masking.triton(x, ids_keep)
    else:
        rows = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, x.shape[2]))
    return reference.zero_padding(rows, kept), mask, ids_restore, kept


def _triton_max_patches() -> int:
    from mimkernels.masking.triton import MAX_PATCHES
    return MAX_PATCHES


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
    check_real_tensor(imgs, "imgs")
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
                mask_ratio: float = 0.6, *, seed: int | torch.Tensor | None = None,
                generator: torch.Generator | None = None,
                sample_offset: int = 0, device=None, backend: str = "auto") -> torch.Tensor:
    """SimMIM's random mask: (B, n, n) bool, n = input_size / model_patch_size, True = masked (SPEC.md §6).

    Exactly ceil(token_count · mask_ratio) of the (input_size / mask_patch_size)² mask patches are
    masked in every sample (float64, as np.ceil), a uniformly random subset, each mask patch a
    constant (mask_patch_size / model_patch_size)² block of the model's grid. SimMIM's own mask is
    int64; bool is a drop-in (`mask.long()` for the original dtype). mask_ratio in [0, 1].
    """
    if (_FAST and device is None and generator is None and (backend == "auto" or backend == "cpp")
            and type(batch) is int and type(sample_offset) is int and type(seed) is int
            and 0 <= seed < _SEED_LIMIT and 0 <= sample_offset and 0 <= batch
            and sample_offset + batch <= 4294967296 and not torch.compiler.is_compiling()):
        setting = _SIMMIM_SETTINGS.get((input_size, type(input_size), mask_patch_size, type(mask_patch_size),
                                        model_patch_size, type(model_patch_size), mask_ratio, type(mask_ratio)))
        if setting is not None:
            rand_size, scale, mask_count, one = setting
            n = rand_size * scale
            # empty_like of a cached (1, n, n) tensor: half the cost of torch.empty for a per-sample call
            out = torch.empty_like(one) if batch == 1 else torch.empty(batch, n, n, dtype=torch.bool)
            _native.lib.simmim_mask_cpu(out.data_ptr(), batch, rand_size, scale, mask_count, seed, 0, sample_offset,
                                        1 if batch <= 1 else _native.cpu_threads(batch))
            return out
    seed = _seed_arg(seed)
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
    dev = _device_arg(device)
    be = _backends.resolve("simmim_mask", backend, dev)
    key, seed_step = rng.resolve_key(seed, generator, dev)
    mask_count = reference.simmim_mask_count(rand_size, ratio)
    _cache(_SIMMIM_SETTINGS, (input_size, type(input_size), mask_patch_size, type(mask_patch_size), model_patch_size,
                              type(model_patch_size), mask_ratio, type(mask_ratio)),
           (rand_size, scale, mask_count, torch.empty(1, rand_size * scale, rand_size * scale, dtype=torch.bool)))
    if be == "torch":
        return reference.simmim_mask(batch, rand_size, scale, mask_count, rng.reference_key(key, seed_step), sample_offset,
                                     dev)
    return getattr(torch.ops.mimkernels.simmim_mask, be)(batch, rand_size, scale, mask_count, key, seed_step,
                                                         sample_offset, dev)


def block_mask(batch: int, height: int = 14, width: int = 14, num_masking_patches: int | torch.Tensor = 78,
               min_num_patches: int = 15, max_num_patches: int | None = None, min_aspect: float = 0.3,
               max_aspect: float | None = None, *, seed: int | torch.Tensor | None = None,
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

    Per-sample counts (SPEC.md §7a): num_masking_patches a (B,) int64/int32 tensor on `device` (DINOv2's
    collate asks each sample for its own count); max_num_patches None then means each sample's count. The
    count values are checked against the variant only with MIMKERNELS_DEBUG=1; otherwise every value runs as
    variant="official" would run it (<= 0: empty; too many: a short mask).
    """
    if (_FAST and device is None and generator is None and (backend == "auto" or backend == "cpp")
            and type(batch) is int and type(sample_offset) is int and type(seed) is int
            and 0 <= seed < _SEED_LIMIT and 0 <= batch and 0 <= sample_offset
            and sample_offset + batch <= 4294967296 and not torch.compiler.is_compiling()):
        setting = _BLOCK_SETTINGS.get((height, type(height), width, type(width), num_masking_patches,
                                       type(num_masking_patches), min_num_patches, type(min_num_patches),
                                       max_num_patches, type(max_num_patches), min_aspect, type(min_aspect),
                                       max_aspect, type(max_aspect), variant))
        if setting is not None:
            out = torch.empty((batch, height, width), dtype=torch.bool)
            _native.lib.block_mask_cpu(out.data_ptr(), batch, *setting, seed, 0, sample_offset,
                                       1 if batch <= 1 else _native.cpu_threads(batch))
            if setting[-1]:
                _warn_short_mmpretrain(out, num_masking_patches)
            return out
    seed = _seed_arg(seed)
    cache_key = (height, type(height), width, type(width), num_masking_patches, type(num_masking_patches),
                 min_num_patches, type(min_num_patches), max_num_patches, type(max_num_patches), min_aspect,
                 type(min_aspect), max_aspect, type(max_aspect), variant)
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    if height * width >= _MAX_SIDE:
        raise ValueError(f"height x width must be < 2^31 cells, got {height} x {width}")
    per_sample = isinstance(num_masking_patches, torch.Tensor)
    if per_sample:
        check_tensor(num_masking_patches, "num_masking_patches", ndim=1, dtypes=(torch.int64, torch.int32),
                     what="(B,) per-sample counts")
        if num_masking_patches.shape[0] != batch:
            raise ValueError(f"num_masking_patches must have shape (B,) = ({batch},), got "
                             f"{tuple(num_masking_patches.shape)}")
    else:
        check_int(num_masking_patches, "num_masking_patches")
    check_int(min_num_patches, "min_num_patches", minimum=0)
    if max_num_patches is None:
        max_num_patches = None if per_sample else num_masking_patches
    else:
        check_int(max_num_patches, "max_num_patches", minimum=0)
    min_aspect, max_aspect = check_aspects(min_aspect, max_aspect)
    if variant not in _BLOCK_VARIANTS:
        raise ValueError(f"variant must be one of {_BLOCK_VARIANTS}, got {variant!r}")
    mmpretrain = variant == "mmpretrain"
    log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
    _check_batch(batch, sample_offset)
    dev = _device_arg(device)
    if per_sample:
        if num_masking_patches.device != dev:
            raise ValueError(f"num_masking_patches is on {num_masking_patches.device}, expected device {dev}")
        if _backends.debug_checks():
            for count in num_masking_patches.unique().tolist():
                _check_block_counts(variant, height, width, count, min_num_patches,
                                    count if max_num_patches is None else max_num_patches)
        return _block_mask_per_sample(num_masking_patches.to(torch.int64), height, width, min_num_patches,
                                      max_num_patches, log_aspect_ratio, mmpretrain, seed, generator, sample_offset,
                                      dev, backend)
    _check_block_counts(variant, height, width, num_masking_patches, min_num_patches, max_num_patches)
    be = _backends.resolve("block_mask", backend, dev)
    key, seed_step = rng.resolve_key(seed, generator, dev)
    if be == "torch":
        out = reference.block_mask(batch, height, width, num_masking_patches, min_num_patches, max_num_patches,
                                   log_aspect_ratio, rng.reference_key(key, seed_step, on_host=True), sample_offset, mmpretrain).to(dev)
    else:
        if be == "cpp":
            _cache(_BLOCK_SETTINGS, cache_key, (height, width, num_masking_patches, min_num_patches, max_num_patches,
                                                *log_aspect_ratio, mmpretrain))
        out = getattr(torch.ops.mimkernels.block_mask, be)(batch, height, width, num_masking_patches, min_num_patches,
                                                           max_num_patches, *log_aspect_ratio, mmpretrain,
                                                           key, seed_step, sample_offset, dev)
    if mmpretrain and (out.device.type == "cpu" or _backends.debug_checks()) and not torch.compiler.is_compiling():
        _warn_short_mmpretrain(out, num_masking_patches)
    return out


_BLOCK_VARIANTS = ("unilm", "official", "mmpretrain")


def check_aspects(min_aspect, max_aspect) -> tuple[float, float]:
    """The block mask's aspect bounds (min_aspect, max_aspect): positive and finite, max_aspect None or 0
    meaning 1 / min_aspect (upstream's `max_aspect or 1 / min_aspect`), min <= max. Also DINO's generator."""
    min_aspect = check_float(min_aspect, "min_aspect", minimum=0.0, strict_minimum=True, finite=True)
    max_aspect = 1 / min_aspect if max_aspect is None or max_aspect == 0 else check_float(
        max_aspect, "max_aspect", minimum=0.0, strict_minimum=True, finite=True)
    if min_aspect > max_aspect:
        raise ValueError(f"min_aspect {min_aspect} must be <= max_aspect {max_aspect}")
    return min_aspect, max_aspect


def _block_mask_per_sample(counts: torch.Tensor, height: int, width: int, min_num_patches: int,
                           max_num_patches: int | None, log_aspect_ratio: tuple[float, float], mmpretrain: bool,
                           seed, generator, sample_offset: int, dev: torch.device, backend: str) -> torch.Tensor:
    """block_mask with per-sample counts (SPEC.md §7a), arguments validated: counts (B,) int64 on dev;
    max_num_patches None: each sample's count."""
    be = _backends.resolve("block_mask", backend, dev)
    key, seed_step = rng.resolve_key(seed, generator, dev)
    if be == "torch":
        out = reference.block_mask(counts.shape[0], height, width, counts.tolist(), min_num_patches, max_num_patches,
                                   log_aspect_ratio, rng.reference_key(key, seed_step, on_host=True), sample_offset, mmpretrain).to(dev)
    else:
        out = getattr(torch.ops.mimkernels.block_mask, be + "_per_sample")(
            counts, height, width, min_num_patches, 0 if max_num_patches is None else max_num_patches,
            max_num_patches is None, *log_aspect_ratio, mmpretrain, key, seed_step, sample_offset)
    if mmpretrain and (out.device.type == "cpu" or _backends.debug_checks()) and not torch.compiler.is_compiling():
        _warn_short_mmpretrain(out, counts)
    return out




def _check_block_counts(variant: str, height: int, width: int, num_masking_patches: int, min_num_patches: int,
                        max_num_patches: int) -> None:
    """The count checks of each variant: mmpretrain's range, unilm's satisfiability (official: none)."""
    if variant == "mmpretrain" and not 0 <= num_masking_patches <= (height - 1) * (width - 1):
        raise ValueError(f"variant='mmpretrain' masks exactly num_masking_patches cells outside the last row and "
                         f"column: it must be in [0, {(height - 1) * (width - 1)}], got {num_masking_patches}")
    if variant == "unilm":
        _check_block_satisfiable(height, width, num_masking_patches, min_num_patches, max_num_patches)


def _check_block_satisfiable(height: int, width: int, num_masking_patches: int, min_num_patches: int,
                             max_num_patches: int) -> None:
    """ValueError naming the argument for block-mask settings that no mask can satisfy (variant="unilm";
    variant="official" runs them as upstream does: empty or short masks)."""
    cells = height * width
    if num_masking_patches < 0:
        raise ValueError(f"num_masking_patches must be >= 0, got {num_masking_patches} (upstream returns empty "
                         f"masks; variant='official' does too)")
    if num_masking_patches > cells:
        raise ValueError(f"num_masking_patches = {num_masking_patches} is more than the {height} x {width} = {cells} "
                         f"cells (variant='official' returns short masks, as upstream)")
    if num_masking_patches == 0:
        return
    if min(height, width) < 2:
        raise ValueError(f"a {height} x {width} grid (height or width 1) holds no block: blocks are strictly "
                         f"shorter and narrower than the grid; num_masking_patches must be 0")
    if min_num_patches > num_masking_patches:
        raise ValueError(f"min_num_patches = {min_num_patches} is larger than num_masking_patches = "
                         f"{num_masking_patches}: the first block would mask at least min_num_patches cells (upstream "
                         f"then stops after one block; variant='official' does too)")
    if max_num_patches < 1:
        raise ValueError(f"max_num_patches = {max_num_patches} lets no block add a cell; it must be >= 1")


def _warn_short_mmpretrain(out: torch.Tensor, num_masking_patches) -> None:
    """variant='mmpretrain' promises exactly num_masking_patches cells (an int or the (B,) counts); mmpretrain
    would loop forever where the kernels stop after 2^16 blocks: say so instead of returning short masks
    silently."""
    if out.numel() == 0:
        return
    counts = out.flatten(1).sum(1)
    if isinstance(num_masking_patches, torch.Tensor):
        num_masking_patches = num_masking_patches.to(counts.device)
    short = int((counts < num_masking_patches).sum())
    if short:
        warnings.warn(f"block_mask(variant='mmpretrain'): {short} of {out.shape[0]} masks hold fewer than "
                      f"num_masking_patches = {num_masking_patches} cells (fewest: {int(counts.min())}): these "
                      f"settings cannot reach the count (mmpretrain would loop forever; the kernels stop after "
                      f"2^16 blocks). Lower num_masking_patches or min_num_patches.", RuntimeWarning, stacklevel=3)


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
    if mask.shape[1] * mask.shape[2] * patch_size * patch_size > _MAX_PIXELS:
        raise ValueError(f"mask grid {tuple(mask.shape[1:])} times patch_size {patch_size} gives "
                         f"{mask.shape[1] * patch_size} x {mask.shape[2] * patch_size} pixels per mask; at most 2^28 "
                         f"(16384²) are taken (the work is O(pixels) per mask)")
    be = _backends.resolve("mask_avg_dist", backend, mask.device)
    if be == "torch":
        return reference.mask_avg_dist(mask, patch_size)
    # a bool mask goes as it is (no `mask != 0` copy, which for bool made an int64 temporary: ~9x the mask)
    return getattr(torch.ops.mimkernels.mask_avg_dist, be)(mask if mask.dtype == torch.bool else mask != 0,
                                                           patch_size)


# ---- data loading (SPEC.md §10) ------------------------------------------------------------------

class MaskCollator:
    """DataLoader collate_fn that adds a batch of masks: returns (collate_fn(samples), masks).

    masks = mask_fn(len(samples), seed=derive_seed(derive_seed(seed, epoch), rank, batch)) with rank from
    torch.distributed (0 when not initialised) and `batch` the index of this batch in the epoch:
    start_batch + step · num_workers + worker, where worker and num_workers come from
    torch.utils.data.get_worker_info() (0 and 1 in the main process) and step counts the batches this
    copy made since the last set_epoch — DataLoader hands batch k of an epoch to worker k % num_workers
    (map-style datasets). The masks of a run therefore depend on `seed`, the sampler order and the world
    size only: not on num_workers, persistent_workers or prefetching (SPEC.md §10).

    Call `set_epoch(epoch)` before each epoch, as with DistributedSampler: the epoch lives in a small
    shared-memory tensor, so it reaches persistent workers too, and every copy restarts its step count.
    Resuming: `state_dict()` / `load_state_dict()` carry seed and epoch; a loader resumed in the middle of
    an epoch that skips the first k batches calls `set_epoch(epoch, start_batch=k)`.
    mask_fn: e.g. `functools.partial(block_mask, num_masking_patches=75, min_num_patches=16)` or a
    mimkernels.nn mask generator.
    """

    def __init__(self, mask_fn: Callable[..., torch.Tensor], seed: int = 0,
                 collate_fn: Callable | None = None):
        self.mask_fn, self.seed = mask_fn, rng.resolve_seed(_seed_arg(seed))
        self.collate_fn = collate_fn or torch.utils.data.default_collate
        # [epoch, start_batch, generation], shared with the workers (forked or spawned) of any DataLoader
        self._shared = torch.zeros(3, dtype=torch.int64).share_memory_()
        self._generation, self.step = 0, 0
        self._epoch_seed = (None, 0)  # ((seed, epoch), derive_seed(seed, epoch)) of the last batch (step_seed)

    @property
    def epoch(self) -> int:
        return int(self._shared[0])

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Masks of epoch `epoch` from the next batch on, that batch being batch `start_batch` of the epoch."""
        epoch = check_int(_seed_arg(epoch), "epoch", minimum=0)
        start_batch = check_int(_seed_arg(start_batch), "start_batch", minimum=0)
        if epoch >= 1 << 63 or start_batch >= 1 << 32:
            raise ValueError(f"epoch must be < 2^63 and start_batch < 2^32, got {epoch}, {start_batch}")
        self._shared[0], self._shared[1] = epoch, start_batch
        self._shared[2] += 1

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed = rng.resolve_seed(_seed_arg(state["seed"]))
        self.set_epoch(state["epoch"])

    def batch_index(self) -> int:
        """The index in the epoch of the batch this copy makes next (class docstring)."""
        return self._position()[1]

    def _position(self) -> tuple[int, int]:
        """(epoch, batch_index()) from one read of the shared state (tolist: a third of three int() reads)."""
        epoch, start_batch, generation = self._shared.tolist()
        if generation != self._generation:  # set_epoch was called since this copy's last batch
            self._generation, self.step = generation, 0
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return epoch, start_batch + self.step * workers + worker

    def step_seed(self) -> int:
        """The seed of the next batch of this copy: derive_seed(derive_seed(seed, epoch), rank, batch_index())."""
        dist = torch.distributed
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        epoch, batch = self._position()
        if self._epoch_seed[0] != (self.seed, epoch):  # derived once per epoch, not per batch
            self._epoch_seed = ((self.seed, epoch), rng.derive_seed(self.seed, epoch))
        return rng.derive_seed(self._epoch_seed[1], rank, batch % (1 << 32))

    def __call__(self, samples: list):
        seed = self.step_seed()
        self.step += 1
        return self.collate_fn(samples), self.mask_fn(len(samples), seed=seed)
