"""The reference trainer (`python -m mimkernels.train`) at tiny settings: every available method
trains and writes its outputs, `--ops torch` and `--ops mimkernels` give the same loss curve, DDP
runs on two CPU processes, resume continues a run, bad inputs fail clearly, the data is deterministic."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mimkernels
from mimkernels import _dispatch
from mimkernels.train import data, probe
from mimkernels.train.__main__ import main, parser
from mimkernels.train.methods import METHODS, ModelConfig, availability, build
from mimkernels.train.ops import Ops
from mimkernels.train.vit import Encoder, sincos_positions

AVAILABLE = [name for name, lacking in availability().items() if not lacking]
REPO = Path(__file__).resolve().parents[1]
# 16 px images, 4 px patches (a 4 × 4 grid), a one-block ViT: seconds per run on one CPU core
TINY = ["--epochs", "1", "--train-size", "48", "--test-size", "24", "--batch-size", "16", "--img-size", "16",
        "--patch-size", "4", "--dim", "32", "--depth", "1", "--heads", "2", "--decoder-dim", "16",
        "--decoder-depth", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices: one thread is faster than two on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


needs_mae = pytest.mark.skipif("mae" not in AVAILABLE, reason=f"MAE needs {availability()['mae']} (not landed)")


def test_a_method_whose_ops_are_missing_says_which(monkeypatch, capsys):
    monkeypatch.setattr(METHODS["simmim"], "needs", METHODS["simmim"].needs + ("a_future_op",))
    line = next(line for line in parser().format_help().splitlines() if line.strip().startswith("simmim "))
    assert "unavailable: needs" in line and "a_future_op" in line
    with pytest.raises(SystemExit) as exit_:
        main(["--method", "simmim", *TINY])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "method 'simmim' needs" in err and "a_future_op" in err


# ---- data -----------------------------------------------------------------------------------------

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


def _write_folder(root: Path, classes: dict[str, int]) -> None:
    from PIL import Image

    for c, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = torch.full((20 + 3 * i, 30, 3), 40 * c + i, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_image_folder_loads_classes_and_splits(tmp_path):
    _write_folder(tmp_path, {"cats": 5, "dogs": 5})
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
        _write_folder(path, layout)
    with pytest.raises(ValueError, match=message):
        data.image_folder(path, 16, seed=0)


def test_unreadable_image_is_named(tmp_path):
    _write_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        data.image_folder(tmp_path, 16, seed=0)


# ---- model and probe ------------------------------------------------------------------------------

def test_linear_patch_embedding_is_the_permuted_conv():
    """spec/masking.md trap 1: a Linear on (p, q, c) patch rows equals timm's Conv2d patch embedding."""
    import mimkernels as mk

    p, c, e = 4, 3, 8
    conv = torch.nn.Conv2d(c, e, p, stride=p)
    imgs = torch.randn(2, c, 8, 12)
    rows = mk.patchify(imgs, p) @ conv.weight.permute(0, 2, 3, 1).reshape(e, p * p * c).T + conv.bias
    assert torch.allclose(rows, conv(imgs).flatten(2).transpose(1, 2), atol=1e-5)


def test_sincos_positions_are_distinct_with_a_zero_cls_row():
    pos = sincos_positions(16, (3, 5))
    assert pos.shape == (16, 16) and torch.equal(pos[0], torch.zeros(16))
    assert torch.cdist(pos[1:], pos[1:]).add(torch.eye(15)).min() > 0.1


@pytest.mark.skipif("maskfeat" not in AVAILABLE, reason="MaskFeat's op families have not landed")
def test_maskfeat_head_starts_as_mmselfsups():
    head = build("maskfeat", Ops("torch"), 32, 4, ModelConfig()).head.linear
    assert abs(head.weight.std().item() - 0.02) < 0.002     # xavier: 0.09
    assert not head.bias.any()


