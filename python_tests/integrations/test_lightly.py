"""mimkernels.integrations.lightly against the real lightly (1.6.x: `lightly.models.utils`,
`MaskedVisionTransformerTIMM`, `MaskedVisionTransformerDecoderTIMM`; integration.md §3).

The oracles are lightly's own functions: `random_token_mask` from the same torch RNG state,
`get_at_index(patchify(images, p), idx_mask - 1)` (+ `normalize_mean_var`) for the target, and
lightly's MAE example flow (encoder, `set_at_index`, decoder with `idx_mask`, `get_at_index`,
MSE loss) run with lightly's functions and then with `patch_lightly()`.
"""
import pytest
import torch
from lightly.models import utils
from lightly.models.modules import MaskedVisionTransformerDecoderTIMM, MaskedVisionTransformerTIMM
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from mimkernels.integrations import lightly as mkl
from mimkernels.integrations.timm import forward_masked

P, IMG, D = 4, 16, 16
L = (IMG // P) ** 2


@pytest.fixture
def restore_lightly():
    yield
    mkl.unpatch_lightly()


@pytest.mark.parametrize("size,ratio,mask_cls", [((3, 17), 0.75, False), ((2, 50), 0.6, False), ((4, 10), 0.9, False),
                                                 ((3, 17), 0.75, True), ((2, 1), 0.6, False), ((2, 5), 0.0, False),
                                                 ((2, 5), 1.0, False), ((2, 6), 1.0, True)])
def test_random_token_mask_equals_lightly(size, ratio, mask_cls):
    torch.manual_seed(sum(size))
    want = utils.random_token_mask(size, ratio, mask_cls)
    want_next = torch.rand(3)                                       # the global stream after lightly's draw
    torch.manual_seed(sum(size))
    got = mkl.random_token_mask(size, ratio, mask_cls)
    assert torch.equal(torch.rand(3), want_next)
    for w, g in zip(want, got):
        assert torch.equal(w, g) and g.dtype == torch.int64
    if not mask_cls:
        assert (got[0][:, 0] == 0).all()
    torch.manual_seed(sum(size))                                    # lightly's noise, passed in
    given = mkl.random_token_mask(size, ratio, mask_cls, noise=torch.rand(*size))
    assert all(torch.equal(w, g) for w, g in zip(want, given))


def test_random_token_mask_counts_generator_and_errors():
    # 197 tokens at 0.75: 49 + cls kept since lightly 1.5.10; one patch fewer with the old count
    assert mkl.random_token_mask((2, 197), 0.75)[0].shape == utils.random_token_mask((2, 197), 0.75)[0].shape == (2, 50)
    assert mkl.random_token_mask((2, 197), 0.75, legacy_count=True)[0].shape == (2, 49)
    a = mkl.random_token_mask((2, 197), generator=torch.Generator().manual_seed(1))
    b = mkl.random_token_mask((2, 197), generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    keep, masked = a
    assert torch.equal(torch.cat([keep, masked], 1).sort(1).values, torch.arange(197).expand(2, -1))
    with pytest.raises(ValueError, match="noise"):
        mkl.random_token_mask((2, 5), noise=torch.rand(2, 4))
    with pytest.raises(ValueError, match="mask_ratio"):
        mkl.random_token_mask((2, 5), 1.5)


def _lightly_target(images, idx_mask, prefix, norm_pix):
    target = utils.get_at_index(utils.patchify(images, P), idx_mask - prefix)
    return utils.normalize_mean_var(target) if norm_pix else target


@pytest.mark.parametrize("prefix", [1, 3])
@pytest.mark.parametrize("norm_pix", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_masked_patch_target_equals_lightly(prefix, norm_pix, dtype):
    images = torch.randn(3, 3, IMG, IMG, generator=torch.Generator().manual_seed(2)).to(dtype)
    noise = torch.rand(3, L + prefix, generator=torch.Generator().manual_seed(3))
    noise[:, 1:prefix] = -1   # register tokens are never masked either (lightly protects index 0)
    idx_mask = mkl.random_token_mask((3, L + prefix), 0.75, noise=noise)[1]
    got = mkl.masked_patch_target(images, idx_mask, P, num_prefix_tokens=prefix, norm_pix=norm_pix)
    assert got.dtype == dtype
    if dtype == torch.bfloat16 and norm_pix:   # ours normalises in fp32, then rounds once
        want = _lightly_target(images.float(), idx_mask, prefix, norm_pix).to(dtype)
    else:
        want = _lightly_target(images, idx_mask, prefix, norm_pix)
    tol = dict(rtol=0, atol=0) if not norm_pix else dict(rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got, want, **tol)


def test_masked_patch_target_under_autocast_with_bf16_pred():
    """lightly's MAE loss under bf16 autocast: bf16 pred, fp32 images -> fp32 target and loss."""
    images = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(4))
    idx_mask = mkl.random_token_mask((2, L + 1), 0.75, noise=torch.rand(2, L + 1))[1]
    pred = torch.randn(2, idx_mask.shape[1], P * P * 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = mkl.masked_patch_target(images, idx_mask, P, norm_pix=True)
        theirs = _lightly_target(images, idx_mask, 1, True)
        loss_ours, loss_theirs = nn.MSELoss()(pred, ours), nn.MSELoss()(pred, theirs)
    assert ours.dtype == theirs.dtype == torch.float32 and loss_ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(loss_ours, loss_theirs, rtol=1e-6, atol=1e-6)


def test_masked_patch_target_rejects_prefix_indices_in_debug_mode(monkeypatch):
    images = torch.randn(2, 3, 8, 8)
    monkeypatch.setenv("MIMKERNELS_DEBUG", "1")
    with pytest.raises(ValueError, match=r"\[1, 5\)"):   # cls (index 0) has no pixels
        mkl.masked_patch_target(images, torch.tensor([[0, 2], [1, 3]]), 4)
    with pytest.raises(TypeError, match="idx_mask"):
        mkl.masked_patch_target(images, torch.ones(2, 2), 4)


def test_masked_patch_target_gradient_and_patchify():
    images = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([[1, 3], [4, 2]])
    torch.autograd.gradcheck(lambda x: mkl.masked_patch_target(x, idx, 4, norm_pix=True), (images,))
    want = utils.get_at_index(utils.patchify(images, 4), idx - 1)
    want.sum().backward()
    lightly_grad, images.grad = images.grad, None
    mkl.masked_patch_target(images, idx, 4).sum().backward()
    assert torch.equal(images.grad, lightly_grad)
    assert torch.equal(mkl.patchify(images.detach(), 4), utils.patchify(images.detach(), 4))


class LightlyMAE(nn.Module):
    """lightly's MAE example (examples/pytorch/mae.py) on a tiny timm ViT, calling `utils.<fn>` at run time."""

    def __init__(self, reg_tokens=0):
        super().__init__()
        torch.manual_seed(0)
        vit = VisionTransformer(img_size=IMG, patch_size=P, embed_dim=D, depth=1, num_heads=2, mlp_ratio=2.0,
                                num_classes=0, global_pool="", reg_tokens=reg_tokens)
        self.backbone = MaskedVisionTransformerTIMM(vit=vit)
        self.sequence_length = self.backbone.sequence_length
        self.decoder_embed = nn.Linear(D, 8)
        self.decoder = MaskedVisionTransformerDecoderTIMM(num_patches=L, num_prefix_tokens=vit.num_prefix_tokens,
                                                          embed_dim=8, depth=1, num_heads=2)
        self.prediction_head = nn.Linear(8, P * P * 3)

    def forward(self, images, mask_ratio=0.75):
        batch = images.shape[0]
        idx_keep, idx_mask = utils.random_token_mask((batch, self.sequence_length), mask_ratio=mask_ratio,
                                                     device=images.device)
        x = self.decoder_embed(self.backbone.encode(images=images, idx_keep=idx_keep))
        x = utils.set_at_index(x.new_zeros(batch, self.sequence_length, x.shape[-1]), idx_keep, x)
        x = utils.get_at_index(self.decoder(x, idx_mask=idx_mask), idx_mask)
        return self.prediction_head(x), idx_keep, idx_mask


def _mae_step(model, images, fused_target):
    torch.manual_seed(11)
    pred, idx_keep, idx_mask = model(images)
    if fused_target:
        target = mkl.masked_patch_target(images, idx_mask, P)
    else:
        target = utils.get_at_index(utils.patchify(images, P), idx_mask - 1)
    loss = nn.MSELoss()(pred, target)
    model.zero_grad()
    loss.backward()
    return [loss, idx_keep, idx_mask] + [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_mae_example_with_patch_lightly_equals_lightly(restore_lightly):
    model = LightlyMAE()
    images = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(6))
    lightly_fns = (utils.random_token_mask, utils.patchify)
    want = _mae_step(model, images, fused_target=False)
    assert mkl.patch_lightly() is utils and mkl.patch_lightly() is utils          # idempotent
    assert (utils.random_token_mask, utils.patchify) == (mkl.random_token_mask, mkl.patchify)
    for fused in (False, True):
        got = _mae_step(model, images, fused_target=fused)
        assert len(got) == len(want) > 8
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=0, atol=0)
    mkl.unpatch_lightly()
    assert (utils.random_token_mask, utils.patchify) == lightly_fns
    mkl.unpatch_lightly()                                                         # no-op when unpatched
    assert (utils.random_token_mask, utils.patchify) == lightly_fns


def test_patch_lightly_rejects_other_modules():
    with pytest.raises(ValueError, match="not supported"):
        mkl.patch_lightly(nn)


@pytest.mark.parametrize("reg_tokens", [0, 2])
def test_forward_masked_equals_lightly_encode(reg_tokens):
    """timm's forward_masked keeps what lightly's encoder keeps for the same noise (cls index 0 first)."""
    backbone = LightlyMAE(reg_tokens).backbone.eval()
    prefix = backbone.vit.num_prefix_tokens
    images = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(8)
    noise = torch.rand(2, L + prefix)
    if reg_tokens == 0:
        torch.manual_seed(8)
        idx_keep = utils.random_token_mask((2, L + 1), 0.75)[0]     # lightly's mask of the same draw
    else:   # lightly protects index 0 only: keep every prefix token, then MAE's patches
        ids_keep = noise[:, prefix:].argsort(dim=1)[:, :L // 4]
        idx_keep = torch.cat([torch.arange(prefix).expand(2, -1), ids_keep + prefix], dim=1)
    latent = forward_masked(backbone.vit, images, 0.75, noise=noise[:, prefix:])[0]
    assert torch.equal(latent, backbone.encode(images, idx_keep=idx_keep))
