"""Pixel family: patchify / unpatchify (spec/masking.md §1), per-patch normalized targets and
masked losses (spec/pixel.md).

Front doors validate once, pick a backend (`_dispatch.resolve_backend`) and call the eager
reference or a `torch.ops.mimkernels.*` op with a fake and registered autograd.
"""
from __future__ import annotations

import torch

from mimkernels import _dispatch
from mimkernels._dispatch import (HAS_TRITON, check_float, check_int, check_patch_grid, check_same_device, check_tensor,
                                  define_op, implements)
from mimkernels.pixel import reference

__all__ = ["patchify", "unpatchify", "patch_norm_target", "masked_mse_loss", "norm_pix_mse_loss", "masked_l1_loss"]

implements("patchify", "torch", "triton")
implements("unpatchify", "torch", "triton")
implements("patch_norm_target", "torch", "triton")
implements("masked_mse_loss", "torch", "triton")
implements("norm_pix_mse_loss", "torch", "triton")
implements("masked_l1_loss", "torch", "triton")


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


# ---- per-patch normalized target, masked MSE, SimMIM L1 (spec/pixel.md) ---------------------------

DATA_DTYPES = (*_dispatch.FLOAT_DTYPES, torch.float64)
MASK_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, *DATA_DTYPES)


def _check_mask(mask, shape: tuple[int, ...], what: str) -> None:
    check_tensor(mask, "mask", ndim=len(shape), dtypes=MASK_DTYPES, what=what)
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {what} = {shape}, got {tuple(mask.shape)}")
    if mask.requires_grad and torch.is_grad_enabled():
        raise ValueError("mask is not differentiable here (its gradient is never computed): pass mask.detach()")


def _patch_row_backend(op: str, backend: str, device: torch.device, row: int) -> str:
    """resolve_backend, with rows (patches) longer than one Triton program holds sent to torch under "auto"."""
    be = _dispatch.resolve_backend(op, backend, device)
    limit = _kernels.MAX_PATCH_ELEMENTS if be == "triton" else None
    if limit is not None and row > limit:
        if backend == "triton":
            raise ValueError(f"{op}: the triton backend holds rows of at most {limit} elements in one program, "
                             f"got D = {row}; use backend='torch'")
        return "torch"
    return be


def _check_image(imgs, patch_size: int, name: str = "imgs") -> tuple[int, int]:
    """(L, D) of a (B, C, H, W) image cut into patch_size patches."""
    check_tensor(imgs, name, ndim=4, dtypes=DATA_DTYPES, what="(B, C, H, W)")
    h, w = check_patch_grid(imgs.shape[2], imgs.shape[3], patch_size, name)
    return h * w, patch_size * patch_size * imgs.shape[1]


def patch_norm_target(imgs: torch.Tensor, patch_size: int, eps: float = 1e-6, *,
                      backend: str = "auto") -> torch.Tensor:
    """MAE's per-patch normalized target: imgs (B, C, H, W), any strides -> (B, L, p·p·C) in imgs.dtype,
    (p, q, c) layout; (t − mean) / √(var + eps) per patch, unbiased variance (D − 1), statistics in float32.

    A constant patch gives 0; a near-constant one is amplified up to 1/√eps. Needs p·p·C >= 2.
    Differentiable in imgs (through the normalization)."""
    _, d = _check_image(imgs, patch_size)
    eps = check_float(eps, "eps", minimum=0.0)
    if d < 2:
        raise ValueError(f"per-patch normalization needs p·p·C >= 2 values per patch (unbiased variance), got {d}")
    be = _patch_row_backend("patch_norm_target", backend, imgs.device, d)
    if be == "torch":
        return reference.patch_norm_target(imgs, patch_size, eps)
    return torch.ops.mimkernels.patch_norm_target(imgs, patch_size, eps)


