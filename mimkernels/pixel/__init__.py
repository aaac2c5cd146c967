"""Pixel family (SPEC.md): patchify / unpatchify, MAE's per-patch normalized target, and the masked
losses of MAE (norm_pix_mse_loss), MaskFeat (masked_mse_loss) and SimMIM (masked_l1_loss).

Each front door validates its arguments once (`mimkernels.checks`), picks a backend
(`_backends.resolve`) and calls `reference.<op>` for "torch", else the op's catalogue entry
`torch.ops.mimkernels.<op>.<backend>` (ops.py), whose forward is the launcher `triton.<op>`.
"""
from __future__ import annotations

import torch

from mimkernels import _backends
from mimkernels.checks import (FLOAT_DTYPES, check_float, check_int, check_patch_grid, check_real_tensor,
                               check_same_device, check_tensor)
from mimkernels.pixel import ops, reference
from mimkernels.pixel.nn import MaskedL1Loss, NormPixLoss, Patchify, Unpatchify

__all__ = ["patchify", "unpatchify", "patch_norm_target", "masked_mse_loss", "norm_pix_mse_loss", "masked_l1_loss",
           "Patchify", "Unpatchify", "NormPixLoss", "MaskedL1Loss"]


# ---- patchify / unpatchify ---------------------------------------------------------------------

def patchify(imgs: torch.Tensor, patch_size: int, *, backend: str = "auto") -> torch.Tensor:
    """(B, C, H, W) -> (B, L, p·p·C) in imgs.dtype, MAE's (p, q, c) layout; L = (H/p)(W/p).

    Any C, H ≠ W allowed; H and W must be divisible by `patch_size`. Reads imgs in place (any strides).
    Any real dtype (complex: TypeError).
    """
    check_tensor(imgs, "imgs", ndim=4, what="(B, C, H, W)")
    check_real_tensor(imgs, "imgs")
    check_patch_grid(imgs.shape[2], imgs.shape[3], patch_size)
    be = _backends.resolve("patchify", backend, imgs.device)
    if be == "torch":
        return reference.patchify(imgs, patch_size)
    return getattr(torch.ops.mimkernels.patchify, be)(imgs, patch_size)


def unpatchify(x: torch.Tensor, patch_size: int, channels: int = 3, *, grid_size: tuple[int, int] | None = None,
               backend: str = "auto") -> torch.Tensor:
    """(B, L, p·p·C) -> (B, C, h·p, w·p), the inverse of patchify.

    grid_size (h, w) defaults to the square grid √L × √L, as MAE; give it for non-square images: two ints.
    Any real dtype (complex: TypeError).
    """
    check_tensor(x, "x", ndim=3, what="(B, L, p*p*C)")
    check_real_tensor(x, "x")
    check_int(patch_size, "patch_size", minimum=1)
    check_int(channels, "channels", minimum=1)
    length = x.shape[1]
    if grid_size is None:
        side = int(round(length ** 0.5))
        if side * side != length:
            raise ValueError(f"x has L = {length} patches, not a square grid: pass grid_size=(h, w)")
        grid_size = (side, side)
    if not isinstance(grid_size, (tuple, list)) or len(grid_size) != 2:
        raise ValueError(f"grid_size must be a pair (h, w) of ints, got {grid_size!r}")
    h, w = (check_int(v, f"grid_size[{i}]", minimum=0) for i, v in enumerate(grid_size))
    if h * w != length:
        raise ValueError(f"grid_size {tuple(grid_size)} holds {h * w} patches, x has L = {length}")
    if x.shape[2] != patch_size * patch_size * channels:
        raise ValueError(f"x has rows of {x.shape[2]} values, expected patch_size² · channels = "
                         f"{patch_size * patch_size * channels}")
    be = _backends.resolve("unpatchify", backend, x.device)
    if be == "torch":
        return reference.unpatchify(x, patch_size, channels, (h, w))
    return getattr(torch.ops.mimkernels.unpatchify, be)(x, patch_size, channels, h * patch_size, w * patch_size)


# ---- per-patch normalized target, masked MSE, SimMIM L1 (SPEC.md §2-5) ------------------------------

DATA_DTYPES = (*FLOAT_DTYPES, torch.float64)
MASK_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, *DATA_DTYPES)


def _check_mask(mask, shape: tuple[int, ...], what: str) -> None:
    check_tensor(mask, "mask", ndim=len(shape), dtypes=MASK_DTYPES, what=what)
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {what} = {shape}, got {tuple(mask.shape)}")
    if mask.requires_grad and torch.is_grad_enabled():
        raise ValueError("mask is not differentiable here (its gradient is never computed): pass mask.detach()")


def _patch_row_backend(op: str, backend: str, device: torch.device, row: int) -> str:
    """_backends.resolve, with rows (patches) longer than one kernel program holds sent to torch under "auto"."""
    be = _backends.resolve(op, backend, device)
    limit = ops.MAX_ROW.get(be)
    if limit is not None and row > limit:
        if backend != "auto":
            raise ValueError(f"{op}: the {be} backend holds rows of at most {limit} elements in one program, "
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
    return getattr(torch.ops.mimkernels.patch_norm_target, be)(imgs, patch_size, eps)


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
    return getattr(torch.ops.mimkernels.masked_mse_loss, be)(pred, target, mask)


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
    return getattr(torch.ops.mimkernels.norm_pix_mse_loss, be)(pred, imgs, mask, patch_size, norm_pix, eps)


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
    be = _backends.resolve("masked_l1_loss", backend, dev)
    if be == "torch":
        return reference.masked_l1_loss(x_rec, imgs, mask, in_chans)
    return getattr(torch.ops.mimkernels.masked_l1_loss, be)(x_rec, imgs, mask, in_chans)
