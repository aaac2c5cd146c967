"""The command line: bad inputs fail with a message that says what to do, --help shows every
option's default and the methods, the thread count, the warm-up cap, the missing [train] extra."""
import argparse
import sys

import pytest
import torch

from mimkernels.train import __main__ as trainer
from mimkernels.train import data
from mimkernels.train.__main__ import main, parser
from mimkernels.train.methods import METHODS

from .common import TINY, config_of
from .test_data import write_folder


@pytest.mark.parametrize("argv, message", [
    (["--method", "beit"], "unknown method 'beit'"),
    (["--img-size", "18"], "--img-size 18 is not divisible by --patch-size 4"),
    (["--data", "/nonexistent/images"], "not a folder"),
    (["--batch-size", "64"], "do not fill one global batch"),
    (["--batch-size", "64"], ("48 training images do not fill one global batch of 64 (--batch-size 64 x 1 "
                              "process(es)): pass --batch-size 48 or less")),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--resume", "/nonexistent/run"], "no checkpoint there"),
])
def test_bad_arguments_fail_with_a_clear_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main([*TINY, "--out", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_help_lists_each_method_and_the_ops_it_calls():
    text = " ".join(parser().format_help().split())
    for name, cls in METHODS.items():
        assert f" {name} {cls.__doc__.split()[0]} " in text                     # "mae He et al. 2022: ..."
        assert "Ops: " + ", ".join(cls.needs) + "." in text


def test_help_shows_every_option_with_help_and_its_default():
    p = parser()
    text = " ".join(p.format_help().split())
    for action in p._actions:
        if action.dest == "help":
            continue
        assert action.help, action.option_strings
        if action.default not in (None, False):
            assert f"(default: {action.default})" in text, action.option_strings
        elif action.default is None:
            assert "default" in action.help, action.option_strings      # says in words what happens
    for flag in ("--epochs", "--img-size", "--seed", "--weight-decay", "--warmup-epochs"):
        assert flag in text
    assert "(default: 10)" in text and "(default: 0.05)" in text and "(default: 1.0)" in text


def test_a_small_image_folder_suggests_a_batch_size(tmp_path, capsys):
    write_folder(tmp_path / "pics", {"a": 10, "b": 10})                 # 16 training images, 4 test
    with pytest.raises(SystemExit) as exit_:
        main([*TINY, "--data", str(tmp_path / "pics"), "--batch-size", "64", "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "16 training images do not fill one global batch of 64" in err and "pass --batch-size 16 or less" in err


def test_a_tiny_test_split_warns_that_the_probe_is_meaningless(tmp_path, capsys):
    write_folder(tmp_path / "pics", {"a": 5, "b": 5})                   # 8 training images, 2 test
    metrics = main([*TINY, "--data", str(tmp_path / "pics"), "--batch-size", "4", "--out", str(tmp_path / "run")])
    assert metrics["steps"] == 2
    err = capsys.readouterr().err
    assert "warning: the probe's test split has 2 images (under 50)" in err and "meaningless" in err
    assert "more images in each class folder" in err
    args = argparse.Namespace(data=None)
    trainer.warn_if_few_test_images(args, data.embedded(8, 0, 4, 49)[1])
    assert "raise --test-size to 50" in capsys.readouterr().err
    trainer.warn_if_few_test_images(args, data.embedded(8, 0, 4, 50)[1])
    assert capsys.readouterr().err == ""


def test_without_the_train_extra_the_trainer_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)                      # import tqdm fails, find_spec says None
    with pytest.raises(SystemExit) as exit_:
        main([*TINY])
    message = str(exit_.value.code)
    assert "needs the [train] extra; missing here: tqdm" in message and 'pip install -e ".[train]"' in message


def test_warm_up_is_capped_below_the_run_and_the_run_says_so(tmp_path, capsys):
    args = parser().parse_args([*TINY, "--lr", "1e-3"])                 # 1 epoch of 3 steps, 1 warm-up epoch
    schedule = trainer.plan(args, 48, trainer.Dist())
    assert (schedule.total_steps, schedule.warmup_steps) == (3, 1)
    assert "--warmup-epochs 1 (3 steps)" in schedule.warmup_note and "capped at 1 steps" in schedule.warmup_note
    assert schedule.lr(0) == schedule.lr(1) == schedule.peak_lr and schedule.lr(2) < schedule.peak_lr   # it decays
    args = parser().parse_args([*TINY, "--lr", "1e-3", "--epochs", "10"])
    schedule = trainer.plan(args, 48, trainer.Dist())
    assert schedule.warmup_steps == 3 and schedule.warmup_note == ""     # the default run is unchanged
    main([*TINY, "--out", str(tmp_path)])
    assert "capped at 1 steps, half the run" in capsys.readouterr().out
    assert config_of(tmp_path)["warmup_steps"] == 1


@pytest.mark.parametrize("threads, omp, device, expected", [
    (None, None, "cpu", 1),            # the default on a CPU: one thread
    (2, None, "cpu", 2),               # --threads
    (None, "2", "cpu", "torch"),       # OMP_NUM_THREADS set: torch's count, from it
    (None, None, "cuda", "torch"),     # a GPU run: torch's default
])
def test_thread_count(monkeypatch, threads, omp, device, expected):
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    torch.set_num_threads(3)                                            # the conftest fixture restores it
    args = argparse.Namespace(threads=threads)
    trainer.set_threads(args, trainer.Dist(device=torch.device(device)))
    assert args.threads == torch.get_num_threads() == (3 if expected == "torch" else expected)


def test_a_run_records_its_thread_count(tmp_path):
    metrics = main([*TINY, "--threads", "2", "--out", str(tmp_path)])
    assert metrics["threads"] == config_of(tmp_path)["threads"] == torch.get_num_threads() == 2
