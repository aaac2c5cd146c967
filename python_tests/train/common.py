"""Shared by the trainer tests: the tiny configuration and run helpers."""
import json
from pathlib import Path

import torch

from mimkernels.train.__main__ import main
from mimkernels.train.methods import ModelConfig

REPO = Path(__file__).resolve().parents[2]
# 16 px images, 4 px patches (a 4 × 4 grid), a one-block ViT: seconds per run on one CPU core
TINY = ["--epochs", "1", "--train-size", "48", "--test-size", "24", "--batch-size", "16", "--img-size", "16",
        "--patch-size", "4", "--dim", "32", "--depth", "1", "--heads", "2", "--decoder-dim", "16",
        "--decoder-depth", "1", "--no-progress"]
TINY_MODEL = ModelConfig(32, 1, 2, 16, 1)


def metrics_of(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def config_of(out: Path) -> dict:
    return json.loads((out / "config.json").read_text())


def same_loss_curve(tmp_path, method, extra=(), batch=4):
    """--ops torch and --ops mimkernels train `method` for two steps with the same loss curve."""
    args = [*TINY, "--method", method, "--batch-size", str(batch), "--train-size", str(2 * batch), *extra]
    reference = main([*args, "--ops", "torch", "--out", str(tmp_path / "torch")])
    kernels = main([*args, "--ops", "mimkernels", "--out", str(tmp_path / "kernels")])
    assert reference["steps"] == kernels["steps"] == 2
    torch.testing.assert_close(torch.tensor(kernels["losses"]), torch.tensor(reference["losses"]),
                               rtol=1e-4, atol=1e-5)
