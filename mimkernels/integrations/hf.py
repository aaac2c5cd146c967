"""Hugging Face transformers: `patch_hf_vitmae(model)` for ViTMAE (integration.md §2).

    from mimkernels.integrations import patch_hf_vitmae
    model = patch_hf_vitmae(ViTMAEForPreTraining.from_pretrained(...))   # before Trainer / DDP / compile

Bound onto the instance, one flag each:
- masking: `model.vit.embeddings.random_masking(sequence, noise=None)` -> `mimkernels.random_masking`,
  with the ratio read from `config.mask_ratio` at each call (as upstream) and a given `noise` honoured
  (moved to the tokens' device, as upstream);
- loss: the pixel loss -> `mimkernels.norm_pix_mse_loss(..., norm_pix=config.norm_pix_loss)`. Releases
  with `ViTMAEForPreTraining.forward_loss` get that method replaced; releases that compute the loss
  inline in `forward` (transformers 5) get a `forward` that runs the model's own `vit` and `decoder`
  and returns the same output class;
- decoder (off by default): `model.decoder.forward(hidden_states, ids_restore, interpolate_pos_encoding)`
  with MAE's cat + gather + cat as `mimkernels.unshuffle_tokens`; another signature warns and is skipped.
"""
from __future__ import annotations

import functools
import inspect
import math
import warnings

import torch
from torch import nn

import mimkernels as mk
from mimkernels.integrations import _patching

__all__ = ["patch_hf_vitmae", "patch_hf_simmim", "hf_simmim_loss", "SimMIMCollator"]

_FORWARD_PARAMS = ("pixel_values", "noise", "interpolate_pos_encoding")
_DECODER_PARAMS = ("hidden_states", "ids_restore", "interpolate_pos_encoding")


def patch_hf_vitmae(model: nn.Module, *, masking: bool = True, loss: bool = True, decoder: bool = False,
                    rng: str = "torch", generator=None, backend: str = "auto") -> nn.Module:
    """Bind mimkernels' masking, loss and (opt-in) decoder unshuffle onto a transformers
    `ViTMAEForPreTraining` (or the masking onto a `ViTMAEModel`, which has no loss or decoder); returns model.

    rng: "torch" (default) draws `torch.rand(B, L)` where transformers does when no `noise` is given,
    so masks equal upstream's for the same RNG state (ties aside: ours break by index); "philox" keys
    them by one seed per call from `generator` (CPU) or torch's default generator. A `noise` argument
    to `model(...)` always wins, as upstream. backend: passed to every op. Idempotent;
    `mimkernels.integrations.unpatch(model)` restores it. Adds no parameters or buffers.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    _patching.check_rng(rng, generator)
    owner = type(model).__name__
    pretraining = hasattr(model, "vit")
    embeddings = model.vit.embeddings if pretraining else getattr(model, "embeddings", None)
    if embeddings is None:
        raise ValueError(f"{owner} has neither 'vit' (ViTMAEForPreTraining) nor 'embeddings' (ViTMAEModel)")
    if masking:
        _patching.require(embeddings, "embeddings", ("random_masking", "config"), "masking=True")
        _patching.check_signature(embeddings, "embeddings", "random_masking", ("sequence", "noise"))
    loss, decoder = loss and pretraining, decoder and pretraining
    if loss:
        _patching.require(model, owner, ("config", "vit", "decoder"), "loss=True")
        if not hasattr(type(model), "forward_loss") and not _takes(type(model).forward, _FORWARD_PARAMS):
            warnings.warn(f"patch_hf_vitmae: {owner}.forward has an unknown signature; the loss is not patched")
            loss = False
    if decoder:
        _patching.require(model.decoder, "decoder", ("decoder_embed", "mask_token", "decoder_pos_embed",
                                                     "decoder_layers", "decoder_norm", "decoder_pred"),
                          "decoder=True")
        if not _takes(type(model.decoder).forward, _DECODER_PARAMS):
            warnings.warn("patch_hf_vitmae: ViTMAEDecoder.forward has an unknown signature; the decoder is not patched")
            decoder = False
    _patching.unpatch(model)

    if masking:
        def random_masking(self, sequence, noise=None):
            return _patching.masked_tokens(sequence, self.config.mask_ratio, noise, rng, generator, backend)

        _patching.bind(embeddings, "random_masking", random_masking)
    if loss:
        if hasattr(type(model), "forward_loss"):
            @functools.wraps(type(model).forward_loss)
            def forward_loss(self, pixel_values, pred, mask, interpolate_pos_encoding=False):
                return _pixel_loss(self.config, pixel_values, pred, mask, interpolate_pos_encoding, backend)

            _patching.bind(model, "forward_loss", forward_loss)
        else:
            _patching.bind(model, "forward", _forward_with_loss(backend, type(model).forward))
    if decoder:
        _patching.bind(model.decoder, "forward", _decoder_forward(backend))
    _patching.bind_name(model)
    _patching.mark_patched(model, masking=masking, loss=loss, decoder=decoder, rng=rng, backend=backend)
    return model


def _takes(fn, params: tuple[str, ...]) -> bool:
    """fn(self, *params, ...): the named parameters come first, in this order."""
    names = list(inspect.signature(fn).parameters)[1:]
    return names[:len(params)] == list(params)


def _pixel_loss(config, pixel_values, pred, mask, interpolate_pos_encoding, backend):
    """ViTMAE's loss: patchify (with its checks), norm_pix per config, masked MSE — fused."""
    if not interpolate_pos_encoding and pixel_values.shape[2] != pixel_values.shape[3]:
        raise ValueError("Make sure the pixel values have a squared size that is divisible by the patch size")
    if pixel_values.shape[1] != config.num_channels:
        raise ValueError("Make sure the number of channels of the pixel values is equal to the one set in the "
                         "configuration")
    return mk.norm_pix_mse_loss(pred, pixel_values, mask, config.patch_size, norm_pix=bool(config.norm_pix_loss),
                                backend=backend)


