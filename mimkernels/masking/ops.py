"""The masking family in the torch.library catalogue: one declaration per (op, backend), its fake
and its backward beside it, and the native glue (`_C` through plain pointers).

    torch.ops.mimkernels.random_mask_indices.triton / .cpp / .cuda   (Philox keys)
    torch.ops.mimkernels.random_mask_indices.triton_from_noise       (caller noise; a helper overload)
    torch.ops.mimkernels.random_mask_indices.{triton,cpp,cuda}_per_sample   (per-sample ratios; helpers)
    torch.ops.mimkernels.random_masking.triton    (+ .triton_backward)  the gather of the kept rows
    torch.ops.mimkernels.gather_patches.triton    (+ .triton_backward)  the pixel family's patch copy
    torch.ops.mimkernels.unshuffle_tokens.triton  (+ .triton_backward)
    torch.ops.mimkernels.simmim_mask.cpp / .cuda
    torch.ops.mimkernels.block_mask.cpp / .cuda    (+ .cpp_per_sample / .cuda_per_sample: per-sample counts)
    torch.ops.mimkernels.mask_avg_dist.cpp / .cuda

The ops take what the front doors computed (K, the signed 64-bit key, the log-aspect bounds, ...):
they are the kernels' entry points, not a second public API. Every random op takes `seed_step` right after
its int `seed`: None, or a seed tensor (rng.seed_tensor: the int is then 0), whose key the kernel derives on
the device (rng.md "Seeds in a tensor"). Why overloads per backend, and not one
op with a kernel per device: SPEC.md §9.
"""
from __future__ import annotations

import torch

from mimkernels import _native
from mimkernels._backends import HAS_TRITON
from mimkernels._library import define_native, define_op


# ---- random_mask_indices (SPEC.md §2) -----------------------------------------------------------

