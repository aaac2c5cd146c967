"""Masking family: MAE random masking and the decoder unshuffle (spec/masking.md §2, §3) here;
SimMIM's mask, the BEiT/MaskFeat block mask, AvgDist and MaskCollator in mask_generators.py (§4–6).

Front doors validate once, pick a backend (`_dispatch.resolve_backend`) and run it. Backends:
"torch" (eager reference, any device) for every op; "cpp"/"cuda" (native, csrc/masking) for
`random_mask_indices` with Philox keys (noise=None), bit-identical to "torch"; "triton" for
`random_mask_indices` (Philox keys, or caller noise of dtype fp32/fp16/bf16; other noise dtypes run
the reference; at most 2^14 patches), `random_masking` (the index kernel + one row gather; backward
a scatter into zeros), `gather_patches`, and `unshuffle_tokens` (gather forward; backward scatters
to x and sums the masked rows per sample in fp32, in a fixed order, no atomics; ids_restore must be
a permutation of [0, L), as MAE's is). Every Triton and native result is bit-identical to "torch".

Randomness (spec/rng.md, stream 1): with `noise=None`, the sort key of patch l of sample b is x0 of
Philox at counter (l, sample_offset + b, STREAM_MAE_MASKING, 0) under the key `resolve_seed(seed,
generator)`, sorted ascending as a uint32, ties by index. So a batch split into pieces with the
matching `sample_offset` gives the same masks as the whole batch. With `noise` given, the outputs
are a pure function of it (ascending, ties by index): pass `noise = torch.rand(B, L)` drawn where
MAE draws it to reproduce MAE's masks bit for bit on tie-free noise.

K = int(L · (1 − mask_ratio)) exactly as MAE (Python float64, truncation). Decision: K == 0 is
allowed for any ratio that yields it (ratio 1, and the truncation cases such as L = 10, ratio 0.9),
because MAE computes the same K; ids_keep / x_visible then have 0 columns and the mask is all ones.
mask_ratio outside [0, 1] raises ValueError (MAE silently misbehaves there), as does L == 0.
"""
from __future__ import annotations

import torch

from mimkernels import _dispatch, _native, rng
from mimkernels._dispatch import (HAS_TRITON, check_float, check_int, check_same_device, check_tensor, define_op,
                                  implements)
from mimkernels.masking import reference
from mimkernels.masking.mask_generators import MaskCollator, block_mask, mask_avg_dist, simmim_mask

__all__ = ["random_mask_indices", "random_masking", "gather_patches", "unshuffle_tokens", "simmim_mask", "block_mask",
           "mask_avg_dist", "MaskCollator"]

implements("random_mask_indices", "torch", "triton", "cpp", "cuda")
implements("random_masking", "torch", "triton")
implements("unshuffle_tokens", "torch", "triton")
implements("gather_patches", "torch", "triton")

_MAX_PATCHES = 1 << 31
_NOISE_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32)


def _check_keys(noise, seed, generator, sample_offset, batch: int, num_patches: int,
                device: torch.device | None) -> None:
    """The sort-key arguments of random_mask_indices / random_masking: noise (B, L) on `device`, or
    seed/generator, never both."""
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


def _philox_keys(batch: int, num_patches: int, seed, generator, sample_offset: int,
                 device: torch.device) -> torch.Tensor:
    """(B, L) int64 holding the uint32 sort keys of rng.md stream 1."""
    rng.check_sample_offset(sample_offset, batch)
    key = rng.resolve_seed(seed, generator)
    i = torch.arange(num_patches, dtype=torch.int64, device=device).unsqueeze(0)
    b = (torch.arange(batch, dtype=torch.int64, device=device) + sample_offset).unsqueeze(1)
    x0, _, _, _ = rng.draw(key, i, b, rng.STREAM_MAE_MASKING, device=device)
    return x0.expand(batch, num_patches).contiguous()


