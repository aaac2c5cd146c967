"""SimMIM's patch-aligned mask, the BEiT/MaskFeat block mask and SimMIM's AvgDist, for a whole batch
in one call (spec/masking.md §4–7), and `MaskCollator`, which draws them in data-loader workers.

Backends: "torch" (reference.py, step by step as the official generators; the block mask runs a
Python loop per sample on the CPU and is moved to the device), "cpp" (csrc/masking, OpenMP over
samples on `torch.get_num_threads()` threads) and "cuda" (one thread per sample for the masks, one
block per sample for AvgDist). cpp and cuda compile the same per-sample bodies
(csrc/include/mimkernels/{simmim_mask,block_mask,avg_dist}.h).

Randomness (spec/rng.md): key = `resolve_seed(seed, generator)`, counter word 1 = sample_offset + b,
so a batch split into pieces with matching `sample_offset` gives the masks of the whole batch, and the
same seed gives the same masks on torch, cpp and cuda, bit for bit.
- SimMIM (stream 2): the key of mask patch t is x0 of the Philox call at counter t; the mask_count
  smallest keys (ascending uint32, ties by index) are masked: a uniform mask_count-subset.
- Block mask (stream 3): counter i is the running count of Philox calls of the sample. Each attempt
  makes one call (target area from words x0, x1 and log-aspect from x2, x3, each a float64 in [0, 1)
  scaled as random.uniform), and one more only when the block fits (top, left from x0, x1 as
  randint with both bounds inclusive). On the GPU, exp() may differ from the host's by one ulp: the
  masks would differ only if sqrt(area·aspect) fell within an ulp of a half-integer (never seen).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from mimkernels import _dispatch, _native, rng
from mimkernels._dispatch import check_float, check_int, check_tensor, define_op, implements
from mimkernels.masking import reference

__all__ = ["simmim_mask", "block_mask", "mask_avg_dist", "MaskCollator"]

implements("simmim_mask", "torch", "cpp", "cuda")
implements("block_mask", "torch", "cpp", "cuda")
implements("mask_avg_dist", "torch", "cpp", "cuda")

# Grid sides and mask-patch counts stay below 2^31: counters, indices and randint ranges are uint32
# in the kernels (and bit 31 of a SimMIM index word marks masked cells).
_MAX_SIDE = 1 << 31
# AvgDist's pixel sides: squared distances up to (H + W)² + W² stay exact in int64 below 2^30.
_MAX_PIXEL_SIDE = 1 << 30


def _check_batch(batch: int, sample_offset: int) -> None:
    check_int(batch, "batch", minimum=0)
    rng.check_sample_offset(sample_offset, batch)


# ---- SimMIM ---------------------------------------------------------------------------------------

def simmim_mask(batch: int, input_size: int = 192, mask_patch_size: int = 32, model_patch_size: int = 4,
                mask_ratio: float = 0.6, *, seed: int | None = None, generator: torch.Generator | None = None,
                sample_offset: int = 0, device=None, backend: str = "auto") -> torch.Tensor:
    """SimMIM's random mask: (B, n, n) bool, n = input_size / model_patch_size, True = masked.

    Exactly ceil(token_count · mask_ratio) of the (input_size / mask_patch_size)² mask patches are
    masked in every sample (float64, as np.ceil), a uniformly random subset, each mask patch a
    constant (mask_patch_size / model_patch_size)² block of the model's grid. SimMIM's own mask is
    int64; bool is a drop-in (`mask.long()` for the original dtype). seed/generator/sample_offset:
    module docstring. mask_ratio in [0, 1].
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
    dev = _dispatch.as_device(device)
    be = _dispatch.resolve_backend("simmim_mask", backend, dev)
    key = rng.resolve_seed(seed, generator)
    mask_count = reference.simmim_mask_count(rand_size, ratio)
    if be == "torch":
        return reference.simmim_mask(batch, rand_size, scale, mask_count, key, sample_offset, dev)
    return torch.ops.mimkernels.simmim_mask_native(batch, rand_size, scale, mask_count, rng.seed_to_i64(key),
                                                   sample_offset, dev)


def _simmim_mask_fake(batch, rand_size, scale, mask_count, seed, sample_offset, device):
    n = rand_size * scale
    return torch.empty((batch, n, n), dtype=torch.bool, device=device)


def _simmim_mask_native(batch: int, rand_size: int, scale: int, mask_count: int, seed: int, sample_offset: int,
                        device: torch.device) -> torch.Tensor:
    out = _simmim_mask_fake(batch, rand_size, scale, mask_count, seed, sample_offset, device)
    args = (batch, rand_size, scale, mask_count, seed % 2**64, sample_offset)
    if device.type == "cuda":
        keys = torch.empty((batch, rand_size * rand_size), dtype=torch.int64, device=device)  # sort workspace
        _native.cuda_call("simmim_mask_cuda", device, _native.ptr(out, torch.bool), _native.ptr(keys, torch.int64),
                          *args)
    else:
        _native.lib.simmim_mask_cpu(_native.ptr(out, torch.bool), *args, _native.cpu_threads(batch))
    return out


define_op("simmim_mask_native", _simmim_mask_native, fake=_simmim_mask_fake, triton=False)


# ---- BEiT / MaskFeat block mask -------------------------------------------------------------------

