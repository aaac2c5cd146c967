"""score_mask (mask_zoo/SPEC.md §8) against an independent oracle (Python's sort of (NaN class, value,
index) and selection sampling over our words in numpy), against AttMask and HPM restated
(benchmarks/upstream_data2vec.py: exact for the guided part, in distribution for their random parts,
20 000 masks), ties, NaN, counts, autograd, cpp == torch, batch splits."""
import math

import numpy as np
import pytest
import torch

import mimkernels as mk
import mimkernels.nn
from benchmarks import upstream_data2vec as upstream
from mimkernels import _native, rng

needs_cpp = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
BACKENDS = ["torch", pytest.param("cpp", marks=needs_cpp)]


def _oracle_order(row, largest):
    """Token order of one row: NaN first (largest) or last, then by value, then by index."""
    def key(t):
        v = float(row[t])
        nan = math.isnan(v)
        if largest:
            return (0 if nan else 1, 0.0 if nan else -v, t)
        return (1 if nan else 0, 0.0 if nan else v, t)
    return sorted(range(len(row)), key=key)


def _select(candidates, count, words):
    """Selection sampling: candidate p taken when (word_p · left) >> 32 < still to take."""
    left, taken = len(candidates), []
    for p, w in zip(candidates, words):
        if len(taken) < count and (int(w) * left) >> 32 < count - len(taken):
            taken.append(p)
        left -= 1
    return taken


