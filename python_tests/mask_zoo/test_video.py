"""VideoMAE's tube mask and VideoMAE v2's running-cell mask (mask_zoo/SPEC.md §4, §5) against the upstream
generators restated (benchmarks/upstream_videomae.py): exact where upstream is deterministic given its
draws, distribution tests (20 000 masks, fixed seeds) where the generators differ; cpp == torch bit for bit;
batch splits; the drop-in classes in VideoMAE's dataset."""
import itertools

import numpy as np
import pytest
import torch
from scipy import stats

import mimkernels as mk
from benchmarks import upstream_videomae as upstream
from mimkernels import _native
from mimkernels.mask_zoo import nn as zoo_nn

BACKENDS = ["torch"] + (["cpp"] if _native.available() else [])
needs_cpp = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
N_MASKS = 20_000
P_FLOOR = 1e-6  # fixed seeds: a test below it fails every run, never by chance


def fast_backend():
    return "cpp" if _native.available() else "torch"


# ---- tube ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("frames, height, width, ratio", [(8, 14, 14, 0.9), (3, 5, 7, 0.5), (2, 1, 1, 0.9),
                                                          (1, 3, 3, 0.0), (4, 3, 3, 1.0), (2, 4, 5, 0.25)])
def test_tube_frames_identical_and_exact_count(backend, frames, height, width, ratio):
    m = mk.tube_mask(64, frames, height, width, ratio, seed=7, backend=backend)
    assert m.dtype == torch.bool and m.shape == (64, frames * height * width)
    grid = m.view(64, frames, height * width)
    assert torch.equal(grid, grid[:, :1].expand_as(grid))
    count = int(ratio * height * width)  # VideoMAE's int(mask_ratio · H·W)
    assert (grid[:, 0].sum(1) == count).all()


def test_tube_count_is_videomae_truncation():
    """int(0.9 · 196) = 176 (not round(), not ceil), as upstream's constructor computes it."""
    gen = upstream.TubeMaskingGenerator((8, 14, 14), 0.9)
    assert gen.num_masks_per_frame == 176 == int(mk.tube_mask(1, seed=0).view(8, 196)[0].sum())
    # (0.03, 30, 30), (0.09, 10, 30): ratio · H · W would truncate to one less than upstream's ratio · (H·W)
    for ratio, h, w in ((0.3, 10, 10), (0.95, 10, 10), (0.1 + 0.2, 10, 10), (0.03, 30, 30), (0.09, 10, 30)):
        want = upstream.TubeMaskingGenerator((1, h, w), ratio).num_masks_per_frame
        for backend in BACKENDS:
            assert int(mk.tube_mask(1, 1, h, w, ratio, seed=0, backend=backend).sum()) == want


@pytest.mark.parametrize("cells, masked", [(6, 3), (6, 4), (5, 1)])
def test_tube_subset_frequencies_match_upstream(cells, masked):
    """Every subset of `masked` of `cells` positions is equally likely, in ours (Floyd's picks of the
    masked set or of its complement) and in upstream's np.random.shuffle: χ² over all C(cells, masked)
    subsets, 20 000 masks each."""
    ours = mk.tube_mask(N_MASKS, 2, 1, cells, masked / cells + 1e-9, seed=11, backend=fast_backend())
    ours = ours.view(N_MASKS, 2, cells)[:, 0].numpy()
    gen = upstream.TubeMaskingGenerator((2, 1, cells), masked / cells + 1e-9, rnd=np.random.RandomState(5))
    theirs = np.stack([gen().reshape(2, cells)[0] for _ in range(N_MASKS)]).astype(bool)
    subsets = {s: k for k, s in enumerate(itertools.combinations(range(cells), masked))}
    for masks in (ours, theirs):
        index = [subsets[tuple(np.flatnonzero(row))] for row in masks]
        counts = np.bincount(index, minlength=len(subsets))
        assert stats.chisquare(counts).pvalue > P_FLOOR, counts


def test_tube_coverage_matches_upstream_at_videomae_defaults():
    """Per-position coverage at 8 × 14 × 14, ratio 0.9: every position masked with probability 176 / 196,
    in ours and upstream's (χ² against the expected counts), and the two agree (two-sample χ²)."""
    ours = mk.tube_mask(N_MASKS, seed=3, backend=fast_backend()).view(N_MASKS, 8, 196)[:, 0].sum(0).numpy()
    gen = upstream.TubeMaskingGenerator((8, 14, 14), 0.9, rnd=np.random.RandomState(3))
    theirs = sum(gen().reshape(8, 196)[0] for _ in range(N_MASKS))
    # visible counts per position: expected N · 20 / 196 each
    for counts in (ours, theirs):
        visible = N_MASKS - np.asarray(counts)
        assert stats.chisquare(visible, np.full(196, N_MASKS * 20 / 196)).pvalue > P_FLOOR
    table = np.stack([N_MASKS - ours, N_MASKS - np.asarray(theirs)])
    assert stats.chi2_contingency(table).pvalue > P_FLOOR