def _forward_with_loss(backend: str, original):
    """ViTMAEForPreTraining.forward of transformers 5 (loss inline) with the fused loss. It carries the
    original's name, docstring, signature and annotations (functools.wraps), which transformers' own
    tests and utilities inspect (e.g. `**kwargs: Unpack[TransformersKwargs]` for output_attentions)."""
    from transformers.models.vit_mae.modeling_vit_mae import ViTMAEForPreTrainingOutput

    @functools.wraps(original)
    def forward(self, pixel_values=None, noise=None, interpolate_pos_encoding=None, attention_mask=None, **kwargs):
        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        outputs = self.vit(pixel_values, noise=noise, interpolate_pos_encoding=interpolate_pos_encoding,
                           attention_mask=attention_mask, **kwargs)
        logits = self.decoder(outputs.last_hidden_state, outputs.ids_restore,
                              interpolate_pos_encoding=interpolate_pos_encoding).logits
        loss = _pixel_loss(self.config, pixel_values, logits, outputs.mask, interpolate_pos_encoding, backend)
        out = ViTMAEForPreTrainingOutput(loss=loss, logits=logits, mask=outputs.mask, ids_restore=outputs.ids_restore,
                                         hidden_states=outputs.hidden_states, attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()

    return forward


def _decoder_forward(backend: str):
    """ViTMAEDecoder.forward(hidden_states, ids_restore, interpolate_pos_encoding=False) around unshuffle_tokens."""
    from transformers.models.vit_mae.modeling_vit_mae import ViTMAEDecoderOutput

    def forward(self, hidden_states, ids_restore, interpolate_pos_encoding=False):
        x = self.decoder_embed(hidden_states)
        # upstream's torch.cat promotes low-precision tokens to the fp32 mask token under autocast: same here
        x = x.to(torch.promote_types(x.dtype, self.mask_token.dtype))
        x = mk.unshuffle_tokens(x, ids_restore.to(x.device), self.mask_token, backend=backend)
        x = x + (self.interpolate_pos_encoding(x) if interpolate_pos_encoding else self.decoder_pos_embed)
        for layer in self.decoder_layers:
            x = layer(x)
        logits = self.decoder_pred(self.decoder_norm(x))
        return ViTMAEDecoderOutput(logits=logits[:, 1:, :])

    return forward


# ---- SimMIM: ViTForMaskedImageModeling (bool_masked_pos (B, num_patches), 1 = masked) ----

def hf_simmim_loss(pixel_values: torch.Tensor, reconstruction: torch.Tensor, bool_masked_pos: torch.Tensor,
                   patch_size: int, num_channels: int | None = None, *, backend: str = "auto") -> torch.Tensor:
    """ViTForMaskedImageModeling's loss, `(l1(pixel_values, reconstruction) · mask_up).sum() /
    (mask_up.sum() + 1e-5) / num_channels`, without materialising the upsampled mask.

    pixel_values, reconstruction (B, C, H, W); bool_masked_pos (B, (H/p)·(W/p)) flattened row-major as
    HF passes it, or (B, H/p, W/p); bool, integer or float, 1 = masked. num_channels defaults to C.
    Returns a float32 scalar; an empty mask gives 0, as upstream."""
    _check_4d(pixel_values, "pixel_values")
    height, width = pixel_values.shape[2] // patch_size, pixel_values.shape[3] // patch_size
    mask = bool_masked_pos
    if isinstance(mask, torch.Tensor) and mask.dim() == 2:
        if mask.shape[1] != height * width:
            raise ValueError(f"bool_masked_pos has {mask.shape[1]} patches, pixel_values {tuple(pixel_values.shape)} "
                             f"with patch_size {patch_size} has {height}x{width}")
        mask = mask.reshape(mask.shape[0], height, width)
    return mk.masked_l1_loss(reconstruction, pixel_values, mask, num_channels, backend=backend)


def _check_4d(t, name: str) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 4:
        raise ValueError(f"{name} must be a (B, C, H, W) tensor, got {getattr(t, 'shape', type(t).__name__)}")


def patch_hf_simmim(model: nn.Module, *, loss: bool = True, backend: str = "auto") -> nn.Module:
    """Bind a `forward` onto a transformers `ViTForMaskedImageModeling` whose loss is `hf_simmim_loss`
    (the upsampled mask is never built); the model's own `vit` and `decoder` run unchanged and the same
    `MaskedImageModelingOutput` comes back. Every transformers layout since 4.40 is supported: the bound
    `forward` takes the original's parameters (4.x before 4.56: `head_mask`, `output_attentions`,
    `output_hidden_states`, `interpolate_pos_encoding`, `return_dict`; later: `interpolate_pos_encoding`,
    `attention_mask`, `**kwargs`), passes the ones given on to `self.vit` by name, as upstream does, and
    carries the original's signature and docstring. Idempotent; `unpatch(model)` restores it."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    owner = type(model).__name__
    _patching.require(model, owner, ("config", "vit", "decoder"), "patch_hf_simmim")
    if not _takes(type(model).forward, ("pixel_values", "bool_masked_pos")):
        raise ValueError(f"{owner}.forward does not take (pixel_values, bool_masked_pos, ...) first")
    _patching.unpatch(model)
    if loss:
        _patching.bind(model, "forward", _simmim_forward(backend, type(model).forward))
        _patching.bind_name(model)
    _patching.mark_patched(model, loss=loss, backend=backend)
    return model


def _simmim_forward(backend: str, original):
    """ViTForMaskedImageModeling.forward with hf_simmim_loss, for the signature of `original`."""
    from transformers.modeling_outputs import MaskedImageModelingOutput

    signature = inspect.signature(original)
    var_keyword = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)
    explicit_return_dict = "return_dict" in signature.parameters   # transformers 4.x before 4.56

    @functools.wraps(original)
    def forward(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs).arguments   # only what the caller passed
        arguments.pop("self", None)
        passed_on = {**arguments, **arguments.pop(var_keyword, {})} if var_keyword else dict(arguments)
        pixel_values = passed_on.pop("pixel_values", None)
        bool_masked_pos = passed_on.pop("bool_masked_pos", None)
        return_dict = passed_on.pop("return_dict", None)
        if return_dict is None:
            return_dict = self.config.use_return_dict if explicit_return_dict else getattr(self.config, "return_dict", True)
        if explicit_return_dict:
            passed_on["return_dict"] = True
        if bool_masked_pos is not None and self.config.patch_size != self.config.encoder_stride:
            raise ValueError(f"When `bool_masked_pos` is provided, `patch_size` must be equal to `encoder_stride`; got "
                             f"{self.config.patch_size} and {self.config.encoder_stride}")
        outputs = self.vit(pixel_values, bool_masked_pos=bool_masked_pos, **passed_on)
        tokens = outputs.last_hidden_state[:, 1:]
        batch, length, dim = tokens.shape
        side = math.floor(length ** 0.5)
        reconstruction = self.decoder(tokens.permute(0, 2, 1).reshape(batch, dim, side, side))
        loss = None
        if bool_masked_pos is not None:
            size = self.config.image_size // self.config.patch_size
            loss = hf_simmim_loss(pixel_values, reconstruction, bool_masked_pos.reshape(-1, size, size),
                                  self.config.patch_size, self.config.num_channels, backend=backend)
        out = MaskedImageModelingOutput(loss=loss, reconstruction=reconstruction, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()

    return forward


class SimMIMCollator(mk.MaskCollator):
    """`run_mim.py`'s MaskGenerator + collate_fn in one batched call: examples (dicts holding
    "pixel_values" (C, H, W), as the HF dataset transform yields, or bare tensors) ->
    {"pixel_values": (B, C, H, W), "bool_masked_pos": (B, n·n)}, n = input_size / model_patch_size,
    flattened row-major, 1 = masked, mask_dtype int64 as run_mim.py (or bool, as the model documents).

    Each mask has exactly ceil(ratio · (input_size / mask_patch_size)²) masked mask patches
    (`mimkernels.simmim_mask`, one call per batch). Seeds: MaskCollator's, derive_seed(derive_seed(seed,
    epoch), rank, worker, step): distinct across ranks, workers, steps and `set_epoch(epoch)`.
    run_mim.py draws with numpy's global RNG per example; the distribution is the same, the bits are not.
    """

    def __init__(self, input_size: int = 192, mask_patch_size: int = 32, model_patch_size: int = 4,
                 mask_ratio: float = 0.6, *, seed: int = 0, mask_dtype: torch.dtype = torch.int64) -> None:
        mk.simmim_mask(0, input_size, mask_patch_size, model_patch_size, mask_ratio)   # validates the arguments
        if mask_dtype not in (torch.int64, torch.bool):
            raise ValueError(f"mask_dtype must be torch.int64 or torch.bool, got {mask_dtype}")
        mask_fn = functools.partial(mk.simmim_mask, input_size=input_size, mask_patch_size=mask_patch_size,
                                    model_patch_size=model_patch_size, mask_ratio=mask_ratio)
        super().__init__(mask_fn, seed, collate_fn=_stack_pixel_values)
        self.mask_dtype = mask_dtype

    def __call__(self, examples: list) -> dict:
        pixel_values, mask = super().__call__(examples)
        return {"pixel_values": pixel_values, "bool_masked_pos": mask.flatten(1).to(self.mask_dtype)}


def _stack_pixel_values(examples: list) -> torch.Tensor:
    return torch.stack([e["pixel_values"] if isinstance(e, dict) else e for e in examples])