def masked_mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
                    backend: str = "auto") -> torch.Tensor:
    """Σ_bl m_bl · mean_d (pred − target)²_bld / Σ_bl m_bl (MAE forward_loss after its target; MaskFeat's HOG loss).

    pred, target (B, L, D) floating, any strides (mixed dtypes fine, e.g. bf16 pred under AMP); mask (B, L)
    bool, integer or floating (soft masks weigh), 1 = masked. Returns a float32 scalar (float64 for float64
    inputs). An all-zero mask gives NaN (0/0), as MAE; it is not detected (that would sync the host).
    Differentiable in pred and target (∂/∂target = −∂/∂pred); not in mask."""
    check_tensor(pred, "pred", ndim=3, dtypes=DATA_DTYPES, what="(B, L, D)")
    check_tensor(target, "target", ndim=3, dtypes=DATA_DTYPES, what="(B, L, D)")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.shape[2] == 0:
        raise ValueError("pred and target must have D >= 1 values per row, got D = 0")
    _check_mask(mask, tuple(pred.shape[:2]), "(B, L)")
    dev = check_same_device(pred=pred, target=target, mask=mask)
    be = _patch_row_backend("masked_mse_loss", backend, dev, pred.shape[2])
    if be == "torch":
        return reference.masked_mse_loss(pred, target, mask)
    return torch.ops.mimkernels.masked_mse_loss(pred, target, mask)


def norm_pix_mse_loss(pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, patch_size: int,
                      norm_pix: bool = True, eps: float = 1e-6, *, backend: str = "auto") -> torch.Tensor:
    """MAE's forward_loss(imgs, pred, mask) in one pass: pred (B, L, p·p·C) in the (p, q, c) layout, cls
    removed; imgs (B, C, H, W) any strides (read in place, never patchified); mask (B, L) as masked_mse_loss.

    The target is patch_norm_target(imgs, patch_size, eps) (kept in float32) when norm_pix, else the raw
    patches. Returns a float32 scalar (float64 for float64 inputs); an all-zero mask gives NaN, as MAE.
    The backward recomputes the target from imgs (nothing but the inputs is saved). Differentiable in pred
    and imgs (through the normalization); not in mask."""
    check_tensor(pred, "pred", ndim=3, dtypes=DATA_DTYPES, what="(B, L, p*p*C)")
    length, d = _check_image(imgs, patch_size)
    if not isinstance(norm_pix, bool):
        raise TypeError(f"norm_pix must be a bool, got {type(norm_pix).__name__}")
    eps = check_float(eps, "eps", minimum=0.0)
    expected = (imgs.shape[0], length, d)
    if tuple(pred.shape) != expected:
        raise ValueError(f"pred must have shape (B, L, p·p·C) = {expected} for imgs {tuple(imgs.shape)} and "
                         f"patch_size {patch_size}, got {tuple(pred.shape)}")
    if norm_pix and d < 2:
        raise ValueError(f"norm_pix needs p·p·C >= 2 values per patch (unbiased variance), got {d}")
    _check_mask(mask, expected[:2], "(B, L)")
    dev = check_same_device(pred=pred, imgs=imgs, mask=mask)
    be = _patch_row_backend("norm_pix_mse_loss", backend, dev, d)
    if be == "torch":
        return reference.norm_pix_mse_loss(pred, imgs, mask, patch_size, norm_pix, eps)
    return torch.ops.mimkernels.norm_pix_mse_loss(pred, imgs, mask, patch_size, norm_pix, eps)


