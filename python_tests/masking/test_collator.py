"""MaskCollator: masks per rank, worker, step and epoch from one seed, reproducible run to run."""
import torch

import mimkernels as mk
from mimkernels.masking import nn as mk_nn


class _Images(torch.utils.data.Dataset):
    def __len__(self):
        return 24

    def __getitem__(self, i):
        return torch.full((3, 4, 4), float(i))


def _epoch(loader):
    return [(x[:, 0, 0, 0].long(), m) for x, m in loader]


def test_mask_collator_workers_steps_epochs():
    collator = mk.MaskCollator(mk_nn.BlockMaskGenerator(), seed=7)
    loader = torch.utils.data.DataLoader(_Images(), batch_size=4, collate_fn=collator)
    first = _epoch(loader)
    assert len(first) == 6 and all(m.shape == (4, 14, 14) and m.dtype == torch.bool for _, m in first)
    assert torch.equal(first[0][0], torch.arange(4))
    # step s of worker 0, rank 0: the seed derive_seed(derive_seed(7, 0), 0, 0, s).
    for s, (_, m) in enumerate(first):
        assert torch.equal(m, mk.block_mask(4, seed=mk.rng.derive_seed(mk.rng.derive_seed(7, 0), 0, 0, s)))
    assert len({m.numpy().tobytes() for _, m in first}) == 6
    # two workers: batch k comes from worker k % 2 at its step k // 2; reproducible run to run.
    workers = torch.utils.data.DataLoader(_Images(), batch_size=4, num_workers=2,
                                          collate_fn=mk.MaskCollator(mk_nn.BlockMaskGenerator(), seed=7))
    run1, run2 = _epoch(workers), _epoch(workers)
    for k, ((x1, m1), (x2, m2)) in enumerate(zip(run1, run2)):
        assert torch.equal(x1, x2) and torch.equal(m1, m2)
        assert torch.equal(m1, mk.block_mask(4, seed=mk.rng.derive_seed(mk.rng.derive_seed(7, 0), 0, k % 2, k // 2)))
    collator.set_epoch(1)
    assert not any(torch.equal(a, b) for (_, a), (_, b) in zip(_epoch(loader), first))
