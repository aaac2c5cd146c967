"""forward_masked against real timm VisionTransformers (timm 1.0.x; integration.md §5).

The oracle is timm's own code: `vit.forward_features` when nothing is masked, otherwise timm's
pieces (`patch_embed`, `_pos_embed`, `norm_pre`, `blocks`, `norm`) with the kept rows of the full
token sequence gathered between `_pos_embed` and `norm_pre`, the kept set being MAE's
(`argsort(noise)[:, :K]`, prefix rows always kept).
"""
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

import mimkernels as mk
from mimkernels.integrations.timm import forward_masked

P, IMG, D = 4, 16, 16
L = (IMG // P) ** 2

VARIANTS = {
    "cls": dict(),
    "cls+reg4": dict(reg_tokens=4),
    "no_embed_class": dict(no_embed_class=True),
    "no_embed_class+reg2": dict(no_embed_class=True, reg_tokens=2),
    "no_prefix": dict(class_token=False),
    "reg_only": dict(class_token=False, reg_tokens=3),
    "pos_none": dict(pos_embed="none", reg_tokens=1),
    "pre_norm": dict(pre_norm=True),
    "dynamic": dict(dynamic_img_size=True, reg_tokens=1),
    "dynamic+no_embed_class": dict(dynamic_img_size=True, no_embed_class=True),
    "dynamic+pad": dict(dynamic_img_size=True, dynamic_img_pad=True),
}


def _vit(depth=1, **kw):
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=IMG, patch_size=P, embed_dim=D, depth=depth, num_heads=2, mlp_ratio=2.0,
                            num_classes=0, global_pool="", **kw)
    with torch.no_grad():   # timm starts prefix tokens near zero: make them count
        for name in ("cls_token", "reg_token", "pos_embed"):
            if getattr(vit, name) is not None:
                getattr(vit, name).normal_()
    return vit.eval()


def _imgs(batch=3, side=IMG):
    return torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(1))


