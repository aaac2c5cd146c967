"""UM-MAE's uniform masking (mask_zoo/SPEC.md §6) against UM-MAE restated (benchmarks/upstream_ummae.py):
the block structure exactly, the laws of the drawn choices (20 000 masks, fixed seeds) against upstream's,
cpp == torch bit for bit, batch splits, and what UM-MAE's model makes of the masks."""
import itertools

import numpy as np
import pytest
import torch
from scipy import stats

import mimkernels as mk
from benchmarks import upstream_ummae as upstream
from mimkernels import _native
from mimkernels.mask_zoo import nn as zoo_nn
from mimkernels.mask_zoo import reference

BACKENDS = ["torch"] + (["cpp"] if _native.available() else [])
needs_cpp = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
N_MASKS = 20_000
P_FLOOR = 1e-6


def fast_backend():
    return "cpp" if _native.available() else "torch"


def block_slots(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, H/2, W/2) slot 2·p1 + p2 of each block's visible token (mask (B, H·W) with one per block)."""
    visible = ~mask.view(-1, height // 2, 2, width // 2, 2)
    return (visible.permute(0, 1, 3, 2, 4).reshape(-1, height // 2, width // 2, 4).long()
            * torch.arange(4)).sum(-1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("height, width, vis_ratio", [(16, 16, 0.25), (14, 14, 0.0), (2, 2, 1.0), (4, 10, 0.5),
                                                      (8, 6, 0.9)])
def test_one_visible_token_per_block_and_secondary_counts(backend, height, width, vis_ratio):
    mask, secondary = mk.uniform_mask(64, height, width, vis_ratio, seed=3, backend=backend)
    assert mask.shape == secondary.shape == (64, height * width) and mask.dtype == secondary.dtype == torch.bool
    blocks = (height // 2) * (width // 2)
    visible = ~mask.view(64, height // 2, 2, width // 2, 2)
    assert (visible.sum((2, 4)) == 1).all()  # ratio 0.75 exactly: one visible token per 2 x 2 block
    assert not (secondary & mask).any()  # the secondary mask hides visible tokens only
    keep_final = int(blocks * (1. - vis_ratio))  # UM-MAE's vis_final_cnt
    assert (secondary.sum(1) == blocks - keep_final).all()


def test_loader_mask_equals_upstream_layout():
    """Upstream's mask from a known candidate order: our layout of slot → token is rearrange's."""
    gen = upstream.RandomMaskingGenerator(4, 0.75, regular=True, rnd=np.random.RandomState(0))
    m = torch.from_numpy(gen().astype(bool)).unsqueeze(0)
    slots = block_slots(m, 4, 4)
    # rebuild with our reference's token formula: block k keeps (2·bh + slot // 2, 2·bw + slot % 2)
    rebuilt = torch.ones(16, dtype=torch.bool)
    for bh, bw in itertools.product(range(2), range(2)):
        s = int(slots[0, bh, bw])
        rebuilt[(2 * bh + s // 2) * 4 + 2 * bw + s % 2] = False
    assert torch.equal(rebuilt, m[0])


def hypergeometric_counts(height, width):
    """Upstream draws the blocks' slots without replacement from `rows` candidate rows, rows / 4 of each
    slot: the number of blocks keeping slot 0 is hypergeometric(rows, rows / 4, blocks)."""
    rows, blocks = reference.uniform_candidate_rows(height * width), (height // 2) * (width // 2)
    return stats.hypergeom(rows, rows // 4, blocks)


@pytest.mark.parametrize("height, width", [(8, 8), (6, 10)])
def test_slot_counts_are_upstreams_hypergeometric(height, width):
    """The law of how many blocks keep each slot: hypergeometric (draws without replacement from the
    candidate list), not binomial (independent blocks). χ² of ours and of upstream's against the pmf,
    20 000 masks each; an independent-per-block generator fails it (shown)."""
    law = hypergeometric_counts(height, width)
    blocks = (height // 2) * (width // 2)
    gen = upstream.RandomMaskingGenerator((height, width), 0.75, regular=True, rnd=np.random.RandomState(1))
    theirs = torch.from_numpy(np.stack([gen() for _ in range(N_MASKS)]).astype(bool))
    ours, _ = mk.uniform_mask(N_MASKS, height, width, 0.0, seed=21, backend=fast_backend())
    independent = torch.rand(N_MASKS, height // 2, width // 2, generator=torch.Generator().manual_seed(0))
    independent = (independent * 4).long()

    def pvalue(slots):
        counts = np.bincount((slots == 0).flatten(1).sum(1).numpy(), minlength=blocks + 1)
        support = np.arange(blocks + 1)
        expected = law.pmf(support) * N_MASKS
        if counts[expected == 0].any():  # a count the law cannot give
            return 0.0
        keep = expected >= 5  # pool the tails (where the law has any mass)
        observed, expected = counts[keep], expected[keep]
        tail = law.pmf(support[~keep]).sum() * N_MASKS
        if tail > 0:
            observed, expected = np.append(observed, counts[~keep].sum()), np.append(expected, tail)
        return stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue

    assert pvalue(block_slots(ours, height, width)) > P_FLOOR
    assert pvalue(block_slots(theirs, height, width)) > P_FLOOR
    assert pvalue(independent) < P_FLOOR


def test_per_position_coverage_matches_upstream():
    """Every token visible with probability 1/4 (every block, every slot), ours and upstream's at UM-MAE's
    16 × 16: χ² against N/4 per token, and the two-sample χ² of the two."""
    gen = upstream.RandomMaskingGenerator(16, 0.75, regular=True, rnd=np.random.RandomState(2))
    theirs = sum((1 - gen()) for _ in range(N_MASKS))
    ours, _ = mk.uniform_mask(N_MASKS, seed=5, backend=fast_backend())
    ours = (~ours).sum(0).numpy()
    assert stats.chisquare(ours, np.full(256, N_MASKS / 4)).pvalue > P_FLOOR
    assert stats.chisquare(theirs, np.full(256, N_MASKS / 4)).pvalue > P_FLOOR
    assert stats.chi2_contingency(np.stack([ours, theirs])).pvalue > P_FLOOR


@pytest.mark.parametrize("vis_ratio, hidden", [(0.5, 2), (0.25, 1), (0.75, 3)])
def test_secondary_subset_law_matches_upstreams_model(vis_ratio, hidden):
    """The secondary mask is a uniform subset of the visible tokens, as UM-MAE's model draws it
    (argsort of mask + torch.rand): all C(4, hidden) subsets of the 4 blocks of a 4 × 4 grid equally
    likely, ours and the model's code (restated, numpy noise), χ² over 20 000 masks each."""
    mask, secondary = mk.uniform_mask(N_MASKS, 4, 4, vis_ratio, seed=8, backend=fast_backend())
    noise = np.random.RandomState(3).random_sample((N_MASKS, 16)).astype(np.float32)
    theirs = upstream.secondary_mask(mask.numpy(), vis_ratio, noise) & ~mask.numpy()
    subsets = {s: k for k, s in enumerate(itertools.combinations(range(4), hidden))}

    def block_of(row):  # the blocks (row-major over the 2 x 2 blocks) whose visible token is hidden
        return tuple(sorted({(t // 4 // 2) * 2 + (t % 4) // 2 for t in np.flatnonzero(row)}))

    for hidden_tokens in (secondary.numpy(), theirs):
        counts = np.bincount([subsets[block_of(row)] for row in hidden_tokens], minlength=len(subsets))
        assert stats.chisquare(counts).pvalue > P_FLOOR, counts


def test_model_new_mask_is_mask_or_secondary_in_count():
    """UM-MAE's model (models_mae_swin forward_encoder) turns the loader's mask into new_mask with the same
    number of hidden tokens as our `mask | secondary`."""
    mask, secondary = mk.uniform_mask(16, seed=1)
    noise = np.random.RandomState(0).random_sample((16, 256)).astype(np.float32)
    new_mask = upstream.secondary_mask(mask.numpy(), 0.25, noise)
    assert (new_mask.sum(1) == (mask | secondary).sum(1).numpy()).all()
    assert (new_mask | ~mask.numpy()).all()  # the model keeps the loader's masked tokens masked


@needs_cpp
@pytest.mark.parametrize("height, width, vis_ratio", [(16, 16, 0.25), (14, 14, 0.6), (2, 2, 0.0), (6, 12, 1.0),
                                                      (30, 2, 0.33)])
def test_cpp_equals_torch(height, width, vis_ratio):
    for seed in (0, 17, 2**64 - 5):
        want = mk.uniform_mask(21, height, width, vis_ratio, seed=seed, sample_offset=4, backend="torch")
        got = mk.uniform_mask(21, height, width, vis_ratio, seed=seed, sample_offset=4, backend="cpp")
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_split_reproduces_the_batch(backend):
    whole = mk.uniform_mask(9, seed=2, backend=backend)
    first, second = mk.uniform_mask(4, seed=2, backend=backend), mk.uniform_mask(5, seed=2, sample_offset=4,
                                                                                 backend=backend)
    assert torch.equal(torch.cat([first[0], second[0]]), whole[0])
    assert torch.equal(torch.cat([first[1], second[1]]), whole[1])


def test_drop_in_mask_transform():
    """UM-MAE's MaskTransform builds RandomMaskingGenerator(args.token_size, args.mask_ratio,
    args.mask_regular) and returns its call per image: the drop-in gives the same shape, dtype and counts."""
    for regular, count in ((True, 192), (False, int(0.75 * 256))):
        ours = zoo_nn.UniformMaskingGenerator(16, 0.75, regular)
        theirs = upstream.RandomMaskingGenerator(16, 0.75, regular)
        a, b = ours(), theirs()
        assert a.shape == b.shape == (256,) and a.dtype == b.dtype == np.float64
        assert a.sum() == b.sum() == count
    _, secondary = zoo_nn.UniformMaskingGenerator(16, 0.75, True, vis_mask_ratio=0.25).batch(3, seed=0)
    assert (secondary.sum(1) == 16).all()
    with pytest.raises(ValueError, match="mask_ratio"):
        zoo_nn.UniformMaskingGenerator(16, 0.6, True)
