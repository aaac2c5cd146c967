"""The run's pictures show what they say: the mask colour covers exactly the masked cells and no image
uses it, MAE's paste-back is the input on visible patches and its target column is what the loss
grades, MaskFeat's glyphs sit on the masked cells only, MFM labels every row; and the trivial predictor
of each method is the one its name says."""
import pytest
import torch

import mimkernels
from mimkernels.train import data, viz
from mimkernels.train.methods import MaskFeat, build, denormalize, normalize
from mimkernels.train.ops import Ops

from .common import TINY_MODEL


def _step(name, n=6, seed=3):
    method = build(name, Ops("torch"), 16, 4, TINY_MODEL).eval()
    imgs = data.embedded(16, 0, n, 6)[0].floats()
    with torch.no_grad():
        return method, imgs, method(imgs, seed=seed)


@pytest.mark.parametrize("name", ["mae", "pixmim", "simmim", "maskfeat"])
def test_mask_colour_covers_exactly_the_masked_cells_and_no_image_uses_it(name):
    method, imgs, step = _step(name)
    figure = viz.panels(method, imgs, step.tensors)
    colour = torch.tensor(figure.mask_colour).view(1, 3, 1, 1)
    assert (imgs - colour).abs().amax(1).min() > 0.05                    # absent from every image
    painted = (figure.columns["encoder sees"] == colour).all(1, keepdim=True)
    masked = viz.pixel_mask(step.tensors["mask"], method.grid, method.patch_size).bool()
    assert 0 < masked.sum() < masked.numel()
    assert torch.equal(painted, masked)
    assert torch.equal(figure.columns["encoder sees"] * ~masked, imgs * ~masked)


def test_mask_colour_avoids_the_colours_of_the_images():
    imgs = torch.zeros(2, 3, 4, 4)
    imgs[0, :, 0, 0] = torch.tensor(viz.MASK_COLOURS["magenta"])
    imgs[1, :, 1, 1] = torch.tensor(viz.MASK_COLOURS["cyan"])
    name, _ = viz.pick_mask_colour(imgs)
    assert name not in ("magenta", "cyan")
    assert viz.pick_mask_colour(torch.zeros(1, 3, 2, 2))[0] == "magenta"    # the first of the farthest


@pytest.mark.parametrize("name", ["mae", "pixmim"])
def test_mae_pastes_its_reconstruction_into_the_visible_patches(name):
    method, imgs, step = _step(name)
    figure = viz.panels(method, imgs, step.tensors)
    pasted = figure.columns["reconstruction pasted into the visible"]
    masked = viz.pixel_mask(step.tensors["mask"], method.grid, method.patch_size)
    torch.testing.assert_close(pasted * (1 - masked), imgs * (1 - masked), rtol=0, atol=0)
    # masked patches: the prediction with the target patch's mean and unbiased std
    rows = mimkernels.patchify(step.tensors["target"], 4, backend="torch")
    mean, std = rows.mean(-1, keepdim=True), (rows.var(-1, keepdim=True) + 1e-6).sqrt()
    expected = denormalize(mimkernels.unpatchify(step.tensors["pred"] * std + mean, 4, 3, backend="torch"))
    torch.testing.assert_close(pasted * masked, expected.clamp(0, 1) * masked)
    assert not torch.allclose(pasted * masked, imgs * masked, atol=0.05)   # not the input again


@pytest.mark.parametrize("name", ["mae", "pixmim"])
def test_mae_target_column_is_the_normalized_target_the_loss_grades(name):
    method, imgs, step = _step(name)
    figure = viz.panels(method, imgs, step.tensors)
    title = next(t for t in figure.columns if t.startswith(("target", "low-pass target")))
    rows = mimkernels.patch_norm_target(step.tensors["target"], 4, backend="torch")
    torch.testing.assert_close(step.loss, mimkernels.masked_mse_loss(step.tensors["pred"], rows, step.tensors["mask"],
                                                                     backend="torch"))
    torch.testing.assert_close(figure.columns[title], viz.show_normalized(rows, method))
    assert not torch.allclose(figure.columns[title], imgs, atol=0.05)      # not the input repeated
    if name == "pixmim":   # the low-pass target, not the image
        assert not torch.allclose(rows, mimkernels.patch_norm_target(normalize(imgs), 4, backend="torch"), atol=1e-2)


def test_maskfeat_glyphs_sit_on_the_masked_cells_on_one_scale():
    method, imgs, step = _step("maskfeat")
    figure = viz.panels(method, imgs, step.tensors)
    target, pred = figure.columns["HOG target (masked cells)"], figure.columns["HOG prediction (masked cells)"]
    zoom = target.shape[-1] // 16
    masked = viz.pixel_mask(step.tensors["mask"], method.grid, 4 * zoom).bool()
    context = imgs.repeat_interleave(zoom, 2).repeat_interleave(zoom, 3) / 3
    for column in (target, pred):
        assert torch.equal(column * ~masked, context * ~masked)
        assert torch.equal(column[:, :1] * masked, column[:, 1:2] * masked)   # grey glyphs on masked cells
    assert (target * masked).amax() == 1
    # one scale, in HOG units: a prediction of half the target's HOG draws glyphs of half the brightness
    t = step.tensors
    half_hog = (method.in_hog_units(t["target"], t) / 2 - t["hog_mean"]) / t["hog_std"]
    half = viz.panels(method, imgs, {**t, "pred": half_hog})
    torch.testing.assert_close(half.columns["HOG prediction (masked cells)"] * masked, target * masked / 2)