def random_mask_indices(batch: int, num_patches: int, mask_ratio: float = 0.75, *, noise: torch.Tensor | None = None,
                        seed: int | None = None, generator: torch.Generator | None = None, sample_offset: int = 0,
                        device=None, backend: str = "auto"):
    """MAE's random shuffle without the tokens: (ids_keep (B, K) int64, ids_restore (B, L) int64,
    mask (B, L) float32, 1 = masked), K = int(L · (1 − mask_ratio)).

    noise (B, L): sort keys given by the caller (overrides seed/generator/sample_offset); else
    Philox keys (module docstring). device: defaults to noise's device, else CPU.
    """
    check_int(batch, "batch", minimum=0)
    check_int(num_patches, "num_patches", minimum=1)
    if noise is None and num_patches >= _MAX_PATCHES:
        raise ValueError(f"num_patches must be < 2^31 with Philox keys (counters and the index word of a sort "
                         f"key are 32-bit), got {num_patches}")
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    if device is None and noise is not None and isinstance(noise, torch.Tensor):
        device = noise.device
    dev = _dispatch.as_device(device)
    _check_keys(noise, seed, generator, sample_offset, batch, num_patches, dev)
    be = _dispatch.resolve_backend("random_mask_indices", backend, dev)
    return _mask_indices(batch, num_patches, ratio, noise, seed, generator, sample_offset, dev, be)


def _mask_indices(batch: int, num_patches: int, ratio: float, noise, seed, generator, sample_offset: int,
                  device: torch.device, be: str):
    """random_mask_indices on backend `be`, arguments already validated. Caller noise runs in the
    Triton kernel when it is fp32/fp16/bf16 (exact in fp32), else in the reference."""
    len_keep = reference.len_keep(num_patches, ratio)
    if be == "triton" and num_patches > _kernels.MAX_PATCHES:
        raise ValueError(f"random_mask_indices: the triton backend takes num_patches <= {_kernels.MAX_PATCHES}, "
                         f"got {num_patches}; use backend='torch'")
    if noise is not None:
        if be == "triton" and noise.dtype in _dispatch.FLOAT_DTYPES:
            return tuple(torch.ops.mimkernels.mae_random_mask_indices_from_noise(noise, len_keep))
        return reference.random_mask_indices(batch, num_patches, ratio, noise)
    if be == "torch":
        noise = _philox_keys(batch, num_patches, seed, generator, sample_offset, device)
        return reference.random_mask_indices(batch, num_patches, ratio, noise)
    rng.check_sample_offset(sample_offset, batch)
    key = rng.resolve_seed(seed, generator)
    op = (torch.ops.mimkernels.mae_random_mask_indices if be == "triton"
          else torch.ops.mimkernels.mae_random_mask_indices_native)
    return tuple(op(batch, num_patches, len_keep, rng.seed_to_i64(key), sample_offset, device))


