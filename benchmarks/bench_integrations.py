"""One training step (forward + backward, bf16 autocast) of each host's MAE at ViT-B/16 (224 px,
decoder 512 x 8), B = 64, unpatched vs with mimkernels: time and peak memory per step (issue 9).

- transformers: `ViTMAEForPreTraining` (default `ViTMAEConfig`) vs `patch_hf_vitmae(model, decoder=True)`;
- mmpretrain: the `MAE` algorithm from a config (MAEViT-b, MAEPretrainDecoder, MAEPretrainHead) vs the
  same config with `MIMKMAEViT` and `MIMKMAEPretrainHead`, the weights copied;
- lightly: its MAE example on `MaskedVisionTransformerTIMM` (timm ViT-B/16) vs `patch_lightly()` and
  the fused `masked_patch_target`.
timm has no MIM model to patch (`forward_masked` is a new entry point, not a replacement), so it has
no row. `make_step(host, provider, size)` builds each step; python_tests/test_bench_integrations.py
runs every one at the tiny size on the CPU, so the code measured here is tested without a GPU.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

B = 64
BASE = dict(img=224, patch=16, dim=768, depth=12, heads=12, decoder_dim=512, decoder_depth=8, decoder_heads=16)
TINY = dict(img=32, patch=4, dim=32, depth=1, heads=2, decoder_dim=16, decoder_depth=1, decoder_heads=2)
HOSTS = ("transformers", "mmpretrain", "lightly")


def _hf_model(provider: str, size: dict) -> tuple[nn.Module, callable]:
    import transformers

    from mimkernels.integrations import patch_hf_vitmae

    config = transformers.ViTMAEConfig(
        image_size=size["img"], patch_size=size["patch"], hidden_size=size["dim"], num_hidden_layers=size["depth"],
        num_attention_heads=size["heads"], intermediate_size=4 * size["dim"], decoder_hidden_size=size["decoder_dim"],
        decoder_num_hidden_layers=size["decoder_depth"], decoder_num_attention_heads=size["decoder_heads"],
        decoder_intermediate_size=4 * size["decoder_dim"], norm_pix_loss=True)
    model = transformers.ViTMAEForPreTraining(config)
    if provider == "mimkernels":
        patch_hf_vitmae(model, decoder=True)
    return model, lambda images: model(images).loss


def _mmpretrain_model(provider: str, size: dict) -> tuple[nn.Module, callable]:
    from mmpretrain.registry import MODELS

    import mimkernels.integrations.mmpretrain  # noqa: F401  (registers the MIMK* classes)

    ours = provider == "mimkernels"
    model = MODELS.build(dict(
        type="MAE",
        backbone=dict(type="MIMKMAEViT" if ours else "MAEViT", img_size=size["img"], patch_size=size["patch"],
                      mask_ratio=0.75, arch=dict(embed_dims=size["dim"], num_layers=size["depth"],
                                                 num_heads=size["heads"], feedforward_channels=4 * size["dim"])),
        neck=dict(type="MAEPretrainDecoder", num_patches=(size["img"] // size["patch"]) ** 2,
                  patch_size=size["patch"], embed_dim=size["dim"], decoder_embed_dim=size["decoder_dim"],
                  decoder_depth=size["decoder_depth"], decoder_num_heads=size["decoder_heads"], mlp_ratio=4.0),
        head=dict(type="MIMKMAEPretrainHead" if ours else "MAEPretrainHead", norm_pix=True,
                  patch_size=size["patch"], loss=dict(type="PixelReconstructionLoss", criterion="L2"))))
    model.init_weights()
    return model, lambda images: model.loss(images, [])["loss"]


class _LightlyMAE(nn.Module):
    """lightly's MAE example (examples/pytorch/mae.py): timm ViT in MaskedVisionTransformerTIMM, a
    lightly decoder, the target gathered from patchify (upstream) or by `masked_patch_target` (ours)."""

    def __init__(self, size: dict, fused_target: bool):
        from lightly.models.modules import MaskedVisionTransformerDecoderTIMM, MaskedVisionTransformerTIMM
        from timm.models.vision_transformer import VisionTransformer

        super().__init__()
        vit = VisionTransformer(img_size=size["img"], patch_size=size["patch"], embed_dim=size["dim"],
                                depth=size["depth"], num_heads=size["heads"], num_classes=0, global_pool="")
        self.patch_size, self.fused_target = size["patch"], fused_target
        self.backbone = MaskedVisionTransformerTIMM(vit=vit)
        self.sequence_length = self.backbone.sequence_length
        self.decoder_embed = nn.Linear(size["dim"], size["decoder_dim"])
        self.decoder = MaskedVisionTransformerDecoderTIMM(
            num_patches=vit.patch_embed.num_patches, num_prefix_tokens=vit.num_prefix_tokens,
            embed_dim=size["decoder_dim"], depth=size["decoder_depth"], num_heads=size["decoder_heads"])
        self.prediction_head = nn.Linear(size["decoder_dim"], size["patch"] ** 2 * 3)

    def forward(self, images):
        from lightly.models import utils

        from mimkernels.integrations import lightly as mkl

        batch = images.shape[0]
        idx_keep, idx_mask = utils.random_token_mask((batch, self.sequence_length), mask_ratio=0.75,
                                                     device=images.device)
        x = self.decoder_embed(self.backbone.encode(images=images, idx_keep=idx_keep))
        x = utils.set_at_index(x.new_zeros(batch, self.sequence_length, x.shape[-1]), idx_keep, x)
        pred = self.prediction_head(utils.get_at_index(self.decoder(x, idx_mask=idx_mask), idx_mask))
        if self.fused_target:
            target = mkl.masked_patch_target(images, idx_mask, self.patch_size)
        else:
            target = utils.get_at_index(utils.patchify(images, self.patch_size), idx_mask - 1)
        return nn.functional.mse_loss(pred, target.to(pred.dtype))


def _lightly_model(provider: str, size: dict) -> tuple[nn.Module, callable]:
    from mimkernels.integrations import lightly as mkl

    model = _LightlyMAE(size, fused_target=provider == "mimkernels")
    if provider == "mimkernels":
        mkl.patch_lightly()
    else:
        mkl.unpatch_lightly()
    return model, model


_BUILDERS = {"transformers": _hf_model, "mmpretrain": _mmpretrain_model, "lightly": _lightly_model}


def make_step(host: str, provider: str, size: dict, device: torch.device, batch: int):
    """(step, images): `step(images)` runs one forward + backward of `host`'s MAE (`provider`
    "upstream" or "mimkernels") under bf16 autocast on `device`, then drops the gradients."""
    torch.manual_seed(0)
    model, loss_of = _BUILDERS[host](provider, size)
    model = model.to(device).train()
    images = torch.randn(batch, 3, size["img"], size["img"], device=device)

    def step(images):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = loss_of(images)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return loss.detach()

    return step, images


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")
@pytest.mark.parametrize("provider", ["upstream", "mimkernels"])
@pytest.mark.parametrize("host", HOSTS)
def test_mae_training_step(timed, host, provider):
    pytest.importorskip(host)
    from mimkernels.integrations import lightly as mkl

    device = torch.device("cuda")
    step, images = make_step(host, provider, BASE, device, B)
    try:
        timed(step, images, device=device, kernel=f"{host}_mae_training_step", provider=provider, x_name="batch",
              x_value=B, dtype="bfloat16")
    finally:
        mkl.unpatch_lightly()