def test_mfm_labels_every_row_and_draws_everything_in_pixels():
    method, imgs, step = _step("mfm", seed=1)
    figure = viz.panels(method, imgs, step.tensors)
    low = step.tensors["is_low_pass"].tolist()
    assert figure.row_labels == ["low-pass" if x else "high-pass" for x in low] and len(set(low)) == 2
    for title in ("input", "filtered (encoder sees)", "prediction", "original = target"):
        assert figure.columns[title].shape == imgs.shape, title
    filtered = denormalize(step.tensors["corrupted"])
    shown = figure.columns["filtered (encoder sees)"]
    for i, is_low in enumerate(low):
        torch.testing.assert_close(shown[i], (filtered[i] + (0 if is_low else 0.5)).clamp(0, 1))
    torch.testing.assert_close(figure.columns["prediction"], denormalize(step.tensors["pred"]).clamp(0, 1))
    # the put-back column keeps the filtered input's passed frequencies and takes the prediction's removed
    # ones: a prediction equal to the target restores a low-pass image exactly (a high-pass one differs by
    # MFM's clamp of the filtered image to [0, 1])
    removed = 1 - step.tensors["freq_mask"].float()
    pred, corrupted, target = step.tensors["pred"], step.tensors["corrupted"], step.tensors["target"]

    def spectrum_of(x):
        return torch.fft.fftshift(torch.fft.fft2(x.double()), dim=(-2, -1))

    mixed = spectrum_of(viz.put_back_removed_band(pred, corrupted, removed))
    w = removed.unsqueeze(1).double()
    torch.testing.assert_close(mixed * w, spectrum_of(pred) * w, atol=1e-3, rtol=0)
    torch.testing.assert_close(mixed * (1 - w), spectrum_of(corrupted) * (1 - w), atol=1e-3, rtol=0)
    low = step.tensors["is_low_pass"].bool()
    torch.testing.assert_close(viz.put_back_removed_band(target, corrupted, removed)[low], target[low],
                               atol=1e-5, rtol=0)
    assert not torch.allclose(viz.put_back_removed_band(step.tensors["pred"], step.tensors["corrupted"], removed),
                              step.tensors["corrupted"], atol=1e-3)


@pytest.mark.parametrize("name", ["mae", "simmim", "maskfeat", "mfm"])
def test_save_grid_writes_a_titled_png(tmp_path, name):
    method, imgs, step = _step(name, n=3)
    figure = viz.save_grid(method, imgs, step.tensors, tmp_path / "p.png", title="a title")
    assert (tmp_path / "p.png").stat().st_size > 1000 and len(figure.columns) >= 4


@pytest.mark.parametrize("name", ["mae", "maskfeat"])
def test_trivial_predictor_is_the_best_constant(name):
    """The mean of the masked targets: no other constant row scores lower on the same batch."""
    method, _, step = _step(name)
    trivial = method.trivial_loss(step)
    rows = (method.normalized_target(step) if name == "mae" else step.tensors["target"]).float()
    mask = step.tensors["mask"]
    for constant in (torch.zeros(rows.shape[-1]), rows[mask.bool()].mean(0) + 0.05, rows.mean((0, 1))):
        worse = mimkernels.masked_mse_loss(constant.expand_as(rows), rows, mask, backend="torch")
        assert trivial <= worse + 1e-7
    if name == "mae":
        assert 0.8 < trivial < 1.0        # unit-variance rows: the mean row leaves about all of it


def test_simmim_trivial_predictor_is_each_images_visible_mean_colour():
    method, _, step = _step("simmim")
    target, mask = step.tensors["target"], step.tensors["mask"].view(-1, 4, 4)
    visible = 1 - viz.pixel_mask(step.tensors["mask"], method.grid, 4)
    colour = (target * visible).sum((2, 3), keepdim=True) / visible.sum((2, 3), keepdim=True)
    expected = mimkernels.masked_l1_loss(colour.expand_as(target), target, mask, backend="torch")
    torch.testing.assert_close(method.trivial_loss(step), expected)
    perfect = {**step.tensors, "pred": target}
    assert method.spread(type(step)(step.loss, perfect))[0] == pytest.approx(method.spread(step)[1])


def test_mfm_trivial_predictor_is_the_filtered_input():
    method, _, step = _step("mfm")
    t = step.tensors
    torch.testing.assert_close(method.trivial_loss(step),
                               mimkernels.frequency_loss(t["corrupted"], t["target"], t["freq_mask"], backend="torch"))
    assert method.trivial_loss(type(step)(step.loss, {**t, "corrupted": t["target"]})) < 1e-3


def test_spread_is_zero_for_a_constant_prediction():
    method, _, step = _step("maskfeat")
    flat = {**step.tensors, "pred": torch.ones_like(step.tensors["pred"])}
    pred_spread, target_spread = method.spread(type(step)(step.loss, flat))
    assert pred_spread == 0 and target_spread > 0.1
    assert isinstance(method, MaskFeat)
