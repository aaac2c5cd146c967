"""dino_collate_masks (mask_zoo/SPEC.md §9) against DINOv2's and DINOv3's collates restated line for line
(benchmarks/upstream_dino.py): exact where upstream is deterministic given its draws (upperbound, the
lists and weights from the masks, v3's exact counts, the strata), distributions over >= 20 000 masks where
the RNGs differ (masked counts per stratum, fraction masked, per-position coverage, block geometry, fixed
seeds and thresholds that cannot flake); torch == cpp (== cuda on a GPU) bit for bit; the outputs'
invariants."""
import random

import numpy as np
import pytest
import torch

from benchmarks import upstream_dino
from mimkernels import _native, rng
from mimkernels.mask_zoo import dino_collate_masks
from mimkernels.mask_zoo import reference as zoo_reference
from mimkernels.masking import block_mask

needs_native = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
gpu = pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs a CUDA build + GPU")

SETTINGS = [dict(), dict(version="v3"), dict(version="v3", random_circular_shift=True),
            dict(mask_probability=1.0, mask_ratio_min_max=(0.3, 0.9)), dict(mask_probability=0.0),
            dict(version="v3", min_num_patches=1, max_num_patches=3, min_aspect=0.5)]
SHAPES = [(64, 16, 16), (7, 5, 9), (5, 1, 6), (1, 14, 14), (0, 4, 4), (9, 2, 2)]


def _equal(a, b):
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
    assert a.upperbound == b.upperbound


@needs_native
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "v2")
def test_cpp_equals_torch(setting):
    for batch, height, width in SHAPES:
        _equal(dino_collate_masks(batch, height, width, seed=11, backend="cpp", **setting),
               dino_collate_masks(batch, height, width, seed=11, backend="torch", **setting))


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("setting", SETTINGS[:4])
def test_gpu_cuda_equals_cpp(setting):
    """One warp per row (dino_mask.h on a WarpTeam), on a side stream: the cpp build's bits."""
    stream = torch.cuda.Stream()
    for batch, height, width in SHAPES + [(256, 37, 41)]:
        with torch.cuda.stream(stream):
            got = dino_collate_masks(batch, height, width, seed=3, device="cuda", backend="cuda", **setting)
        stream.synchronize()
        expected = dino_collate_masks(batch, height, width, seed=3, backend="cpp", **setting)
        _equal(tuple(t.cpu() for t in got), expected)


def test_rows_are_the_block_mask_of_their_stratum():
    """v2: row b is masking.block_mask (the official generator = DINOv2's MaskingGenerator) for sample b with
    the count the plan gives the slot shuffled to row b; the plan's strata are upstream's formula."""
    batch, height, width, seed = 24, 8, 8, 5
    out = dino_collate_masks(batch, height, width, seed=seed, backend="torch")
    probs, _ = zoo_reference.dino_strata(64, 12, (0.1, 0.5))
    counts, _, _ = zoo_reference.dino_slot_plan(batch, height, width, probs, 12, False, False, seed)
    assert sorted(counts.tolist())[:12] == [0] * 12
    lo = (64 * probs[:-1]).long().tolist()
    hi = (64 * probs[1:]).long().tolist()
    assert all(any(a <= c <= b for a, b in zip(lo, hi)) for c in counts.tolist() if c)
    for b in range(batch):
        one = block_mask(1, height, width, int(counts[b]), 4, 32, seed=seed, sample_offset=b, variant="official")
        assert torch.equal(out.collated_masks[b], one.flatten())


@pytest.mark.parametrize("batch,n_tokens,pair,probability", [(256, 256, (0.1, 0.5), 0.5), (7, 45, (0.1, 0.5), 0.5),
                                                             (64, 196, (0.0, 1.0), 1.0), (33, 1, (0.2, 0.7), 0.3),
                                                             (10, 100, (0.5, 0.5), 0.5), (4, 16, (0.1, 0.5), 0.0)])
def test_upperbound_and_lists_as_upstream(batch, n_tokens, pair, probability):
    """upperbound equals upstream's (float32 products); upstream's tail (nonzero, weights) applied to our
    masks gives our lists, which are padded with 0 to upperbound; n_masked_patches counts them."""
    height = {256: 16, 45: 5, 196: 14, 1: 1, 100: 10, 16: 4}[n_tokens]
    width = n_tokens // height
    ours = dino_collate_masks(batch, height, width, mask_ratio_min_max=pair, mask_probability=probability, seed=2)
    empty = upstream_dino.collate_masks_v2(batch, pair, probability, n_tokens, lambda n: np.zeros((height, width), bool),
                                           rnd=random.Random(0))
    assert ours.upperbound == empty["upperbound"]
    theirs = upstream_dino._outputs(list(ours.collated_masks.reshape(batch, height, width)), ours.upperbound)
    n = int(ours.n_masked_patches)
    assert n == theirs["mask_indices_list"].shape[0] == int(theirs["n_masked_patches"]) <= ours.upperbound
    assert torch.equal(ours.mask_indices_list[:n], theirs["mask_indices_list"])
    assert torch.equal(ours.masks_weight[:n], theirs["masks_weight"])
    assert not ours.mask_indices_list[n:].any() and not ours.masks_weight[n:].any()


