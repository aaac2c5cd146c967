"""I-JEPA / V-JEPA multi-block masks (mask_zoo/SPEC.md §2, §3): the official variant equal to the upstream
collators restated (benchmarks/upstream_jepa.py) fed the same draws, the reported defects present in
"official" and absent in the default, distributions against independent oracles (fixed seeds), cpp ==
torch, batch splits."""
import math

import numpy as np
import pytest
import torch

from benchmarks import upstream_jepa
from mimkernels import _native, rng
from mimkernels.mask_zoo import multiblock_mask, multiblock_mask_3d, reference

BACKENDS = ["torch", "cpp"] if _native.available() else ["torch"]
FAST = "cpp" if _native.available() else "torch"

# I-JEPA's ViT-H/14 config (the defaults), ijepa's MaskCollator defaults (the setting of ijepa#60)
VITH14 = dict(height=16, width=16)
IJEPA_DEFAULTS = dict(height=14, width=14, enc_mask_scale=(0.2, 0.8), pred_mask_scale=(0.2, 0.8),
                      aspect_ratio=(0.3, 3.0), num_pred_masks=2, min_keep=4)


class PhiloxFeed:
    """upstream_jepa's `draws` fed mimkernels' draws: the per-call generator's rand() gives the words of
    the batch draw (0, 0, stream, 1) in order; a sample's k-th randint uses word k % per_call of its call
    k // per_call at (call, sample, stream, 0): rng.below(word, high - low) + low."""

    def __init__(self, seed: int, stream: int, per_call: int, calls: int, sample_offset: int = 0):
        self.seed, self.stream, self.per_call, self.calls = seed, stream, per_call, calls
        self.batch = [int(x) for x in rng.philox4x32_10(0, 0, stream, 1, seed)]
        self.sample = sample_offset - 1

    def seeded(self, _counter):
        words = iter(self.batch)

        class Generator:
            @staticmethod
            def rand():
                return reference._unit_float(next(words))
        return Generator

    def begin_sample(self):
        self.sample += 1
        self.k = 0
        self.words = torch.stack(rng.draw(self.seed, torch.arange(self.calls), self.sample, self.stream), 1).tolist()

    def randint(self, low, high):
        call, word = divmod(self.k, self.per_call)
        self.k += 1
        return low + reference._below(self.words[call][word], high - low)


def _ijepa_upstream(kw: dict, seed: int, batch: int):
    H, W = kw.get("height", 16), kw.get("width", 16)
    nenc, npred = kw.get("num_enc_masks", 1), kw.get("num_pred_masks", 4)
    calls = reference.multiblock_calls(nenc, npred, kw.get("allow_overlap", False))
    collator = upstream_jepa.IJepaMaskCollator(
        input_size=(H, W), patch_size=1, enc_mask_scale=kw.get("enc_mask_scale", (0.85, 1.0)),
        pred_mask_scale=kw.get("pred_mask_scale", (0.15, 0.2)), aspect_ratio=kw.get("aspect_ratio", (0.75, 1.5)),
        nenc=nenc, npred=npred, min_keep=kw.get("min_keep", 10), allow_overlap=kw.get("allow_overlap", False),
        draws=PhiloxFeed(seed, rng.STREAM_MULTIBLOCK_2D, 2, calls))
    return collator.masks(batch)


@pytest.mark.parametrize("kw", [VITH14, IJEPA_DEFAULTS, dict(allow_overlap=True, num_enc_masks=2),
                                dict(height=9, width=20, num_enc_masks=2, min_keep=20)])
@pytest.mark.parametrize("seed", [0, 5, 2**64 - 1])
def test_official_equals_ijepa_collator(kw, seed):
    masks_enc, masks_pred = _ijepa_upstream(kw, seed, 48)
    ours = multiblock_mask(48, **kw, variant="official", seed=seed, backend=FAST)
    got_enc, got_pred = ours.to_upstream()
    assert len(got_enc) == len(masks_enc) and len(got_pred) == len(masks_pred)
    for got, want in zip(got_enc + got_pred, masks_enc + masks_pred):
        assert torch.equal(got, torch.from_numpy(want))


