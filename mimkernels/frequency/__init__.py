"""Frequency family: MFM's low/high-pass corruption and frequency loss, PixMIM's low-frequency
target. The contract is SPEC.md (next to this file); the front doors here validate the arguments,
choose the backend (`_backends.resolve`) and call `reference.<op>` ("torch") or
`torch.ops.mimkernels.<op>.<backend>` (declared in ops.py, kernels in triton.py).

Backends (SPEC.md §8):
- "torch": torch.fft on the half spectrum where the mask is conjugate-symmetric (every MFM mask:
  irfft2(rfft2(x)·M')), one rfft2 and two real filters for PixMIM's asymmetric disc
  (|ifft2(fft2(x)·ifftshift(M))| = sqrt(A² + B²), SPEC.md §7.3-7.4), and MFM's loss from one rfft2
  of pred - target with a one-irfft2 backward. fp16/bf16 inputs are upcast to fp32 (there is no
  half FFT at 224).
- "triton" (`circular_filter`, `mfm_corrupt`, `lowfreq_target`): the truncated DFT of
  triton.py: only the frequencies inside the mask's bounding box, as small matrix products, the
  whole chain (de-normalize, filter, low/high choice, clamp or modulus, normalize) in one kernel;
  fp16/bf16 loaded as is and computed in fp32. Opaque custom ops on every device (ops.py says why).
`frequency_mask` and `frequency_loss` have no kernel. The loss needs the whole spectrum of low-pass
samples (gamma = 1 has no Parseval shortcut), which cuFFT's rfft2 serves; the torch path already
fuses it into one forward and one inverse transform.

The per-sample low/high choice of `mfm_corrupt` is rng stream 4 (SPEC.md §4): sample b is low-pass
iff unit_float(x0) < low_pass_prob, x0 the first word of Philox at counter (0, sample_offset + b, 4, 0),
drawn by torch on the images' device on every backend; a seed tensor's key too (rng.tensor_key, no host read).
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch

from mimkernels import _backends, rng
from mimkernels.checks import as_device, check_float, check_int, check_same_device, check_tensor
from mimkernels.frequency import ops as _ops  # noqa: F401  (registers the family's torch.library ops)
from mimkernels.frequency import reference

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "frequency_mask", "circular_filter", "mfm_corrupt", "lowfreq_target",
           "frequency_loss"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_IMAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_CENTERS = ("mfm", "pixmim")


# ---- argument checks -------------------------------------------------------------------------

def _check_real(value, name: str, *, minimum: float | None = None) -> float:
    """check_float, with a non-finite value a TypeError (it is not a usable radius, statistic or bound)."""
    if not isinstance(value, bool) and isinstance(value, numbers.Real) and not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return check_float(value, name, minimum=minimum)


def _check_radii(radius, outer_radius, height: int, width: int) -> tuple[float, float | None]:
    """The radii as floats, each capped at H + W: every frequency of an (H, W) spectrum lies closer than
    that to either centre, so a larger radius is the same mask (everything passes the disc), and the
    cap keeps radius² finite (1e308² overflows)."""
    radius = _check_real(radius, "radius", minimum=0.0)
    if outer_radius is not None:
        outer_radius = min(_check_real(outer_radius, "outer_radius", minimum=radius), float(height + width))
    return min(radius, float(height + width)), outer_radius


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


def _as_list(values) -> list[float] | None:
    """A checked tuple (clamp, mean, std) as the list[float] | None of the ops' schemas."""
    return None if values is None else list(values)


def _implementation(op: str, backend: str):
    """What runs `op` on the resolved `backend`: its reference ("torch"), or its torch.library op
    `torch.ops.mimkernels.<op>.<backend>`; both take the op's arguments."""
    if backend == "torch":
        return getattr(reference, op)
    return getattr(getattr(torch.ops.mimkernels, op), backend)


# ---- masks -----------------------------------------------------------------------------------