@pytest.mark.skipif("pixmim" not in AVAILABLE, reason="PixMIM's op families have not landed")
@pytest.mark.parametrize("simple_crop", [False, True])
def test_pixmim_crop(monkeypatch, simple_crop):
    monkeypatch.setattr(METHODS["pixmim"], "simple_crop", simple_crop)
    method = build("pixmim", Ops("torch"), 16, 4, ModelConfig(32, 1, 2, 16, 1))
    imgs = torch.rand(5, 3, 16, 16)
    expected = (data.simple_resized_crop(imgs, torch.Generator().manual_seed(3), padding=1) if simple_crop
                else data.random_resized_crop(imgs, torch.Generator().manual_seed(3), scale=(0.2, 1.0)))
    torch.testing.assert_close(method.augment(imgs, torch.Generator().manual_seed(3)), expected)


@pytest.mark.skipif("mfm" not in AVAILABLE, reason="MFM's op families have not landed")
@pytest.mark.parametrize("recover_target_type", ["masked", "normal"])
def test_mfm_grades_the_frequencies_its_recover_target_type_names(monkeypatch, recover_target_type):
    """'masked' (the default, the paper's): the mean distance over the removed frequencies; 'normal': over all."""
    monkeypatch.setattr(METHODS["mfm"], "recover_target_type", recover_target_type)
    method = build("mfm", Ops("torch"), 16, 4, ModelConfig(32, 1, 2, 16, 1))
    step = method(torch.rand(6, 3, 16, 16), seed=5)
    pred, target, freq_mask = step.tensors["pred"], step.tensors["target"], step.tensors["freq_mask"]
    expected = mimkernels.frequency_loss(pred, target, freq_mask if recover_target_type == "masked" else None)
    torch.testing.assert_close(step.loss, expected)
    assert not torch.allclose(mimkernels.frequency_loss(pred, target, freq_mask),
                              mimkernels.frequency_loss(pred, target, None))   # the two choices differ here


def test_encoder_uses_visible_patch_positions():
    enc = Encoder((2, 2), 12, dim=8, depth=1, heads=2)
    rows = torch.randn(1, 4, 12)
    ids = torch.tensor([[2, 0]])
    visible = enc(rows[:, [2, 0]], ids=ids)
    full_order_changed = enc(rows[:, [0, 2]], ids=ids.flip(1))
    assert torch.allclose(visible[:, 0], full_order_changed[:, 0], atol=1e-5)  # attention is a set op


def test_linear_probe_separates_separable_features_and_not_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(3, (300,), generator=g)
    x = torch.nn.functional.one_hot(y, 3).double() * 3 + torch.randn(300, 3, dtype=torch.float64, generator=g) * 0.3
    x = torch.cat([x, torch.randn(300, 5, dtype=torch.float64, generator=g)], 1)
    assert probe.linear_probe(x[:200], y[:200], x[200:], y[200:], 3) > 0.95
    noise = torch.randn(300, 8, dtype=torch.float64, generator=g)
    assert probe.linear_probe(noise[:200], y[:200], noise[200:], y[200:], 3) < 0.6


# ---- runs -------------------------------------------------------------------------------------------

def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("method", AVAILABLE)
def test_method_trains_and_writes_its_run_folder(tmp_path, method):
    metrics = main(["--method", method, "--out", str(tmp_path), *TINY])
    assert metrics == _metrics(tmp_path)
    for key in ("method", "ops", "final_loss", "probe_accuracy", "random_init_probe_accuracy"):
        assert key in metrics
    assert metrics["method"] == method and metrics["ops"] == "mimkernels" and metrics["steps"] == 3
    assert all(torch.isfinite(torch.tensor(metrics["losses"])))
    assert 0 <= metrics["probe_accuracy"] <= 1 and 0 <= metrics["random_init_probe_accuracy"] <= 1
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["lr"] == METHODS[method].base_lr           # no --lr: the method's default
    assert config["method"] == method and config["settings"] == build(
        method, Ops("torch"), 16, 4, ModelConfig(32, 1, 2, 16, 1)).settings()
    for name in ("pictures.png", "loss.png", "checkpoint.pt"):
        assert (tmp_path / name).stat().st_size > 1000, name


