"""torch.library declarations of the pixel family: `torch.ops.mimkernels.<op>.torch` (the eager
reference, on every install) and `torch.ops.mimkernels.<op>.triton` (where triton is installed) for
its six ops, each Triton op with its fake and its backward kernel side by side (SPEC.md §7).

No cpp/cuda backend: every op is one memory-bound pass that the Triton kernel already fuses; on a
CPU without the interpreter the reference runs.
"""
from __future__ import annotations

import torch

from mimkernels._backends import HAS_TRITON
from mimkernels._library import define_op, define_reference
from mimkernels.pixel import reference


def patches_fake(imgs, patch_size, *_):
    """(B, L, p·p·C) in imgs.dtype: patchify's and patch_norm_target's output."""
    b, c, h, w = imgs.shape
    return imgs.new_empty((b, (h // patch_size) * (w // patch_size), patch_size * patch_size * c))


def image_fake(x, patch_size, channels, height, width):
    return x.new_empty((x.shape[0], channels, height, width))


def loss_fake(pred, target, *_):
    """The losses' 0-d result: float64 when an input is float64, else float32."""
    return pred.new_empty((), dtype=torch.float64 if torch.float64 in (pred.dtype, target.dtype) else torch.float32)


def unpatchify_reference(x: torch.Tensor, patch_size: int, channels: int, height: int, width: int) -> torch.Tensor:
    """reference.unpatchify with the Triton op's arguments (the image size instead of the grid)."""
    return reference.unpatchify(x, patch_size, channels, (height // patch_size, width // patch_size))


define_reference("patchify", reference.patchify)
define_reference("unpatchify", unpatchify_reference)
define_reference("patch_norm_target", reference.patch_norm_target)
define_reference("masked_mse_loss", reference.masked_mse_loss)
define_reference("norm_pix_mse_loss", reference.norm_pix_mse_loss)
define_reference("masked_l1_loss", reference.masked_l1_loss)

# backend -> the longest patch row (p·p·C elements) one of its programs holds; the front doors send
# longer rows to torch under "auto" and refuse them when the backend is asked for
MAX_ROW: dict[str, int] = {}

if HAS_TRITON:
    from mimkernels.pixel import triton as kernels

    MAX_ROW["triton"] = kernels.MAX_PATCH_ELEMENTS
    # each one's backward is the other's copy; the input is not saved (reads=()), only its shape
    define_op("patchify.triton", kernels.patchify, fake=patches_fake, triton=True,
              backward=kernels.patchify_backward, differentiable=("imgs",), reads=())
    define_op("unpatchify.triton", kernels.unpatchify, fake=image_fake, triton=True,
              backward=kernels.unpatchify_backward, differentiable=("x",), reads=())
    # the backwards recompute the target from imgs: the inputs are all they save
    define_op("patch_norm_target.triton", kernels.patch_norm_target, fake=patches_fake, triton=True,
              backward=kernels.patch_norm_target_backward, differentiable=("imgs",))
    define_op("masked_mse_loss.triton", kernels.masked_mse_loss, fake=loss_fake, triton=True,
              backward=kernels.masked_mse_loss_backward, differentiable=("pred", "target"))
    define_op("norm_pix_mse_loss.triton", kernels.norm_pix_mse_loss, fake=loss_fake, triton=True,
              backward=kernels.norm_pix_mse_loss_backward, differentiable=("pred", "imgs"))
    define_op("masked_l1_loss.triton", kernels.masked_l1_loss, fake=loss_fake, triton=True,
              backward=kernels.masked_l1_loss_backward, differentiable=("x_rec", "imgs"))
