"""The MIMK* classes against the real mmpretrain 1.2 (mmcv-lite), built through its own registries.

Modules: same outputs, gradients, attributes and state_dict keys as the upstream class for the same
inputs. Transforms: upstream draws from numpy's stream and ours from Philox, so they are compared
where the output is deterministic (keys, dtypes, shapes, counts, blocks) and statistically elsewhere:
per-cell two-sample z-scores against the real transform and the block and SimMIM mask tests of python_tests/masking/test_distribution.py.
"""
import functools
import math

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from mmengine.registry import MODELS as ROOT_MODELS
from mmpretrain.datasets.transforms import BEiTMaskGenerator, SimMIMMaskGenerator
from mmpretrain.models import HOGGenerator, MAEPretrainHead, MAEViT, PixelReconstructionLoss, SimMIMHead
from mmpretrain.registry import MODELS, TRANSFORMS

import mimkernels as mk
from mimkernels.integrations import mmpretrain as mkm
from mimkernels.testing import sample_photos

Z_MAX = 4.5  # per statistic; P(|z| > 4.5) = 7e-6, so < 2e-3 over every z in this file


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _recorded(calls, name, fn, *args, **kwargs):
    calls.append(name)
    return fn(*args, **kwargs)


@pytest.fixture
def kernels(monkeypatch):
    """The names of the mimkernels ops the MIMK classes call during a test, in order."""
    calls = []
    for name in ("masked_mse_loss", "masked_l1_loss", "norm_pix_mse_loss", "random_masking", "hog_map"):
        monkeypatch.setattr(mk, name, functools.partial(_recorded, calls, name, getattr(mk, name)))
    return calls


def _grad_of(fn, pred, *args):
    pred = pred.detach().requires_grad_()
    loss = fn(pred, *args)
    loss.backward()
    return loss, pred.grad


# ---- losses and heads ----

L2_ROWS = ((2, 5, 6), (2, 5))              # MAE / MaskFeat: (B, L, D) rows, (B, L) mask
L1_IMAGES = ((2, 3, 8, 8), (2, 1, 8, 8))   # SimMIM: images, upsampled (B, 1, H, W) mask


@pytest.mark.parametrize("criterion", ["L1", "L2"])
@pytest.mark.parametrize("channel", [None, 3])
@pytest.mark.parametrize("shape,mask_shape", [L2_ROWS, L1_IMAGES, ((2, 5, 6), None), ((2, 3, 8, 8), None)])
def test_pixel_reconstruction_loss_equals_upstream(criterion, channel, shape, mask_shape, kernels):
    ours, upstream = mkm.MIMKPixelReconstructionLoss(criterion, channel), PixelReconstructionLoss(criterion, channel)
    pred, target = torch.randn(*shape, generator=_gen(1)), torch.randn(*shape, generator=_gen(2))
    mask = None if mask_shape is None else (torch.rand(*mask_shape, generator=_gen(3)) < 0.5).float()
    got, got_grad = _grad_of(ours, pred, target, mask)
    fused = {("L2", L2_ROWS[1]): "masked_mse_loss", ("L1", L1_IMAGES[1]): "masked_l1_loss"}.get((criterion, mask_shape))
    assert kernels == ([fused] if fused else [])   # the fused kernel, or upstream's own forward
    want, want_grad = _grad_of(upstream, pred, target, mask)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-5, atol=1e-8)
    if mask is not None:   # no eps: an empty mask gives NaN in both
        assert torch.isnan(ours(pred, target, torch.zeros_like(mask))) and \
            torch.isnan(upstream(pred, target, torch.zeros_like(mask)))
    assert ours.state_dict().keys() == upstream.state_dict().keys()


def test_pixel_reconstruction_loss_rejects_what_upstream_rejects():
    with pytest.raises(NotImplementedError):
        mkm.MIMKPixelReconstructionLoss("L3")
    pred = torch.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError):   # a (B, H, W) mask does not broadcast against (B, C, H, W): upstream's error
        mkm.MIMKPixelReconstructionLoss("L1")(pred, pred, torch.ones(2, 8, 8))


