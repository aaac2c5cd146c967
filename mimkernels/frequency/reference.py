"""Eager references of the frequency family (SPEC.md).

Three kinds of function live here:
- the official chains, step by step (`mfm_filter_official`, `pixmim_target_official`,
  `frequency_loss_official`): the oracles of every kernel and of the fast torch paths;
- the fast torch.fft paths (`mfm_filter_rfft`, `pixmim_target_rfft`, `frequency_loss_rfft`), exact
  by the identities of SPEC.md §7;
- the "torch" backend of each op, with the arguments of its torch.library op (`circular_filter`,
  `mfm_corrupt`, `lowfreq_target`, `frequency_mask`, `frequency_loss`): masks built, empty batches
  answered, then the fast path.

FFTs run in fp32/complex64 (fp16/bf16 inputs are upcast: cuFFT half needs power-of-two sizes and
CPU has no half FFT); float64 inputs stay float64. Filters and targets come back in the input dtype.
"""
from __future__ import annotations

import functools
import math

import torch

# Sources:
#   MFM     Jiahao000/MFM data/data_mfm.py (FreqMaskGenerator), models/mfm.py (frequency_transform),
#           models/frequency_loss.py (FrequencyLoss)
#   PixMIM  open-mmlab/mmselfsup mmselfsup/models/target_generators/low_freq_generator.py


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 when any input is float64, else float32 (the official FFTs run in fp32)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


# ---- masks -----------------------------------------------------------------------------------

def frequency_mask(height: int, width: int, radius: float, high_pass: bool = False, center: str = "mfm",
                   outer_radius: float | None = None) -> torch.Tensor:
    """(H, W) float32 0/1 pass mask in fftshifted layout (DC at (H//2, W//2)), on the CPU.

    mfm: d² = (y - H//2)² + (x - W//2)² in integers; low-pass keeps d² < r² (strict) or d² >= r2²;
    high-pass is 1 - low-pass. pixmim: kept iff (y - (H-1)/2)² + (x - (W-1)/2)² <= r² (inclusive),
    compared exactly as 4·d² (an integer) <= 4·r² in float64; high-pass is 1 - it.
    """
    y = torch.arange(height, dtype=torch.int64)[:, None]
    x = torch.arange(width, dtype=torch.int64)[None, :]
    r2 = float(radius) ** 2
    if center == "mfm":
        d2 = ((y - height // 2) ** 2 + (x - width // 2) ** 2).to(torch.float64)
        low = d2 < r2
        if outer_radius is not None:
            low = low | (d2 >= float(outer_radius) ** 2)
    else:
        d2_times4 = ((2 * y - (height - 1)) ** 2 + (2 * x - (width - 1)) ** 2).to(torch.float64)
        low = d2_times4 <= 4.0 * r2
    keep = ~low if high_pass else low
    return keep.to(torch.float32)


@functools.lru_cache(maxsize=64)
def device_mask(height: int, width: int, radius: float, high_pass: bool, center: str, outer_radius: float | None,
                device: torch.device) -> torch.Tensor:
    """frequency_mask(...) on `device`, cached (repeated calls copy nothing to the device)."""
    return frequency_mask(height, width, radius, high_pass, center, outer_radius).to(device)


def mfm_pass_masks(height: int, width: int, radius: float, outer_radius: float | None, high_pass: torch.Tensor,
                   device: torch.device) -> torch.Tensor:
    """(B, H, W) float32 MFM pass masks: the low-pass disc, or its complement where high_pass (B,)."""
    low = device_mask(height, width, radius, False, "mfm", outer_radius, device)
    high = device_mask(height, width, radius, True, "mfm", outer_radius, device)
    return torch.where(high_pass[:, None, None], high, low)


def signed_frequencies(n: int) -> torch.Tensor:
    """Signed frequency of each fftshifted index: j - n//2, for j in [0, n)."""
    return torch.arange(n, dtype=torch.int64) - n // 2


@functools.lru_cache(maxsize=32)
def _cached_affine(mean: tuple, std: tuple, dtype: torch.dtype, device: torch.device):
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1).to(device=device, dtype=dtype)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1).to(device=device, dtype=dtype)
    return m, s


