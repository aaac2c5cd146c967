"""One training step (forward + backward, bf16 autocast) of transformers' ViTMAEForPreTraining at
ViT-B/16 (the default ViTMAEConfig: 224 px, decoder 512 x 8), B = 64, unpatched vs
`patch_hf_vitmae(model, decoder=True)`: time and peak memory per step (issue 9)."""
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")
transformers = pytest.importorskip("transformers")

B = 64


@pytest.mark.parametrize("provider", ["upstream", "mimkernels"])
def test_vitmae_training_step(timed, provider):
    from mimkernels.integrations import patch_hf_vitmae

    torch.manual_seed(0)
    model = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(norm_pix_loss=True)).cuda().train()
    if provider == "mimkernels":
        patch_hf_vitmae(model, decoder=True)
    pixels = torch.randn(B, 3, 224, 224, device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(pixels).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    timed(step, device=torch.device("cuda"), kernel="vitmae_training_step", provider=provider, x_name="batch",
          x_value=B, dtype="bfloat16")
