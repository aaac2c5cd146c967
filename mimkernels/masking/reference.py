"""Eager references, the oracles of every kernel and the torch backends: MAE random masking
(SPEC.md §2, §3), gather_patches (§4) and the decoder unshuffle (§5), step by step as
facebookresearch/mae models_mae.py; SimMIM's mask (§6, microsoft/SimMIM data/data_simmim.py), the
BEiT/MaskFeat block mask (§7, microsoft/unilm beit/masking_generator.py) and AvgDist (§8), at the end.

Ties in `noise` break by lower index first (argsort(stable=True)); with tie-free noise this equals
MAE bit for bit.
"""
from __future__ import annotations

import itertools
import math

import torch

from mimkernels import rng
from mimkernels.pixel.reference import patchify


def len_keep(num_patches: int, mask_ratio: float) -> int:
    """K = int(L · (1 − mask_ratio)) in Python float64, truncated toward zero, exactly as MAE
    (int(10·(1−0.9)) == 0, not 1: never compute it as L − ceil(L·r), round() or in float32)."""
    return int(num_patches * (1 - mask_ratio))


def random_mask_indices(batch: int, num_patches: int, mask_ratio: float, noise: torch.Tensor):
    """(ids_keep (B,K) int64, ids_restore (B,L) int64, mask (B,L) float32, 1 = masked) from noise (B, L):
    ascending noise is kept first, ties by index."""
    k = len_keep(num_patches, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1, stable=True)
    ids_restore = torch.argsort(ids_shuffle, dim=1, stable=True)
    ids_keep = ids_shuffle[:, :k]
    mask = (ids_restore >= k).to(torch.float32)
    return ids_keep, ids_restore, mask


def keep_counts(mask_ratio: torch.Tensor, num_patches: int, max_keep: int) -> torch.Tensor:
    """Per-sample kept counts (B,) int64 on mask_ratio's device: min(int(L · (1 − r_b)), max_keep), each
    in float64 as MAE's K (len_keep). Values past the contract are clamped, never refused (the check would
    sync the host): a NaN ratio keeps 0, ratios below 0 keep max_keep, above 1 keep 0 (SPEC.md §2a)."""
    kept = (num_patches * (1 - mask_ratio.to(torch.float64))).nan_to_num(nan=0.0)
    return kept.clamp(0, max_keep).to(torch.int64)


def random_mask_indices_per_sample(noise: torch.Tensor, kept: torch.Tensor, max_keep: int):
    """Per-sample ratios (SPEC.md §2a): (ids_keep (B, max_keep), ids_restore (B, L) int64, mask (B, L)
    float32) from noise (B, L) and the kept counts (B,): ids_keep is the first max_keep indices of the
    ascending order (row b's first kept[b] are its kept patches), mask[b, l] = ids_restore[b, l] >= kept[b]."""
    ids_shuffle = torch.argsort(noise, dim=1, stable=True)
    ids_restore = torch.argsort(ids_shuffle, dim=1, stable=True)
    mask = (ids_restore >= kept.unsqueeze(1)).to(torch.float32)
    return ids_shuffle[:, :max_keep], ids_restore, mask


def zero_padding(rows: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """rows (B, K, D) with rows k >= kept[b] set to zero: the padding of per-sample ratios (SPEC.md §3), so
    that no masked token reaches the encoder's input."""
    valid = torch.arange(rows.shape[1], device=rows.device) < kept.unsqueeze(1)
    return torch.where(valid.unsqueeze(-1), rows, torch.zeros((), dtype=rows.dtype, device=rows.device))


def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor):
    """MAE random_masking: x (N, L, D) -> (x_masked (N, K, D), mask (N, L) float32, ids_restore (N, L))."""
    n, length, d = x.shape
    ids_keep, ids_restore, mask = random_mask_indices(n, length, mask_ratio, noise)
    x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).expand(-1, -1, d))
    return x_masked, mask, ids_restore


def unshuffle_tokens(x: torch.Tensor, ids_restore: torch.Tensor, mask_token: torch.Tensor,
                     num_prefix_tokens: int = 1) -> torch.Tensor:
    """MAE forward_decoder input: x (N, P+K, D) with P = num_prefix_tokens prefix tokens first (MAE: P = 1,
    the cls token), ids_restore (N, L), mask_token (D,) or (1, 1, D) -> (N, P+L, D), the prefix copied
    through. mask_token is cast to x.dtype."""
    n, _, d = x.shape
    prefix = num_prefix_tokens
    length = ids_restore.shape[1]
    token = mask_token.reshape(1, 1, d).to(x.dtype)
    mask_tokens = token.expand(n, length + prefix - x.shape[1], d)
    x_ = torch.cat([x[:, prefix:, :], mask_tokens], dim=1)
    x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).expand(-1, -1, d))
    return torch.cat([x[:, :prefix, :], x_], dim=1)