def affine_tensors(mean, std, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, C, 1, 1) mean and std, made in float32 as torchvision/mmselfsup make them, then cast to
    `dtype`; cached per (stats, dtype, device) so that repeated calls copy nothing to the device."""
    return _cached_affine(tuple(mean), tuple(std), dtype, torch.device(device))


def _finish_filter(y: torch.Tensor, clamp, mean, std) -> torch.Tensor:
    """MFM steps 7-8: clamp the filtered image, then torchvision's Normalize."""
    if clamp is not None:
        y = torch.clamp(y, min=clamp[0], max=clamp[1])
    if mean is not None:
        m, s = affine_tensors(mean, std, y.dtype, y.device)
        y = (y - m) / s
    return y


# ---- MFM filter ------------------------------------------------------------------------------

def mfm_filter_official(imgs: torch.Tensor, masks: torch.Tensor, clamp=(0.0, 1.0), mean=None,
                        std=None) -> torch.Tensor:
    """MFM's corruption, step by step (models/mfm.py frequency_transform, then Normalize).

    imgs (B, C, H, W) in [0, 1]; masks (B, H, W) or (H, W) pass masks in fftshifted layout.
    fft2 -> fftshift -> multiply -> ifftshift -> ifft2 -> .real -> clamp -> normalize.
    """
    x = imgs.to(compute_dtype(imgs))
    freq = torch.fft.fft2(x)
    freq = torch.fft.fftshift(freq, dim=(-2, -1))
    masks = masks.to(x.dtype)
    freq = freq * (masks.unsqueeze(1) if masks.dim() == 3 else masks)
    freq = torch.fft.ifftshift(freq, dim=(-2, -1))
    y = torch.fft.ifft2(freq).real
    return _finish_filter(y, clamp, mean, std).to(imgs.dtype)