@pytest.mark.parametrize("norm_pix", [True, False])
@pytest.mark.parametrize("pred_dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mask_dtype", [torch.float32, torch.bool])
def test_mae_head_equals_upstream(norm_pix, pred_dtype, mask_dtype, kernels):
    cfg = dict(loss=dict(type="PixelReconstructionLoss", criterion="L2"), norm_pix=norm_pix, patch_size=4)
    ours, upstream = MODELS.build(dict(type="MIMKMAEPretrainHead", **cfg)), MAEPretrainHead(**cfg)
    imgs = torch.randn(3, 3, 16, 16, generator=_gen(1))
    pred = torch.randn(3, 16, 48, generator=_gen(2)).to(pred_dtype)
    mask = (torch.rand(3, 16, generator=_gen(3)) < 0.75).to(mask_dtype)
    got, got_grad = _grad_of(ours.loss, pred, imgs, mask)
    assert kernels == ["norm_pix_mse_loss"]
    want, want_grad = _grad_of(upstream.loss, pred, imgs, mask)
    assert got.dtype == want.dtype == torch.float32 and got_grad.dtype == pred_dtype
    torch.testing.assert_close(got, want, rtol=1e-5, atol=0)
    rtol = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}[pred_dtype]
    torch.testing.assert_close(got_grad.float(), want_grad.float(), rtol=rtol, atol=1e-6)
    assert ours.state_dict().keys() == upstream.state_dict().keys()
    assert isinstance(ours, MAEPretrainHead) and type(ours.loss_module) is PixelReconstructionLoss


def test_mae_head_with_another_loss_runs_upstream_code(kernels):
    cfg = dict(loss=dict(type="PixelReconstructionLoss", criterion="L1"), norm_pix=True, patch_size=4)
    imgs, pred = torch.randn(2, 3, 8, 8, generator=_gen(1)), torch.randn(2, 4, 48, generator=_gen(2))
    mask = torch.ones(2, 4)
    got, want = mkm.MIMKMAEPretrainHead(**cfg).loss(pred, imgs, mask), MAEPretrainHead(**cfg).loss(pred, imgs, mask)
    assert torch.equal(got, want)
    assert kernels == []


@pytest.mark.parametrize("pred_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.bool, torch.float32])
def test_simmim_head_equals_upstream(pred_dtype, mask_dtype, kernels):
    cfg = dict(patch_size=4, loss=dict(type="PixelReconstructionLoss", criterion="L1", channel=3))
    ours, upstream = MODELS.build(dict(type="MIMKSimMIMHead", **cfg)), SimMIMHead(**cfg)
    target = torch.randn(2, 3, 16, 12, generator=_gen(1))
    pred = torch.randn(2, 3, 16, 12, generator=_gen(2)).to(pred_dtype)
    mask = (torch.rand(2, 4, 3, generator=_gen(3)) < 0.6).to(mask_dtype)
    got, got_grad = _grad_of(ours.loss, pred, target, mask)
    assert kernels == ["masked_l1_loss"]
    want, want_grad = _grad_of(upstream.loss, pred, target, mask)
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    torch.testing.assert_close(got_grad.float(), want_grad.float(), rtol=1e-5, atol=1e-8)
    empty = torch.zeros_like(mask)
    assert torch.isnan(ours.loss(pred, target, empty)) and torch.isnan(upstream.loss(pred, target, empty))
    assert isinstance(ours, SimMIMHead) and ours.state_dict().keys() == upstream.state_dict().keys()


# ---- HOG ----

@pytest.mark.parametrize("imgs,cfg", [
    (sample_photos(224, torch.uint8).float(), dict(nbins=9, pool=8, gaussian_window=16)),   # the MaskFeat config
    (torch.randint(0, 256, (2, 3, 56, 56), generator=_gen(1)).float(), dict(nbins=6, pool=2, gaussian_window=8)),
    (torch.randn(1, 3, 28, 28, generator=_gen(2)), dict(nbins=7, pool=2, gaussian_window=0)),
], ids=["photos-224", "integers-56-even-nbins", "randn-28-no-window"])
def test_hog_generator_equals_upstream(imgs, cfg, kernels):
    """Upstream hard-codes 14 patches per side (u = (H / pool) // 14 cells per patch side): the matching
    patch_size is H / 14. Elementwise agreement needs inputs without fp32 ties at a bin boundary
    (mimkernels/hog/SPEC.md §7): integer values (exact Sobel sums), or random ones with odd nbins (the exact
    zeros of gy on the reflected border rows then sit mid-bin)."""
    patch = imgs.shape[-1] // 14
    ours = MODELS.build(dict(type="MIMKHOGGenerator", patch_size=patch, **cfg))
    upstream = HOGGenerator(**cfg)
    got, want = ours(imgs), upstream(imgs)
    assert kernels == ["hog_map"]
    assert got.shape == want.shape and got.dtype == want.dtype == torch.float32 and not got.requires_grad
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.out, upstream.out, rtol=1e-5, atol=1e-6)
    assert (ours.h, ours.w) == (upstream.h, upstream.w) and ours.unfold_size == upstream.unfold_size
    assert ours.state_dict().keys() == upstream.state_dict().keys() and isinstance(ours, HOGGenerator)
    assert ours.generate_hog_image(ours.out[:1]).shape == (ours.h, ours.w)   # upstream's method on our .out