def _mask_indices_fake(batch: int, num_patches: int, len_keep: int, seed: int, seed_step: torch.Tensor | None,
                       sample_offset: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ids_keep (B, K), ids_restore (B, L) int64, mask (B, L) float32."""
    return (torch.empty((batch, len_keep), dtype=torch.int64, device=device),
            torch.empty((batch, num_patches), dtype=torch.int64, device=device),
            torch.empty((batch, num_patches), dtype=torch.float32, device=device))


def random_mask_indices_native(batch: int, num_patches: int, len_keep: int, seed: int,
                               seed_step: torch.Tensor | None, sample_offset: int,
                               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids_keep, ids_restore, mask = _mask_indices_fake(batch, num_patches, len_keep, seed, seed_step, sample_offset,
                                                     device)
    if batch == 0:  # nothing to draw (the cpp body would still size its sort keys by num_patches)
        return ids_keep, ids_restore, mask
    args = (_native.ptr(ids_keep, torch.int64), _native.ptr(ids_restore, torch.int64), _native.ptr(mask, torch.float32),
            batch, num_patches, len_keep, seed % 2**64, _native.seed_step_ptr(seed_step), sample_offset)
    if device.type == "cuda":
        _native.cuda_call("mae_mask_indices_cuda", device, *args)
    else:
        _native.lib.mae_mask_indices_cpu(*args, _native.cpu_threads(batch))
    return ids_keep, ids_restore, mask


define_native("random_mask_indices", random_mask_indices_native, fake=_mask_indices_fake)


# Per-sample ratios (SPEC.md §2a): helper overloads `<backend>_per_sample` of random_mask_indices, taking the
# (B,) kept counts the front door computed (on the device) and the width max_keep of the ids_keep rows.

def _mask_indices_per_sample_fake(kept: torch.Tensor, num_patches: int, max_keep: int, seed: int,
                                  seed_step: torch.Tensor | None,
                                  sample_offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _mask_indices_fake(kept.shape[0], num_patches, max_keep, seed, seed_step, sample_offset, kept.device)


def random_mask_indices_per_sample_native(kept: torch.Tensor, num_patches: int, max_keep: int, seed: int,
                                          seed_step: torch.Tensor | None,
                                          sample_offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch = kept.shape[0]
    kept = kept.contiguous()
    ids_keep, ids_restore, mask = _mask_indices_per_sample_fake(kept, num_patches, max_keep, seed, seed_step,
                                                                sample_offset)
    args = (_native.ptr(ids_keep, torch.int64), _native.ptr(ids_restore, torch.int64), _native.ptr(mask, torch.float32),
            _native.ptr(kept, torch.int64), batch, num_patches, max_keep, seed % 2**64, _native.seed_step_ptr(seed_step),
            sample_offset)
    if kept.device.type == "cuda":
        _native.cuda_call("mae_mask_indices_counts_cuda", kept.device, *args)
    else:
        _native.lib.mae_mask_indices_counts_cpu(*args, _native.cpu_threads(batch))
    return ids_keep, ids_restore, mask


for _backend, _device in (("cpp", "cpu"), ("cuda", "cuda")):
    define_op(f"random_mask_indices.{_backend}_per_sample", random_mask_indices_per_sample_native,
              fake=_mask_indices_per_sample_fake, device_types=_device)


# ---- simmim_mask (SPEC.md §6) -------------------------------------------------------------------

def _simmim_mask_fake(batch: int, rand_size: int, scale: int, mask_count: int, seed: int,
                      seed_step: torch.Tensor | None, sample_offset: int, device: torch.device) -> torch.Tensor:
    n = rand_size * scale
    return torch.empty((batch, n, n), dtype=torch.bool, device=device)


def simmim_mask_native(batch: int, rand_size: int, scale: int, mask_count: int, seed: int,
                       seed_step: torch.Tensor | None, sample_offset: int, device: torch.device) -> torch.Tensor:
    out = _simmim_mask_fake(batch, rand_size, scale, mask_count, seed, seed_step, sample_offset, device)
    args = (batch, rand_size, scale, mask_count, seed % 2**64, _native.seed_step_ptr(seed_step), sample_offset)
    if device.type == "cuda":
        keys = torch.empty((batch, rand_size * rand_size), dtype=torch.int64, device=device)  # sort workspace
        _native.cuda_call("simmim_mask_cuda", device, _native.ptr(out, torch.bool), _native.ptr(keys, torch.int64),
                          *args)
    else:
        _native.lib.simmim_mask_cpu(_native.ptr(out, torch.bool), *args, _native.cpu_threads(batch))
    return out


define_native("simmim_mask", simmim_mask_native, fake=_simmim_mask_fake)


# ---- block_mask (SPEC.md §7) --------------------------------------------------------------------

def _block_mask_fake(batch: int, height: int, width: int, num_masking_patches: int, min_num_patches: int,
                     max_num_patches: int, log_aspect_min: float, log_aspect_max: float, mmpretrain: bool,
                     seed: int, seed_step: torch.Tensor | None, sample_offset: int,
                     device: torch.device) -> torch.Tensor:
    return torch.empty((batch, height, width), dtype=torch.bool, device=device)


def block_mask_native(batch: int, height: int, width: int, num_masking_patches: int, min_num_patches: int,
                      max_num_patches: int, log_aspect_min: float, log_aspect_max: float, mmpretrain: bool,
                      seed: int, seed_step: torch.Tensor | None, sample_offset: int,
                      device: torch.device) -> torch.Tensor:
    out = torch.empty((batch, height, width), dtype=torch.bool, device=device)
    args = (_native.ptr(out, torch.bool), batch, height, width, num_masking_patches, min_num_patches,
            max_num_patches, log_aspect_min, log_aspect_max, mmpretrain, seed % 2**64, _native.seed_step_ptr(seed_step),
            sample_offset)
    if device.type == "cuda":
        _native.cuda_call("block_mask_cuda", device, *args)
    else:
        _native.lib.block_mask_cpu(*args, _native.cpu_threads(batch))
    return out


define_native("block_mask", block_mask_native, fake=_block_mask_fake)


# Per-sample counts (SPEC.md §7a): helper overloads `<backend>_per_sample` of block_mask, taking the (B,)
# int64 counts; max_is_count: each sample's max_num_patches is its count.

def _block_mask_per_sample_fake(counts: torch.Tensor, height: int, width: int, min_num_patches: int,
                                max_num_patches: int, max_is_count: bool, log_aspect_min: float,
                                log_aspect_max: float, mmpretrain: bool, seed: int, seed_step: torch.Tensor | None,
                                sample_offset: int) -> torch.Tensor:
    return torch.empty((counts.shape[0], height, width), dtype=torch.bool, device=counts.device)


def block_mask_per_sample_native(counts: torch.Tensor, height: int, width: int, min_num_patches: int,
                                 max_num_patches: int, max_is_count: bool, log_aspect_min: float,
                                 log_aspect_max: float, mmpretrain: bool, seed: int, seed_step: torch.Tensor | None,
                                 sample_offset: int) -> torch.Tensor:
    counts = counts.contiguous()
    batch = counts.shape[0]
    out = torch.empty((batch, height, width), dtype=torch.bool, device=counts.device)
    args = (_native.ptr(out, torch.bool), _native.ptr(counts, torch.int64), batch, height, width, min_num_patches,
            max_num_patches, max_is_count, log_aspect_min, log_aspect_max, mmpretrain, seed % 2**64,
            _native.seed_step_ptr(seed_step), sample_offset)
    if counts.device.type == "cuda":
        _native.cuda_call("block_mask_counts_cuda", counts.device, *args)
    else:
        _native.lib.block_mask_counts_cpu(*args, _native.cpu_threads(batch))
    return out


for _backend, _device in (("cpp", "cpu"), ("cuda", "cuda")):
    define_op(f"block_mask.{_backend}_per_sample", block_mask_per_sample_native, fake=_block_mask_per_sample_fake,
              device_types=_device)


# ---- mask_avg_dist (SPEC.md §8) -----------------------------------------------------------------

def _mask_avg_dist_fake(mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    return mask.new_empty((mask.shape[0],), dtype=torch.float32)


def mask_avg_dist_native(mask: torch.Tensor, patch_size: int) -> torch.Tensor:
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


define_native("mask_avg_dist", mask_avg_dist_native, fake=_mask_avg_dist_fake)


# ---- Triton: random_mask_indices, random_masking, gather_patches, unshuffle_tokens ----------------

if HAS_TRITON:
    from mimkernels.masking import triton
    from mimkernels.pixel import triton as pixel_triton

    define_op("random_mask_indices.triton", triton.random_mask_indices, fake=_mask_indices_fake, triton=True)
    define_op("random_mask_indices.triton_per_sample", triton.random_mask_indices_per_sample, triton=True,
              fake=_mask_indices_per_sample_fake)
    define_op("random_mask_indices.triton_from_noise", triton.random_mask_indices_from_noise, triton=True,
              fake=lambda noise, len_keep: _mask_indices_fake(*noise.shape, len_keep, 0, None, 0, noise.device))

    # The backward scatters the gradient rows into zeros: it reads ids_keep, and only x's shape.
    define_op("random_masking.triton", triton.random_masking, triton=True,
              fake=lambda x, ids_keep: x.new_empty((x.shape[0], ids_keep.shape[1], x.shape[2])),
              backward=triton.random_masking_backward, differentiable=("x",), reads=("ids_keep",))

    # The pixel family's patch copy through patch ids (pixel/triton.py): the backward scatters the
    # rows into a zero image of imgs' shape.
    define_op("gather_patches.triton", pixel_triton.gather_patches, triton=True,
              fake=lambda imgs, ids_keep, patch_size, num_prefix_tokens=0: imgs.new_empty(
                  (imgs.shape[0], ids_keep.shape[1], patch_size * patch_size * imgs.shape[1])),
              backward=pixel_triton.gather_patches_backward, differentiable=("imgs",), reads=("ids_keep",))

    define_op("unshuffle_tokens.triton", triton.unshuffle_tokens, triton=True,
              fake=lambda x, ids_restore, mask_token, num_prefix_tokens=1: x.new_empty(
                  (x.shape[0], num_prefix_tokens + ids_restore.shape[1], x.shape[2])),
              backward=triton.unshuffle_tokens_backward, differentiable=("x", "mask_token"), reads=("ids_restore",))
