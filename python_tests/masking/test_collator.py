"""MaskCollator (SPEC.md §10): the mask of batch k of epoch e is drawn with
derive_seed(derive_seed(seed, e), rank, k), whatever num_workers and persistent_workers, and a resumed
run reproduces the uninterrupted one. Real DataLoaders, 0 and 2 workers, persistent or not."""
import functools

import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels.masking import nn as mk_nn


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 24

    def __getitem__(self, i):
        return torch.full((3, 4, 4), float(i))


def _expected(seed, epoch, k):
    return mk.block_mask(4, seed=mk.rng.derive_seed(mk.rng.derive_seed(seed, epoch), 0, k))


def _run(epochs, num_workers, persistent, collator=None, start_epoch=0):
    collator = collator or mk.MaskCollator(mk_nn.BlockMaskGenerator(), seed=7)
    loader = torch.utils.data.DataLoader(_Images(), batch_size=4, num_workers=num_workers, collate_fn=collator,
                                         persistent_workers=persistent and num_workers > 0)
    out = []
    for epoch in range(start_epoch, start_epoch + epochs):
        collator.set_epoch(epoch)
        out.append([(x[:, 0, 0, 0].long(), m) for x, m in loader])
    return out, collator


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (2, False), (2, True)])
def test_masks_are_those_of_the_batch_index(num_workers, persistent):
    epochs, _ = _run(3, num_workers, persistent)
    for e, batches in enumerate(epochs):
        assert len(batches) == 6
        for k, (x, m) in enumerate(batches):
            assert torch.equal(x, torch.arange(4 * k, 4 * k + 4))
            assert m.shape == (4, 14, 14) and m.dtype == torch.bool
            assert torch.equal(m, _expected(7, e, k)), (e, k)
    masks = [m.numpy().tobytes() for batches in epochs for _, m in batches]
    assert len(set(masks)) == len(masks)  # across steps and epochs


def test_masks_independent_of_workers_and_persistence():
    runs = [_run(2, w, p)[0] for w, p in [(0, False), (2, False), (2, True)]]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert all(torch.equal(ma, mb) for (_, ma), (_, mb) in zip(a, b))


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (2, True)])
def test_resume_reproduces_the_uninterrupted_run(num_workers, persistent):
    whole, _ = _run(3, num_workers, persistent)
    first, collator = _run(2, num_workers, persistent)
    state = collator.state_dict()
    assert state == {"seed": collator.seed, "epoch": 1}
    resumed = mk.MaskCollator(mk_nn.BlockMaskGenerator(), seed=12345)  # the state's seed wins
    resumed.load_state_dict(state)
    rest, _ = _run(1, num_workers, persistent, collator=resumed, start_epoch=2)
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(whole[2], rest[0]))
    # mid-epoch: a loader that skips the first 3 batches of epoch 1 and says so with start_batch
    mid = mk.MaskCollator(mk_nn.BlockMaskGenerator(), seed=7)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(_Images(), range(12, 24)), batch_size=4,
                                         num_workers=num_workers, collate_fn=mid)
    mid.set_epoch(1, start_batch=3)
    got = [m for _, m in loader]
    assert all(torch.equal(a, b) for a, (_, b) in zip(got, whole[1][3:]))


def test_seeds_epoch_and_arguments():
    c = mk.MaskCollator(functools.partial(mk.simmim_mask, input_size=64, mask_patch_size=16, model_patch_size=16),
                        seed=np.int64(3))  # numpy integers are seeds
    assert c.seed == 3
    c.set_epoch(np.int32(2))
    assert c.epoch == 2
    with pytest.raises(ValueError, match="epoch"):
        c.set_epoch(-1)
    with pytest.raises(ValueError, match="start_batch"):
        c.set_epoch(0, start_batch=-1)
    x, m = c([torch.zeros(2), torch.ones(2)])
    assert x.shape == (2, 2) and m.shape == (2, 4, 4)