def test_hog_generator_arguments():
    with pytest.raises(ValueError, match="patch_size"):
        mkm.MIMKHOGGenerator(pool=8, patch_size=12)
    with pytest.raises(ValueError, match="patch_size"):
        mkm.MIMKHOGGenerator()(torch.randn(1, 3, 40, 48))
    got = mkm.MIMKHOGGenerator(pool=4, gaussian_window=0, patch_size=8)(torch.randn(2, 3, 16, 24, generator=_gen(1)))
    assert got.shape == (2, 6, 3 * 9 * 4)   # the grid comes from the image, not upstream's hard-coded 14


# ---- MAEViT ----

TINY_VIT = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64), img_size=32,
                patch_size=4, mask_ratio=0.75)


def _vit_pair(**ours_kwargs):
    torch.manual_seed(0)
    upstream = MAEViT(**TINY_VIT)
    upstream.init_weights()
    ours = MODELS.build(dict(type="MIMKMAEViT", **TINY_VIT, **ours_kwargs))
    ours.load_state_dict(upstream.state_dict())
    return ours, upstream


def _encode(model, imgs, seed):
    torch.manual_seed(seed)
    imgs = imgs.detach().requires_grad_()
    latent, mask, ids_restore = model(imgs)
    next_draw = torch.rand(1)   # the global stream after the forward: both consumed the same draws
    (latent * torch.linspace(-1, 1, latent.numel()).reshape(latent.shape)).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return latent, mask, ids_restore, imgs.grad, grads, next_draw


def test_mae_vit_equals_upstream(kernels):
    ours, upstream = _vit_pair()
    assert ours.state_dict().keys() == upstream.state_dict().keys() and isinstance(ours, MAEViT)
    imgs = torch.randn(3, 3, 32, 32, generator=_gen(1))
    for seed in (1, 2):
        got, want = _encode(ours, imgs, seed), _encode(upstream, imgs, seed)
        assert kernels == ["random_masking"] * seed
        assert got[1].dtype == torch.float32 and got[1].sum() == 3 * (64 - int(64 * 0.25))
        assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2])      # mask, ids_restore
        torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=1e-6)         # latent
        torch.testing.assert_close(got[3], want[3], rtol=1e-5, atol=1e-7)         # d/d imgs
        assert got[4].keys() == want[4].keys()
        for name in want[4]:
            torch.testing.assert_close(got[4][name], want[4][name], rtol=1e-5, atol=1e-7)
        assert torch.equal(got[5], want[5])
    torch.testing.assert_close(ours(imgs, mask=None)[0], upstream(imgs, mask=None)[0])   # unmasked path untouched


def test_mae_vit_philox():
    ours, _ = _vit_pair(rng="philox")
    x = torch.randn(2, 64, 32, generator=_gen(1))
    torch.manual_seed(5)
    first = ours.random_masking(x, 0.75)
    torch.manual_seed(5)
    again = ours.random_masking(x, 0.75)
    later = ours.random_masking(x, 0.75)
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and not torch.equal(first[1], later[1])
    assert first[0].shape == (2, 16, 32) and first[1].sum() == 2 * 48
    imgs = torch.randn(2, 3, 32, 32, generator=_gen(2))
    torch.manual_seed(3)
    eager = ours(imgs)
    torch.manual_seed(3)
    compiled = torch.compile(ours, backend="aot_eager")(imgs)   # the Philox masks survive compilation
    assert torch.equal(compiled[1], eager[1]) and torch.equal(compiled[2], eager[2])
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="rng"):
        mkm.MIMKMAEViT(**TINY_VIT, rng="numpy")