@needs_cpp
@pytest.mark.parametrize("frames, height, width, ratio", [(8, 14, 14, 0.9), (3, 5, 7, 0.5), (2, 9, 2, 0.2),
                                                          (1, 1, 1, 1.0), (2, 16, 16, 0.75)])
def test_tube_cpp_equals_torch(frames, height, width, ratio):
    for seed in (0, 1, 2**64 - 1):
        want = mk.tube_mask(33, frames, height, width, ratio, seed=seed, sample_offset=5, backend="torch")
        got = mk.tube_mask(33, frames, height, width, ratio, seed=seed, sample_offset=5, backend="cpp")
        assert torch.equal(got, want)


@pytest.mark.parametrize("op, kwargs", [("tube_mask", {}), ("running_cell_mask", {}),
                                        ("tube_mask", {"frames": 2, "height": 3, "width": 5, "mask_ratio": 0.4})])
@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_split_reproduces_the_batch(op, kwargs, backend):
    fn = getattr(mk, op)
    whole = fn(10, seed=99, backend=backend, **kwargs)
    parts = torch.cat([fn(3, seed=99, sample_offset=0, backend=backend, **kwargs),
                       fn(7, seed=99, sample_offset=3, backend=backend, **kwargs)])
    assert torch.equal(parts, whole)
    assert not torch.equal(fn(10, seed=98, backend=backend, **kwargs), whole)


def test_generator_and_default_seeding():
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(mk.tube_mask(4, generator=g1), mk.tube_mask(4, generator=g2))
    torch.manual_seed(0)
    a = mk.running_cell_mask(64)
    torch.manual_seed(0)
    assert torch.equal(a, mk.running_cell_mask(64))


# ---- running cell ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("frames, height, width, ratio", [(8, 14, 14, 0.5), (8, 14, 14, 0.25), (3, 4, 6, 0.75),
                                                          (5, 2, 2, 0.5), (1, 8, 4, 0.9)])