def oracle(scores, mask_ratio, largest=True, score_share=1.0, hint_pool=0.0, hint_ratio=0.0, seed=0,
           sample_offset=0):
    batch, n = scores.shape
    m = int(n * mask_ratio)
    g, pool, hints = int(m * score_share), int(n * hint_pool), int(n * hint_ratio)
    out = np.zeros((batch, n), dtype=bool)
    fill_words = 4 * -(-n // 4)
    calls = -(-n // 4) + -(-pool // 4)
    for b in range(batch):
        i = torch.arange(calls, dtype=torch.int64)
        words = torch.stack(rng.draw(seed, i, sample_offset + b, rng.STREAM_SCORE_MASK), dim=-1).reshape(-1).tolist()
        order = _oracle_order(scores[b].tolist(), largest)
        out[b, order[:g]] = True
        rest = [t for t in range(n) if not out[b, t]]
        out[b, _select(rest, m - g, [words[t] for t in rest])] = True
        revealed = _select(list(range(pool)), hints, words[fill_words:fill_words + pool])
        out[b, [order[r] for r in revealed]] = False
    return torch.from_numpy(out)


def _scores(batch, tokens, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    s = (torch.randn(batch, tokens, generator=gen) * 3).round() / 3   # many ties
    if tokens > 7:
        s[::3, 1] = float("nan")
        s[::4, 2] = -0.0
        s[::4, 5] = 0.0
        s[1::5, 7] = float("inf")
    return s.to(dtype)


SETTINGS = [
    {"mask_ratio": 0.75},
    {"mask_ratio": 0.6, "largest": False},
    {"mask_ratio": 0.75, "score_share": 0.3},
    {"mask_ratio": 0.3, "score_share": 1.0, "hint_pool": 0.1, "hint_ratio": 0.03},   # AttMask-hint
    {"mask_ratio": 0.5, "largest": False, "score_share": 0.5, "hint_pool": 0.6, "hint_ratio": 0.2},  # pool past the guided
    {"mask_ratio": 1.0, "score_share": 0.0},
    {"mask_ratio": 0.0},
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_equals_the_independent_oracle(backend, setting):
    scores = _scores(7, 37)
    got = mk.score_mask(scores, seed=4, sample_offset=5, backend=backend, **setting)
    assert torch.equal(got, oracle(scores, seed=4, sample_offset=5, **setting))


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(0, 5), (3, 1), (5, 196), (2, 300)])
def test_cpp_equals_torch(dtype, shape):
    scores = _scores(*shape, dtype=dtype, seed=shape[1])
    for setting in SETTINGS[:5]:
        assert torch.equal(mk.score_mask(scores, seed=1, backend="cpp", **setting),
                           mk.score_mask(scores, seed=1, backend="torch", **setting)), (setting, dtype, shape)


@needs_cpp
@pytest.mark.parametrize("tokens", [1, 2, 255, 256, 257, 700])
def test_cpp_selection_equals_the_oracle(tokens):
    """The cpp ranking selects the guided tokens by radix passes over the key bytes and sorts only where
    the hints read ranks: every guided count from none to all, on scores whose keys differ in the top byte
    only, in the low byte only, not at all, or anywhere (fresh random floats), without and with hints."""
    gen = torch.Generator().manual_seed(tokens)
    kinds = [torch.rand(3, tokens, generator=gen),
             torch.randn(3, tokens, generator=gen) * 1e30,
             torch.full((3, tokens), 0.25),
             1.0 + torch.randint(0, 4, (3, tokens), generator=gen) * 2.0**-23,       # the low byte only
             torch.ldexp(torch.ones(3, tokens), torch.randint(-60, 60, (3, tokens), generator=gen))]
    for scores in kinds:
        for guided in sorted({0, 1, tokens // 3, tokens // 2, tokens - 1, tokens}):
            for largest in (True, False):
                for hint_pool in (0.0, 0.5):
                    setting = dict(mask_ratio=guided / tokens, largest=largest, hint_pool=hint_pool,
                                   hint_ratio=hint_pool / 2)
                    got = mk.score_mask(scores, backend="cpp", seed=guided, **setting)
                    assert torch.equal(got, oracle(scores, seed=guided, **setting)), (tokens, guided, setting)


@needs_cpp
def test_repeated_call_fast_path_same_bits_and_type_checks():
    """A repeated call (settings cached: `_C` straight) gives the bits of the validated call and of the
    oracle; an argument equal in value but of a refused type still meets the checks."""
    scores = _scores(4, 50)
    setting = {"score_share": 0.5, "hint_pool": 0.2, "hint_ratio": 0.1, "seed": 3}
    first = mk.score_mask(scores, 0.5, backend="cpp", **setting)
    assert torch.equal(mk.score_mask(scores, 0.5, **setting), first)
    assert torch.equal(first, mk.score_mask(scores, 0.5, backend="torch", **setting))
    with pytest.raises(TypeError, match="largest"):
        mk.score_mask(scores, 0.5, largest=1, **setting)
    mk.score_mask(scores, 1.0, seed=0)  # cached: True == 1.0 as a dict key, but not as a mask_ratio
    with pytest.raises(TypeError, match="mask_ratio"):
        mk.score_mask(scores, True, seed=0)
    with pytest.raises(TypeError, match="mask_ratio"):  # unhashable: the checks name it
        mk.score_mask(scores, [0.5], seed=0)


def test_fp64_scores_are_ordered_exactly():
    """Values equal in float32 but not in float64 keep their float64 order."""
    s = torch.tensor([[1.0, 1.0 + 2**-40, 1.0 - 2**-40, 0.5]], dtype=torch.float64)
    for be in ("torch", "cpp") if _native.available() else ("torch",):
        assert mk.score_mask(s, num_masked=1, seed=0, backend=be).tolist() == [[False, True, False, False]]
        assert mk.score_mask(s, num_masked=1, largest=False, seed=0, backend=be).tolist() == \
            [[False, False, False, True]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_take_the_lower_index_first_and_nan_ranks_above_inf(backend):
    equal = torch.zeros(2, 10)
    assert mk.score_mask(equal, 0.3, seed=0, backend=backend)[0].nonzero().flatten().tolist() == [0, 1, 2]
    assert mk.score_mask(equal, 0.3, largest=False, seed=0, backend=backend)[0].nonzero().flatten().tolist() == [0, 1, 2]
    s = torch.tensor([[1.0, float("nan"), float("inf"), -0.0, 0.0, float("nan")]])
    assert mk.score_mask(s, num_masked=3, seed=0, backend=backend)[0].nonzero().flatten().tolist() == [1, 2, 5]
    assert mk.score_mask(s, num_masked=2, largest=False, seed=0, backend=backend)[0].nonzero().flatten().tolist() == [3, 4]


@pytest.mark.parametrize("backend", BACKENDS)
def test_counts_guided_part_and_hints(backend):
    scores = torch.randn(300, 196, generator=torch.Generator().manual_seed(3))
    m = mk.score_mask(scores, 0.75, score_share=0.4, seed=2, backend=backend)
    assert (m.sum(1) == 147).all()
    top = scores.argsort(dim=1, descending=True, stable=True)
    assert m.gather(1, top[:, :58]).all()                 # int(147 · 0.4) = 58 guided
    # AttMask-hint: 0.3 masked, 6 of the top int(19.6) = 19 revealed (show_max 0.1, show_ratio 0.03)
    h = mk.score_mask(scores, 0.3, hint_pool=0.1, hint_ratio=0.03, seed=2, backend=backend)
    assert (h.sum(1) == 58 - 5).all()                       # int(196 · 0.03) = 5 hints
    assert (h.gather(1, top[:, :19]).sum(1) == 14).all() and h.gather(1, top[:, 19:58]).all()


def test_no_gradient_and_scores_may_require_grad():
    scores = torch.randn(4, 16, requires_grad=True)
    for be in ("torch", "cpp") if _native.available() else ("torch",):
        m = mk.score_mask(scores * 2, 0.5, score_share=0.5, seed=0, backend=be)
        assert m.dtype == torch.bool and not m.requires_grad and m.grad_fn is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_split_with_sample_offset_gives_the_whole_batch(backend):
    scores = _scores(9, 50)
    kw = {"score_share": 0.5, "hint_pool": 0.2, "hint_ratio": 0.1, "seed": 8, "backend": backend}
    whole = mk.score_mask(scores, 0.7, **kw)
    parts = [mk.score_mask(scores[o:o + n], 0.7, sample_offset=o, **kw) for o, n in ((0, 2), (2, 1), (3, 6))]
    assert torch.equal(torch.cat(parts), whole)


def test_attmask_high_and_low_exactly():
    attention = np.random.default_rng(0).random((64, 196))
    for mode, largest in (("attmask_high", True), ("attmask_low", False)):
        theirs = upstream.attmask(attention, 1.0, mode, 0.3, 0.0, 0.1)
        ours = mk.score_mask(torch.from_numpy(attention), 0.3, largest=largest, seed=0)
        assert np.array_equal(theirs, ours.numpy())


def _coverage_z(a, b):
    p1, p2 = a.double().mean(0), b.double().mean(0)
    pooled = (p1 + p2) / 2
    return ((p1 - p2) / torch.sqrt(pooled * (1 - pooled) * 2 / a.shape[0]).clamp_min(1e-12)).abs().max()


def test_attmask_hint_in_distribution():
    """20 000 masks of one attention map: AttMask-hint's multinomial reveal vs our selection sampling,
    per-token frequency of being masked (z-scores) and the exact counts."""
    n = 20_000
    attention = np.random.default_rng(1).random((1, 196)).repeat(n, 0)
    theirs = torch.from_numpy(upstream.attmask(attention, 1.0, "attmask_hint", 0.3, 0.1 * 0.3, 0.1,
                                               rnd=upstream.TorchLikeRandom(2)))
    be = "cpp" if _native.available() else "torch"
    ours = mk.score_mask(torch.from_numpy(attention), 0.3, hint_pool=0.1, hint_ratio=0.1 * 0.3, seed=3, backend=be)
    assert (theirs.sum(1) == ours.sum(1)).all() and (ours.sum(1) == 58 - 5).all()
    assert _coverage_z(theirs, ours) < 5


def test_hpm_in_distribution():
    """HPM at epoch 120 of 200 (keep_ratio 0.3025): the hard tokens exactly, the random rest in
    distribution (20 000 masks of one loss map)."""
    n = 20_000
    loss = np.random.default_rng(4).random((1, 196)).repeat(n, 0)
    theirs = torch.from_numpy(upstream.hpm_generate_mask(loss, 0.75, epoch=120, rnd=upstream.TorchLikeRandom(5))).bool()
    share = float((120 + 1) / 200) * 0.5
    be = "cpp" if _native.available() else "torch"
    ours = mk.score_mask(torch.from_numpy(loss), num_masked=196 - int(196 * (1 - 0.75)), score_share=share, seed=6,
                         backend=be)
    hard = torch.from_numpy(np.argsort(loss[0])[-int(147 * share):])
    assert theirs[:, hard].all() and ours[:, hard].all()
    assert (theirs.sum(1) == 147).all() and (ours.sum(1) == 147).all()
    assert _coverage_z(theirs, ours) < 5


def test_module_and_hpm_share():
    module = mk.nn.ScoreMasking(0.75, score_share=mk.nn.ScoreMasking.hpm_share(120, 200))
    assert module.score_share == float(121 / 200) * 0.5 and "score_share" in repr(module)
    scores = torch.randn(3, 196)
    assert torch.equal(module(scores, seed=1), mk.score_mask(scores, 0.75, score_share=module.score_share, seed=1))


@needs_cpp
def test_catalogue_ops_equal_the_front_doors():
    """The front doors call the cpp glue directly outside torch.compile; the catalogue ops give the same bits."""
    scores = _scores(6, 40)
    assert torch.equal(torch.ops.mimkernels.score_mask.cpp(scores, 30, 12, 8, 3, False, 5, None, 2),
                       mk.score_mask(scores, num_masked=30, score_share=0.4, largest=False, hint_pool=0.2,
                                     hint_ratio=0.075, seed=5, sample_offset=2))
    assert torch.equal(torch.ops.mimkernels.data2vec_block_mask.cpp(3, 4, 14, 3, 5, 39, True, True, False, 7, None, 1,
                                                                    torch.device("cpu")),
                       mk.data2vec_block_mask(3, clone_batch=4, seed=7, sample_offset=1))