@pytest.mark.parametrize("kw", [dict(), dict(spatial_scale=(0.7, 0.7), num_blocks=2),
                                dict(frames=4, height=5, width=7, temporal_scale=(0.3, 0.8),
                                     spatial_scale=(0.1, 0.5), max_temporal_keep=0.5)])
@pytest.mark.parametrize("seed", [0, 9])
def test_official_equals_vjepa_generator(kw, seed):
    T, H, W = kw.get("frames", 8), kw.get("height", 14), kw.get("width", 14)
    blocks = kw.get("num_blocks", 8)
    generator = upstream_jepa.VJepaMaskGenerator(
        crop_size=(H, W), num_frames=T, spatial_patch_size=1, temporal_patch_size=1,
        spatial_pred_mask_scale=kw.get("spatial_scale", (0.15, 0.15)),
        temporal_pred_mask_scale=kw.get("temporal_scale", (1.0, 1.0)), aspect_ratio=(0.75, 1.5), npred=blocks,
        max_context_frames_ratio=kw.get("max_temporal_keep", 1.0), max_keep=50,
        draws=PhiloxFeed(seed, rng.STREAM_MULTIBLOCK_3D, 3, reference.MULTIBLOCK_3D_REDRAWS * blocks),
        max_redraws=reference.MULTIBLOCK_3D_REDRAWS)
    masks_enc, masks_pred = generator(24)
    (got_enc,), (got_pred,) = multiblock_mask_3d(24, **kw, variant="official", seed=seed,
                                                 backend=FAST).to_upstream(max_keep=50)
    assert torch.equal(got_enc, torch.from_numpy(masks_enc)) and torch.equal(got_pred, torch.from_numpy(masks_pred))


@pytest.mark.parametrize("variant", ["fixed", "official"])
def test_cpp_equals_torch_and_batch_split(variant):
    for kw in (VITH14, IJEPA_DEFAULTS, dict(height=3, width=5, min_keep=1)):
        whole = multiblock_mask(12, **kw, variant=variant, seed=11, backend="torch")
        for backend in BACKENDS:
            parts = [multiblock_mask(n, **kw, variant=variant, seed=11, sample_offset=o, backend=backend)
                     for o, n in ((0, 5), (5, 7))]
            for field, a, b in zip(whole, *parts):
                assert torch.equal(field, torch.cat([a, b]))
    for kw in (dict(), dict(frames=2, height=4, width=4, spatial_scale=(0.7, 0.7), num_blocks=2)):
        whole = multiblock_mask_3d(6, **kw, variant=variant, seed=3, backend="torch")
        for backend in BACKENDS:
            parts = [multiblock_mask_3d(3, **kw, variant=variant, seed=3, sample_offset=o, backend=backend)
                     for o in (0, 3)]
            for field, a, b in zip(whole, *parts):
                assert torch.equal(field, torch.cat([a, b]))


def test_layout_and_lists():
    m = multiblock_mask(32, seed=1, backend=FAST)
    assert m.context.shape == (32, 1, 16, 16) and m.targets.shape == (32, 4, 16, 16)
    assert m.context_ids.shape == (32, 1, 256) and m.target_ids.shape == (32, 4, 256)
    assert m.context.dtype == torch.bool and m.context_ids.dtype == torch.int64
    for block, ids, counts in ((m.context, m.context_ids, m.context_counts), (m.targets, m.target_ids, m.target_counts)):
        assert torch.equal(counts, block.flatten(2).sum(-1))
        for b in range(32):
            for k in range(block.shape[1]):
                n = int(counts[b, k])
                listed = ids[b, k, :n]
                assert torch.equal(listed.sort().values, block[b, k].flatten().nonzero().flatten())
                assert not ids[b, k, n:].any()
    # context and targets never overlap (allow_overlap=False, a context block that met min_keep)
    assert not (m.context[:, 0] & m.targets.any(1)).any()
    enc, pred = m.to_upstream()
    keep = int(m.context_counts.min())
    assert enc[0].shape == (32, keep) and all(p.shape == (32, int(m.target_counts.min())) for p in pred)
    for b in range(32):  # a subset of the sample's context, in key order
        assert torch.equal(enc[0][b], m.context_ids[b, 0, :keep])
        assert torch.isin(enc[0][b], m.context[b, 0].flatten().nonzero()).all()
    official = multiblock_mask(32, seed=1, variant="official", backend=FAST)
    enc, _ = official.to_upstream()
    assert bool((enc[0].diff(dim=-1) > 0).all())


