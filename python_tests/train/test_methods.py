"""The five methods: the ops they call, their tuned defaults, their grading, their masks per rank,
and the trainer's named seed streams."""
import pytest
import torch

import mimkernels
from mimkernels import rng
from mimkernels.train import data, seeds
from mimkernels.train.methods import METHODS, ModelConfig, build, normalize
from mimkernels.train.ops import MIM_OPS, Ops

from .common import TINY_MODEL


def test_every_op_a_method_calls_is_in_the_table_and_a_front_door():
    assert set(MIM_OPS) == {op for cls in METHODS.values() for op in cls.needs}
    for op in MIM_OPS:
        assert callable(getattr(mimkernels, op)), op
    with pytest.raises(AttributeError, match="not a MIM op"):
        _ = Ops("torch").softmax


def test_seed_streams_are_named_and_keep_their_numbers():
    """The numbers are part of every recorded run (train_probe.md reproduces bit for bit)."""
    assert (seeds.EMBEDDED_TRAIN, seeds.EMBEDDED_TEST) == (0, 1)
    assert (seeds.DATA_ORDER, seeds.AUGMENT, seeds.STEP, seeds.PICTURES) == (1, 2, 3, 4)
    assert seeds.key(7, seeds.STEP, 5) == rng.derive_seed(7, 3, 5)
    assert torch.equal(torch.randperm(10, generator=seeds.generator(7, seeds.DATA_ORDER, 2)),
                       torch.randperm(10, generator=torch.Generator().manual_seed(rng.derive_seed(7, 1, 2) >> 1)))


def test_maskfeat_head_starts_as_mmselfsups():
    head = build("maskfeat", Ops("torch"), 32, 4, ModelConfig()).head.linear
    assert abs(head.weight.std().item() - 0.02) < 0.002     # xavier: 0.09
    assert not head.bias.any()


def test_maskfeat_target_is_the_standardized_hog_of_each_patchs_8px_cell():
    """The default: each 4 px patch regresses the unnormalized HOG of the 8 px cell it lies in (no window),
    each dimension standardized over the batch's patches; the mask is random, 40% of the patches."""
    method = build("maskfeat", Ops("torch"), 16, 4, TINY_MODEL)
    imgs = torch.rand(3, 3, 16, 16)
    step = method(imgs, seed=2)
    target, mask = step.tensors["target"], step.tensors["mask"]
    cells = mimkernels.hog_map(normalize(imgs), pool=8, gaussian_window=0, norm_out=False, backend="torch")
    per_patch = cells.repeat_interleave(2, 3).repeat_interleave(2, 4).flatten(1, 2).flatten(2).transpose(1, 2)
    torch.testing.assert_close(method.in_hog_units(target, step.tensors), per_patch, rtol=1e-4, atol=1e-4)
    rows = target.flatten(0, 1)
    torch.testing.assert_close(rows.mean(0), torch.zeros(27), atol=1e-5, rtol=0)
    torch.testing.assert_close(rows.std(0), torch.ones(27), atol=1e-4, rtol=0)
    assert mask.dtype == torch.bool and mask.sum(1).tolist() == [7, 7, 7]        # 16 - int(16 · 0.6), as MAE's
    assert method.settings()["mask"] == "random, 7 of 16"
    torch.testing.assert_close(step.loss, mimkernels.masked_mse_loss(step.tensors["pred"], target, mask))


def test_maskfeat_paper_settings_give_the_papers_target_and_block_mask(monkeypatch):
    """mask 'block', 2 px cells (8 px at 224 scaled), per-cell normalization, no standardization: mmpretrain's
    per-patch HOG (window of one patch) and BEiT's block mask."""
    for attr, value in (("mask", "block"), ("hog_cell", 2), ("hog_norm", True), ("standardize_target", False)):
        monkeypatch.setattr(METHODS["maskfeat"], attr, value)
    method = build("maskfeat", Ops("torch"), 16, 4, TINY_MODEL)
    imgs = torch.rand(3, 3, 16, 16)
    step = method(imgs, seed=2)
    torch.testing.assert_close(step.tensors["target"], mimkernels.hog(normalize(imgs), nbins=9, pool=2,
                                                                       gaussian_window=4, patch_size=4, backend="torch"))
    assert torch.equal(step.tensors["mask"], mimkernels.block_mask(3, 4, 4, 6, 1, seed=2, backend="torch").flatten(1))


def test_maskfeat_rejects_an_unknown_mask(monkeypatch):
    monkeypatch.setattr(METHODS["maskfeat"], "mask", "blocks")
    with pytest.raises(ValueError, match="MaskFeat.mask"):
        build("maskfeat", Ops("torch"), 16, 4, TINY_MODEL)


@pytest.mark.parametrize("simple_crop", [False, True])
def test_pixmim_crop(monkeypatch, simple_crop):
    monkeypatch.setattr(METHODS["pixmim"], "simple_crop", simple_crop)
    method = build("pixmim", Ops("torch"), 16, 4, TINY_MODEL)
    imgs = torch.rand(5, 3, 16, 16)
    expected = (data.simple_resized_crop(imgs, torch.Generator().manual_seed(3), padding=1) if simple_crop
                else data.random_resized_crop(imgs, torch.Generator().manual_seed(3), scale=(0.2, 1.0)))
    torch.testing.assert_close(method.augment(imgs, torch.Generator().manual_seed(3)), expected)


@pytest.mark.parametrize("recover_target_type", ["masked", "normal"])
def test_mfm_grades_the_frequencies_its_recover_target_type_names(monkeypatch, recover_target_type):
    """'masked' (the default, the paper's): the mean distance over the removed frequencies; 'normal': over all."""
    monkeypatch.setattr(METHODS["mfm"], "recover_target_type", recover_target_type)
    method = build("mfm", Ops("torch"), 16, 4, TINY_MODEL)
    step = method(torch.rand(6, 3, 16, 16), seed=5)
    pred, target, freq_mask = step.tensors["pred"], step.tensors["target"], step.tensors["freq_mask"]
    expected = mimkernels.frequency_loss(pred, target, freq_mask if recover_target_type == "masked" else None)
    torch.testing.assert_close(step.loss, expected)
    assert not torch.allclose(mimkernels.frequency_loss(pred, target, freq_mask),
                              mimkernels.frequency_loss(pred, target, None))   # the two choices differ here


def test_ranks_draw_distinct_masks_that_tile_the_global_batch():
    """Rank r numbers its samples from r·B: distinct masks per rank, together the one-process masks."""
    method = build("mae", Ops("mimkernels"), 16, 4, TINY_MODEL)
    x = torch.zeros(8, 3, 16, 16)
    whole = method.corrupt(x, 11, 0)[2]
    rank0, rank1 = method.corrupt(x[:4], 11, 0)[2], method.corrupt(x[:4], 11, 4)[2]
    assert not torch.equal(rank0, rank1)
    assert torch.equal(torch.cat([rank0, rank1]), whole)
