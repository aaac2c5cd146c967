"""Frequency family: MFM's low/high-pass corruption and frequency loss, PixMIM's low-frequency
target (spec/frequency.md).

Backends:
- "torch": torch.fft on the half spectrum where the mask is conjugate-symmetric (every MFM mask:
  irfft2(rfft2(x)·M')), one rfft2 and two real filters for PixMIM's asymmetric disc
  (|ifft2(fft2(x)·ifftshift(M))| = sqrt(A² + B²), spec §4.4-4.5), and MFM's loss from one rfft2
  of pred - target with a one-irfft2 backward. fp16/bf16 inputs are upcast to fp32 (there is no
  half FFT at 224).
- "triton" (`circular_filter`, `mfm_corrupt`, `lowfreq_target`): the truncated DFT of
  frequency/triton.py: only the frequencies inside the mask's bounding box, as small matrix
  products, the whole chain (de-normalize, filter, low/high choice, clamp or modulus, normalize)
  in one kernel; fp16/bf16 loaded as is and computed in fp32.
The Triton paths are `custom_op`s with fakes on every device (not `triton_op`): their twiddle plans
are built on the host from the geometry and cached, which functional tracing cannot do;
torch.compile treats them as opaque calls.
`frequency_loss` has no Triton kernel: it needs the whole spectrum of low-pass samples (gamma = 1
has no Parseval shortcut), which cuFFT's rfft2 serves; the torch path already fuses it into one
forward and one inverse transform.

The per-sample low/high choice of `mfm_corrupt` is rng.md stream 4: sample b is low-pass iff
unit_float(x0) < low_pass_prob, x0 the first word of Philox at counter (0, sample_offset + b, 4, 0).
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch

from mimkernels import _dispatch, rng
from mimkernels._dispatch import (HAS_TRITON, check_float, check_int, check_same_device, check_tensor, define_op,
                                  implements)
from mimkernels.frequency import reference

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "frequency_mask", "circular_filter", "mfm_corrupt", "lowfreq_target",
           "frequency_loss"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

implements("frequency_mask", "torch")
implements("circular_filter", "torch", "triton")
implements("mfm_corrupt", "torch", "triton")
implements("lowfreq_target", "torch", "triton")
implements("frequency_loss", "torch")

_IMAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_CENTERS = ("mfm", "pixmim")


# ---- argument checks -------------------------------------------------------------------------

def _check_real(value, name: str, *, minimum: float | None = None) -> float:
    """check_float, with a non-finite value a TypeError (it is not a usable radius, statistic or bound)."""
    if not isinstance(value, bool) and isinstance(value, numbers.Real) and not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return check_float(value, name, minimum=minimum)


def _check_radii(radius, outer_radius) -> tuple[float, float | None]:
    radius = _check_real(radius, "radius", minimum=0.0)
    if outer_radius is not None:
        outer_radius = _check_real(outer_radius, "outer_radius", minimum=radius)
    return radius, outer_radius


def _check_images(imgs, name: str = "imgs") -> None:
    check_tensor(imgs, name, ndim=4, dtypes=_IMAGE_DTYPES, what="(B, C, H, W) floating")


def _check_stats(mean, std, channels: int) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """mean/std as tuples of C floats (both or neither); std entries non-zero."""
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std, or neither")
    if mean is None:
        return None, None
    stats = []
    for name, values in (("mean", mean), ("std", std)):
        if isinstance(values, torch.Tensor) or not isinstance(values, Sequence):
            raise TypeError(f"{name} must be a sequence of {channels} floats, got {type(values).__name__}")
        if len(values) != channels:
            raise ValueError(f"{name} must have one value per channel (C = {channels}), got {len(values)}")
        stats.append(tuple(_check_real(v, name) for v in values))
    if any(s == 0.0 for s in stats[1]):
        raise ValueError(f"std must be non-zero, got {stats[1]}")
    return stats[0], stats[1]


def _check_clamp(clamp) -> tuple[float, float] | None:
    if clamp is None:
        return None
    if not isinstance(clamp, Sequence) or len(clamp) != 2:
        raise ValueError(f"clamp must be a (low, high) pair or None, got {clamp!r}")
    lo, hi = _check_real(clamp[0], "clamp[0]"), _check_real(clamp[1], "clamp[1]")
    if lo > hi:
        raise ValueError(f"clamp must have low <= high, got {clamp!r}")
    return lo, hi


def _high_pass_tensor(high_pass, batch: int, device: torch.device) -> torch.Tensor:
    """high_pass as a (B,) bool tensor on `device`."""
    if isinstance(high_pass, bool):
        return torch.full((batch,), high_pass, dtype=torch.bool, device=device)
    if not isinstance(high_pass, torch.Tensor):
        raise TypeError(f"high_pass must be a bool or a (B,) bool tensor, got {type(high_pass).__name__}")
    if high_pass.dtype != torch.bool or tuple(high_pass.shape) != (batch,):
        raise ValueError(f"high_pass must be a bool or a (B,) = ({batch},) bool tensor, got "
                         f"{str(high_pass.dtype).replace('torch.', '')} of shape {tuple(high_pass.shape)}")
    if high_pass.device != device:
        raise ValueError(f"high_pass is on {high_pass.device}, imgs on {device}: they must be on one device")
    return high_pass


# ---- masks -----------------------------------------------------------------------------------

def frequency_mask(height: int, width: int, radius: float, *, high_pass: bool = False, center: str = "mfm",
                   outer_radius: float | None = None, device=None, dtype: torch.dtype = torch.float32,
                   backend: str = "auto") -> torch.Tensor:
    """(H, W) 0/1 pass mask (1 = frequency kept) in fftshifted layout, DC at (H//2, W//2).

    center="mfm": MFM's disc at (H//2, W//2), low-pass keeps d² < radius² (strict), high-pass is
    1 - low-pass (keeps d² >= radius²); outer_radius is MFM's MASK_RADIUS2 band (the low-pass also
    keeps d² >= outer_radius²). center="pixmim": PixMIM's disc at ((H-1)/2, (W-1)/2), kept iff
    d² <= radius² (inclusive). Radii are in index units on both axes.
    """
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    radius, outer_radius = _check_radii(radius, outer_radius)
    if center not in _CENTERS:
        raise ValueError(f"center must be one of {_CENTERS}, got {center!r}")
    if outer_radius is not None and center != "mfm":
        raise ValueError("outer_radius is MFM's band option: it needs center='mfm'")
    if not isinstance(high_pass, bool):
        raise TypeError(f"high_pass must be a bool, got {type(high_pass).__name__}")
    _dispatch.resolve_backend("frequency_mask", backend, _dispatch.as_device(device))
    mask = reference.frequency_mask(height, width, radius, high_pass, center, outer_radius)
    return mask.to(device=_dispatch.as_device(device), dtype=dtype)


def _mfm_masks(height: int, width: int, radius: float, outer_radius: float | None, high_pass: torch.Tensor,
               device: torch.device) -> torch.Tensor:
    """(B, H, W) float32 pass masks: the low-pass disc, or its complement where high_pass."""
    low = reference.device_mask(height, width, radius, False, "mfm", outer_radius, device)
    high = reference.device_mask(height, width, radius, True, "mfm", outer_radius, device)
    return torch.where(high_pass[:, None, None], high, low)


# ---- MFM filter and corruption ----------------------------------------------------------------

def circular_filter(imgs: torch.Tensor, radius: float, high_pass, *, clamp=(0.0, 1.0),
                    outer_radius: float | None = None, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, backend: str = "auto") -> torch.Tensor:
    """MFM's ideal circular filter of [0, 1] images: (B, C, H, W) -> (B, C, H, W) in imgs.dtype.

    Per sample b: y = Re ifft2(fft2(x)·M_b) with M_b MFM's low-pass disc (`frequency_mask`, strict
    d² < radius², centre (H//2, W//2)) or its complement where high_pass[b]; then clamp to
    `clamp` (None: no clamp); then, with mean/std (C floats each), (y - mean_c)/std_c, MFM's
    encoder input. high_pass: a bool or a (B,) bool tensor. Differentiable in imgs (torch.clamp's
    inclusive pass-through at the clamp bounds).
    """
    _check_images(imgs)
    radius, outer_radius = _check_radii(radius, outer_radius)
    clamp = _check_clamp(clamp)
    mean, std = _check_stats(mean, std, imgs.shape[1])
    b, _, h, w = imgs.shape
    high_pass = _high_pass_tensor(high_pass, b, imgs.device)
    be = _dispatch.resolve_backend("circular_filter", backend, imgs.device)
    return _mfm_filter(imgs, radius, outer_radius, high_pass, clamp, mean, std, be)


def _mfm_filter(imgs, radius, outer_radius, high_pass, clamp, mean, std, be: str) -> torch.Tensor:
    if imgs.numel() == 0:  # (MKL's FFT refuses empty batches)
        return torch.empty_like(imgs, memory_format=torch.contiguous_format)
    if be == "torch":
        masks = _mfm_masks(imgs.shape[2], imgs.shape[3], radius, outer_radius, high_pass, imgs.device)
        return reference.mfm_filter_rfft(imgs, masks, clamp, mean, std)
    return torch.ops.mimkernels.mfm_filter(imgs, high_pass, radius, outer_radius,
                                           list(clamp) if clamp is not None else None,
                                           list(mean) if mean is not None else None,
                                           list(std) if std is not None else None)


def mfm_corrupt(imgs: torch.Tensor, radius: float = 16, low_pass_prob: float = 0.5, *, seed: int | None = None,
                generator: torch.Generator | None = None, sample_offset: int = 0,
                outer_radius: float | None = None, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None, backend: str = "auto"):
    """MFM's corruption: a per-sample low/high-pass choice, the filter, the clamp to [0, 1] and,
    with mean/std, the normalization. imgs (B, C, H, W) in [0, 1] ->
    (corrupted (B, C, H, W) imgs.dtype, freq_mask (B, H, W) float32 pass mask of each sample,
    is_low_pass (B,) bool). Sample b is low-pass with probability low_pass_prob (MFM: 0.5 for ViT,
    0.3 for ResNet-50), drawn from rng.md stream 4 (module docstring); seed / generator /
    sample_offset as the other mask ops. Differentiable in imgs.
    """
    _check_images(imgs)
    radius, outer_radius = _check_radii(radius, outer_radius)
    prob = _check_real(low_pass_prob, "low_pass_prob")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"low_pass_prob must be in [0, 1], got {low_pass_prob!r}")
    mean, std = _check_stats(mean, std, imgs.shape[1])
    b, _, h, w = imgs.shape
    rng.check_sample_offset(sample_offset, b)
    be = _dispatch.resolve_backend("mfm_corrupt", backend, imgs.device)
    key = rng.resolve_seed(seed, generator)
    samples = torch.arange(b, dtype=torch.int64, device=imgs.device) + sample_offset
    x0, _, _, _ = rng.draw(key, 0, samples, rng.STREAM_FREQUENCY_CHOICE, device=imgs.device)
    is_low_pass = rng.unit_float(x0).to(torch.float64) < prob
    corrupted = _mfm_filter(imgs, radius, outer_radius, ~is_low_pass, (0.0, 1.0), mean, std, be)
    return corrupted, _mfm_masks(h, w, radius, outer_radius, ~is_low_pass, imgs.device), is_low_pass


# ---- PixMIM target ---------------------------------------------------------------------------

def lowfreq_target(imgs: torch.Tensor, radius: float = 40, *, mean: Sequence[float] | None = IMAGENET_MEAN,
                   std: Sequence[float] | None = IMAGENET_STD, exact: bool = True,
                   backend: str = "auto") -> torch.Tensor:
    """PixMIM's low-frequency target of normalized images: (B, C, H, W) -> (B, C, H, W) in
    imgs.dtype, in the same normalized space: de-normalize (z·s + m), ideal low-pass, modulus,
    re-normalize ((y - m)/s). mean=std=None: pixel-space input, no affine steps. Not differentiable
    (the official module runs under no_grad): the result is detached.

    exact=True (default, the official target): PixMIM's disc at ((H-1)/2, (W-1)/2), kept iff
    d² <= radius², applied to the fftshifted spectrum and inverted without ifftshift; abs() of the
    complex result. exact=False (NOT the official target; spec §5 gives the difference: 3-10% of
    the target's std at 224, r=40): MFM's symmetric disc at DC (d² < radius²), a real filter.
    """
    _check_images(imgs)
    radius, _ = _check_radii(radius, None)
    mean, std = _check_stats(mean, std, imgs.shape[1])
    if not isinstance(exact, bool):
        raise TypeError(f"exact must be a bool, got {type(exact).__name__}")
    be = _dispatch.resolve_backend("lowfreq_target", backend, imgs.device)
    imgs = imgs.detach()
    if imgs.numel() == 0:  # (MKL's FFT refuses empty batches)
        return torch.empty_like(imgs, memory_format=torch.contiguous_format)
    if be == "torch":
        mask = reference.device_mask(imgs.shape[2], imgs.shape[3], radius, False, "pixmim" if exact else "mfm", None,
                                     imgs.device)
        return reference.pixmim_target_rfft(imgs, mask, mean, std)
    return torch.ops.mimkernels.pixmim_lowfreq_target(imgs, radius, list(mean) if mean is not None else None,
                                                      list(std) if std is not None else None, exact)


# ---- MFM loss --------------------------------------------------------------------------------

def frequency_loss(pred: torch.Tensor, target: torch.Tensor, freq_mask: torch.Tensor | None, *,
                   gamma: float = 1.0, backend: str = "auto") -> torch.Tensor:
    """MFM's frequency loss: 0-d fp32 tensor (float64 when an input is float64).

    D = fft2_ortho(pred - target) per image-channel; dist = (|D|² + 1e-12)^(gamma/2). With
    freq_mask, the pass mask returned by mfm_corrupt ((B, H, W), or (H, W) for all samples,
    fftshifted), the loss is MFM's 'masked' mean over the removed frequencies of the whole batch:
    Σ (1 - M)·dist / (C·Σ_b,u,v (1 - M)) (NaN when nothing was removed, as official). freq_mask=None:
    the plain mean over all frequencies ('normal'). Differentiable in pred and target. freq_mask
    values are checked to be 0/1 only with MIMKERNELS_DEBUG=1 (a value check syncs the host).
    """
    check_tensor(pred, "pred", ndim=4, dtypes=_IMAGE_DTYPES, what="(B, C, H, W) floating")
    check_tensor(target, "target", dtypes=_IMAGE_DTYPES)
    if target.shape != pred.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    b, _, h, w = pred.shape
    if freq_mask is not None:
        check_tensor(freq_mask, "freq_mask")
        if tuple(freq_mask.shape) not in ((b, h, w), (h, w)):
            raise ValueError(f"freq_mask must have shape (B, H, W) = {(b, h, w)} or (H, W) = {(h, w)}, got "
                             f"{tuple(freq_mask.shape)}")
        if freq_mask.is_complex():
            raise TypeError("freq_mask must be a real 0/1 mask, got a complex tensor")
        dev = check_same_device(pred=pred, target=target, freq_mask=freq_mask)
        if _dispatch.debug_checks() and not bool(((freq_mask == 0) | (freq_mask == 1)).all()):
            raise ValueError("freq_mask must hold only 0 and 1 (a pass mask)")
    else:
        dev = check_same_device(pred=pred, target=target)
    gamma = _check_real(gamma, "gamma")
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    _dispatch.resolve_backend("frequency_loss", backend, dev)
    if pred.numel() == 0:  # an empty mean, as official (MKL's FFT refuses empty batches)
        return torch.full((), math.nan, dtype=reference.compute_dtype(pred, target), device=dev)
    return reference.frequency_loss_rfft(pred, target, freq_mask, gamma)


# ---- Triton ops ------------------------------------------------------------------------------

if HAS_TRITON:
    from mimkernels.frequency import triton as _kernels

    _compute_dtype = reference.compute_dtype

    def _image_fake(imgs, *args):
        """Every frequency op returns a contiguous tensor shaped like imgs."""
        return torch.empty_like(imgs, memory_format=torch.contiguous_format)

    def _mfm_plan(height: int, width: int, radius: float, outer_radius: float | None, device, dtype):
        """(plan, box_is_low): the kernel filters with the low-pass mask, or with the high-pass
        annulus when MFM's band (outer_radius) cuts the spectrum (its box is then the smaller)."""
        max_d2 = (height // 2) ** 2 + (width // 2) ** 2
        box_is_low = outer_radius is None or outer_radius ** 2 > max_d2
        geometry = _kernels.MaskGeometry(height, width, radius, not box_is_low, "mfm", outer_radius)
        return _kernels.filter_plan(geometry, device, dtype, True), box_is_low

    def _affine(mean, std, device, dtype) -> torch.Tensor | None:
        """(2, C): the mean and std rows the kernel reads (cached on the device)."""
        if mean is None:
            return None
        return torch.cat(reference.affine_tensors(mean, std, dtype, device)).view(2, -1)

    def _run_mfm_filter(imgs, high_pass, radius, outer_radius, clamp, mean, std, out_dtype):
        dtype = _compute_dtype(imgs)
        plan, box_is_low = _mfm_plan(imgs.shape[2], imgs.shape[3], radius, outer_radius, imgs.device, dtype)
        if plan is None:  # box beyond MAX_BOX: the whole spectrum is cheaper through torch.fft
            masks = _mfm_masks(imgs.shape[2], imgs.shape[3], radius, outer_radius, high_pass, imgs.device)
            return reference.mfm_filter_rfft(imgs, masks, clamp, mean, std).to(out_dtype)
        complement = high_pass if box_is_low else ~high_pass
        affine = _affine(mean, std, imgs.device, dtype)
        return _kernels.truncated_dft_filter(imgs, plan, complement=complement, clamp=clamp, affine=affine,
                                             norm_out=affine is not None, out_dtype=out_dtype)

    def _mfm_filter_impl(imgs: torch.Tensor, high_pass: torch.Tensor, radius: float, outer_radius: float | None,
                         clamp: list[float] | None, mean: list[float] | None,
                         std: list[float] | None) -> torch.Tensor:
        return _run_mfm_filter(imgs, high_pass, radius, outer_radius, clamp, mean, std, imgs.dtype)

    def _mfm_filter_backward_impl(grad: torch.Tensor, imgs: torch.Tensor, high_pass: torch.Tensor, radius: float,
                                  outer_radius: float | None, clamp: list[float] | None,
                                  std: list[float] | None) -> torch.Tensor:
        """grad_in = filter(grad_out / std_c · 1[lo <= y_pre <= hi]) (spec §4.12: the filter is a
        symmetric real circulant, and x - P transposes to itself too)."""
        dtype = _compute_dtype(imgs)
        g = grad.to(dtype)
        if std is not None:
            g = g / reference.affine_tensors(std, std, dtype, g.device)[1]  # (only the std half is used)
        if clamp is not None:
            y_pre = _run_mfm_filter(imgs, high_pass, radius, outer_radius, None, None, None, dtype)
            g = torch.where((y_pre >= clamp[0]) & (y_pre <= clamp[1]), g, 0.0)
        return _run_mfm_filter(g, high_pass, radius, outer_radius, None, None, None, imgs.dtype)

    def _mfm_filter_backward_fake(grad, imgs, *args):
        return _image_fake(imgs)

    def _mfm_filter_setup(ctx, inputs, output):
        imgs, high_pass, ctx.radius, ctx.outer_radius, ctx.clamp, _, ctx.std = inputs
        ctx.save_for_backward(imgs, high_pass)

    def _mfm_filter_backward(ctx, grad):
        imgs, high_pass = ctx.saved_tensors
        grad_imgs = torch.ops.mimkernels.mfm_filter_backward(grad, imgs, high_pass, ctx.radius, ctx.outer_radius,
                                                             ctx.clamp, ctx.std)
        return grad_imgs, None, None, None, None, None, None

    define_op("mfm_filter", _mfm_filter_impl, fake=_image_fake, triton=False,
              backward=_mfm_filter_backward, setup_context=_mfm_filter_setup)
    define_op("mfm_filter_backward", _mfm_filter_backward_impl, fake=_mfm_filter_backward_fake, triton=False)

    def _pixmim_target_impl(imgs: torch.Tensor, radius: float, mean: list[float] | None, std: list[float] | None,
                            exact: bool) -> torch.Tensor:
        dtype = _compute_dtype(imgs)
        geometry = _kernels.MaskGeometry(imgs.shape[2], imgs.shape[3], radius, False, "pixmim" if exact else "mfm",
                                         None)
        plan = _kernels.filter_plan(geometry, imgs.device, dtype, not exact)
        if plan is None:  # box beyond MAX_BOX: the whole spectrum is cheaper through torch.fft
            mask = reference.device_mask(*geometry, imgs.device)
            return reference.pixmim_target_rfft(imgs, mask, mean, std)
        affine = _affine(mean, std, imgs.device, dtype)
        output = _kernels.OUTPUT_MODULUS if exact else _kernels.OUTPUT_ABS_REAL
        return _kernels.truncated_dft_filter(imgs, plan, output=output, affine=affine, denorm_in=affine is not None,
                                             norm_out=affine is not None)

    define_op("pixmim_lowfreq_target", _pixmim_target_impl, fake=_image_fake, triton=False)
