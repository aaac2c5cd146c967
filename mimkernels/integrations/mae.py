"""facebookresearch/mae: `patch_mae(model)` for models shaped like `MaskedAutoencoderViT`
(`models_mae.py`; integration.md §1).

    from mimkernels.integrations import patch_mae
    model = patch_mae(models_mae.mae_vit_base_patch16(norm_pix_loss=True))   # before DDP / torch.compile

Three methods are bound onto the instance, one flag each; `forward`, `forward_encoder`, the
encoder and every parameter stay the model's own:
- masking: `random_masking(x, mask_ratio)` -> `mimkernels.random_masking` (same triple);
- unshuffle: `forward_decoder(x, ids_restore)` -> the model's decoder modules around
  `mimkernels.unshuffle_tokens` (MAE's cat + gather + cat in one op);
- loss: `forward_loss(imgs, pred, mask)` -> `mimkernels.norm_pix_mse_loss(..., norm_pix=self.norm_pix_loss)`
  (patchify, per-patch normalisation and the masked MSE fused; fp32 whatever pred's dtype; any C, H != W).

The repository is not a package: the model is recognised by duck typing, and a fork whose
structure differs gets a ValueError naming the missing attribute.
"""
from __future__ import annotations

import torch
from torch import nn

import mimkernels as mk
from mimkernels.integrations import _patching

__all__ = ["patch_mae"]

# The methods patch_mae replaces, with the upstream arguments they must keep.
_METHODS = {"masking": ("random_masking", ("x", "mask_ratio")),
            "unshuffle": ("forward_decoder", ("x", "ids_restore")),
            "loss": ("forward_loss", ("imgs", "pred", "mask"))}
_DECODER_PARTS = ("decoder_embed", "mask_token", "decoder_pos_embed", "decoder_blocks", "decoder_norm",
                  "decoder_pred")


def patch_mae(model: nn.Module, *, masking: bool = True, unshuffle: bool = True, loss: bool = True,
              rng: str = "torch", generator=None, backend: str = "auto") -> nn.Module:
    """Bind mimkernels' masking, decoder unshuffle and loss onto an MAE `MaskedAutoencoderViT`; returns model.

    rng: "torch" (default) draws MAE's `torch.rand(N, L)` noise where MAE does, so the masks and the
    global RNG stream equal upstream's for the same RNG state (ties in the noise aside: ours break by
    index, MAE's argsort is unstable). "philox" keys the masks by one seed per call drawn from
    `generator` (a CPU torch.Generator; default: torch's default generator): the masks are a
    function of that seed on every backend and device, eager or compiled (under torch.compile,
    Inductor's `torch.rand` differs from eager's, so "torch" masks do not survive compilation).
    backend: passed to every op ("auto": Triton on CUDA tensors, the eager reference on CPU).
    Idempotent; `mimkernels.integrations.unpatch(model)` restores the model. Adds no parameters or
    buffers. Call it before wrapping in DDP or torch.compile.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    _patching.check_rng(rng, generator)
    owner = type(model).__name__
    flags = {"masking": masking, "unshuffle": unshuffle, "loss": loss}
    for flag, (name, params) in _METHODS.items():
        if flags[flag]:
            _patching.require(model, owner, (name,), f"{flag}=True")
            _patching.check_signature(model, owner, name, params)
    if unshuffle:
        _patching.require(model, owner, _DECODER_PARTS, "unshuffle=True")
    if loss:
        _patching.require(model, owner, ("patch_embed", "norm_pix_loss"), "loss=True")
        _patching.patch_size_of(model.patch_embed, f"{owner}.patch_embed")
    _patching.unpatch(model)  # idempotent: a second call re-patches from the original

    if masking:
        def random_masking(self, x, mask_ratio):
            return _patching.masked_tokens(x, mask_ratio, None, rng, generator, backend)

        _patching.bind(model, "random_masking", random_masking)
    if unshuffle:
        def forward_decoder(self, x, ids_restore):
            x = self.decoder_embed(x)
            # MAE's torch.cat promotes the fp16 tokens to the fp32 mask token under autocast: same here.
            x = x.to(torch.promote_types(x.dtype, self.mask_token.dtype))
            x = mk.unshuffle_tokens(x, ids_restore, self.mask_token, backend=backend)
            x = x + self.decoder_pos_embed
            for blk in self.decoder_blocks:
                x = blk(x)
            x = self.decoder_norm(x)
            x = self.decoder_pred(x)
            return x[:, 1:, :]

        _patching.bind(model, "forward_decoder", forward_decoder)
    if loss:
        def forward_loss(self, imgs, pred, mask):
            p = _patching.patch_size_of(self.patch_embed, "patch_embed")
            return mk.norm_pix_mse_loss(pred, imgs, mask, p, norm_pix=bool(self.norm_pix_loss), backend=backend)

        _patching.bind(model, "forward_loss", forward_loss)
    _patching.bind_name(model)
    _patching.mark_patched(model, **flags, rng=rng, backend=backend)
    return model