def mfm_filter_rfft(imgs: torch.Tensor, masks: torch.Tensor, clamp=(0.0, 1.0), mean=None,
                    std=None) -> torch.Tensor:
    """The same filter on the half spectrum (SPEC.md §7.2): irfft2(rfft2(x) · M'[:, :W//2+1], s=(H, W)).

    Exact when ifftshift(M) is conjugate-symmetric, which every MFM mask is (SPEC.md §3). Differentiable.
    """
    h, w = imgs.shape[-2:]
    x = imgs.to(compute_dtype(imgs))
    natural = torch.fft.ifftshift(masks.to(x.dtype), dim=(-2, -1))[..., : w // 2 + 1]
    half = torch.fft.rfft2(x) * (natural.unsqueeze(1) if natural.dim() == 3 else natural)
    y = torch.fft.irfft2(half, s=(h, w))
    return _finish_filter(y, clamp, mean, std).to(imgs.dtype)


# MFM clamps the filtered image to [0, 1] before it normalizes (SPEC.md §4).
MFM_CLAMP = (0.0, 1.0)


def circular_filter(imgs: torch.Tensor, radius: float, high_pass: torch.Tensor, clamp: list[float] | None,
                    outer_radius: float | None, mean: list[float] | None, std: list[float] | None) -> torch.Tensor:
    """The "torch" backend of `circular_filter` (the arguments of its op, high_pass a (B,) bool tensor):
    each sample's pass mask, then the half-spectrum filter."""
    if imgs.numel() == 0:  # (MKL's FFT refuses empty batches)
        return torch.empty_like(imgs, memory_format=torch.contiguous_format)
    masks = mfm_pass_masks(imgs.shape[2], imgs.shape[3], radius, outer_radius, high_pass, imgs.device)
    return mfm_filter_rfft(imgs, masks, clamp, mean, std)


def mfm_corrupt(imgs: torch.Tensor, radius: float, high_pass: torch.Tensor, outer_radius: float | None,
                mean: list[float] | None, std: list[float] | None) -> torch.Tensor:
    """The "torch" backend of `mfm_corrupt`'s filter: `circular_filter` with MFM's clamp to [0, 1]."""
    return circular_filter(imgs, radius, high_pass, MFM_CLAMP, outer_radius, mean, std)


# ---- PixMIM target ---------------------------------------------------------------------------

def pixmim_target_official(imgs: torch.Tensor, mask: torch.Tensor, mean=None, std=None) -> torch.Tensor:
    """PixMIM's LowFreqTargetGenerator.forward, step by step.

    imgs (B, C, H, W) normalized; mask (H, W) pass mask in fftshifted layout. de-normalize -> fft2
    -> fftshift -> multiply -> ifft2 (no ifftshift) -> abs -> re-normalize. mean=None: no affine steps.
    """
    x = imgs.to(compute_dtype(imgs))
    if mean is not None:
        m, s = affine_tensors(mean, std, x.dtype, x.device)
        x = x * s + m
    freq = torch.fft.fft2(x)
    freq = torch.fft.fftshift(freq, dim=(-2, -1))
    freq = freq * mask.to(x.dtype)
    y = torch.abs(torch.fft.ifft2(freq))
    if mean is not None:
        y = (y - m) / s
    return y.to(imgs.dtype)


def pixmim_target_rfft(imgs: torch.Tensor, mask: torch.Tensor, mean=None, std=None) -> torch.Tensor:
    """PixMIM's target from one rfft2 and one batched irfft2 of two real filters (SPEC.md §7.3-7.4):
    the missing ifftshift is a unit phase that abs() removes, so target = |ifft2(X·M')| with
    M' = ifftshift(M); split M' = Ms + Ma (symmetric and antisymmetric parts): ifft2(X·M') = A + iB
    with A = irfft2(X·Ms), B = irfft2(-i·X·Ma) (both Hermitian products), |.| = sqrt(A² + B²).
    Any mask and parity; affine steps as official."""
    h, w = imgs.shape[-2:]
    x = imgs.to(compute_dtype(imgs))
    if mean is not None:
        m, s = affine_tensors(mean, std, x.dtype, x.device)
        x = x * s + m
    natural = torch.fft.ifftshift(mask.to(x.dtype), dim=(-2, -1))
    mirrored = _mirror(natural)
    cols = w // 2 + 1
    parts = torch.stack([0.5 * (natural + mirrored), 0.5 * (natural - mirrored)])[..., :cols]   # (2, H, W//2+1)
    rotation = torch.tensor([1, -1j], dtype=x.dtype.to_complex(), device=x.device)
    z = torch.fft.rfft2(x).unsqueeze(-3)                                                      # (B, C, 1, H, cols)
    a_b = torch.fft.irfft2(z * (parts * rotation.view(2, 1, 1)), s=(h, w))                    # (B, C, 2, H, W)
    y = torch.sqrt(a_b[..., 0, :, :] ** 2 + a_b[..., 1, :, :] ** 2)
    if mean is not None:
        y = (y - m) / s
    return y.to(imgs.dtype)


def lowfreq_target(imgs: torch.Tensor, radius: float, mean: list[float] | None, std: list[float] | None,
                   exact: bool) -> torch.Tensor:
    """The "torch" backend of `lowfreq_target`: PixMIM's disc (exact) or MFM's (not exact), then
    the two-real-filter target."""
    if imgs.numel() == 0:  # (MKL's FFT refuses empty batches)
        return torch.empty_like(imgs, memory_format=torch.contiguous_format)
    mask = device_mask(imgs.shape[2], imgs.shape[3], radius, False, "pixmim" if exact else "mfm", None, imgs.device)
    return pixmim_target_rfft(imgs, mask, mean, std)


# ---- MFM frequency loss ----------------------------------------------------------------------

LOSS_EPS = 1e-12


def frequency_loss_official(pred: torch.Tensor, target: torch.Tensor, freq_mask: torch.Tensor | None,
                            gamma: float = 1.0) -> torch.Tensor:
    """MFM's FrequencyLoss (patch_factor 1, no matrix), step by step: tensor2freq of each input
    (fp32, fft2 ortho, fftshift, stack re/im), dist = sqrt(Δre² + Δim² + 1e-12) ** gamma, then the
    batch-wide masked mean over removed frequencies (1 - freq_mask), or the plain mean without a mask."""
    dtype = compute_dtype(pred, target)

    def tensor2freq(t):
        t = t.unsqueeze(1).to(dtype)                       # (B, P=1, C, H, W)
        freq = torch.fft.fft2(t, norm="ortho")
        freq = torch.fft.fftshift(freq, dim=(-2, -1))
        return torch.stack([freq.real, freq.imag], -1)

    diff = (tensor2freq(pred) - tensor2freq(target)) ** 2
    dist = torch.sqrt(diff[..., 0] + diff[..., 1] + LOSS_EPS) ** gamma
    if freq_mask is None:
        return dist.mean()
    removed = 1 - freq_mask.to(dtype)
    if removed.dim() == 2:
        removed = removed.expand(pred.shape[0], -1, -1)
    weight = removed[:, None, None]                        # (B, 1, 1, H, W)
    return (weight * dist).sum() / (removed.sum() * pred.shape[1])


def _mirror(natural: torch.Tensor) -> torch.Tensor:
    """a(-k) of a natural-layout array over its last two dims: index (-i mod H, -j mod W)."""
    return torch.roll(torch.flip(natural, (-2, -1)), shifts=(1, 1), dims=(-2, -1))


def half_spectrum_weight(freq_mask: torch.Tensor | None, height: int, width: int, batch: int,
                         dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (B or 1, H, W//2+1), denominator / C): the removed-frequency weight folded onto the
    rfft2 half spectrum, exact for any mask (SPEC.md §7.6 with the symmetrized weight
    (R(k) + R(-k))/2, since |D(-k)| = |D(k)|), times the column multiplicity 2 (1 for kx = 0 and
    the Nyquist column); and Σ_b,u,v R (B·H·W without a mask)."""
    if freq_mask is None:
        removed = torch.ones((1, height, width), dtype=dtype, device=device)
        count = torch.tensor(float(batch * height * width), dtype=dtype, device=device)
    else:
        removed = 1 - freq_mask.to(device=device, dtype=dtype)
        count = removed.sum() * batch if removed.dim() == 2 else removed.sum()
        if removed.dim() == 2:
            removed = removed.unsqueeze(0)
    natural = torch.fft.ifftshift(removed, dim=(-2, -1))
    symmetric = 0.5 * (natural + _mirror(natural))
    return symmetric[..., : width // 2 + 1] * column_multiplicity(width, dtype, device), count


def column_multiplicity(width: int, dtype: torch.dtype, device) -> torch.Tensor:
    """(W//2+1,): how many full-spectrum columns each rfft2 column stands for (2; 1 for kx = 0 and,
    for even W, the Nyquist column)."""
    multiplicity = torch.full((width // 2 + 1,), 2.0, dtype=dtype, device=device)
    multiplicity[0] = 1.0
    if width % 2 == 0:
        multiplicity[-1] = 1.0
    return multiplicity


class _FrequencyLossRFFT(torch.autograd.Function):
    """Forward: one rfft2 of pred - target; backward: one irfft2 (SPEC.md §7.6-7.7)."""

    @staticmethod
    def forward(ctx, pred, target, weight, count, gamma):
        dtype = compute_dtype(pred, target)
        d = torch.fft.rfft2(pred.to(dtype) - target.to(dtype), norm="ortho")   # (B, C, H, W//2+1)
        power = d.real ** 2 + d.imag ** 2 + LOSS_EPS
        w = weight.unsqueeze(1)
        denominator = count * pred.shape[1]
        loss = (w * power ** (gamma / 2)).sum() / denominator
        ctx.save_for_backward(d, power, w, denominator)
        ctx.gamma, ctx.shape = gamma, pred.shape
        ctx.dtypes = (pred.dtype, target.dtype)
        return loss

    @staticmethod
    def backward(ctx, grad):
        d, power, w, denominator = ctx.saved_tensors
        gamma = ctx.gamma
        # drop the column multiplicity: irfft2 restores the mirrored half itself.
        multiplicity = column_multiplicity(ctx.shape[-1], w.dtype, w.device)
        scale = (grad * gamma / denominator) * (w / multiplicity) * power ** (gamma / 2 - 1)
        g = torch.fft.irfft2(scale * d, s=tuple(ctx.shape[-2:]), norm="ortho")
        grad_pred = g.to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        grad_target = (-g).to(ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        return grad_pred, grad_target, None, None, None


def frequency_loss_rfft(pred: torch.Tensor, target: torch.Tensor, freq_mask: torch.Tensor | None,
                        gamma: float = 1.0) -> torch.Tensor:
    """MFM's loss from one rfft2 of pred - target on the half spectrum; backward one irfft2.
    Equal to `frequency_loss_official` up to rounding."""
    dtype = compute_dtype(pred, target)
    weight, count = half_spectrum_weight(freq_mask, pred.shape[-2], pred.shape[-1], pred.shape[0], dtype,
                                         pred.device)
    return _FrequencyLossRFFT.apply(pred, target, weight, count, float(gamma))


def frequency_loss(pred: torch.Tensor, target: torch.Tensor, freq_mask: torch.Tensor | None,
                   gamma: float = 1.0) -> torch.Tensor:
    """The "torch" backend of `frequency_loss` (its only one): `frequency_loss_rfft`, and NaN for an
    empty batch, an empty mean as official (MKL's FFT refuses empty batches)."""
    if pred.numel() == 0:
        return torch.full((), math.nan, dtype=compute_dtype(pred, target), device=pred.device)
    return frequency_loss_rfft(pred, target, freq_mask, gamma)