@needs_native
@pytest.mark.parametrize("version", ["v2", "v3"])
def test_invariants(version):
    out = dino_collate_masks(256, 16, 16, version=version, seed=7)
    masks = out.collated_masks
    n = int(out.n_masked_patches)
    assert torch.equal(out.mask_indices_list[:n], masks.flatten().nonzero().flatten())
    rows_masked = int(masks.any(1).sum())
    assert rows_masked == 128                              # int(B · 0.5) rows ask for >= int(256 · 0.1) cells
    assert abs(float(out.masks_weight.sum()) - rows_masked) < 1e-3
    if version == "v3":                                   # completed: exactly int(N · p_{i+1}) each, so = upperbound
        assert n == out.upperbound


def test_seeds_and_generators():
    a = dino_collate_masks(16, 6, 6, seed=1)
    assert torch.equal(a.collated_masks, dino_collate_masks(16, 6, 6, seed=1).collated_masks)
    assert not torch.equal(a.collated_masks, dino_collate_masks(16, 6, 6, seed=2).collated_masks)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(dino_collate_masks(16, 6, 6, generator=g1).collated_masks,
                       dino_collate_masks(16, 6, 6, generator=g2).collated_masks)
    with pytest.raises(ValueError, match="seed or generator"):
        dino_collate_masks(4, 4, 4, seed=1, generator=g1)


# ---- distributions against upstream (>= 20 000 masks each) ------------------------------------------

COLLATES, BATCH, SIDE = 79, 256, 16          # 79 · 256 = 20 224 masks per side


def _upstream_masks(version: str, shift: bool = False) -> torch.Tensor:
    rnd, np_rng = random.Random(1234), np.random.default_rng(1234)
    generator = upstream_dino.mask_generator(224, 14, complete=version == "v3", rnd=rnd, np_rng=np_rng,
                                             condensed=True)
    collate = upstream_dino.collate_masks_v3 if version == "v3" else upstream_dino.collate_masks_v2
    extra = dict(random_circular_shift=shift) if version == "v3" else {}
    out = [collate(BATCH, (0.1, 0.5), 0.5, SIDE * SIDE, generator, rnd=rnd, **extra)["collated_masks"]
           for _ in range(COLLATES)]
    return torch.stack(out)


def _our_masks(version: str, shift: bool = False) -> torch.Tensor:
    return torch.stack([dino_collate_masks(BATCH, SIDE, SIDE, version=version, random_circular_shift=shift,
                                           seed=rng.derive_seed(99, k)).collated_masks for k in range(COLLATES)])