def gather_patches(imgs: torch.Tensor, ids_keep: torch.Tensor, patch_size: int,
                   num_prefix_tokens: int = 0) -> torch.Tensor:
    """patchify(imgs) gathered at ids_keep (B, K) − num_prefix_tokens -> (B, K, p·p·C), as MAE's
    torch.gather with the ids expanded over D (SPEC.md §4); with P = num_prefix_tokens the ids
    count the P prefix tokens first (lightly's `idx_mask`: patch l is token P + l)."""
    x = patchify(imgs, patch_size)
    return torch.gather(x, 1, (ids_keep - num_prefix_tokens).unsqueeze(-1).expand(-1, -1, x.shape[-1]))


# ---- SimMIM mask, BEiT/MaskFeat block mask, AvgDist (SPEC.md §6–8) -------------------------------

def simmim_mask_count(rand_size: int, mask_ratio: float) -> int:
    """mask_count = int(np.ceil(token_count · mask_ratio)) in float64, as SimMIM's MaskGenerator
    (microsoft/SimMIM data/data_simmim.py): ceil of the masked count (MAE truncates the kept count)."""
    return math.ceil(rand_size * rand_size * mask_ratio)


def simmim_mask(batch: int, rand_size: int, scale: int, mask_count: int, seed: int | torch.Tensor,
                sample_offset: int, device: torch.device) -> torch.Tensor:
    """SimMIM's MaskGenerator for a batch: (B, n, n) bool, n = rand_size · scale, True = masked. seed: the
    Philox key, an int or a 0-d int64 key tensor on `device` (rng.tensor_key of a seed tensor).

    Step by step as the official call: a random permutation of the token_count mask patches (here:
    ascending Philox keys of stream 2, ties by index, in place of np.random.permutation), the first
    mask_count of it masked, reshaped row-major to (rand_size, rand_size), each cell repeated `scale`
    times along rows then columns."""
    tokens = rand_size * rand_size
    t = torch.arange(tokens, dtype=torch.int64, device=device).unsqueeze(0)
    b = (torch.arange(batch, dtype=torch.int64, device=device) + sample_offset).unsqueeze(1)
    keys = rng.draw(seed, t, b, rng.STREAM_SIMMIM_MASK, device=device)[0].expand(batch, tokens)
    permutation = torch.argsort(keys, dim=1, stable=True)
    mask = torch.zeros(batch, tokens, dtype=torch.bool, device=device)
    mask.scatter_(1, permutation[:, :mask_count], True)
    mask = mask.reshape(batch, rand_size, rand_size)
    return mask.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)


def _philox_calls(seed: int, samples: list, count: int) -> list:
    """[sample][i] -> the 4 Philox words at counter (i, sample, STREAM_BLOCK_MASK, 0), i < count."""
    i = torch.arange(count, dtype=torch.int64).unsqueeze(0)
    b = torch.tensor(samples, dtype=torch.int64).unsqueeze(1)
    words = torch.stack(rng.draw(seed, i, b, rng.STREAM_BLOCK_MASK), dim=-1)
    return words.expand(len(samples), count, 4).tolist()


def _unit_double(x0: int, x1: int) -> float:
    return ((x0 >> 5) * 2 ** 26 + (x1 >> 6)) * 2.0 ** -53


def _mask_one_block(mask: list, height: int, width: int, min_num_patches: int, max_mask_patches: int,
                    log_aspect_ratio: tuple[float, float], next_draw, inclusive: int) -> int:
    """unilm MaskingGenerator._mask: up to 10 attempts, stop after the first that adds cells.
    random.uniform(a, b) = a + (b − a)·u with u from one Philox call (area: words 0–1, aspect: 2–3);
    random.randint(0, n) inclusive = (x · (n + 1)) >> 32 from a second call, made only when the block fits
    (inclusive=0: mmpretrain's np.random.randint(0, n), exclusive, = (x · n) >> 32)."""
    delta = 0
    for _attempt in range(10):
        shape = next_draw()
        target_area = min_num_patches + (max_mask_patches - min_num_patches) * _unit_double(shape[0], shape[1])
        lo, hi = log_aspect_ratio
        aspect_ratio = math.exp(lo + (hi - lo) * _unit_double(shape[2], shape[3]))
        h = int(round(math.sqrt(target_area * aspect_ratio)))
        w = int(round(math.sqrt(target_area / aspect_ratio)))
        if w < width and h < height:
            place = next_draw()
            top = (place[0] * (height - h + inclusive)) >> 32
            left = (place[1] * (width - w + inclusive)) >> 32

            num_masked = sum(sum(row[left:left + w]) for row in mask[top:top + h])
            # Overlap
            if 0 < h * w - num_masked <= max_mask_patches:
                for i in range(top, top + h):
                    for j in range(left, left + w):
                        if mask[i][j] == 0:
                            mask[i][j] = 1
                            delta += 1

            if delta > 0:
                break
    return delta


# mmpretrain retries a block that adds nothing forever; block_mask.h stops after this many blocks.
MMPRETRAIN_MAX_BLOCKS = 1 << 16


