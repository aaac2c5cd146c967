"""data2vec_block_mask (mask_zoo/SPEC.md §7) against fairseq's compute_block_mask_2d restated line for
line (benchmarks/upstream_data2vec.py): exact when the restatement is fed our draws (one mask row per
call), in distribution (20 000 masks) against it on torch's generator; cpp == torch; batch splits."""
import pytest
import torch

import mimkernels as mk
import mimkernels.nn
from benchmarks import upstream_data2vec as upstream
from mimkernels import _native, rng
from mimkernels.mask_zoo import reference

needs_cpp = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")

# (num_patches, mask_prob, mask_length, keyword arguments): the data2vec 2.0 image config first
CONFIGS = [
    (196, 0.8, 3, {}),
    (196, 0.8, 3, {"non_overlapping": True}),
    (196, 0.8, 3, {"mask_dropout": 0.25}),
    (196, 0.6, 2, {"inverse_mask": False, "mask_prob_adjust": 0.0}),
    (225, 0.8, 4, {"non_overlapping": True, "mask_prob_adjust": 0.1}),   # 15 / 4: tiles cut at the edge
    (49, 0.5, 5, {"require_same_masks": False}),
    (1, 0.8, 2, {}),
    (4, 0.0, 2, {"inverse_mask": False, "mask_prob_adjust": 0.0}),
]


def _fairseq_kwargs(mask_prob, mask_length, kw):
    return {"mask_prob": mask_prob, "mask_length": mask_length, "mask_prob_adjust": kw.get("mask_prob_adjust", 0.07),
                "inverse_mask": kw.get("inverse_mask", True), "require_same_masks": kw.get("require_same_masks", True),
                "mask_dropout": kw.get("mask_dropout", 0.0), "non_overlapping": kw.get("non_overlapping", False)}


class OurDraws:
    """The restatement's randint / multinomial answered from one mask row's words (rng.words),
    independently of the reference: randint(0, n) = below(word j, n); multinomial(w, k) = selection
    sampling over the positive weights in index order, word word0 + p for position p (the tiles first
    when non_overlapping, then the count fix at 4·ceil(D / 4))."""

    def __init__(self, words, tiles_first, fix_offset):
        self.words = [int(w) for w in words]
        self.offset, self.fix_offset = 0 if tiles_first else fix_offset, fix_offset

    def randint(self, low, high, size):
        assert low == 0 and size[0] == 1
        return torch.tensor([[(self.words[j] * high) >> 32 for j in range(size[1])]], dtype=torch.int64).reshape(size)

    def multinomial(self, weights, k, replacement=False):
        assert not replacement
        w = weights.reshape(-1)
        left, chosen = int((w > 0).sum()), []
        for p in torch.nonzero(w > 0).flatten().tolist():
            if len(chosen) < k and (self.words[self.offset + p] * left) >> 32 < k - len(chosen):
                chosen.append(p)
            left -= 1
        self.offset = self.fix_offset
        out = torch.tensor(chosen, dtype=torch.int64)
        return out.reshape(1, -1) if weights.dim() == 2 else out


