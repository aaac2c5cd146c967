"""The trainer's data: the embedded set is deterministic and labelled, the crops behave, an image
folder loads its classes and bad folders say what is wrong."""
from pathlib import Path

import pytest
import torch

from mimkernels.train import data


def test_embedded_data_is_deterministic_labelled_and_varied():
    train, test = data.embedded(32, seed=5, n_train=96, n_test=32)
    again, _ = data.embedded(32, seed=5, n_train=96, n_test=32)
    other, _ = data.embedded(32, seed=6, n_train=96, n_test=32)
    assert train.images.shape == (96, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (32, 3, 32, 32)
    assert torch.equal(train.images, again.images) and torch.equal(train.labels, again.labels)
    assert not torch.equal(train.images, other.images)
    assert not torch.equal(train.images[:32], test.images)          # the splits are different draws
    assert set(train.labels.tolist()) == set(range(len(data.SHAPES)))
    assert train.floats().std() > 0.15                               # not blank


def test_embedded_shapes_are_their_class():
    """The label is the drawn shape: a disc's pixels sit within its radius, a ring's centre is background."""
    g = torch.Generator().manual_seed(0)
    imgs, labels = data._draw(64, 48, g)
    assert imgs.shape == (64, 3, 48, 48) and 0 <= imgs.min() and imgs.max() <= 1
    u = torch.linspace(-1.5, 1.5, 61)
    uu, vv = torch.meshgrid(u, u, indexing="ij")
    for k, name in enumerate(data.SHAPES):
        inside = data._shape_distance(torch.tensor(k).view(1, 1, 1), uu[None], vv[None])[0] < 0
        assert inside.any() and not inside.all(), name
        assert not inside[0, 0], name                                   # (-1.5, -1.5) is outside every shape
    ring = data._shape_distance(torch.tensor(3).view(1, 1, 1), uu[None], vv[None])[0]
    assert ring[30, 30] > 0 and ring[30, 30 + 16] < 0                   # hole at the centre, band at 0.8


def test_crops_with_no_freedom_are_identity_or_flip():
    imgs = torch.rand(32, 3, 8, 8)
    out = data.random_resized_crop(imgs, torch.Generator().manual_seed(1), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    flipped = torch.tensor([torch.allclose(o, i.flip(-1), atol=1e-6) for o, i in zip(out, imgs)])
    kept = torch.tensor([torch.allclose(o, i, atol=1e-6) for o, i in zip(out, imgs)])
    assert torch.all(kept | flipped) and kept.any() and flipped.any()
    out = data.simple_resized_crop(imgs, torch.Generator().manual_seed(1), padding=0)
    assert all(torch.allclose(o, i, atol=1e-6) or torch.allclose(o, i.flip(-1), atol=1e-6) for o, i in zip(out, imgs))


def test_simple_crop_shifts_by_whole_pixels_with_reflection():
    imgs = torch.arange(64.0).view(1, 1, 8, 8).expand(64, 3, 8, 8).contiguous()
    out = data.simple_resized_crop(imgs, torch.Generator().manual_seed(2), padding=2)
    assert torch.allclose(out, out.round(), atol=1e-4)                # integer shifts: no interpolation
    shifted = [not torch.allclose(o, i) and not torch.allclose(o, i.flip(-1)) for o, i in zip(out, imgs)]
    assert any(shifted)


def test_random_resized_crop_samples_vary_and_stay_in_range():
    imgs = data.embedded(16, 0, 32, 8)[0].floats()
    a = data.random_resized_crop(imgs, torch.Generator().manual_seed(3))
    b = data.random_resized_crop(imgs, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == imgs.shape and 0 <= a.min() and a.max() <= 1
    assert not torch.allclose(a, imgs)


def write_folder(root: Path, classes: dict[str, int]) -> None:
    """root/<class>/<i>.png, `count` images of each class, class c brighter than class c - 1."""
    from PIL import Image

    for c, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = torch.full((20 + 3 * i, 30, 3), 40 * c + i, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_image_folder_loads_classes_and_splits(tmp_path):
    write_folder(tmp_path, {"cats": 5, "dogs": 5})
    (tmp_path / "notes.txt").write_text("not an image")
    train, test = data.image_folder(tmp_path, 16, seed=0)
    assert train.classes == ("cats", "dogs")
    assert train.images.shape[1:] == (3, 16, 16) and len(train) + len(test) == 10
    assert sorted(test.labels.tolist()) == [0, 1]                      # a fifth of each class
    assert torch.all(train.images[train.labels == 1] >= 40)            # class 1 images are brighter


@pytest.mark.parametrize("layout, message", [
    (None, "not a folder"),
    ({}, "at least 2 classes"),
    ({"only": 3}, "at least 2 classes"),
])
def test_bad_image_folders_say_what_is_wrong(tmp_path, layout, message):
    path = tmp_path / "images"
    if layout is not None:
        path.mkdir()
        write_folder(path, layout)
    with pytest.raises(ValueError, match=message):
        data.image_folder(path, 16, seed=0)


def test_unreadable_image_is_named(tmp_path):
    write_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        data.image_folder(tmp_path, 16, seed=0)
