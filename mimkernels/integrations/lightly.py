"""lightly (`lightly.models.utils`): token masks and MAE targets with lightly's index conventions
(integration.md §3).

lightly's index tensors live in the token sequence *with* its prefix: `random_token_mask((B, S))`
takes S = num_patches + num_prefix_tokens, keeps index 0 (cls) first in `idx_keep` unless
`mask_class_token`, and returns both tensors in noise order; the MAE examples take their target as
`get_at_index(patchify(images, p), idx_mask - 1)`. `masked_patch_target` computes that target
from the image in one gather (`mimkernels.gather_patches`), without patchifying every patch.

    from mimkernels.integrations import lightly as mkl
    idx_keep, idx_mask = mkl.random_token_mask((B, S), mask_ratio=0.75, device=images.device)
    target = mkl.masked_patch_target(images, idx_mask, patch_size, norm_pix=False)
    mkl.patch_lightly()   # opt in: lightly.models.utils.random_token_mask / patchify become these

Never imports lightly except in `patch_lightly` / `unpatch_lightly`.
"""
from __future__ import annotations

import types

import torch

import mimkernels as mk
from mimkernels import checks

__all__ = ["random_token_mask", "patchify", "masked_patch_target", "patch_lightly", "unpatch_lightly"]


def _num_keep(sequence_length: int, mask_ratio: float, mask_class_token: bool, legacy_count: bool) -> int:
    """lightly's count of kept tokens (cls included when it is protected). Since v1.5.10 the ratio
    applies to the patches only: int((S − 1)(1 − r)) + 1, MAE's K plus cls; before, int(S(1 − r))."""
    if legacy_count:
        keep = int(sequence_length * (1 - mask_ratio))
        return max(1, keep) if not mask_class_token and sequence_length > 0 else keep
    keep = int((sequence_length - int(not mask_class_token)) * (1 - mask_ratio))
    return max(1, keep + 1) if not mask_class_token and sequence_length > 0 else keep


def random_token_mask(size: tuple[int, int], mask_ratio: float = 0.6, mask_class_token: bool = False, device=None,
                      *, generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
                      legacy_count: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """lightly's `random_token_mask`: size = (B, S), S including the prefix token(s) -> (idx_keep (B, K),
    idx_mask (B, S − K)) int64, both in ascending-noise order; idx_keep[:, 0] == 0 (cls) unless
    mask_class_token. The default ratio is lightly's 0.6, not MAE's 0.75.

    Noise: `torch.rand(B, S, device=device, generator=generator)`, the draw lightly makes (with
    generator None, the same global-RNG stream), or the caller's `noise` (B, S) (lightly's noise for
    bit parity; column 0 is overridden as lightly does). Ties break by index (lightly's argsort is
    unstable). legacy_count: the kept count of lightly < 1.5.10, int(S(1 − r)).
    """
    if not (isinstance(size, (tuple, list, torch.Size)) and len(size) == 2):
        raise ValueError(f"size must be (batch_size, sequence_length), got {size!r}")
    batch, length = (checks.check_int(v, name, minimum=0) for v, name in zip(size, ("batch_size", "sequence_length")))
    if not 0.0 <= float(mask_ratio) <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio!r}")
    if noise is None:
        noise = torch.rand(batch, length, device=device, generator=generator)
    else:
        if tuple(noise.shape) != (batch, length):
            raise ValueError(f"noise must have shape (B, S) = {(batch, length)}, got {tuple(noise.shape)}")
        if generator is not None:
            raise ValueError("pass noise or generator, not both")
        noise = noise.to(device) if device is not None else noise
    keep = _num_keep(length, float(mask_ratio), mask_class_token, legacy_count)
    if not mask_class_token and length > 0:
        noise = noise.clone()
        noise[:, 0] = -1
    indices = torch.argsort(noise, dim=1, stable=True)
    return indices[:, :keep], indices[:, keep:]


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """lightly's `patchify(images, patch_size)`: (N, C, H, W) -> (N, L, p·p·C), (p, q, c) layout;
    `mimkernels.patchify` (one Triton pass on CUDA; also H != W)."""
    return mk.patchify(images, patch_size)


def masked_patch_target(images: torch.Tensor, idx_mask: torch.Tensor, patch_size: int, *, num_prefix_tokens: int = 1,
                        norm_pix: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """`get_at_index(patchify(images, p), idx_mask - num_prefix_tokens)` (then lightly's
    `normalize_mean_var(target, eps=eps)` when norm_pix) in one gather from the image
    (`mimkernels.gather_patches(..., num_prefix_tokens=P)`): images (B, C, H, W), idx_mask (B, M) int64
    token indices *with* the prefix -> (B, M, p·p·C) in images.dtype. norm_pix: per-patch
    (t − mean) / sqrt(var + eps), unbiased variance, in fp32 (fp64 for fp64 images).
    Indices must point at patches (>= num_prefix_tokens): checked only with MIMKERNELS_DEBUG=1."""
    checks.check_tensor(idx_mask, "idx_mask", ndim=2, dtypes=(torch.int64,), what="(B, M)")
    target = mk.gather_patches(images, idx_mask, patch_size, num_prefix_tokens=num_prefix_tokens)
    if not norm_pix:
        return target
    t = target.to(torch.promote_types(target.dtype, torch.float32))
    mean = t.mean(dim=-1, keepdim=True)
    var = t.var(dim=-1, keepdim=True)
    return ((t - mean) / (var + eps).sqrt()).to(target.dtype)


_ORIGINALS: dict[str, object] = {}
_PATCHED_NAMES = ("random_token_mask", "patchify")


def patch_lightly(module: types.ModuleType | None = None) -> types.ModuleType:
    """Opt in: rebind `random_token_mask` and `patchify` in `lightly.models.utils` (or `module`) to
    the functions above. lightly's call sites use `utils.<name>` at run time, so models built before
    the call use them too. Idempotent; `unpatch_lightly()` restores lightly's functions."""
    if module is None:
        from lightly.models import utils as module
    for name in _PATCHED_NAMES:
        if not hasattr(module, name):
            raise ValueError(f"{module.__name__} has no {name!r}: this lightly release is not supported")
    if _ORIGINALS.get("module") is not module:
        unpatch_lightly()
        _ORIGINALS.update({"module": module, **{n: getattr(module, n) for n in _PATCHED_NAMES}})
    module.random_token_mask = random_token_mask
    module.patchify = patchify
    return module


def unpatch_lightly() -> None:
    """Restore the functions `patch_lightly` replaced (no-op when nothing is patched)."""
    module = _ORIGINALS.pop("module", None)
    for name in _PATCHED_NAMES:
        original = _ORIGINALS.pop(name, None)
        if module is not None and original is not None:
            setattr(module, name, original)
