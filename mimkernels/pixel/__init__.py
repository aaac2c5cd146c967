"""Pixel family: patchify / unpatchify (spec/masking.md §1), per-patch normalized targets and
masked losses (spec/pixel.md).

Front doors validate once, pick a backend (`_dispatch.resolve_backend`) and call the eager
reference or a `torch.ops.mimkernels.*` op with a fake and registered autograd.
"""
from __future__ import annotations

import torch

from mimkernels import _dispatch
from mimkernels._dispatch import HAS_TRITON, check_patch_grid, check_tensor, define_op, implements
from mimkernels.pixel import reference

__all__ = ["patchify", "unpatchify"]

implements("patchify", "torch", "triton")
implements("unpatchify", "torch", "triton")


# ---- patchify / unpatchify ---------------------------------------------------------------------

def patchify(imgs: torch.Tensor, patch_size: int, *, backend: str = "auto") -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p·p·C) in imgs.dtype, MAE's (p, q, c) layout; L = (H/p)(W/p).

    Any C, H ≠ W allowed; H and W must be divisible by `patch_size`. Reads imgs in place (any strides).
    """
    check_tensor(imgs, "imgs", ndim=4, what="(B, C, H, W)")
    check_patch_grid(imgs.shape[2], imgs.shape[3], patch_size)
    be = _dispatch.resolve_backend("patchify", backend, imgs.device)
    if be == "torch":
        return reference.patchify(imgs, patch_size)
    return torch.ops.mimkernels.patchify(imgs, patch_size)


def unpatchify(x: torch.Tensor, patch_size: int, channels: int = 3, *, grid_size: tuple[int, int] | None = None,
               backend: str = "auto") -> torch.Tensor:
    """(B, L, p·p·C) -> (B, C, h·p, w·p), the inverse of patchify.

    grid_size (h, w) defaults to the square grid √L × √L, as MAE; give it for non-square images.
    """
    check_tensor(x, "x", ndim=3, what="(B, L, p*p*C)")
    _dispatch.check_int(patch_size, "patch_size", minimum=1)
    _dispatch.check_int(channels, "channels", minimum=1)
    length = x.shape[1]
    if grid_size is None:
        side = int(round(length ** 0.5))
        if side * side != length:
            raise ValueError(f"x has L = {length} patches, not a square grid: pass grid_size=(h, w)")
        grid_size = (side, side)
    h, w = (int(v) for v in grid_size)
    if h * w != length:
        raise ValueError(f"grid_size {tuple(grid_size)} holds {h * w} patches, x has L = {length}")
    if x.shape[2] != patch_size * patch_size * channels:
        raise ValueError(f"x has rows of {x.shape[2]} values, expected patch_size² · channels = "
                         f"{patch_size * patch_size * channels}")
    be = _dispatch.resolve_backend("unpatchify", backend, x.device)
    if be == "torch":
        return reference.unpatchify(x, patch_size, channels, (h, w))
    return torch.ops.mimkernels.unpatchify(x, patch_size, channels, h * patch_size, w * patch_size)


if HAS_TRITON:
    from mimkernels.pixel import triton as _kernels

    def _patchify_impl(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
        return _kernels.patchify(imgs, patch_size)

    def _patchify_fake(imgs, patch_size):
        b, c, h, w = imgs.shape
        return imgs.new_empty((b, (h // patch_size) * (w // patch_size), patch_size * patch_size * c))

    def _patchify_setup(ctx, inputs, output):
        imgs, ctx.patch_size = inputs
        ctx.image_shape = imgs.shape

    def _patchify_backward(ctx, grad):
        _, c, h, w = ctx.image_shape
        return torch.ops.mimkernels.unpatchify(grad, ctx.patch_size, c, h, w), None

    def _unpatchify_impl(x: torch.Tensor, patch_size: int, channels: int, height: int, width: int) -> torch.Tensor:
        return _kernels.unpatchify(x, patch_size, channels, height, width)

    def _unpatchify_fake(x, patch_size, channels, height, width):
        return x.new_empty((x.shape[0], channels, height, width))

    def _unpatchify_setup(ctx, inputs, output):
        ctx.patch_size = inputs[1]

    def _unpatchify_backward(ctx, grad):
        return torch.ops.mimkernels.patchify(grad, ctx.patch_size), None, None, None, None

    define_op("patchify", _patchify_impl, fake=_patchify_fake, triton=True,
              backward=_patchify_backward, setup_context=_patchify_setup)
    define_op("unpatchify", _unpatchify_impl, fake=_unpatchify_fake, triton=True,
              backward=_unpatchify_backward, setup_context=_unpatchify_setup)