def block_mask(batch: int, height: int = 14, width: int = 14, num_masking_patches: int = 78,
               min_num_patches: int = 15, max_num_patches: int | None = None, min_aspect: float = 0.3,
               max_aspect: float | None = None, *, seed: int | None = None,
               generator: torch.Generator | None = None, sample_offset: int = 0, device=None,
               variant: str = "unilm", backend: str = "auto") -> torch.Tensor:
    """BEiT / MaskFeat block-wise mask: (B, height, width) bool, True = masked.

    The official generator (unilm beit/masking_generator.py, SlowFast MaskingGenerator) per sample:
    blocks of random area in [min_num_patches, cap] (cap = min(remaining, max_num_patches)) and
    log-uniform aspect in [min_aspect, max_aspect], placed with inclusive bounds, strictly narrower and
    shorter than the grid, accepted when they add 0 < new <= cap cells (overlap allowed); 10 attempts
    per block; the mask stops early when a block cannot be placed, so it may hold fewer than
    num_masking_patches cells (MaskFeat 78/15: 70% exact), never more. Defaults: MaskFeat's (78/15);
    BEiT uses num_masking_patches=75, min_num_patches=16. max_num_patches None means
    num_masking_patches; max_aspect None or 0 means 1 / min_aspect. num_masking_patches <= 0 gives
    empty masks. seed/generator/sample_offset: module docstring.

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
    dev = _dispatch.as_device(device)
    be = _dispatch.resolve_backend("block_mask", backend, dev)
    key = rng.resolve_seed(seed, generator)
    if be == "torch":
        return reference.block_mask(batch, height, width, num_masking_patches, min_num_patches, max_num_patches,
                                    log_aspect_ratio, key, sample_offset, mmpretrain).to(dev)
    return torch.ops.mimkernels.block_mask_native(batch, height, width, num_masking_patches, min_num_patches,
                                                  max_num_patches, *log_aspect_ratio, mmpretrain,
                                                  rng.seed_to_i64(key), sample_offset, dev)


def _block_mask_fake(batch, height, width, num_masking_patches, min_num_patches, max_num_patches, log_aspect_min,
                     log_aspect_max, mmpretrain, seed, sample_offset, device):
    return torch.empty((batch, height, width), dtype=torch.bool, device=device)


def _block_mask_native(batch: int, height: int, width: int, num_masking_patches: int, min_num_patches: int,
                       max_num_patches: int, log_aspect_min: float, log_aspect_max: float, mmpretrain: bool,
                       seed: int, sample_offset: int, device: torch.device) -> torch.Tensor:
    out = _block_mask_fake(batch, height, width, num_masking_patches, min_num_patches, max_num_patches,
                           log_aspect_min, log_aspect_max, mmpretrain, seed, sample_offset, device)
    args = (_native.ptr(out, torch.bool), batch, height, width, num_masking_patches, min_num_patches,
            max_num_patches, log_aspect_min, log_aspect_max, mmpretrain, seed % 2**64, sample_offset)
    if device.type == "cuda":
        _native.cuda_call("block_mask_cuda", device, *args)
    else:
        _native.lib.block_mask_cpu(*args, _native.cpu_threads(batch))
    return out


define_op("block_mask_native", _block_mask_native, fake=_block_mask_fake, triton=False)


# ---- AvgDist --------------------------------------------------------------------------------------

def mask_avg_dist(mask: torch.Tensor, patch_size: int, *, backend: str = "auto") -> torch.Tensor:
    """SimMIM's AvgDist: mask (B, h, w) of any dtype, nonzero = masked, each cell patch_size² pixels ->
    (B,) float32: the mean over masked pixels of the Euclidean distance (pixel centres) to the nearest
    visible pixel; NaN when nothing is masked, +inf when nothing is visible. Equals
    scipy.ndimage.distance_transform_edt(pixels)[pixels].mean(). Exact distance transform (Meijster's
    separable passes on cpp/cuda), no all-pairs search."""
    check_tensor(mask, "mask", ndim=3, what="(B, h, w)")
    check_int(patch_size, "patch_size", minimum=1)
    if mask.shape[1] == 0 or mask.shape[2] == 0:
        raise ValueError(f"mask must have a non-empty grid, got shape {tuple(mask.shape)}")
    if mask.shape[1] * patch_size >= _MAX_PIXEL_SIDE or mask.shape[2] * patch_size >= _MAX_PIXEL_SIDE:
        raise ValueError(f"mask grid {tuple(mask.shape[1:])} times patch_size {patch_size} must be < 2^30 pixels")
    be = _dispatch.resolve_backend("mask_avg_dist", backend, mask.device)
    if be == "torch":
        return reference.mask_avg_dist(mask, patch_size)
    return torch.ops.mimkernels.mask_avg_dist_native(mask != 0, patch_size)


def _mask_avg_dist_fake(mask, patch_size):
    return mask.new_empty((mask.shape[0],), dtype=torch.float32)


def _mask_avg_dist_native(mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """mask (B, h, w) bool, any strides (made contiguous here, where the pointer is taken)."""
    mask = mask.contiguous()
    out = _mask_avg_dist_fake(mask, patch_size)
    batch, h, w = mask.shape
    pointers = (_native.ptr(out, torch.float32), _native.ptr(mask, torch.bool))
    if mask.device.type == "cuda":
        size = _native.lib.mask_avg_dist_workspace_bytes(batch, h, w, patch_size)
        workspace = torch.empty(size, dtype=torch.uint8, device=mask.device)  # owned by torch's caching allocator
        _native.cuda_call("mask_avg_dist_cuda", mask.device, *pointers, _native.ptr(workspace, torch.uint8), batch,
                          h, w, patch_size)
    else:
        _native.lib.mask_avg_dist_cpu(*pointers, batch, h, w, patch_size, _native.cpu_threads(batch))
    return out


define_op("mask_avg_dist_native", _mask_avg_dist_native, fake=_mask_avg_dist_fake, triton=False)


# ---- data loading ---------------------------------------------------------------------------------

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