def frequency_mask(height: int, width: int, radius: float, *, high_pass: bool = False, center: str = "mfm",
                   outer_radius: float | None = None, device=None, dtype: torch.dtype = torch.float32,
                   backend: str = "auto") -> torch.Tensor:
    """(H, W) 0/1 pass mask (1 = frequency kept) in fftshifted layout, DC at (H//2, W//2).

    center="mfm": MFM's disc at (H//2, W//2), low-pass keeps d² < radius² (strict), high-pass is
    1 - low-pass (keeps d² >= radius²); outer_radius is MFM's MASK_RADIUS2 band (the low-pass also
    keeps d² >= outer_radius²). center="pixmim": PixMIM's disc at ((H-1)/2, (W-1)/2), kept iff
    d² <= radius² (inclusive). Radii are in index units on both axes (SPEC.md §2).
    """
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    radius, outer_radius = _check_radii(radius, outer_radius, height, width)
    if center not in _CENTERS:
        raise ValueError(f"center must be one of {_CENTERS}, got {center!r}")
    if outer_radius is not None and center != "mfm":
        raise ValueError("outer_radius is MFM's band option: it needs center='mfm'")
    if not isinstance(high_pass, bool):
        raise TypeError(f"high_pass must be a bool, got {type(high_pass).__name__}")
    device = as_device(device)
    _backends.resolve("frequency_mask", backend, device)  # "torch", its one backend
    mask = reference.frequency_mask(height, width, radius, high_pass, center, outer_radius)
    return mask.to(device=device, dtype=dtype)


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
    radius, outer_radius = _check_radii(radius, outer_radius, imgs.shape[2], imgs.shape[3])
    clamp = _check_clamp(clamp)
    mean, std = _check_stats(mean, std, imgs.shape[1])
    high_pass = _high_pass_tensor(high_pass, imgs.shape[0], imgs.device)
    run = _implementation("circular_filter", _backends.resolve("circular_filter", backend, imgs.device))
    return run(imgs, radius, high_pass, _as_list(clamp), outer_radius, _as_list(mean), _as_list(std))


def mfm_corrupt(imgs: torch.Tensor, radius: float = 16, low_pass_prob: float = 0.5, *,
                seed: int | torch.Tensor | None = None,
                generator: torch.Generator | None = None, sample_offset: int = 0,
                outer_radius: float | None = None, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None, backend: str = "auto"):
    """MFM's corruption: a per-sample low/high-pass choice, the filter, the clamp to [0, 1] and,
    with mean/std, the normalization. imgs (B, C, H, W) in [0, 1] ->
    (corrupted (B, C, H, W) imgs.dtype, freq_mask (B, H, W) float32 pass mask of each sample,
    is_low_pass (B,) bool). Sample b is low-pass with probability low_pass_prob (MFM: 0.5 for ViT,
    0.3 for ResNet-50), drawn from rng stream 4 (module docstring); seed / generator /
    sample_offset as the other mask ops (seed: an int, or a seed tensor on imgs' device, rng.seed_tensor).
    Differentiable in imgs.
    """
    _check_images(imgs)
    radius, outer_radius = _check_radii(radius, outer_radius, imgs.shape[2], imgs.shape[3])
    prob = _check_real(low_pass_prob, "low_pass_prob")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"low_pass_prob must be in [0, 1], got {low_pass_prob!r}")
    mean, std = _check_stats(mean, std, imgs.shape[1])
    b, _, h, w = imgs.shape
    rng.check_sample_offset(sample_offset, b)
    run = _implementation("mfm_corrupt", _backends.resolve("mfm_corrupt", backend, imgs.device))
    key, seed_step = rng.resolve_key(seed, generator, imgs.device)
    samples = torch.arange(b, dtype=torch.int64, device=imgs.device) + sample_offset
    x0, _, _, _ = rng.draw(rng.reference_key(key, seed_step), 0, samples,
                           rng.STREAM_FREQUENCY_CHOICE, device=imgs.device)
    is_low_pass = rng.unit_float(x0).to(torch.float64) < prob
    corrupted = run(imgs, radius, ~is_low_pass, outer_radius, _as_list(mean), _as_list(std))
    return corrupted, reference.mfm_pass_masks(h, w, radius, outer_radius, ~is_low_pass, imgs.device), is_low_pass


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
    complex result. exact=False (NOT the official target; SPEC.md §5 gives the difference: 3-10% of
    the target's std at 224, r=40): MFM's symmetric disc at DC (d² < radius²), a real filter.
    """
    _check_images(imgs)
    radius, _ = _check_radii(radius, None, imgs.shape[2], imgs.shape[3])
    mean, std = _check_stats(mean, std, imgs.shape[1])
    if not isinstance(exact, bool):
        raise TypeError(f"exact must be a bool, got {type(exact).__name__}")
    run = _implementation("lowfreq_target", _backends.resolve("lowfreq_target", backend, imgs.device))
    return run(imgs.detach(), radius, _as_list(mean), _as_list(std), exact)


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
        if _backends.debug_checks() and not bool(((freq_mask == 0) | (freq_mask == 1)).all()):
            raise ValueError("freq_mask must hold only 0 and 1 (a pass mask)")
    else:
        dev = check_same_device(pred=pred, target=target)
    gamma = _check_real(gamma, "gamma")
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    _backends.resolve("frequency_loss", backend, dev)  # "torch", its one backend
    return reference.frequency_loss(pred, target, freq_mask, gamma)