def test_seed_and_generator_reproducible():
    a = multiblock_mask(8, generator=torch.Generator().manual_seed(4), backend=FAST)
    b = multiblock_mask(8, generator=torch.Generator().manual_seed(4), backend=FAST)
    c = multiblock_mask(8, seed=5, backend=FAST)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a.context, c.context)


# ---- the reported defects: present in "official", absent in the default -------------------------------

def test_last_row_and_column_never_masked_in_official_only():  # ijepa#40 / #59
    for variant, expect_edge in (("official", False), ("fixed", True)):
        m = multiblock_mask(2000, seed=2, variant=variant, backend=FAST)
        for blocks in (m.targets, m.context):
            covered = blocks.any(1).any(0)
            assert bool(covered[-1, :].any()) == expect_edge and bool(covered[:, -1].any()) == expect_edge


def _cut_coverage(variant: str, kw: dict, batches: int):
    """Per position: how often it is in a context list after to_upstream's cut (observed), how often
    an unbiased cut would keep it (expected: each context cell kept with probability K / count), and
    the variance of that count."""
    n = kw["height"] * kw["width"]
    observed, expected, variance = torch.zeros(n), torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for s in range(batches):
        m = multiblock_mask(128, **kw, variant=variant, seed=1000 + s, backend=FAST)
        enc, _ = m.to_upstream()
        observed += torch.bincount(enc[0].flatten(), minlength=n)
        p = enc[0].shape[1] / m.context_counts[:, 0].double()
        cells = m.context[:, 0].flatten(1).double()
        expected += (cells * p[:, None]).sum(0)
        variance += (cells * (p * (1 - p))[:, None]).sum(0)
    return observed.double(), expected, variance


@pytest.mark.parametrize("kw", [IJEPA_DEFAULTS, VITH14])
def test_batch_minimum_cut_bias_official_only(kw):  # ijepa#60
    obs, exp, var = _cut_coverage("fixed", kw, 12)
    z = (obs - exp) / var.clamp_min(1.0).sqrt()
    assert z.abs().max() < 5.5, z.abs().max()
    assert not bool(((exp > 30) & (obs < exp / 3)).any())
    obs, exp, var = _cut_coverage("official", kw, 12)
    z = (obs - exp) / var.clamp_min(1.0).sqrt()
    assert z.abs().max() > 20
    # the hole: positions the contexts hold often that the cut lists (almost) never contain
    hole = (exp > 30) & (obs < exp / 3)
    assert int(hole.sum()) >= 5, int(hole.sum())


def test_small_resolution_terminates():  # ijepa#68: 56 px at patch 14 -> 4 x 4
    kw = dict(height=4, width=4)
    collator = upstream_jepa.IJepaMaskCollator(input_size=(4, 4), patch_size=1, enc_mask_scale=(0.85, 1.0),
                                               pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1,
                                               npred=4, min_keep=10, max_placements=2000)
    with pytest.raises(RuntimeError, match="Valid mask not found"):
        collator.masks(4)
    for variant in ("official", "fixed"):
        m = multiblock_mask(64, **kw, variant=variant, seed=0, backend=FAST)
        assert bool((m.context_counts > 0).all()) and bool((m.target_counts > 0).all())
    # fixed: a context that cannot keep min_keep cells keeps all it can and stays off the targets more often
    fixed = multiblock_mask(512, **kw, seed=0, backend=FAST)
    official = multiblock_mask(512, **kw, variant="official", seed=0, backend=FAST)
    leak = {name: float((m.context[:, 0] & m.targets.any(1)).flatten(1).any(1).double().mean())
            for name, m in (("fixed", fixed), ("official", official))}
    assert leak["fixed"] < leak["official"], leak


