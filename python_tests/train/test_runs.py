"""Whole runs at tiny settings: every method trains and writes its run folder, `--ops torch` and
`--ops mimkernels` give the same loss curve (the cpp, Triton and GPU kernels against the eager
reference), DDP runs on two CPU processes."""
import os
import subprocess
import sys

import pytest
import torch

from mimkernels import _backends
from mimkernels.train.__main__ import main
from mimkernels.train.methods import METHODS, build
from mimkernels.train.ops import Ops

from .common import REPO, TINY, TINY_MODEL, config_of, metrics_of, same_loss_curve


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_and_writes_its_run_folder(tmp_path, capsys, method):
    metrics = main(["--method", method, "--out", str(tmp_path), *TINY])
    summary = capsys.readouterr().out
    assert f"the trivial predictor's {metrics['final_trivial_loss']:.4f} ({METHODS[method].trivial}" in summary
    assert f"prediction spread across patches {metrics['prediction_spread']:.3f}" in summary
    assert metrics == metrics_of(tmp_path)
    for key in ("method", "ops", "final_loss", "probe_accuracy", "random_init_probe_accuracy", "final_trivial_loss",
                "trivial_predictor", "loss_below_trivial", "prediction_spread", "target_spread"):
        assert key in metrics
    assert len(metrics["trivial_losses"]) == len(metrics["losses"]) and metrics["final_trivial_loss"] > 0
    assert metrics["loss_below_trivial"] == pytest.approx(1 - metrics["final_loss"] / metrics["final_trivial_loss"])
    assert metrics["trivial_predictor"] == METHODS[method].trivial and metrics["target_spread"] > 0
    assert metrics["method"] == method and metrics["ops"] == "mimkernels" and metrics["steps"] == 3
    assert all(torch.isfinite(torch.tensor(metrics["losses"])))
    assert 0 <= metrics["probe_accuracy"] <= 1 and 0 <= metrics["random_init_probe_accuracy"] <= 1
    config = config_of(tmp_path)
    assert config["lr"] == METHODS[method].base_lr           # no --lr: the method's default
    assert config["method"] == method
    assert config["settings"] == build(method, Ops("torch"), 16, 4, TINY_MODEL).settings()
    for name in ("pictures.png", "loss.png", "checkpoint.pt"):
        assert (tmp_path / name).stat().st_size > 1000, name


@pytest.mark.parametrize("method", METHODS)
def test_torch_and_mimkernels_ops_give_the_same_loss_curve(tmp_path, method):
    """--ops swaps every MIM op between the eager reference and "auto" (here: the cpp kernels where
    an op has one, the reference elsewhere); the loss curves agree for a fixed seed."""
    same_loss_curve(tmp_path, method)


@pytest.mark.skipif(not _backends.TRITON_INTERPRET, reason="needs TRITON_INTERPRET=1 (set by conftest on CPU)")
def test_triton_kernels_in_training_give_the_reference_loss_curve(tmp_path, monkeypatch):
    """MAE with every op that has a Triton kernel running it (under the interpreter: slow, so one method)."""
    monkeypatch.setitem(_backends.AUTO_ORDER, "cpu", ("triton", "cpp", "torch"))
    same_loss_curve(tmp_path, "mae", batch=2)


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS)
def test_gpu_kernels_give_the_reference_loss_curve(tmp_path, method):
    """On a GPU: the Triton/CUDA kernels against the eager reference, fp32 (no autocast)."""
    same_loss_curve(tmp_path, method, ["--device", "cuda", "--no-amp"])


def test_ddp_on_two_cpu_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "mimkernels.train", "--method", "mae", "--out", str(tmp_path), *TINY, "--batch-size", "8"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = metrics_of(tmp_path)
    assert metrics["world_size"] == 2 and metrics["steps"] == 3       # 48 images / (2 ranks x 8)
    assert all(torch.isfinite(torch.tensor(metrics["losses"])))