def _mask_indices_native_impl(batch: int, num_patches: int, len_keep: int, seed: int, sample_offset: int,
                              device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids_keep, ids_restore, mask = _mask_indices_fake(batch, num_patches, len_keep, seed, sample_offset, device)
    args = (_native.ptr(ids_keep, torch.int64), _native.ptr(ids_restore, torch.int64), _native.ptr(mask, torch.float32),
            batch, num_patches, len_keep, seed % 2**64, sample_offset)
    if device.type == "cuda":
        _native.cuda_call("mae_mask_indices_cuda", device, *args)
    else:
        _native.lib.mae_mask_indices_cpu(*args, _native.cpu_threads(batch))
    return ids_keep, ids_restore, mask


def _mask_indices_fake(batch, num_patches, len_keep, seed, sample_offset, device):
    """Outputs of both index ops: ids_keep (B, K), ids_restore (B, L) int64, mask (B, L) float32."""
    return (torch.empty((batch, len_keep), dtype=torch.int64, device=device),
            torch.empty((batch, num_patches), dtype=torch.int64, device=device),
            torch.empty((batch, num_patches), dtype=torch.float32, device=device))


define_op("mae_random_mask_indices_native", _mask_indices_native_impl, fake=_mask_indices_fake, triton=False)


def random_masking(x: torch.Tensor, mask_ratio: float = 0.75, *, noise: torch.Tensor | None = None,
                   seed: int | None = None, generator: torch.Generator | None = None, sample_offset: int = 0,
                   backend: str = "auto"):
    """MAE random_masking: x (B, L, D) -> (x_visible (B, K, D) x.dtype, mask (B, L) float32 1 = masked,
    ids_restore (B, L) int64). x_visible holds the kept tokens in ascending-key order, as MAE.
    Differentiable in x. Triton: the index kernel, then one row gather (backward: a scatter into zeros)."""
    check_tensor(x, "x", ndim=3, what="(B, L, D)")
    batch, length, _ = x.shape
    if length == 0:
        raise ValueError("x must have L >= 1 patches, got L = 0")
    ratio = check_float(mask_ratio, "mask_ratio", minimum=0.0, maximum=1.0)
    _check_keys(noise, seed, generator, sample_offset, batch, length, x.device)
    be = _dispatch.resolve_backend("random_masking", backend, x.device)
    if be == "torch":
        if noise is None:
            noise = _philox_keys(batch, length, seed, generator, sample_offset, x.device)
        return reference.random_masking(x, ratio, noise)
    ids_keep, ids_restore, mask = _mask_indices(batch, length, ratio, noise, seed, generator, sample_offset,
                                                x.device, be)
    return torch.ops.mimkernels.gather_rows(x, ids_keep), mask, ids_restore


def gather_patches(imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int, *, num_prefix_tokens: int = 0,
                   backend: str = "auto") -> torch.Tensor:
    """patchify(imgs)[b, ids_keep[b, k] − P] in one pass, P = num_prefix_tokens: imgs (B, C, H, W) any
    strides, ids_keep (B, K) int64 -> (B, K, p·p·C) in imgs.dtype, MAE's (p, q, c) layout.
    P = 0 (default): ids are patch indices (MAE's ids_keep). P > 0: ids count P prefix tokens first, as
    lightly's token indices do (patch l is token P + l): lightly's target
    `get_at_index(patchify(images, p), idx_mask - 1)` is `gather_patches(images, idx_mask, p,
    num_prefix_tokens=1)`. Differentiable in imgs (the backward scatters into a zero image). Ids must
    be distinct and in [P, P + L): checked only with MIMKERNELS_DEBUG=1 (a value check syncs the host)."""
    check_tensor(imgs, "imgs", ndim=4, what="(B, C, H, W)")
    check_tensor(ids_keep, "ids_keep", ndim=2, dtypes=(torch.int64,), what="(B, K)")
    h, w = _dispatch.check_patch_grid(imgs.shape[2], imgs.shape[3], patch_size)
    prefix = check_int(num_prefix_tokens, "num_prefix_tokens", minimum=0)
    if ids_keep.shape[0] != imgs.shape[0]:
        raise ValueError(f"ids_keep has batch {ids_keep.shape[0]}, imgs has {imgs.shape[0]}")
    dev = check_same_device(imgs=imgs, ids_keep=ids_keep)
    if _dispatch.debug_checks() and ids_keep.numel() and (
            int(ids_keep.min()) < prefix or int(ids_keep.max()) >= prefix + h * w):
        raise ValueError(f"ids_keep values must be in [P, P + L) = [{prefix}, {prefix + h * w})")
    be = _dispatch.resolve_backend("gather_patches", backend, dev)
    if be == "torch":
        return reference.gather_patches(imgs, ids_keep, patch_size, prefix)
    return torch.ops.mimkernels.gather_patches(imgs, ids_keep, patch_size, prefix)


def unshuffle_tokens(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor, *,
                     num_prefix_tokens: int = 1, backend: str = "auto") -> torch.Tensor:
    """MAE decoder input: x (B, P+K, D) with P = num_prefix_tokens prefix tokens first (default 1: MAE's
    cls; timm: cls + register tokens; 0: none), ids_restore (B, L) int64, mask_token (D,) or (1, 1, D)
    -> (B, P+L, D): out[:, :P] = x[:, :P]; out[:, P+l] = x[:, P+r] if r = ids_restore[:, l] < K else
    mask_token. Differentiable in x and mask_token. ids_restore must be a permutation of [0, L)
    (MAE's is); its values are checked only with MIMKERNELS_DEBUG=1 (a value check syncs the host)."""
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
    if _dispatch.debug_checks() and ids_restore.numel() and (
            int(ids_restore.min()) < 0 or int(ids_restore.max()) >= ids_restore.shape[1]):
        raise ValueError("ids_restore values must be in [0, L)")
    be = _dispatch.resolve_backend("unshuffle_tokens", backend, dev)
    if be == "torch":
        return reference.unshuffle_tokens(x, ids_restore, mask_token, prefix)
    return torch.ops.mimkernels.unshuffle_tokens(x, ids_restore, mask_token, prefix)


if HAS_TRITON:
    from mimkernels.masking import triton as _kernels

    def _mask_indices_impl(batch: int, num_patches: int, len_keep: int, seed: int, sample_offset: int,
                           device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _kernels.random_mask_indices(batch, num_patches, len_keep, seed, sample_offset,
                                            rng.STREAM_MAE_MASKING, device)

    define_op("mae_random_mask_indices", _mask_indices_impl, fake=_mask_indices_fake, triton=True)

    def _mask_indices_from_noise_impl(noise: torch.Tensor, len_keep: int
                                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, num_patches = noise.shape
        return _kernels.random_mask_indices(batch, num_patches, len_keep, 0, 0, rng.STREAM_MAE_MASKING,
                                            noise.device, noise)

    def _mask_indices_from_noise_fake(noise, len_keep):
        return _mask_indices_fake(noise.shape[0], noise.shape[1], len_keep, 0, 0, noise.device)

    define_op("mae_random_mask_indices_from_noise", _mask_indices_from_noise_impl,
              fake=_mask_indices_from_noise_fake, triton=True)

    def _gather_rows_impl(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return _kernels.gather_rows(x, ids)

    def _gather_rows_fake(x, ids):
        return x.new_empty((x.shape[0], ids.shape[1], x.shape[2]))

    def _scatter_rows_impl(rows: torch.Tensor, ids: torch.Tensor, length: int) -> torch.Tensor:
        return _kernels.scatter_rows(rows, ids, length)

    def _scatter_rows_fake(rows, ids, length):
        return rows.new_empty((rows.shape[0], length, rows.shape[2]))

    def _gather_rows_setup(ctx, inputs, output):
        x, ids = inputs
        ctx.length = x.shape[1]
        ctx.save_for_backward(ids)

    def _gather_rows_backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        return torch.ops.mimkernels.scatter_rows(grad, ids, ctx.length), None

    def _scatter_rows_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])

    def _scatter_rows_backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        return torch.ops.mimkernels.gather_rows(grad, ids), None, None

    define_op("gather_rows", _gather_rows_impl, fake=_gather_rows_fake, triton=True,
              backward=_gather_rows_backward, setup_context=_gather_rows_setup)
    define_op("scatter_rows", _scatter_rows_impl, fake=_scatter_rows_fake, triton=True,
              backward=_scatter_rows_backward, setup_context=_scatter_rows_setup)

    from mimkernels.pixel import triton as _pixel_kernels

    def _gather_patches_impl(imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int,
                             num_prefix_tokens: int = 0) -> torch.Tensor:
        return _pixel_kernels.patchify(imgs, patch_size, ids_keep, num_prefix_tokens)

    def _gather_patches_fake(imgs, ids_keep, patch_size, num_prefix_tokens=0):
        return imgs.new_empty((imgs.shape[0], ids_keep.shape[1], patch_size * patch_size * imgs.shape[1]))

    def _scatter_patches_impl(x: torch.Tensor, ids_keep: torch.Tensor, patch_size: int, channels: int,
                              height: int, width: int, num_prefix_tokens: int = 0) -> torch.Tensor:
        return _pixel_kernels.unpatchify(x, patch_size, channels, height, width, ids_keep, num_prefix_tokens)

    def _scatter_patches_fake(x, ids_keep, patch_size, channels, height, width, num_prefix_tokens=0):
        return x.new_empty((x.shape[0], channels, height, width))

    def _gather_patches_setup(ctx, inputs, output):
        imgs, ids_keep, ctx.patch_size, ctx.prefix = inputs
        ctx.image_shape = imgs.shape
        ctx.save_for_backward(ids_keep)

    def _gather_patches_backward(ctx, grad):
        (ids_keep,) = ctx.saved_tensors
        _, c, h, w = ctx.image_shape
        grad_imgs = torch.ops.mimkernels.scatter_patches(grad, ids_keep, ctx.patch_size, c, h, w, ctx.prefix)
        return grad_imgs, None, None, None

    def _scatter_patches_setup(ctx, inputs, output):
        x, ids_keep, ctx.patch_size = inputs[:3]
        ctx.prefix = inputs[6]
        ctx.save_for_backward(ids_keep)

    def _scatter_patches_backward(ctx, grad):
        (ids_keep,) = ctx.saved_tensors
        grad_x = torch.ops.mimkernels.gather_patches(grad, ids_keep, ctx.patch_size, ctx.prefix)
        return grad_x, None, None, None, None, None, None

    define_op("gather_patches", _gather_patches_impl, fake=_gather_patches_fake, triton=True,
              backward=_gather_patches_backward, setup_context=_gather_patches_setup)
    define_op("scatter_patches", _scatter_patches_impl, fake=_scatter_patches_fake, triton=True,
              backward=_scatter_patches_backward, setup_context=_scatter_patches_setup)

    def _unshuffle_impl(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor,
                        num_prefix_tokens: int = 1) -> torch.Tensor:
        return _kernels.unshuffle_tokens(x, ids_restore, mask_token, num_prefix_tokens)

    def _unshuffle_fake(x, ids_restore, mask_token, num_prefix_tokens=1):
        return x.new_empty((x.shape[0], num_prefix_tokens + ids_restore.shape[1], x.shape[2]))

    def _unshuffle_backward_impl(grad: torch.Tensor, ids_restore: torch.Tensor, kept: int,
                                 num_prefix_tokens: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        return _kernels.unshuffle_tokens_backward(grad, ids_restore, kept, num_prefix_tokens)

    def _unshuffle_backward_fake(grad, ids_restore, kept, num_prefix_tokens=1):
        acc = torch.float64 if grad.dtype == torch.float64 else torch.float32
        return (grad.new_empty((grad.shape[0], num_prefix_tokens + kept, grad.shape[2])),
                grad.new_empty((grad.shape[0], grad.shape[2]), dtype=acc))

    def _unshuffle_setup(ctx, inputs, output):
        x, ids_restore, mask_token, ctx.prefix = inputs
        ctx.kept = x.shape[1] - ctx.prefix
        ctx.token_shape = mask_token.shape
        ctx.token_dtype = mask_token.dtype
        ctx.save_for_backward(ids_restore)

    def _unshuffle_backward(ctx, grad):
        (ids_restore,) = ctx.saved_tensors
        grad_x, partial = torch.ops.mimkernels.unshuffle_tokens_backward(grad, ids_restore, ctx.kept, ctx.prefix)
        grad_token = partial.sum(0).to(ctx.token_dtype).reshape(ctx.token_shape)
        return grad_x, None, grad_token, None

    define_op("unshuffle_tokens", _unshuffle_impl, fake=_unshuffle_fake, triton=True,
              backward=_unshuffle_backward, setup_context=_unshuffle_setup)
    define_op("unshuffle_tokens_backward", _unshuffle_backward_impl, fake=_unshuffle_backward_fake, triton=True)