def masked_l1_loss(x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, in_chans: int | None = None, *,
                   backend: str = "auto") -> torch.Tensor:
    """SimMIM's loss: Σ m·|x_rec − imgs| / (mask_up.sum() + 1e-5) / in_chans, mask_up the mask (B, h, w)
    upsampled to the pixels (never materialised: the kernel reads mask[b, y // p, x // p], p = H / h).

    x_rec, imgs (B, C, H, W) floating, any strides; mask bool, integer or floating, 1 = masked; in_chans
    defaults to C. Returns a float32 scalar (float64 for float64 inputs). An all-zero mask gives 0 (the
    1e-5), as SimMIM. Differentiable in x_rec and imgs (sign(0) = 0, as abs); not in mask."""
    check_tensor(x_rec, "x_rec", ndim=4, dtypes=DATA_DTYPES, what="(B, C, H, W)")
    check_tensor(imgs, "imgs", ndim=4, dtypes=DATA_DTYPES, what="(B, C, H, W)")
    if x_rec.shape != imgs.shape:
        raise ValueError(f"x_rec and imgs must have the same shape, got {tuple(x_rec.shape)} and {tuple(imgs.shape)}")
    b, c, hh, ww = imgs.shape
    check_tensor(mask, "mask", ndim=3, dtypes=MASK_DTYPES, what="(B, h, w)")
    h, w = mask.shape[1], mask.shape[2]
    if mask.shape[0] != b:
        raise ValueError(f"mask has batch {mask.shape[0]}, imgs has {b}")
    if h == 0 or w == 0 or hh % h or ww % w or hh // h != ww // w:
        raise ValueError(f"mask (B, h, w) = {tuple(mask.shape)} must tile imgs {hh}x{ww} with square cells: "
                         f"H % h == 0, W % w == 0 and H / h == W / w")
    _check_mask(mask, (b, h, w), "(B, h, w)")
    in_chans = c if in_chans is None else check_int(in_chans, "in_chans", minimum=1)
    dev = check_same_device(x_rec=x_rec, imgs=imgs, mask=mask)
    be = _dispatch.resolve_backend("masked_l1_loss", backend, dev)
    if be == "torch":
        return reference.masked_l1_loss(x_rec, imgs, mask, in_chans)
    return torch.ops.mimkernels.masked_l1_loss(x_rec, imgs, mask, in_chans)

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

    # ---- per-patch normalized target and masked losses: each op, its fake and its autograd

    def _loss_fake(pred, target, *args):
        acc = torch.float64 if torch.float64 in (pred.dtype, target.dtype) else torch.float32
        return pred.new_empty((), dtype=acc)

    def _grads_fake(first, second, need_first, need_second):
        return (first.new_empty(first.shape if need_first else (0,)),
                second.new_empty(second.shape if need_second else (0,)))

    def _patch_norm_target_impl(imgs: torch.Tensor, patch_size: int, eps: float) -> torch.Tensor:
        return _kernels.patch_norm_target(imgs, patch_size, eps)

    def _patch_norm_target_backward_impl(grad: torch.Tensor, imgs: torch.Tensor, patch_size: int,
                                         eps: float) -> torch.Tensor:
        return _kernels.patch_norm_target_backward(grad, imgs, patch_size, eps)

    def _patch_norm_target_setup(ctx, inputs, output):
        imgs, ctx.patch_size, ctx.eps = inputs
        ctx.save_for_backward(imgs)

    def _patch_norm_target_backward(ctx, grad):
        (imgs,) = ctx.saved_tensors
        return torch.ops.mimkernels.patch_norm_target_backward(grad, imgs, ctx.patch_size, ctx.eps), None, None

    define_op("patch_norm_target", _patch_norm_target_impl,
              fake=lambda imgs, patch_size, eps: _patchify_fake(imgs, patch_size), triton=True,
              backward=_patch_norm_target_backward, setup_context=_patch_norm_target_setup)
    define_op("patch_norm_target_backward", _patch_norm_target_backward_impl,
              fake=lambda grad, imgs, patch_size, eps: torch.empty_like(imgs, memory_format=torch.contiguous_format),
              triton=True)

    def _masked_mse_impl(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return _kernels.masked_mse_loss(pred, target, mask)

    def _masked_mse_backward_impl(grad: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                                  need_pred: bool, need_target: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return _kernels.masked_mse_loss_backward(grad, pred, target, mask, need_pred, need_target)

    def _masked_mse_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def _masked_mse_backward(ctx, grad):
        pred, target, mask = ctx.saved_tensors
        need_pred, need_target = ctx.needs_input_grad[:2]
        grad_pred, grad_target = torch.ops.mimkernels.masked_mse_loss_backward(
            grad, pred, target, mask, need_pred, need_target)
        return grad_pred if need_pred else None, grad_target if need_target else None, None

    define_op("masked_mse_loss", _masked_mse_impl, fake=_loss_fake, triton=True,
              backward=_masked_mse_backward, setup_context=_masked_mse_setup)
    define_op("masked_mse_loss_backward", _masked_mse_backward_impl,
              fake=lambda grad, pred, target, mask, need_pred, need_target: _grads_fake(
                  pred, target, need_pred, need_target), triton=True)

    def _norm_pix_mse_impl(pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, patch_size: int,
                           norm_pix: bool, eps: float) -> torch.Tensor:
        return _kernels.masked_mse_loss(pred, imgs, mask, patch_size, from_image=True, norm=norm_pix, eps=eps)

    def _norm_pix_mse_backward_impl(grad: torch.Tensor, pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor,
                                    patch_size: int, norm_pix: bool, eps: float, need_pred: bool,
                                    need_imgs: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return _kernels.masked_mse_loss_backward(grad, pred, imgs, mask, need_pred, need_imgs, patch_size,
                                                 from_image=True, norm=norm_pix, eps=eps)

    def _norm_pix_mse_setup(ctx, inputs, output):
        pred, imgs, mask, ctx.patch_size, ctx.norm_pix, ctx.eps = inputs
        ctx.save_for_backward(pred, imgs, mask)

    def _norm_pix_mse_backward(ctx, grad):
        pred, imgs, mask = ctx.saved_tensors
        need_pred, need_imgs = ctx.needs_input_grad[:2]
        grad_pred, grad_imgs = torch.ops.mimkernels.norm_pix_mse_loss_backward(
            grad, pred, imgs, mask, ctx.patch_size, ctx.norm_pix, ctx.eps, need_pred, need_imgs)
        return grad_pred if need_pred else None, grad_imgs if need_imgs else None, None, None, None, None

    define_op("norm_pix_mse_loss", _norm_pix_mse_impl, fake=_loss_fake, triton=True,
              backward=_norm_pix_mse_backward, setup_context=_norm_pix_mse_setup)
    define_op("norm_pix_mse_loss_backward", _norm_pix_mse_backward_impl,
              fake=lambda grad, pred, imgs, mask, patch_size, norm_pix, eps, need_pred, need_imgs: _grads_fake(
                  pred, imgs, need_pred, need_imgs), triton=True)

    def _masked_l1_impl(x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, in_chans: int) -> torch.Tensor:
        return _kernels.masked_l1_loss(x_rec, imgs, mask, in_chans)

    def _masked_l1_backward_impl(grad: torch.Tensor, x_rec: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor,
                                 in_chans: int, need_x_rec: bool, need_imgs: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return _kernels.masked_l1_loss_backward(grad, x_rec, imgs, mask, in_chans, need_x_rec, need_imgs)

    def _masked_l1_setup(ctx, inputs, output):
        x_rec, imgs, mask, ctx.in_chans = inputs
        ctx.save_for_backward(x_rec, imgs, mask)

    def _masked_l1_backward(ctx, grad):
        x_rec, imgs, mask = ctx.saved_tensors
        need_x_rec, need_imgs = ctx.needs_input_grad[:2]
        grad_x_rec, grad_imgs = torch.ops.mimkernels.masked_l1_loss_backward(
            grad, x_rec, imgs, mask, ctx.in_chans, need_x_rec, need_imgs)
        return grad_x_rec if need_x_rec else None, grad_imgs if need_imgs else None, None, None

    define_op("masked_l1_loss", _masked_l1_impl, fake=_loss_fake, triton=True,
              backward=_masked_l1_backward, setup_context=_masked_l1_setup)
    define_op("masked_l1_loss_backward", _masked_l1_backward_impl,
              fake=lambda grad, x_rec, imgs, mask, in_chans, need_x_rec, need_imgs: _grads_fake(
                  x_rec, imgs, need_x_rec, need_imgs), triton=True)