def test_first_frames_cut_official_only():  # jepa#50: 64 px, patch 16, 2 frames, 8 blocks of scale 0.15
    kw = dict(frames=2, height=4, width=4, aspect_ratio=(0.75, 1.5), num_blocks=8, spatial_scale=(0.15, 0.15))
    share = {}
    for variant in ("official", "fixed"):
        first = total = 0
        for s in range(200):
            (enc,), _ = multiblock_mask_3d(16, **kw, variant=variant, seed=s, backend=FAST).to_upstream()
            first += int((enc < 16).sum())
            total += enc.numel()
        share[variant] = (first / total, total)
    # blocks span both frames, so the context holds as many first-frame tokens as second-frame ones
    p, n = share["fixed"]
    assert abs(p - 0.5) < 5 * math.sqrt(0.25 / n) * 4, share  # cells of a sample are paired: variance x <= 4^2
    assert share["official"][0] > 0.6, share


# ---- distributions against independent oracles (>= 20 000 masks, fixed seeds) -------------------------

@pytest.mark.parametrize("variant", ["fixed", "official"])
def test_target_placement_uniform(variant):
    """Per-position coverage of target block 0 over 20 000 masks against the exact probability of a
    uniformly placed h x w block (top in [0, H - h] inclusive for fixed, [0, H - h) for official)."""
    H = W = 16
    parts = [multiblock_mask(2000, height=H, width=W, seed=123, variant=variant, sample_offset=o, backend=FAST)
             for o in range(0, 20_000, 2000)]  # batch x blocks x cells <= 2^22: split, same masks
    targets, counts = torch.cat([m.targets for m in parts]), torch.cat([m.target_counts for m in parts])
    rows, cols = targets[0, 0].any(1).nonzero(), targets[0, 0].any(0).nonzero()
    h, w = len(rows), len(cols)
    assert bool((counts == h * w).all())
    span = 1 if variant == "fixed" else 0

    def line(n, side):
        tops = n - side + span
        return np.array([sum(1 for t in range(tops) if t <= r < t + side) / tops for r in range(n)])

    p = torch.from_numpy(np.outer(line(H, h), line(W, w)))
    observed = targets[:, 0].double().mean(0)
    z = (observed - p) / (p * (1 - p) / 20_000).clamp_min(1e-12).sqrt()
    assert z.abs().max() < 5, z.abs().max()
    assert bool(((p == 0) == (observed == 0)).all())


def test_block_sizes_over_seeds():
    """One size per batch: over 20 000 seeds, the target areas against I-JEPA's size formula applied
    to u ~ U(0, 1) (upstream_jepa's _sample_block_size, the oracle), as a histogram (chi-square)."""
    collator = upstream_jepa.IJepaMaskCollator(input_size=(16, 16), patch_size=1, enc_mask_scale=(0.85, 1.0),
                                               pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5))
    grid = np.linspace(0, 1, 200_001)[:-1] + 0.5 / 200_000

    class U:
        def __init__(self, u):
            self.u = u

        def rand(self):
            return self.u
    upstream = np.array([np.prod(collator._sample_block_size(U(u), (0.15, 0.2), (0.75, 1.5))) for u in grid[::10]])
    ours = np.array([int(multiblock_mask(1, seed=s, variant="official", backend=FAST).target_counts[0, 0])
                     for s in range(20_000)])
    values = np.union1d(upstream, ours)
    expected = np.array([(upstream == v).mean() for v in values]) * len(ours)
    observed = np.array([(ours == v).sum() for v in values])
    keep = expected > 5
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert chi2 < keep.sum() + 6 * math.sqrt(2 * keep.sum()), (chi2, keep.sum())
    assert observed[~keep].sum() < 50


