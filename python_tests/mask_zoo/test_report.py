"""mask_stats (the mask report, mask_zoo/SPEC.md §10) against independent oracles: numpy for coverage,
fractions and the histogram, scipy.ndimage.label for the connected regions (face connectivity in 2-D and
3-D), scipy's exact distance transform for AvgDist; and the heatmap writer."""
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

import mimkernels as mk


def _random_masks(shape, density, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) < density


@pytest.mark.parametrize("shape", [(300, 14, 14), (40, 7, 5), (60, 3, 6, 5), (30, 1, 9), (25, 9, 1)])
@pytest.mark.parametrize("density", [0.1, 0.45, 0.7])
def test_mask_stats_equals_numpy_and_scipy(shape, density):
    masks = _random_masks(shape, density, seed=len(shape) * 100 + int(density * 10))
    stats = mk.mask_stats(masks)
    m = masks.numpy()
    cells = int(np.prod(shape[1:]))
    np.testing.assert_array_equal(stats.coverage.numpy(), m.mean(0))
    np.testing.assert_array_equal(stats.masked_fraction.numpy(), m.reshape(len(m), -1).sum(1) / cells)
    np.testing.assert_array_equal(stats.count_histogram.numpy(),
                                  np.bincount(m.reshape(len(m), -1).sum(1), minlength=cells + 1))
    np.testing.assert_array_equal(stats.num_blocks.numpy(), [ndimage.label(x)[1] for x in m])
    frames = m.reshape(-1, *shape[-2:])
    per_frame = np.array([ndimage.distance_transform_edt(f)[f].mean() if f.any() else np.nan for f in frames])
    per_frame = per_frame.reshape(len(m), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a mask hiding nothing: the mean of no frame, NaN
        expected = np.nanmean(per_frame, axis=1)  # frames hiding nothing are skipped
    np.testing.assert_allclose(stats.avg_dist.numpy(), expected.astype(np.float32), rtol=1e-6)


def test_regions_that_touch_only_at_a_corner_are_two_and_a_snake_is_one():
    corner = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=torch.bool)
    snake = torch.zeros(9, 9, dtype=torch.bool)
    snake[0::2] = True
    snake[1::4, -1] = True
    snake[3::4, 0] = True  # one path through every row: the longest label propagation
    assert mk.mask_stats(torch.stack([corner, corner.T.flip(0)])).num_blocks.tolist() == [2, 2]
    assert mk.mask_stats(snake[None]).num_blocks.tolist() == [1]


def test_flat_masks_with_grid_and_any_dtype():
    masks = mk.block_mask(64, 6, 8, 20, 4, seed=3)
    flat = mk.mask_stats(masks.reshape(64, 48).to(torch.float16) * 3, grid=(6, 8))
    for a, b in zip(flat, mk.mask_stats(masks)):
        assert torch.equal(a, b)


def test_extreme_masks_nothing_hidden_and_everything_hidden():
    stats = mk.mask_stats(torch.stack([torch.zeros(4, 4, dtype=torch.bool), torch.ones(4, 4, dtype=torch.bool)]))
    assert stats.num_blocks.tolist() == [0, 1]
    assert stats.masked_fraction.tolist() == [0.0, 1.0]
    assert torch.isnan(stats.avg_dist[0]) and torch.isinf(stats.avg_dist[1])
    assert stats.count_histogram[[0, 16]].tolist() == [1, 1] and stats.count_histogram.sum() == 2
    assert stats.summary()["avg_dist_mean"] != stats.summary()["avg_dist_mean"]  # NaN: no finite AvgDist


def test_block_mask_report_shows_its_central_bias_and_the_heatmap_is_written(tmp_path):
    stats = mk.mask_stats(mk.block_mask(4000, seed=0))
    centre, corner = stats.coverage[6:8, 6:8].mean().item(), stats.coverage[0, 0].item()
    assert centre > 5 * corner  # blocks of area >= 15 reach the corner rarely
    s = stats.summary()
    assert s["masks"] == 4000 and s["cells"] == 196 and 0.38 < s["masked_fraction_mean"] <= 78 / 196
    path = tmp_path / "block.png"
    stats.save_heatmap(path, "block_mask 78/15")
    from PIL import Image
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 150


def test_the_mask_report_draws_every_generator(monkeypatch):
    """benchmarks/mask_report.py: every generator's masks in chunks (sample_offset advancing) are the masks of
    one call, and the report's statistics run on them."""
    from benchmarks import mask_report
    monkeypatch.setattr(mask_report, "CHUNK", 16)
    monkeypatch.setattr(mask_report, "JEPA_COLLATE", 16)
    monkeypatch.setattr(mask_report, "DINO_COLLATE", 16)
    for name, (_, draw_one, grid) in mask_report.GENERATORS.items():
        masks = mask_report.draw(name, 40)
        assert masks.shape[0] == 40 and (grid is None or tuple(masks.shape[1:]) == grid), name
        stats = mk.mask_stats(masks)
        assert stats.masked_fraction.shape == (40,) and 0 < stats.masked_fraction.mean() < 1, name
        if "dino" not in name and "context" not in name:  # per-sample streams: chunks = one call
            whole = draw_one(40, 0, 0)
            assert torch.equal(masks, whole.reshape(masks.shape)), name