def _timm_masked(vit, imgs, noise, mask_ratio):
    """timm's pieces, with MAE's kept rows gathered from timm's full token sequence."""
    prefix = vit.num_prefix_tokens
    keep = int(noise.shape[1] * (1 - mask_ratio))
    ids_keep = torch.argsort(noise, dim=1)[:, :keep]
    rows = torch.cat([torch.arange(prefix).expand(noise.shape[0], -1), ids_keep + prefix], dim=1)
    tokens = vit._pos_embed(vit.patch_embed(imgs))
    kept = torch.gather(tokens, 1, rows.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    return vit.norm(vit.blocks(vit.norm_pre(kept)))


def _mae_mask(noise, mask_ratio):
    """MAE's `mask` and `ids_restore` for this noise (models_mae.random_masking)."""
    keep = int(noise.shape[1] * (1 - mask_ratio))
    ids_restore = torch.argsort(torch.argsort(noise, dim=1), dim=1)
    mask = torch.ones_like(noise)
    mask[:, :keep] = 0
    return torch.gather(mask, 1, ids_restore), ids_restore


def _side(variant):
    """A dynamic model resamples pos_embed to a 6 x 6 grid; with dynamic_img_pad, 18 pads to 20 (5 x 5)."""
    if variant.get("dynamic_img_pad"):
        return 18
    return 24 if variant.get("dynamic_img_size") else IMG


@pytest.mark.parametrize("name", list(VARIANTS))
def test_nothing_masked_equals_forward_features(name):
    vit, side = _vit(**VARIANTS[name]), _side(VARIANTS[name])
    imgs = _imgs(side=side)
    length = ((side + P - 1) // P) ** 2
    in_place = torch.arange(length, dtype=torch.float32).expand(3, -1)   # keeps every patch, in place
    latent, mask, ids_restore = forward_masked(vit, imgs, 0.0, noise=in_place)
    assert torch.equal(latent, vit.forward_features(imgs))
    assert mask.dtype == torch.float32 and not mask.any()
    assert torch.equal(ids_restore, torch.arange(length).expand(3, -1))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_masked_equals_timm_pieces(name):
    vit, side = _vit(**VARIANTS[name]), _side(VARIANTS[name])
    imgs = _imgs(side=side)
    noise = torch.rand(3, ((side + P - 1) // P) ** 2, generator=torch.Generator().manual_seed(2))
    latent, mask, ids_restore = forward_masked(vit, imgs, 0.75, noise=noise)
    assert latent.shape == (3, vit.num_prefix_tokens + noise.shape[1] // 4, D)
    assert torch.equal(latent, _timm_masked(vit, imgs, noise, 0.75))
    mask_ref, ids_restore_ref = _mae_mask(noise, 0.75)
    assert torch.equal(mask, mask_ref) and torch.equal(ids_restore, ids_restore_ref)


def _backward_counting_blocks(vit, forward, imgs):
    """Backward of a fixed projection of forward(imgs); returns (gradients, block forward calls, the
    recomputations of checkpointing included: module hooks do not see those, so forward is wrapped)."""
    calls = []
    for block in vit.blocks:
        block.forward = lambda x, run=block.forward, **kw: (calls.append(1), run(x, **kw))[1]
    out = forward(imgs)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return [imgs.grad] + [p.grad for p in vit.parameters()], len(calls)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradients_and_checkpointing_equal_timm(checkpointing):
    noise = torch.rand(2, L, generator=torch.Generator().manual_seed(3))
    runs = {"ours": lambda vit, x: forward_masked(vit, x, 0.5, noise=noise)[0],
            "pieces": lambda vit, x: _timm_masked(vit, x, noise, 0.5),
            "forward_features": lambda vit, x: vit.forward_features(x)}
    results = {}
    for name, run in runs.items():
        vit = _vit(depth=2, reg_tokens=2)
        vit.set_grad_checkpointing(checkpointing)
        results[name] = _backward_counting_blocks(vit, lambda x: run(vit, x), _imgs(2).requires_grad_())
    (ours, ours_calls), (timm, _), (_, timm_calls) = results.values()
    assert all(g is not None for g in ours)
    for a, b in zip(ours, timm):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert ours_calls == timm_calls == 2 * (2 if checkpointing else 1)   # checkpointing reruns each block


def test_rng_modes():
    vit = _vit(reg_tokens=1)
    torch.manual_seed(4)
    noise = torch.rand(2, L)
    torch.manual_seed(4)
    drawn = forward_masked(vit, _imgs(2), 0.75)                  # draws torch.rand(B, L) as MAE
    given = forward_masked(vit, _imgs(2), 0.75, noise=noise)
    assert all(torch.equal(u, v) for u, v in zip(drawn, given))
    c = forward_masked(vit, _imgs(2), 0.75, rng="philox", generator=torch.Generator().manual_seed(9))
    d = forward_masked(vit, _imgs(2), 0.75, rng="philox", generator=torch.Generator().manual_seed(9))
    assert all(torch.equal(u, v) for u, v in zip(c, d))
    rank = c[2].float()   # ids_restore is each patch's rank: as noise it reproduces the Philox shuffle
    assert torch.equal(c[0], _timm_masked(vit, _imgs(2), rank, 0.75))


@pytest.mark.parametrize("name", ["cls", "cls+reg4", "no_prefix"])
def test_unshuffle_tokens_restores_the_timm_sequence(name):
    """The decoder input of a timm encoder: every prefix token first, kept tokens back at their patches."""
    vit = _vit(**VARIANTS[name])
    prefix = vit.num_prefix_tokens
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(6))
    latent, mask, ids_restore = forward_masked(vit, _imgs(), 0.75, noise=noise)
    token = torch.full((D,), 7.5)
    full = mk.unshuffle_tokens(latent, ids_restore, token, num_prefix_tokens=prefix)
    assert full.shape == (3, prefix + L, D)
    assert torch.equal(full[:, :prefix], latent[:, :prefix])
    ids_keep = torch.argsort(noise, dim=1)[:, :L // 4]
    assert torch.equal(torch.gather(full[:, prefix:], 1, ids_keep.unsqueeze(-1).expand(-1, -1, D)), latent[:, prefix:])
    assert bool((full[:, prefix:][mask.bool()] == 7.5).all())


def test_compiled_forward_masked_equals_eager():
    vit = _vit(reg_tokens=1, no_embed_class=True)
    noise = torch.rand(2, L, generator=torch.Generator().manual_seed(5))
    compiled = torch.compile(forward_masked, backend="aot_eager", fullgraph=True)
    got = compiled(vit, _imgs(2), 0.75, noise=noise)
    want = forward_masked(vit, _imgs(2), 0.75, noise=noise)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="patch_embed"):
        forward_masked(torch.nn.Linear(2, 2), _imgs(2))
    vit = _vit()
    vit.patch_embed.strict_img_size = False   # timm would fail to broadcast pos_embed; we say why
    with pytest.raises(ValueError, match="patch positions"):
        forward_masked(vit, _imgs(2, side=2 * IMG))
    with pytest.raises(ValueError, match="rng"):
        forward_masked(vit, _imgs(2), rng="numpy")