@pytest.mark.parametrize("num_patches,mask_prob,mask_length,kw", CONFIGS)
def test_reference_equals_fairseq_fed_our_draws(num_patches, mask_prob, mask_length, kw):
    batch, clones, seed, offset = 5, 3, 11, 7
    ours = mk.data2vec_block_mask(batch, num_patches, mask_prob, mask_length, clone_batch=clones, seed=seed,
                                  sample_offset=offset, backend="torch", **kw)
    side, centres, _ = mk.mask_zoo._data2vec_counts(num_patches, mask_prob, mask_length, kw.get("mask_prob_adjust", 0.07),
                                                    kw.get("inverse_mask", True), kw.get("mask_dropout", 0.0),
                                                    kw.get("non_overlapping", False))
    tiles = (-(-side // mask_length)) ** 2
    draws = tiles if kw.get("non_overlapping") else centres
    calls = reference.data2vec_calls_per_clone(draws, num_patches)
    for row in range(batch * clones):
        b, k = divmod(row, clones)
        words = rng.words(seed, offset + b, rng.STREAM_DATA2VEC_MASK, 4 * calls, first_call=k * calls)
        feed = OurDraws(words, kw.get("non_overlapping", False), 4 * -(-draws // 4))
        theirs = upstream.compute_block_mask_2d((1, num_patches), rnd=feed,
                                                **_fairseq_kwargs(mask_prob, mask_length, kw))
        assert torch.equal(theirs[0].bool(), ours[row]), (row, kw)


@needs_cpp
@pytest.mark.parametrize("num_patches,mask_prob,mask_length,kw", CONFIGS)
def test_cpp_equals_torch(num_patches, mask_prob, mask_length, kw):
    args = (9, num_patches, mask_prob, mask_length)
    kwargs = dict(clone_batch=4, seed=3, sample_offset=2, **kw)
    assert torch.equal(mk.data2vec_block_mask(*args, backend="cpp", **kwargs),
                       mk.data2vec_block_mask(*args, backend="torch", **kwargs))


@pytest.mark.parametrize("backend", ["torch", pytest.param("cpp", marks=needs_cpp)])
def test_batch_split_with_sample_offset_gives_the_whole_batch(backend):
    whole = mk.data2vec_block_mask(6, seed=9, clone_batch=4, backend=backend)
    parts = [mk.data2vec_block_mask(n, seed=9, clone_batch=4, sample_offset=o, backend=backend)
             for o, n in ((0, 1), (1, 3), (4, 2))]
    assert torch.equal(torch.cat(parts), whole)
    # clones are independent masks; every row keeps exactly int(L · 0.2) = 39 visible tokens
    assert len({tuple(r.tolist()) for r in whole}) == whole.shape[0]
    assert (whole.sum(1) == 196 - 39).all()


def test_defaults_are_the_data2vec2_image_config():
    m = mk.data2vec_block_mask(2, seed=0)
    assert m.shape == (32, 196) and m.dtype == torch.bool
    # fairseq's count: int(L · (0.2 + 0.07) / 9) = 5 centres, int(196 · 0.2) = 39 visible
    assert mk.mask_zoo._data2vec_counts(196, 0.8, 3, 0.07, True, 0.0, False) == (14, 5, 39)


def _adjacent_visible_pairs(masks):
    grid = ~masks.reshape(-1, 14, 14)
    return (grid[:, :, 1:] & grid[:, :, :-1]).sum((1, 2)) + (grid[:, 1:, :] & grid[:, :-1, :]).sum((1, 2))


def test_distribution_matches_fairseq_on_torch_draws():
    """20 000 masks of the data2vec 2.0 image config (1250 images × 16 clones) against fairseq on torch's
    generator: masked count per row (exact), per-position coverage (z-scores of 196 proportions) and block
    geometry (visible 4-neighbour pairs: mean and histogram). (non_overlapping: exact above.)"""
    n = 20_000
    theirs = upstream.compute_block_mask_2d((n, 196), 0.8, 3, 0.07, inverse_mask=True,
                                            rnd=upstream.TorchRandom(torch.Generator().manual_seed(1))).bool()
    be = "cpp" if _native.available() else "torch"
    ours = mk.data2vec_block_mask(n // 16, seed=1, backend=be)
    assert (theirs.sum(1) == 157).all() and (ours.sum(1) == 157).all()
    p1, p2 = theirs.double().mean(0), ours.double().mean(0)
    pooled = (p1 + p2) / 2
    z = (p1 - p2) / torch.sqrt(pooled * (1 - pooled) * 2 / n).clamp_min(1e-12)
    assert z.abs().max() < 5, z.abs().max()
    # the edges are visible less often than the centre (blocks clipped at the border), in both
    a1, a2 = _adjacent_visible_pairs(theirs).double(), _adjacent_visible_pairs(ours).double()
    se = torch.sqrt(a1.var() / n + a2.var() / n)
    assert abs(a1.mean() - a2.mean()) < 5 * se, (a1.mean(), a2.mean())
    h1, h2 = torch.bincount(a1.long(), minlength=80)[:80].double(), torch.bincount(a2.long(), minlength=80)[:80].double()
    keep = (h1 + h2) >= 40
    chi2 = ((h1[keep] - h2[keep]) ** 2 / (h1[keep] + h2[keep])).sum()
    assert chi2 < keep.sum() + 6 * keep.sum().sqrt() + 10, (chi2, keep.sum())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="num_patches"):
        mk.data2vec_block_mask(1, 200)
    with pytest.raises(ValueError, match="non_overlapping"):
        mk.data2vec_block_mask(1, 196, 0.0, 3, non_overlapping=True, mask_dropout=1.0)
    with pytest.raises(ValueError, match="clone_batch"):
        mk.data2vec_block_mask(1, clone_batch=2**30)


def test_generator_module_in_a_mask_collator():
    """mimkernels.nn.Data2vecMaskGenerator as MaskCollator's mask_fn: B·K masks per batch, reproducible."""
    generator = mk.nn.Data2vecMaskGenerator(clone_batch=4, backend="torch")
    assert "clone_batch=4" in repr(generator)
    collate = mk.MaskCollator(generator, seed=3)
    images, masks = collate([torch.zeros(3)] * 5)
    assert images.shape == (5, 3) and masks.shape == (20, 196) and (masks.sum(1) == 157).all()
    again = mk.MaskCollator(generator, seed=3)
    assert torch.equal(again([torch.zeros(3)] * 5)[1], masks)


def test_huge_settings_are_refused_not_run():
    with pytest.raises(ValueError, match="mask_dropout"):
        mk.data2vec_block_mask(1, mask_dropout=1e300)
    with pytest.raises(ValueError, match="mask_dropout"):
        mk.data2vec_block_mask(2, 196, 0.0, 2, mask_dropout=1e8, clone_batch=1)
    with pytest.raises(ValueError, match="backend='torch'"):
        mk.data2vec_block_mask(1, 65536, backend="torch")
    with pytest.raises(ValueError, match="num_patches"):
        mk.data2vec_block_mask(2**20, clone_batch=2**8, backend="cpp")


@pytest.mark.parametrize("backend", ["torch", pytest.param("cpp", marks=needs_cpp)])
def test_empty_batch(backend):
    for non_overlapping in (False, True):
        assert mk.data2vec_block_mask(0, non_overlapping=non_overlapping, seed=0, backend=backend).shape == (0, 196)
