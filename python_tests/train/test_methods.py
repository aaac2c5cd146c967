"""The five methods: the ops they call, their tuned defaults, their grading, their masks per rank,
and the trainer's named seed streams."""
import pytest
import torch

import mimkernels
from mimkernels import rng
from mimkernels.train import data, seeds
from mimkernels.train.methods import METHODS, ModelConfig, build
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
