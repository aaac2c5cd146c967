"""Independent oracles of the frequency family's tests: numpy float64 with explicit DFT matrices,
and the official mask builders restated as literal loops (SPEC.md §2)."""
import math

import numpy as np

from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD


def dft_matrix(n: int, sign: int) -> np.ndarray:
    k = np.arange(n)
    return np.exp(sign * 2j * np.pi * np.outer(k, k) / n)

def fft2_np(x: np.ndarray) -> np.ndarray:
    """Unnormalized 2-D DFT over the last two axes."""
    h, w = x.shape[-2:]
    return dft_matrix(h, -1) @ x @ dft_matrix(w, -1).T

def ifft2_np(z: np.ndarray) -> np.ndarray:
    h, w = z.shape[-2:]
    return dft_matrix(h, +1) @ z @ dft_matrix(w, +1).T / (h * w)

def shift_np(z: np.ndarray) -> np.ndarray:
    """fftshift over the last two axes: index j holds frequency j - N//2."""
    h, w = z.shape[-2:]
    return np.roll(z, (h // 2, w // 2), axis=(-2, -1))

def unshift_np(z: np.ndarray) -> np.ndarray:
    h, w = z.shape[-2:]
    return np.roll(z, (-(h // 2), -(w // 2)), axis=(-2, -1))

def mfm_mask_oracle(n_h: int, n_w: int, r1, r2=999) -> np.ndarray:
    """FreqMaskGenerator restated (generalised to H x W): ones, 0 where r1² <= d² < r2² -> low-pass."""
    mask = np.ones((n_h, n_w), dtype=np.int64)
    for y in range(n_h):
        for x in range(n_w):
            d2 = (x - n_w // 2) ** 2 + (y - n_h // 2) ** 2
            if r1 ** 2 <= d2 < r2 ** 2:
                mask[y, x] = 0
    return mask

def pixmim_mask_oracle(h: int, w: int, radius) -> np.ndarray:
    """LowFreqTargetGenerator._generate_low_pass_filter restated (one channel)."""
    mask = np.ones((h, w), dtype=np.float32)
    for i in range(h):
        for j in range(w):
            if (i - (h - 1) / 2) ** 2 + (j - (w - 1) / 2) ** 2 > radius ** 2:
                mask[i, j] = 0
    return mask

def mfm_filter_oracle(x: np.ndarray, masks: np.ndarray, clamp=(0.0, 1.0), mean=None, std=None) -> np.ndarray:
    """x (B, C, H, W) float64, masks (B, H, W) shifted pass masks."""
    y = ifft2_np(unshift_np(shift_np(fft2_np(x)) * masks[:, None])).real
    if clamp is not None:
        y = np.clip(y, *clamp)
    if mean is not None:
        y = (y - stats(mean)) / stats(std)
    return y

def stats(values) -> np.ndarray:
    """(C, 1, 1) float64 holding the float32-rounded statistics (the official code makes float32 tensors)."""
    return np.array(values, dtype=np.float32).astype(np.float64)[:, None, None]

def pixmim_target_oracle(z: np.ndarray, mask: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    m, s = stats(mean), stats(std)
    x = z * s + m
    y = np.abs(ifft2_np(shift_np(fft2_np(x)) * mask))
    return (y - m) / s

def loss_oracle(pred: np.ndarray, target: np.ndarray, freq_mask, gamma=1.0) -> float:
    b, c, h, w = pred.shape
    d = shift_np(fft2_np(pred) - fft2_np(target)) / math.sqrt(h * w)
    dist = np.sqrt(d.real ** 2 + d.imag ** 2 + 1e-12) ** gamma
    if freq_mask is None:
        return float(dist.mean())
    removed = np.broadcast_to(1 - freq_mask, (b, h, w))
    return float((removed[:, None] * dist).sum() / (removed.sum() * c))

def low_masks(b, h, w, radius, high_pass):
    low = mfm_mask_oracle(h, w, radius).astype(np.float64)
    return np.stack([1 - low if hp else low for hp in high_pass])
