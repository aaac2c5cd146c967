"""benchmarks/bench_integrations.py's training steps at a tiny size on the CPU: each host's MAE
step runs forward and backward, upstream and with mimkernels, and the two give the same loss for the
same seed (the GPU benchmark times exactly these steps at ViT-B/16)."""
import pytest
import torch

from benchmarks.bench_integrations import HOSTS, TINY, make_step
from mimkernels.integrations import lightly as mkl


@pytest.mark.parametrize("host", HOSTS)
def test_tiny_training_step_upstream_equals_mimkernels(host):
    pytest.importorskip(host)
    losses = {}
    try:
        for provider in ("upstream", "mimkernels"):
            step, images = make_step(host, provider, TINY, torch.device("cpu"), batch=3)
            torch.manual_seed(1)
            losses[provider] = step(images)
    finally:
        mkl.unpatch_lightly()
    assert torch.isfinite(losses["upstream"])
    torch.testing.assert_close(losses["mimkernels"].float(), losses["upstream"].float(), rtol=1e-4, atol=0)  # other masks move it ~0.2 %