def test_3d_union_coverage_matches_upstream():
    """Per-position coverage of the target union, ours (fixed) against the restated V-JEPA generator on
    Python's random, 20 000 masks each (two-sample z), at a size fixed by the config (aspect 1)."""
    kw = dict(frames=2, height=5, width=5, spatial_scale=(0.2, 0.2), aspect_ratio=(1.0, 1.0), num_blocks=3)
    m = multiblock_mask_3d(20_000, **kw, seed=8, backend=FAST)
    assert bool((m.targets[0, 0].flatten(1).any(1)).all())
    ours = m.targets[:, 0].flatten(1).double().mean(0)
    # the restated generator's own masks, before its batch-minimum cut (block size (2, 2, 2) for this config)
    full = upstream_jepa.VJepaMaskGenerator(crop_size=(5, 5), num_frames=2, spatial_patch_size=1,
                                            temporal_patch_size=1, spatial_pred_mask_scale=(0.2, 0.2),
                                            aspect_ratio=(1.0, 1.0), npred=3, draws=upstream_jepa.PythonDraws(8))
    coverage = np.zeros(50)
    for _ in range(20_000):
        mask = np.ones((2, 5, 5), dtype=np.int32)
        for _ in range(3):
            mask *= full._sample_block_mask((2, 2, 2))
        coverage += mask.flatten() == 0
    theirs = torch.from_numpy(coverage / 20_000)
    pooled = (ours + theirs) / 2
    z = (ours - theirs) / (pooled * (1 - pooled) * 2 / 20_000).clamp_min(1e-12).sqrt()
    assert z.abs().max() < 5, z.abs().max()


# ---- collators: drop-in for ijepa's / lightly's train loops, V-JEPA's -----------------------------------

def test_collator_lists_and_seeding():
    from mimkernels.mask_zoo.nn import MultiBlockMaskCollator
    samples = [torch.full((3,), float(i)) for i in range(8)]
    collator = MultiBlockMaskCollator(224, 14, (0.85, 1.0), (0.15, 0.2), (0.75, 1.5), 1, 4, 10, seed=3)
    collated, masks_enc, masks_pred = collator(samples)
    assert torch.equal(collated, torch.stack(samples)) and len(masks_enc) == 1 and len(masks_pred) == 4
    # the masks of batch 0 of epoch 0: multiblock_mask with MaskCollator's seed
    seed = rng.derive_seed(rng.derive_seed(collator.seed, 0), 0, 0)
    enc, pred = multiblock_mask(8, 16, 16, num_pred_masks=4, seed=seed).to_upstream()
    assert all(torch.equal(a, b) for a, b in zip(masks_enc + masks_pred, enc + pred))
    _, next_enc, _ = collator(samples)
    assert not torch.equal(next_enc[0], masks_enc[0]) or next_enc[0].shape != masks_enc[0].shape


def test_vjepa_collator_vitl16():
    from mimkernels.mask_zoo.nn import MultiBlock3DMaskCollator
    collator = MultiBlock3DMaskCollator(upstream_jepa.VITL16_MASKS, seed=1)
    _, masks_enc, masks_pred = collator([torch.zeros(2) for _ in range(4)])
    assert len(masks_enc) == len(masks_pred) == 2
    for enc, pred in zip(masks_enc, masks_pred):
        assert enc.shape[0] == pred.shape[0] == 4 and enc.dtype == torch.int64
        assert int(enc.max()) < 8 * 14 * 14
        assert not any(bool(torch.isin(enc[b], pred[b]).any()) for b in range(4))