def test_running_cell_is_one_of_upstreams_four_maps(backend, frames, height, width, ratio):
    """Exact: every sample's mask equals one of upstream's all_mask_maps (built without draws)."""
    maps = upstream.RunningCellMaskingGenerator((frames, height, width), ratio).all_mask_maps
    maps = torch.from_numpy(maps.reshape(4, -1).astype(bool))
    m = mk.running_cell_mask(256, frames, height, width, ratio, seed=1, backend=backend)
    which = (m.unsqueeze(1) == maps.unsqueeze(0)).all(-1)
    assert (which.sum(1) == 1).all()
    assert set(which.float().argmax(1).tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("height, width", [(7, 7), (5, 6), (6, 3)])
def test_running_cell_odd_sides_continue_the_pattern(backend, height, width):
    """Odd sides: upstream's map has 2·(H // 2) × 2·(W // 2) cells (it does not fit its own grid); ours
    is that map in the top-left corner, the 2 × 2 pattern continued over the last row / column."""
    frames = 4
    gen = upstream.RunningCellMaskingGenerator((frames, height, width), 0.5)
    h2, w2 = 2 * (height // 2), 2 * (width // 2)
    assert gen.all_mask_maps.shape == (4, frames, h2 * w2)
    maps = torch.from_numpy(gen.all_mask_maps.reshape(4, frames, h2, w2).astype(bool))
    m = mk.running_cell_mask(64, frames, height, width, 0.5, seed=2, backend=backend).view(64, frames, height, width)
    corner = m[:, :, :h2, :w2]
    assert ((corner.unsqueeze(1) == maps.unsqueeze(0)).flatten(2).all(-1).sum(1) == 1).all()
    assert torch.equal(m[:, :, 2:], m[:, :, :-2]) and torch.equal(m[..., 2:], m[..., :-2])  # period 2


def test_running_cell_map_frequencies():
    """Which of the 4 maps: uniform (upstream's np.random.randint(4)), χ² over 20 000 samples, ours and
    upstream's."""
    frames, h, w = 8, 14, 14
    gen = upstream.RunningCellMaskingGenerator((frames, h, w), 0.5, rnd=np.random.RandomState(8))
    maps = torch.from_numpy(gen.all_mask_maps.reshape(4, -1).astype(bool))
    m = mk.running_cell_mask(N_MASKS, frames, h, w, 0.5, seed=12, backend=fast_backend())
    # the map is fixed by frame 0's top-left 2 × 2 cell
    key = lambda masks: (masks[:, :2].long() * torch.tensor([1, 2])).sum(1) + 4 * (
        masks[:, w:w + 2].long() * torch.tensor([1, 2])).sum(1)
    map_keys = key(maps).tolist()
    ours = np.bincount([map_keys.index(k) for k in key(m).tolist()], minlength=4)
    theirs_masks = torch.from_numpy(np.stack([gen().reshape(-1) for _ in range(N_MASKS)]).astype(bool))
    theirs = np.bincount([map_keys.index(k) for k in key(theirs_masks).tolist()], minlength=4)
    for counts in (ours, theirs):
        assert stats.chisquare(counts).pvalue > P_FLOOR, counts
    assert stats.chi2_contingency(np.stack([ours, theirs])).pvalue > P_FLOOR


def test_running_cell_rotates_one_slot_per_frame():
    m = mk.running_cell_mask(8, 6, 4, 4, 0.75, seed=0).view(8, 6, 4, 4)
    cell = m[:, :, :2, :2].reshape(8, 6, 4).long()  # slot s = 2·y + x
    assert (cell.sum(-1) == 3).all()
    # frame t + 1 is frame t read one slot further: cell_{t+1}[s] = cell_t[(s + 1) % 4]
    assert torch.equal(cell[:, 1:], cell[:, :-1].roll(-1, dims=-1))


@needs_cpp
@pytest.mark.parametrize("frames, height, width, ratio", [(8, 14, 14, 0.5), (3, 5, 7, 0.25), (2, 1, 1, 0.75)])
def test_running_cell_cpp_equals_torch(frames, height, width, ratio):
    for seed in (0, 5, 2**63 + 3):
        want = mk.running_cell_mask(50, frames, height, width, ratio, seed=seed, sample_offset=9, backend="torch")
        got = mk.running_cell_mask(50, frames, height, width, ratio, seed=seed, sample_offset=9, backend="cpp")
        assert torch.equal(got, want)


# ---- drop-ins in VideoMAE's dataset ---------------------------------------------------------------------

class _Args:
    """The arguments VideoMAE's run_mae_pretraining.py hands its dataset (window_size computed there)."""
    num_frames, input_size, mask_ratio, mask_type = 16, 224, 0.9, "tube"
    decoder_mask_ratio, decoder_mask_type = 0.5, "run_cell"
    window_size = (num_frames // 2, input_size // 16, input_size // 16)


class DataAugmentationForVideoMAEv2:
    """VideoMAE v2's dataset/pretrain_datasets.py DataAugmentationForVideoMAEv2, its masking part as
    upstream writes it, the generator classes taken from wherever the caller imports them (the pixel
    transform left out: it does not touch the masks)."""

    def __init__(self, args, TubeMaskingGenerator, RunningCellMaskingGenerator):
        if args.mask_type == 'tube':
            self.encoder_mask_map_generator = TubeMaskingGenerator(args.window_size, args.mask_ratio)
        if args.decoder_mask_ratio > 0.:  # noqa: SIM102  (upstream's lines)
            if args.decoder_mask_type == 'run_cell':
                self.decoder_mask_map_generator = RunningCellMaskingGenerator(args.window_size,
                                                                              args.decoder_mask_ratio)

    def __call__(self, images):
        process_data = images
        encoder_mask_map = self.encoder_mask_map_generator()
        if hasattr(self, 'decoder_mask_map_generator'):
            decoder_mask_map = self.decoder_mask_map_generator()
        else:
            decoder_mask_map = 1 - encoder_mask_map
        return process_data, encoder_mask_map, decoder_mask_map


def test_drop_in_videomae_v2_dataset_and_engine():
    """Swapping the import line: the dataset runs unchanged, default_collate batches the numpy masks and
    the engine's `.flatten(1).to(torch.bool)` gives the (B, T·H·W) masks, as with upstream's classes."""
    args = _Args()
    for classes in ((upstream.TubeMaskingGeneratorV2, upstream.RunningCellMaskingGenerator),
                    (lambda *a: zoo_nn.TubeMaskingGenerator(*a, flat=False), zoo_nn.RunningCellMaskingGenerator)):
        transform = DataAugmentationForVideoMAEv2(args, *classes)
        batch = torch.utils.data.default_collate([transform(torch.zeros(1)) for _ in range(4)])
        _, bool_masked_pos, decode_masked_pos = batch
        assert bool_masked_pos.shape == decode_masked_pos.shape == (4, 8, 196)
        assert bool_masked_pos.dtype == decode_masked_pos.dtype == torch.float64
        bool_masked_pos = bool_masked_pos.flatten(1).to(torch.bool)
        decode_masked_pos = decode_masked_pos.flatten(1).to(torch.bool)
        assert (bool_masked_pos.sum(1) == 8 * 176).all() and (decode_masked_pos.sum(1) == 8 * 98).all()
    # decoder_mask_ratio 0: upstream's `1 - encoder_mask_map` works on our float64 masks too
    args.decoder_mask_ratio = 0.0
    _, enc, dec = DataAugmentationForVideoMAEv2(args, zoo_nn.TubeMaskingGenerator, None)(None)
    assert np.array_equal(dec, 1 - enc) and enc.shape == (8 * 196,)


def test_drop_in_seeds_differ_across_workers_and_repeat_with_a_seed():
    gen = zoo_nn.TubeMaskingGenerator((8, 14, 14), 0.9, seed=5)
    first = [gen() for _ in range(3)]
    again = zoo_nn.TubeMaskingGenerator((8, 14, 14), 0.9, seed=5)
    assert all(np.array_equal(a, again()) for a in first)
    assert not np.array_equal(first[0], first[1])
    torch.manual_seed(0)  # the workers' generators: fixed, so the test cannot flake
    loader = torch.utils.data.DataLoader(list(range(4)), batch_size=1, num_workers=2,
                                         collate_fn=lambda _: zoo_nn.TubeMaskingGenerator((2, 4, 4), 0.5)())
    masks = [m for m in loader]  # seed=None: each call's key from the worker's torch generator
    assert len({m.tobytes() for m in masks}) == 4


def test_drop_in_rejects_what_upstream_asserts():
    with pytest.raises(ValueError, match="mask_ratio"):
        zoo_nn.RunningCellMaskingGenerator((8, 14, 14), 0.2)
    with pytest.raises(AssertionError):
        upstream.RunningCellMaskingGenerator((8, 14, 14), 0.2)


@pytest.mark.parametrize("make", [lambda be: zoo_nn.TubeMaskingGenerator((3, 5, 6), 0.6, seed=5, backend=be),
                                  lambda be: zoo_nn.RunningCellMaskingGenerator((3, 5, 6), 0.5, seed=5, backend=be),
                                  lambda be: zoo_nn.UniformMaskingGenerator((6, 4), 0.75, True, seed=5, backend=be)])
def test_drop_in_call_k_is_the_front_doors_sample_k(make):
    """In the main process call k is sample k under derive_seed(seed, 0), on the direct `_C` path and on
    the front door's torch path alike."""
    from mimkernels import rng
    direct, via_torch = make("auto"), make("torch")
    for k in range(3):
        a, b = direct(), via_torch()
        want = direct.batch(1, rng.derive_seed(5, 0), k)
        want = (want[0] if isinstance(want, tuple) else want).numpy().reshape(-1)
        assert np.array_equal(a.reshape(-1), want) and np.array_equal(b.reshape(-1), want)


@pytest.mark.parametrize("flat", [False, True])
def test_running_cell_drop_in_picks_the_batched_ops_map(flat):
    """The drop-in copies one of its 4 precomputed maps per call, picked by the batched op's draw: calls
    0..31 are running_cell_mask's samples 0..31 (every phase met), each a fresh writable array."""
    from mimkernels import rng
    gen = zoo_nn.RunningCellMaskingGenerator((3, 5, 6), 0.75, seed=7, flat=flat, dtype=np.float32)
    calls = [gen() for _ in range(32)]
    want = mk.running_cell_mask(32, 3, 5, 6, 0.75, seed=rng.derive_seed(7, 0), backend="torch")
    assert len({c.tobytes() for c in calls}) == 4
    assert all(c.shape == ((90,) if flat else (3, 30)) and c.dtype == np.float32 for c in calls)
    assert np.array_equal(np.stack([c.reshape(-1) for c in calls]), want.numpy())
    assert not any(np.shares_memory(a, b) for k, a in enumerate(calls) for b in calls[k + 1:])


@needs_cpp
def test_opcheck_native_ops():
    """The catalogue ops: fakes agree with the kernels (shapes, dtypes), schemas, torch.compile tracing."""
    cpu = torch.device("cpu")
    torch.library.opcheck(torch.ops.mimkernels.tube_mask.cpp, (3, 2, 12, 7, -1, None, 1, cpu))
    torch.library.opcheck(torch.ops.mimkernels.running_cell_mask.cpp, (3, 2, 3, 5, 2, 2**63 - 1, None, 0, cpu))
    torch.library.opcheck(torch.ops.mimkernels.uniform_mask.cpp, (3, 4, 6, 4, 5, None, 2, cpu))