def _block_mask_one(calls: list, height: int, width: int, num_masking_patches: int, min_num_patches: int,
                    max_num_patches: int, log_aspect_ratio: tuple[float, float], mmpretrain: bool) -> list:
    """unilm beit/masking_generator.py MaskingGenerator.__call__ for one sample (mmpretrain=True:
    mmpretrain's BEiTMaskGenerator.transform, exclusive randint and no early stop); `calls`: the
    sample's Philox calls in counter order (StopIteration when they run out)."""
    next_draw = iter(calls).__next__
    mask = [[0] * width for _ in range(height)]
    mask_count = 0
    blocks = 0
    while mask_count < num_masking_patches:
        max_mask_patches = num_masking_patches - mask_count
        max_mask_patches = min(max_mask_patches, max_num_patches)

        delta = _mask_one_block(mask, height, width, min_num_patches, max_mask_patches, log_aspect_ratio, next_draw,
                                inclusive=0 if mmpretrain else 1)
        blocks += 1
        if delta == 0 and (not mmpretrain or blocks == MMPRETRAIN_MAX_BLOCKS):
            break
        else:
            mask_count += delta
    return mask


def block_mask(batch: int, height: int, width: int, num_masking_patches, min_num_patches: int,
               max_num_patches: int | None, log_aspect_ratio: tuple[float, float], seed: int,
               sample_offset: int, mmpretrain: bool = False) -> torch.Tensor:
    """The official block mask of each sample, driven by the draws of block_mask.h (rng.md stream 3,
    running call counter per sample): (B, H, W) bool on the CPU, True = masked. num_masking_patches: an
    int, or a list of B ints (per-sample counts, SPEC.md §7a); max_num_patches None: each sample's count.
    The Philox calls are computed for the whole batch at once, 32 per sample (MaskFeat 78/15 makes 21 on
    average); the samples that need more run again with 4 times as many."""
    out = torch.empty((batch, height, width), dtype=torch.bool)  # first: a size past memory fails here, clean
    counts = num_masking_patches if isinstance(num_masking_patches, list) else [num_masking_patches] * batch
    cells = height * width
    flat = bytearray(batch * cells)  # the masks' bytes, one tensor copy at the end (not a tensor per sample)
    pending, count = list(range(batch)), 32
    while pending:
        calls = _philox_calls(seed, [sample_offset + b for b in pending], count)
        retry = []
        for b, sample_calls in zip(pending, calls):
            try:
                mask = _block_mask_one(sample_calls, height, width, counts[b], min_num_patches,
                                       counts[b] if max_num_patches is None else max_num_patches,
                                       log_aspect_ratio, mmpretrain)
                flat[b * cells:(b + 1) * cells] = bytes(itertools.chain.from_iterable(mask))
            except StopIteration:
                retry.append(b)
        pending, count = retry, 4 * count
    if flat:
        out.copy_(torch.frombuffer(flat, dtype=torch.bool).view(batch, height, width))
    return out


def mask_avg_dist(mask: torch.Tensor, patch_size: int, chunk: int = 4) -> torch.Tensor:
    """SimMIM's AvgDist: mask (B, h, w), nonzero = masked, each cell patch_size² pixels -> (B,) float32,
    the mean over masked pixels of the Euclidean distance to the nearest visible pixel (NaN: nothing
    masked; +inf: nothing visible).

    Exact, by two minimisations over patch rows then patch columns (the distance from a pixel to a
    patch is the distance to its nearest pixel, a box distance): G(y, j)² = min over visible (i, j) of
    dy(y, i)², then d(y, x)² = min over j of dx(x, j)² + G(y, j)². O(H·W·(h + w)) per sample, in
    float64, `chunk` samples at a time."""
    b, h, w = mask.shape
    masked = mask != 0
    p = patch_size
    dev = mask.device

    def box_gap(n_pixels: int, n_cells: int) -> torch.Tensor:
        """(pixels, cells): distance along one axis from pixel k to the pixel interval of cell c."""
        k = torch.arange(n_pixels, device=dev, dtype=torch.float64).unsqueeze(1)
        start = torch.arange(n_cells, device=dev, dtype=torch.float64).unsqueeze(0) * p
        return torch.clamp(torch.maximum(start - k, k - (start + p - 1)), min=0)

    dy2, dx2 = box_gap(h * p, h) ** 2, box_gap(w * p, w) ** 2
    out = []
    for part in masked.split(chunk):
        # (n, H, h, w) -> G² (n, H, w): nearest visible patch row per patch column, inf if none.
        g2 = torch.where(part.unsqueeze(1), torch.inf, dy2[None, :, :, None]).amin(dim=2)
        # (n, H, W, w) -> d² (n, H, W).
        d2 = (g2.unsqueeze(2) + dx2[None, None]).amin(dim=3)
        pixels = part.repeat_interleave(p, dim=1).repeat_interleave(p, dim=2)
        total = torch.where(pixels, d2.sqrt(), 0.0).sum(dim=(1, 2))
        out.append((total / pixels.sum(dim=(1, 2))).to(torch.float32))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float32, device=dev)