def assert_same_loss_and_grads(ours, upstream, imgs, data_samples, seed=None):
    """The mmpretrain algorithms' `loss` (from the same torch seed when one is given) and every
    parameter gradient agree to fp32 rounding."""
    losses = []
    for model in (ours, upstream):
        if seed is not None:
            torch.manual_seed(seed)
        loss = model.loss(imgs, data_samples)["loss"]
        loss.backward()
        losses.append((loss, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    (got, got_grads), (want, want_grads) = losses
    torch.testing.assert_close(got, want, rtol=1e-5, atol=0)
    assert got_grads.keys() == want_grads.keys()
    for name in want_grads:
        torch.testing.assert_close(got_grads[name], want_grads[name], rtol=1e-4, atol=1e-7)


def test_mae_algorithm_from_config_equals_upstream(kernels):
    """mmpretrain's MAE algorithm, built from a config dict, with the MIMK backbone and head."""
    def config(backbone, head):
        return dict(type="MAE", backbone=dict(type=backbone, **TINY_VIT),
                    neck=dict(type="MAEPretrainDecoder", num_patches=64, patch_size=4, embed_dim=32,
                              decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2, mlp_ratio=2),
                    head=dict(type=head, norm_pix=True, patch_size=4,
                              loss=dict(type="PixelReconstructionLoss", criterion="L2")))

    upstream = MODELS.build(config("MAEViT", "MAEPretrainHead"))
    upstream.init_weights()
    ours = MODELS.build(config("MIMKMAEViT", "MIMKMAEPretrainHead"))
    ours.load_state_dict(upstream.state_dict())
    assert ours.state_dict().keys() == upstream.state_dict().keys()
    imgs = torch.randn(2, 3, 32, 32, generator=_gen(1))
    assert_same_loss_and_grads(ours, upstream, imgs, [], seed=7)
    assert kernels == ["random_masking", "norm_pix_mse_loss"]


def test_maskfeat_algorithm_from_config_equals_upstream(kernels):
    """mmpretrain's MaskFeat from a config dict with the MIMK HOG target and loss, its masks from the MIMK
    transform through PackInputs. Random normal inputs stand for the normalized images: on normalized
    photos fp32 HOG implementations differ at bin ties (mimkernels/hog/SPEC.md §7)."""
    def config(hog, loss):
        return dict(type="MaskFeat", backbone=dict(type="MaskFeatViT", arch=TINY_VIT["arch"], patch_size=16),
                    neck=dict(type="LinearNeck", in_channels=32, out_channels=108, norm_cfg=None),
                    head=dict(type="MIMHead", loss=dict(type=loss, criterion="L2")),
                    target_generator=dict(type=hog, nbins=9, pool=8, gaussian_window=16))

    pipeline = Compose([TRANSFORMS.build(dict(type="MIMKBEiTMaskGenerator", **BEIT_78_15)),
                        TRANSFORMS.build(dict(type="PackInputs"))])
    np.random.seed(0)
    samples = default_collate([pipeline({"img": np.zeros((224, 224, 3), np.uint8)}) for _ in range(2)])["data_samples"]
    upstream = MODELS.build(config("HOGGenerator", "PixelReconstructionLoss"))
    upstream.init_weights()
    ours = MODELS.build(config("MIMKHOGGenerator", "MIMKPixelReconstructionLoss"))
    ours.load_state_dict(upstream.state_dict())
    imgs = torch.randn(2, 3, 224, 224, generator=_gen(1))
    assert_same_loss_and_grads(ours, upstream, imgs, samples)
    assert kernels == ["hog_map", "masked_mse_loss"]


# ---- registries ----

ALL = {"PixelReconstructionLoss": (MODELS, PixelReconstructionLoss, mkm.MIMKPixelReconstructionLoss),
       "MAEPretrainHead": (MODELS, MAEPretrainHead, mkm.MIMKMAEPretrainHead),
       "SimMIMHead": (MODELS, SimMIMHead, mkm.MIMKSimMIMHead),
       "HOGGenerator": (MODELS, HOGGenerator, mkm.MIMKHOGGenerator),
       "MAEViT": (MODELS, MAEViT, mkm.MIMKMAEViT),
       "SimMIMMaskGenerator": (TRANSFORMS, SimMIMMaskGenerator, mkm.MIMKSimMIMMaskGenerator),
       "BEiTMaskGenerator": (TRANSFORMS, BEiTMaskGenerator, mkm.MIMKBEiTMaskGenerator)}


def test_registered_where_mmpretrain_configs_look():
    for name, (registry, upstream, ours) in ALL.items():
        assert registry.get(f"MIMK{name}") is ours and registry.get(name) is upstream and issubclass(ours, upstream)
    # configs run with default_scope='mmpretrain': a build from mmengine's root registry lands in mmpretrain's
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        built = ROOT_MODELS.build(dict(type="MIMKSimMIMHead", patch_size=4,
                                       loss=dict(type="PixelReconstructionLoss", criterion="L1", channel=3)))
    assert type(built) is mkm.MIMKSimMIMHead
    assert type(ROOT_MODELS.build(dict(type="mmpretrain.MIMKHOGGenerator"))) is mkm.MIMKHOGGenerator
    with pytest.raises(KeyError):   # force=False: a second class under the same name is refused
        MODELS.register_module(name="MIMKSimMIMHead", module=type("Other", (), {}))


def test_custom_imports_in_a_config():
    from mmengine.config import Config

    cfg = Config.fromstring('custom_imports = dict(imports=["mimkernels.integrations.mmpretrain"], '
                            'allow_failed_imports=False)\n'
                            'head = dict(type="MIMKMAEPretrainHead", norm_pix=True, patch_size=16, '
                            'loss=dict(type="PixelReconstructionLoss", criterion="L2"))\n', ".py")
    assert type(MODELS.build(cfg.head)) is mkm.MIMKMAEPretrainHead


def test_register_as_defaults_then_restore():
    try:
        mkm.register_as_defaults()
        for name, (registry, _, ours) in ALL.items():
            assert registry.get(name) is ours
        head = MODELS.build(dict(type="MAEPretrainHead", patch_size=4,
                                 loss=dict(type="PixelReconstructionLoss", criterion="L2")))
        assert type(head) is mkm.MIMKMAEPretrainHead and type(head.loss_module) is mkm.MIMKPixelReconstructionLoss
        assert type(TRANSFORMS.build(dict(type="BEiTMaskGenerator", input_size=14, num_masking_patches=75))) \
            is mkm.MIMKBEiTMaskGenerator
        # documented limit (README): only registry lookups change; a class named in Python stays upstream's
        import mmpretrain.models
        assert mmpretrain.models.MAEViT is MAEViT and type(MAEViT(**TINY_VIT)) is MAEViT
    finally:
        mkm.restore_upstream_defaults()
    for name, (registry, upstream, _) in ALL.items():
        assert registry.get(name) is upstream


# ---- transforms ----

def _masks(transform, n, seed):
    """n masks from numpy seed `seed`, on one torch thread as in a DataLoader worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        np.random.seed(seed)
        return np.stack([transform({"img": None})["mask"] for _ in range(n)])
    finally:
        torch.set_num_threads(threads)


def _two_sample_z(a, b):
    """z-scores of the difference of two proportions (elementwise), pooled variance."""
    pooled = (a + b) / 2
    se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * 2 / N_MASKS)
    return (a - b) / se


def _one_sample_z(p_hat, p, n=None):
    return (p_hat - p) / math.sqrt(p * (1 - p) / (n or N_MASKS))


def _hpairs(masks):
    """Per mask, the fraction of horizontally adjacent cell pairs that are both masked."""
    m = masks.astype(bool)
    return (m[:, :, 1:] & m[:, :, :-1]).mean(axis=(1, 2))


def _mean_z(values, mean):
    return (values.mean() - mean) / (values.std(ddof=1) / math.sqrt(len(values)))


N_MASKS = 4000
BEIT_78_15 = dict(input_size=14, num_masking_patches=78, min_num_patches=15)


@pytest.fixture(scope="module")
def beit_masks():
    return (_masks(mkm.MIMKBEiTMaskGenerator(**BEIT_78_15), N_MASKS, 0),
            _masks(BEiTMaskGenerator(**BEIT_78_15), N_MASKS, 0))


def test_beit_transform_exact_where_upstream_is_deterministic(beit_masks):
    ours, upstream = beit_masks
    assert ours.dtype == upstream.dtype and ours.shape == upstream.shape == (N_MASKS, 14, 14)
    for masks in beit_masks:   # exact count; numpy's exclusive randint never reaches the last row/column
        assert (masks.sum((1, 2)) == 78).all() and not masks[:, 13, :].any() and not masks[:, :, 13].any()
    t = TRANSFORMS.build(dict(type="MIMKBEiTMaskGenerator", input_size=(6, 9), num_masking_patches=20))
    results = t({"img": "kept"})
    assert results["img"] == "kept" and results["mask"].shape == (6, 9) and results["mask"].sum() == 20
    # upstream's repr, name included (what register_as_defaults puts it under); semantics only when not the default
    assert repr(t) == repr(BEiTMaskGenerator(input_size=(6, 9), num_masking_patches=20))
    unilm = mkm.MIMKBEiTMaskGenerator(input_size=(6, 9), num_masking_patches=20, semantics="unilm")
    assert repr(unilm) == repr(t)[:-1] + ", semantics='unilm')"
    np.random.seed(3)
    first = t({})["mask"]
    np.random.seed(3)
    assert (t({})["mask"] == first).all() and not (t({})["mask"] == first).all()   # keyed by numpy's RNG


def test_beit_transform_distribution_equals_upstream(beit_masks):
    ours, upstream = beit_masks
    p_ours, p_up = ours.mean(0), upstream.mean(0)
    assert np.abs(_two_sample_z(p_ours[:13, :13], p_up[:13, :13])).max() < Z_MAX
    pairs_ours, pairs_up = _hpairs(ours), _hpairs(upstream)
    se = math.sqrt((pairs_ours.var(ddof=1) + pairs_up.var(ddof=1)) / N_MASKS)
    assert abs(pairs_ours.mean() - pairs_up.mean()) / se < Z_MAX
    # per-cell coverage of mmpretrain's 78/15 generator: corner / top-edge middle / centre, neighbour pairs
    for masks in beit_masks:
        p = masks.mean(0)
        for cell, want in (((0, 0), 0.066), ((0, 7), 0.267), ((7, 7), 0.790)):
            assert abs(_one_sample_z(p[cell], want)) < Z_MAX, (cell, p[cell])
        assert abs(_mean_z(_hpairs(masks), 0.3625)) < Z_MAX


def test_beit_transform_unilm_semantics_matches_spec_table():
    """The official generator (column "MaskFeat 78/15"): short masks, symmetric marginals."""
    masks = _masks(mkm.MIMKBEiTMaskGenerator(**BEIT_78_15, semantics="unilm"), N_MASKS, 1)
    counts = masks.sum((1, 2))
    assert counts.max() == 78
    observed = np.array([(counts == 78).sum(), (counts == 77).sum(), (counts == 76).sum(), (counts <= 75).sum()])
    expected = N_MASKS * np.array([0.705, 0.209, 0.052, 1 - 0.705 - 0.209 - 0.052])
    assert ((observed - expected) ** 2 / expected).sum() < 21.1   # chi2, 3 dof, p = 1e-4
    p = masks.mean(0)
    for cell, want in (((0, 0), 0.044), ((13, 13), 0.044), ((0, 6), 0.200), ((6, 6), 0.732), ((7, 7), 0.732)):
        assert abs(_one_sample_z(p[cell], want)) < Z_MAX, (cell, p[cell])
    assert abs(_mean_z(_hpairs(masks), 0.359)) < Z_MAX
    with pytest.raises(ValueError, match="semantics"):
        mkm.MIMKBEiTMaskGenerator(14, 75, semantics="beit")


SIMMIM_192 = dict(input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6)


def test_simmim_transform_equals_upstream():
    ours = _masks(TRANSFORMS.build(dict(type="MIMKSimMIMMaskGenerator", **SIMMIM_192)), N_MASKS, 0)
    upstream = _masks(SimMIMMaskGenerator(**SIMMIM_192), N_MASKS, 0)
    assert ours.dtype == upstream.dtype and ours.shape == upstream.shape == (N_MASKS, 48, 48)
    assert repr(mkm.MIMKSimMIMMaskGenerator(**SIMMIM_192)) == repr(SimMIMMaskGenerator(**SIMMIM_192))
    cells = []
    for masks in (ours, upstream):   # exactly ceil(36 · 0.6) = 22 mask patches, each an 8x8 block of tokens
        c = masks[:, ::8, ::8]
        assert (c.sum((1, 2)) == 22).all() and (c.repeat(8, 1).repeat(8, 2) == masks).all()
        cells.append(c.reshape(N_MASKS, 36))
    p_ours, p_up = cells[0].mean(0), cells[1].mean(0)
    assert np.abs(_two_sample_z(p_ours, p_up)).max() < Z_MAX
    assert np.abs(_one_sample_z(p_ours, 22 / 36)).max() < Z_MAX     # uniform over subsets: P(cell) = m / n
    both = (cells[0][:, 0] & cells[0][:, 35]).mean()                # P(two given cells) = m(m-1) / (n(n-1))
    assert abs(_one_sample_z(both, 22 * 21 / (36 * 35))) < Z_MAX
    assert len({m.tobytes() for m in cells[0]}) == N_MASKS          # independent draws, no repeats
    with pytest.raises(ValueError):
        mkm.MIMKSimMIMMaskGenerator(input_size=190)
