"""Independent float64 numpy oracle of the HOG target (SPEC.md §2, §3, written from the text), the
flip-aware bound of SPEC.md §7 and the test images shared by the HOG tests."""
import math

import numpy as np
import torch

from mimkernels.hog.ops import bin_cotangents
from mimkernels.testing import sample_photos

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def oracle(imgs: torch.Tensor, nbins=9, pool=8, gw=16, norm_out=True) -> dict:
    """float64 evaluation of SPEC.md §2 on the exact input values. Returns the map (B, C, nbins, h, w), the raw
    sums, and per pixel: bin, magnitude, window weight, δ = 2⁻²¹·Σ|stencil terms| and the phase."""
    x = imgs.double().numpy()
    b, c, hh, ww = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")  # -1 -> 1, H -> H-2

    def at(di, dj):
        return xp[:, :, 1 + di:1 + di + hh, 1 + dj:1 + dj + ww]

    tl, tm, tr, ml, mr, bl, bm, br = (at(-1, -1), at(-1, 0), at(-1, 1), at(0, -1), at(0, 1), at(1, -1), at(1, 0),
                                      at(1, 1))
    gx = (tl + 2 * ml + bl) - (tr + 2 * mr + br)  # left column minus right column
    gy = (tl + 2 * tm + tr) - (bl + 2 * bm + br)  # top row minus bottom row
    magnitude = np.sqrt(gx * gx + gy * gy)
    phase = np.arctan2(gx, gy) / math.pi * nbins
    bins = np.floor(phase).astype(np.int64) % nbins
    if gw:
        t = np.arange(gw)
        bell = np.exp(-0.5 * ((t - (gw - 1) / 2) / (gw // 2)) ** 2)
        window = np.outer(bell, bell) / np.outer(bell, bell).sum()
        weight = np.tile(window, (hh // gw, ww // gw))
    else:
        weight = np.ones((hh, ww))
    abs_terms = (np.abs(tl) + 2 * np.abs(ml) + np.abs(bl) + np.abs(tr) + 2 * np.abs(mr) + np.abs(br)
                 + np.abs(tl) + 2 * np.abs(tm) + np.abs(tr) + np.abs(bl) + 2 * np.abs(bm) + np.abs(br))
    h, w = hh // pool, ww // pool

    def cell_sums(v):  # (B, C, H, W) -> (B, C, h, w)
        return v[:, :, :h * pool, :w * pool].reshape(b, c, h, pool, w, pool).sum((3, 5))

    votes = magnitude * weight
    raw = np.stack([cell_sums(np.where(bins == k, votes, 0.0)) for k in range(nbins)], axis=2)
    norm = np.sqrt((raw * raw).sum(2, keepdims=True))
    out = raw / np.maximum(norm, 1e-12) if norm_out else raw
    return dict(map=out, raw=raw, norm=norm, bins=bins, magnitude=magnitude, weight=weight,
                delta=2.0 ** -21 * abs_terms, phase=phase, cell_sums=cell_sums, nbins=nbins)


def oracle_patches(cell_map: np.ndarray, u: int) -> np.ndarray:
    """(B, C, K, h, w) -> (B, L, C·K·u²) with patch l = py·(w/u) + px and entry ((c·K + k)·u + cy)·u + cx (SPEC.md §3)."""
    b, c, k, h, w = cell_map.shape
    x = cell_map.reshape(b, c, k, h // u, u, w // u, u).transpose(0, 3, 5, 1, 2, 4, 6)
    return x.reshape(b, (h // u) * (w // u), c * k * u * u)


def flip_bound(o: dict) -> tuple[np.ndarray, np.ndarray]:
    """(per-entry bound (B, C, 1, h, w), ambiguous pixels (B, C, H, W)) of SPEC.md §7."""
    delta, g, phase, nbins = o["delta"], o["magnitude"], o["phase"], o["nbins"]
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = (nbins / math.pi) * 2 * delta / g + 2e-6
    ambiguous = (g <= 2 * delta) | (np.abs(phase - np.round(phase)) <= margin)
    spread = 3 * o["cell_sums"](np.where(ambiguous, (g + 2 * delta) * o["weight"], 0.0)) \
        + 2 * o["cell_sums"](2 * delta * o["weight"])
    norm = o["norm"][:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(norm > 0, np.minimum(2.0, spread / norm), np.where(spread > 0, 2.0, 0.0)) + 1e-5
    return bound[:, :, None], ambiguous


def assert_within_flip_bound(got: torch.Tensor, o: dict, patch_cells: int = 0, label: str = "") -> float:
    """Asserts |got − oracle| ≤ the flip-aware bound entrywise; returns the fraction of entries > 1e-4."""
    bound, ambiguous = flip_bound(o)
    bound = np.broadcast_to(bound, o["map"].shape)
    expected = o["map"]
    if patch_cells:
        expected, bound = oracle_patches(expected, patch_cells), oracle_patches(np.ascontiguousarray(bound), patch_cells)
    err = np.abs(got.double().numpy() - expected)
    assert np.all(err <= bound), f"{label}: max excess {np.max(err - bound)}"
    frac = float(np.mean(err > 1e-4))
    print(f"{label}: ambiguous pixels {ambiguous.mean():.4%}, entries > 1e-4: {frac:.4%}, max err {err.max():.3g}")
    return frac


def sign_test_bins(imgs: torch.Tensor, nbins: int) -> np.ndarray:
    """The kernels' per-pixel bin (fp32 pairwise gradients, split-cotangent sign test), for the report."""
    x = torch.nn.functional.pad(imgs.float(), (1, 1, 1, 1), mode="reflect")
    hh, ww = imgs.shape[2:]

    def at(di, dj):
        return x[:, :, 1 + di:1 + di + hh, 1 + dj:1 + dj + ww]

    def grad(a0, b0, a1, b1, a2, b2):
        return ((a0 - b0) + 2 * (a1 - b1)) + (a2 - b2)

    gx = grad(at(-1, -1), at(-1, 1), at(0, -1), at(0, 1), at(1, -1), at(1, 1)).double()
    gy = grad(at(-1, -1), at(1, -1), at(-1, 0), at(1, 0), at(-1, 1), at(1, 1)).double()
    cot = bin_cotangents(nbins).double()
    u, v = gx.abs(), torch.where(gx > 0, gy, -gy)
    count = (v[..., None] <= u[..., None] * (cot[:, 0] + cot[:, 1])).sum(-1)
    return torch.where(gx == 0, 0, count).numpy()


def integer_images(shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).to(dtype)


def normalized_photos(size) -> torch.Tensor:
    """The two sample photographs, ImageNet-normalized as mmpretrain feeds the HOG (fp32)."""
    x = sample_photos(size)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std