def _same_loss_curve(tmp_path, method, extra=(), batch=4):
    args = [*TINY, "--method", method, "--batch-size", str(batch), "--train-size", str(2 * batch), *extra]
    reference = main([*args, "--ops", "torch", "--out", str(tmp_path / "torch")])
    kernels = main([*args, "--ops", "mimkernels", "--out", str(tmp_path / "kernels")])
    assert reference["steps"] == kernels["steps"] == 2
    torch.testing.assert_close(torch.tensor(kernels["losses"]), torch.tensor(reference["losses"]),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", AVAILABLE)
def test_torch_and_mimkernels_ops_give_the_same_loss_curve(tmp_path, method):
    """--ops swaps every MIM op between the eager reference and "auto" (here: the cpp kernels where
    an op has one, the reference elsewhere); the loss curves agree for a fixed seed."""
    _same_loss_curve(tmp_path, method)


@pytest.mark.skipif(not _dispatch.TRITON_INTERPRET, reason="needs TRITON_INTERPRET=1 (set by conftest on CPU)")
@needs_mae
def test_triton_kernels_in_training_give_the_reference_loss_curve(tmp_path, monkeypatch):
    """MAE with every op that has a Triton kernel running it (under the interpreter: slow, so one method)."""
    monkeypatch.setitem(_dispatch.AUTO_ORDER, "cpu", ("triton", "cpp", "torch"))
    _same_loss_curve(tmp_path, "mae", batch=2)


@pytest.mark.gpu
@pytest.mark.parametrize("method", AVAILABLE)
def test_gpu_kernels_give_the_reference_loss_curve(tmp_path, method):
    """On a GPU: the Triton/CUDA kernels against the eager reference, fp32 (no autocast)."""
    _same_loss_curve(tmp_path, method, ["--device", "cuda", "--no-amp"])


@needs_mae
def test_ranks_draw_distinct_masks_that_tile_the_global_batch():
    """Rank r numbers its samples from r·B: distinct masks per rank, together the one-process masks."""
    method = build("mae", Ops("mimkernels"), 16, 4, ModelConfig(32, 1, 2, 16, 1))
    x = torch.zeros(8, 3, 16, 16)
    whole = method.corrupt(x, 11, 0)[2]
    rank0, rank1 = method.corrupt(x[:4], 11, 0)[2], method.corrupt(x[:4], 11, 4)[2]
    assert not torch.equal(rank0, rank1)
    assert torch.equal(torch.cat([rank0, rank1]), whole)


@needs_mae
def test_ddp_on_two_cpu_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "mimkernels.train", "--method", "mae", "--out", str(tmp_path), *TINY, "--batch-size", "8"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = _metrics(tmp_path)
    assert metrics["world_size"] == 2 and metrics["steps"] == 3       # 48 images / (2 ranks x 8)
    assert all(torch.isfinite(torch.tensor(metrics["losses"])))


@needs_mae
def test_resume_continues_the_run(tmp_path):
    first = main(["--method", "mae", "--out", str(tmp_path), *TINY])
    resumed = main(["--resume", str(tmp_path), *TINY, "--epochs", "2"])   # into the same folder
    assert resumed["steps"] == 6 and resumed["losses"][:3] == first["losses"]
    assert resumed["random_init_probe_accuracy"] == first["random_init_probe_accuracy"]
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 6
    with pytest.raises(SystemExit):
        main(["--resume", str(tmp_path), *TINY, "--epochs", "3", "--dim", "16"])


@pytest.mark.parametrize("argv, message", [
    (["--method", "beit"], "unknown method 'beit'"),
    (["--img-size", "18"], "--img-size 18 is not divisible by --patch-size 4"),
    (["--data", "/nonexistent/images"], "not a folder"),
    (["--batch-size", "64"], "do not fill one global batch"),
    (["--resume", "/nonexistent/run"], "no checkpoint there"),
])
def test_bad_arguments_fail_with_a_clear_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main([*TINY, "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_methods_and_their_availability():
    text = parser().format_help()
    for name in METHODS:
        assert name in text
    assert text.count("available") >= len(METHODS)
