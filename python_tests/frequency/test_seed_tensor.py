"""Seeds as device tensors in the frequency family (issue 18, docs/rng.md "Seeds in a tensor", SPEC.md §4):
mfm_corrupt's per-sample low/high choice (rng stream 4) takes seed=rng.seed_tensor(s, k) on every backend and
gives the bits of the int seed derive_seed(s, k); the checks are python_tests/seed_tensor_checks.py's."""
import pytest
import torch

import mimkernels as mk
from mimkernels import _backends, rng
from mimkernels.frequency.nn import MFMCorruption
from python_tests import seed_tensor_checks as checks

# 8 one-channel samples (the interpreter runs the Triton filter per sample): a new step changes some choice
IMGS = torch.randint(0, 256, (8, 1, 8, 8), generator=torch.Generator().manual_seed(0)) / 255
BACKENDS = [be for be in _backends.implemented("mfm_corrupt")
            if _backends.unavailable_reason(be, torch.device("cpu")) is None]


def _call(backend: str, device: str = "cpu"):
    imgs = IMGS.to(device)
    return lambda seed: mk.mfm_corrupt(imgs, 2.0, 0.4, seed=seed, sample_offset=5, backend=backend)


@pytest.mark.parametrize("check", [checks.check_bits, checks.check_advance, checks.check_compiles_once,
                                   checks.check_bad_seeds], ids=lambda check: check.__name__)
@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_tensor_contract(backend, check):
    """Bits of derive_seed, advance, one compile, bad tensors (seed_tensor_checks.py) on each backend."""
    check(_call(backend))


def test_seed_tensor_and_generator_exclude_each_other():
    with pytest.raises(ValueError, match="seed or generator"):
        mk.mfm_corrupt(IMGS, seed=rng.seed_tensor(1), generator=torch.Generator())


def test_mfm_corruption_forwards_a_seed_tensor_unchanged():
    module = MFMCorruption(2.0, 0.4, mean=None, std=None)
    t = rng.seed_tensor(2**63 + 2, 2**32 + 9)
    checks.assert_same(module(IMGS, seed=t, sample_offset=1),
                       module(IMGS, seed=checks.int_seed(2**63 + 2, 2**32 + 9), sample_offset=1))


@pytest.mark.gpu
@pytest.mark.parametrize("backend", _backends.implemented("mfm_corrupt"))
def test_gpu_cuda_graph_replays_draw_each_step(backend):
    """Captured with rng.advance in the graph, replay k draws the choices of derive_seed(s, k)."""
    call = _call(backend, "cuda")
    checks.check_bits(call, "cuda")
    checks.check_cuda_graph(call)