@pytest.mark.parametrize("direct", [True, False], ids=["native_lists", "front_door"])
def test_collator_masks_equal_the_front_door(direct, monkeypatch):
    """The collators' masks (`_C` writes the cut lists: _upstream_lists_cpu; or, without `_C`, the front
    door) are multiblock_mask(...).to_upstream() bit for bit: batch sizes 0, 1, odd and threaded, both
    variants, seeds at the top of the range, a context cut by max_keep, kinds with 0 and 3 blocks, a batch
    larger then smaller than before (the per-thread scratch grows, then is reused); `_C`'s lists contiguous."""
    from mimkernels.mask_zoo.nn import MultiBlock3DMaskCollator, MultiBlockMaskCollator
    if not direct:
        monkeypatch.setattr("mimkernels._native.available", lambda: False)
    elif not _native.available():
        pytest.skip("_C not built")
    cfgs = [dict(spatial_scale=(0.15, 0.15), aspect_ratio=(0.75, 1.5), num_blocks=8),
            dict(spatial_scale=(0.3, 0.7), temporal_scale=(0.5, 1.0), aspect_ratio=(0.5, 2.0), num_blocks=2,
                 max_temporal_keep=0.5, max_keep=40)]
    for variant in ("fixed", "official"):
        collators = [(MultiBlockMaskCollator(60, 5, (0.4, 0.9), (0.1, 0.3), (0.5, 2.0), nenc, npred, 3, variant=variant),
                      dict(height=12, width=12, enc_mask_scale=(0.4, 0.9), pred_mask_scale=(0.1, 0.3),
                           aspect_ratio=(0.5, 2.0), num_enc_masks=nenc, num_pred_masks=npred, min_keep=3))
                     for nenc, npred in ((1, 4), (3, 0), (0, 2))]
        video = MultiBlock3DMaskCollator(cfgs, crop_size=(96, 128), num_frames=8, patch_size=16, variant=variant)
        for batch in (0, 1, 7, 131, 3):
            for seed in (0, 123456789, 2**64 - 1):
                for collator, kwargs in collators:
                    enc, pred = collator.masks(batch, seed)
                    want_enc, want_pred = multiblock_mask(batch, **kwargs, variant=variant, seed=seed).to_upstream()
                    assert len(enc) == len(want_enc) and len(pred) == len(want_pred)
                    for got, want in zip(enc + pred, want_enc + want_pred):
                        assert got.dtype == torch.int64 and torch.equal(got, want)
                        assert got.is_contiguous() or not direct  # to_upstream's are views of the padded lists
                enc, pred = video.masks(batch, seed)
                for k, cfg in enumerate(cfgs):
                    cfg = dict(cfg)
                    max_keep = cfg.pop("max_keep", None)
                    (want_enc,), (want_pred,) = multiblock_mask_3d(
                        batch, 4, 6, 8, **cfg, variant=variant, seed=rng.derive_seed(seed, k)).to_upstream(max_keep)
                    assert torch.equal(enc[k], want_enc) and torch.equal(pred[k], want_pred)
                    assert (enc[k].is_contiguous() and pred[k].is_contiguous()) or not direct
                    assert max_keep is None or batch == 0 or enc[k].shape[1] <= max_keep


def test_collators_pickle_without_their_scratch():
    """A spawned DataLoader worker unpickles the collator: it starts with an empty scratch (no copy of the
    parent's buffers) and draws the same masks."""
    import pickle

    from mimkernels.mask_zoo.nn import MultiBlock3DMaskCollator, MultiBlockMaskCollator
    for collator in (MultiBlockMaskCollator(seed=5), MultiBlock3DMaskCollator(upstream_jepa.VITL16_MASKS, seed=5)):
        want = collator.masks(6, 11)
        copy = pickle.loads(pickle.dumps(collator))
        assert copy._scratch == {} and copy.mask_fn.__self__ is copy
        got = copy.masks(6, 11)
        assert all(torch.equal(a, b) for kind in range(2) for a, b in zip(got[kind], want[kind]))


