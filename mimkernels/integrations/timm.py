"""timm VisionTransformer: `forward_masked(vit, imgs, mask_ratio)`, the MAE encoder pass of an
unmodified timm ViT (integration.md §5). timm has no MIM masking and is never patched.

    from mimkernels.integrations.timm import forward_masked
    latent, mask, ids_restore = forward_masked(vit, imgs, 0.75)   # latent (B, num_prefix_tokens + K, D)

The pass is timm's `forward_features` with MAE's random masking between the positional embedding
and the blocks: `patch_embed` -> positions added to the patch tokens (both pos-embed styles:
`no_embed_class` adds them to patches only, otherwise the prefix rows go to cls/register tokens) ->
`mimkernels.random_masking` of the patch tokens -> prefix tokens (cls, then registers) prepended ->
`pos_drop` -> `norm_pre` -> `blocks` (through timm's `checkpoint_seq` when `vit.set_grad_checkpointing()`
is on) -> `norm`. `patch_drop` is skipped (the mask replaces it).
`dynamic_img_size` models resample pos_embed with timm's own `resample_abs_pos_embed`.
"""
from __future__ import annotations

import torch
from torch import nn

from mimkernels.integrations import _patching

__all__ = ["forward_masked"]

_PARTS = ("patch_embed", "cls_token", "pos_embed", "num_prefix_tokens", "blocks", "norm")


def forward_masked(vit: nn.Module, imgs: torch.Tensor, mask_ratio: float = 0.75, *, noise: torch.Tensor | None = None,
                   rng: str = "torch", generator: torch.Generator | None = None, backend: str = "auto"):
    """MAE encoder of a timm VisionTransformer: imgs (B, C, H, W) -> (latent (B, P + K, D) with the P =
    vit.num_prefix_tokens prefix tokens first, mask (B, L) in the default dtype (float32), 1 = masked, ids_restore (B, L) int64),
    K = int(L · (1 − mask_ratio)). Visible tokens come in ascending-noise order, as MAE's.

    noise (B, L): caller sort keys (MAE's convention); else rng="torch" draws `torch.rand(B, L)` on
    imgs' device, rng="philox" keys the masks by a seed from `generator` (CPU) or torch's default one.
    A decoder's full sequence (B, P + L, D'): `mimkernels.unshuffle_tokens(decoder_embed(latent),
    ids_restore, mask_token, num_prefix_tokens=vit.num_prefix_tokens)`."""
    _patching.check_rng(rng, generator)
    _patching.require(vit, type(vit).__name__, _PARTS, "forward_masked")
    batch = imgs.shape[0]
    x = vit.patch_embed(imgs)
    prefix_count = int(vit.num_prefix_tokens)
    no_embed_class = bool(getattr(vit, "no_embed_class", False))
    pos_embed = vit.pos_embed
    if pos_embed is not None and getattr(vit, "dynamic_img_size", False):
        from timm.layers import resample_abs_pos_embed

        _, height, width, _ = x.shape
        pos_embed = resample_abs_pos_embed(pos_embed, new_size=(height, width), old_size=vit.patch_embed.grid_size,
                                           num_prefix_tokens=0 if no_embed_class else prefix_count)
    x = x.reshape(batch, -1, x.shape[-1])
    prefix_pos = None
    if pos_embed is not None:
        patch_pos = pos_embed if no_embed_class else pos_embed[:, prefix_count:]
        prefix_pos = None if no_embed_class else pos_embed[:, :prefix_count]
        if patch_pos.shape[1] != x.shape[1]:
            raise ValueError(f"vit.pos_embed has {patch_pos.shape[1]} patch positions, imgs give {x.shape[1]} patches")
        x = x + patch_pos
    x, mask, ids_restore = _patching.masked_tokens(x, mask_ratio, noise, rng, generator, backend)
    prefix = [t.expand(batch, -1, -1) for t in (vit.cls_token, getattr(vit, "reg_token", None)) if t is not None]
    if prefix:
        prefix = torch.cat(prefix, dim=1)
        if prefix_pos is not None:
            prefix = prefix + prefix_pos
        x = torch.cat([prefix, x], dim=1)
    for name in ("pos_drop", "norm_pre"):
        module = getattr(vit, name, None)
        if module is not None:
            x = module(x)
    if getattr(vit, "grad_checkpointing", False) and not torch.jit.is_scripting():
        from timm.models import checkpoint_seq

        x = checkpoint_seq(vit.blocks, x)
    else:
        x = vit.blocks(x)
    return vit.norm(x), mask, ids_restore