def _z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample z of the means along axis 0 (a zero-variance pair of equal means gives 0)."""
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
    diff = a.mean(0) - b.mean(0)
    return np.where(se > 0, diff / np.where(se > 0, se, 1), np.where(diff == 0, 0.0, np.inf))


def _transitions(masks: torch.Tensor) -> np.ndarray:
    """Block geometry per mask: horizontal plus vertical masked/visible transitions (block perimeter)."""
    grid = masks.reshape(-1, SIDE, SIDE)
    return ((grid[:, :, 1:] != grid[:, :, :-1]).sum((1, 2)) + (grid[:, 1:] != grid[:, :-1]).sum((1, 2))).numpy()


@pytest.mark.parametrize("complete", [False, True])
def test_condensed_oracle_is_upstream(complete):
    """The statistics' oracle (numpy slice fill) gives the line-for-line generator's masks, draw for draw."""
    made = []
    for cls in (upstream_dino.MaskingGenerator, upstream_dino.CondensedMaskingGenerator):
        generator = cls((16, 16), max_num_patches=128.0, complete=complete, rnd=random.Random(3),
                        np_rng=np.random.default_rng(3))
        made.append(np.stack([generator(count) for count in range(0, 200, 7)] * 5))
    assert np.array_equal(*made)


@pytest.fixture(scope="module")
def samples():
    if not _native.available():
        pytest.skip("mimkernels._C not built")
    return {version: (_upstream_masks(version), _our_masks(version)) for version in ("v2", "v3")}


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_distribution_vs_upstream(samples, version):
    theirs, ours = samples[version]                       # (collates, B, N)
    assert theirs.shape == ours.shape == (COLLATES, BATCH, SIDE * SIDE)
    count_t, count_o = theirs.sum(2), ours.sum(2)
    # fraction masked: exactly half the rows of every collate on both sides
    assert ((count_t > 0).sum(1) == BATCH // 2).all() and ((count_o > 0).sum(1) == BATCH // 2).all()
    # masked counts per stratum: the k-th smallest count of a collate, k over the 128 masked rows
    strata_t = count_t.sort(1).values[:, BATCH // 2:].double().numpy()
    strata_o = count_o.sort(1).values[:, BATCH // 2:].double().numpy()
    if version == "v3":  # deterministic: exactly int(N · p_{i+1}) per stratum, both sides
        assert np.array_equal(strata_t, strata_o)
    else:
        z = _z(strata_t, strata_o)
        assert np.abs(z).max() < 5.5, f"stratum {np.abs(z).argmax()}: z = {z[np.abs(z).argmax()]:.1f}"
        mean_z = _z(count_t.flatten().double().numpy(), count_o.flatten().double().numpy())
        assert abs(mean_z) < 5, f"mean masked count differs: z = {mean_z:.1f}"
    # per-position coverage (256 positions, two-sample z each) and block geometry
    cover_t = theirs.reshape(-1, SIDE * SIDE).double().numpy()
    cover_o = ours.reshape(-1, SIDE * SIDE).double().numpy()
    z = _z(cover_t, cover_o)
    assert np.abs(z).max() < 5.5, f"coverage at {np.abs(z).argmax()}: z = {z[np.abs(z).argmax()]:.1f}"
    masked = (count_t.flatten() > 0).numpy(), (count_o.flatten() > 0).numpy()
    geo_z = _z(_transitions(theirs)[masked[0]].astype(float), _transitions(ours)[masked[1]].astype(float))
    assert abs(geo_z) < 5, f"block perimeter differs: z = {geo_z:.1f}"


def test_distribution_tests_can_fail(samples):
    """The statistics above separate v2 from v3 (v3 asks for the stratum maximum and completes): the
    tests have power."""
    (v2, _), (v3, _) = samples["v2"], samples["v3"]
    strata = [m.sum(2).sort(1).values[:, BATCH // 2:].double().numpy() for m in (v2, v3)]
    assert np.abs(_z(*strata)).max() > 10


@needs_native
def test_circular_shift_coverage_vs_upstream():
    """v3's random circular shift spreads the masks: coverage per position matches upstream's (2 560 masks),
    and is flat (the border no less covered than the centre), unlike the unshifted v3."""
    global COLLATES
    saved, COLLATES = COLLATES, 10
    try:
        theirs, ours = _upstream_masks("v3", shift=True), _our_masks("v3", shift=True)
    finally:
        COLLATES = saved
    cover_t = theirs.reshape(-1, SIDE * SIDE).double().numpy()
    cover_o = ours.reshape(-1, SIDE * SIDE).double().numpy()
    assert np.abs(_z(cover_t, cover_o)).max() < 5.5
    grid = cover_o.mean(0).reshape(SIDE, SIDE)
    assert abs(grid[0].mean() - grid[6:10, 6:10].mean()) < 0.03


@needs_native
def test_collator_as_upstream_dict_and_seeding():
    """DinoMaskCollator: upstream's dict (crops stacked crop-major, cast to dtype), masks drawn with
    MaskCollator's seed for (epoch, rank 0, batch index), through a DataLoader."""
    from mimkernels.mask_zoo.nn import DinoMaskCollator

    def sample(i):
        return ({"global_crops": [torch.full((3, 8, 8), float(i + 10 * c)) for c in range(2)],
                 "local_crops": [torch.full((3, 4, 4), float(i)) for _ in range(3)]}, ())

    collator = DinoMaskCollator(4, dtype=torch.float16, seed=5, version="v3")
    collator.set_epoch(2)
    loader = torch.utils.data.DataLoader([sample(i) for i in range(12)], batch_size=4, collate_fn=collator)
    for k, batch in enumerate(loader):
        assert batch["collated_global_crops"].shape == (8, 3, 8, 8) and batch["collated_global_crops"].dtype == torch.float16
        assert batch["collated_global_crops"][4, 0, 0, 0] == 10 + 4 * k   # crop 1 of sample 0 comes after crop 0 of all
        assert batch["collated_local_crops"].shape == (12, 3, 4, 4)
        expected = dino_collate_masks(8, 4, 4, version="v3", seed=rng.derive_seed(rng.derive_seed(5, 2), 0, k))
        assert torch.equal(batch["collated_masks"], expected.collated_masks)
        assert batch["upperbound"] == expected.upperbound and torch.equal(batch["n_masked_patches"], expected.n_masked_patches)
    with pytest.raises(ValueError, match="version"):
        DinoMaskCollator(4, version="v9")