def test_collator_in_dataloader_workers():
    """Forked workers (each with its own scratch, the parent's copied at fork) give batch k the masks of
    MaskCollator's seed for batch k, whatever worker made it."""
    from mimkernels.mask_zoo.nn import MultiBlockMaskCollator
    collator = MultiBlockMaskCollator(seed=2)
    collator.masks(3, 0)  # the parent has a scratch before the fork
    loader = torch.utils.data.DataLoader([torch.zeros(2)] * 12, batch_size=3, num_workers=2, collate_fn=collator,
                                         multiprocessing_context="fork")
    for k, (_, masks_enc, masks_pred) in enumerate(loader):
        want_enc, want_pred = collator.masks(3, rng.derive_seed(rng.derive_seed(collator.seed, 0), 0, k))
        assert all(torch.equal(a, b) for a, b in zip(masks_enc + masks_pred, want_enc + want_pred))


def test_lightly_ijepa_drop_in():
    """mimkernels' collator in place of lightly's IJEPAMaskCollator: the same outputs' structure, consumed
    by lightly's apply_masks; lightly's copy of upstream never puts the last row or column in a mask."""
    pytest.importorskip("lightly")
    from lightly.data.ijepa_collate import IJEPAMaskCollator
    from lightly.models.utils import apply_masks

    from mimkernels.mask_zoo.nn import MultiBlockMaskCollator
    args = dict(input_size=(224, 224), patch_size=14, enc_mask_scale=(0.85, 1.0), pred_mask_scale=(0.15, 0.2),
                aspect_ratio=(0.75, 1.5), nenc=1, npred=4, min_keep=10)
    samples = [(torch.randn(3, 4, 4), 0) for _ in range(16)]
    theirs, ours = IJEPAMaskCollator(**args), MultiBlockMaskCollator(**args, seed=0)
    torch.manual_seed(0)
    seen = torch.zeros(256, dtype=torch.bool)
    for _ in range(4):
        got, want = ours(samples), theirs(samples)
        assert type(got) is type(want) and len(got) == len(want) == 3
        for ours_lists, their_lists in zip(got[1:], want[1:]):
            assert len(ours_lists) == len(their_lists)
            for a, b in zip(ours_lists, their_lists):
                assert a.dtype == b.dtype == torch.int64 and a.shape[0] == b.shape[0] == 16
        tokens = torch.randn(16, 256, 8)
        assert apply_masks(tokens, got[1]).shape == (16, got[1][0].shape[1], 8)
        assert apply_masks(tokens, got[2]).shape == (64, got[2][0].shape[1], 8)
        for lists in want[1:]:
            for t in lists:
                seen[t.flatten()] = True
    edge = seen.view(16, 16)
    assert not bool(edge[-1].any()) and not bool(edge[:, -1].any())


@pytest.mark.parametrize("backend", [FAST, "torch"])
def test_fixed_lists_every_order_equally_likely(backend):
    """The fixed variant's shuffle (SPEC.md §2, §3: Fisher-Yates run forward) against the law it must have:
    on a 1 x 5 grid a 1-cell target leaves a 4-cell context, whose 24 orders are equally likely (chi-square),
    whatever the cells are; the official lists stay ascending."""
    batch = 24_000 if backend == FAST else 2_400
    kw = dict(frames=1, height=1, width=5, spatial_scale=(0.2, 0.2), aspect_ratio=(1.0, 1.0), num_blocks=1)
    m = multiblock_mask_3d(batch, **kw, seed=5, backend=backend)
    assert bool((m.context_counts[:, 0] == 4).all()) and bool((m.target_counts[:, 0] == 1).all())
    listed = m.context_ids[:, 0, :4]
    ranks = listed.argsort(1).argsort(1)  # the order of the 4 cells, whichever they are
    code = (ranks * torch.tensor([1, 4, 16, 64])).sum(1)
    observed = torch.bincount(code, minlength=256).double()
    observed = observed[observed > 0]
    assert observed.numel() == 24
    expected = batch / 24
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 23 + 6 * math.sqrt(2 * 23), chi2
    official = multiblock_mask_3d(64, **kw, variant="official", seed=5, backend=backend)
    assert bool((official.context_ids[:, 0, :4].diff(dim=-1) > 0).all())
