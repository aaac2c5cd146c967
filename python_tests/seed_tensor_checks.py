"""The seed-tensor contract of a random op (docs/rng.md "Seeds in a tensor", issue 18), checked the same way
for every family's python_tests/<family>/test_seed_tensor.py. `call(seed)` runs the op under test (its other
arguments fixed) and returns a tensor or a tuple of tensors:

    check_bits          seed=rng.seed_tensor(s, k) gives the bits of seed=rng.derive_seed(s, k mod 2^32)
    check_advance       rng.advance(t) draws a new mask, the one of the next derive_seed
    check_compiles_once torch.compile(fullgraph=True): new tensor values, the eager masks, one compile
    check_bad_seeds     a wrong dtype, shape or device raises ValueError naming seed
    check_cuda_graph    a CUDA graph capturing the op and rng.advance draws the k-th mask on replay k
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch._dynamo.testing

from mimkernels import rng

# s >= 2^63 (the key's sign bit), k >= 2^32 (the step taken mod 2^32)
SEED_STEPS = [(0, 0), (5, 1), (2**63 + 11, 3), (2**64 - 1, 2**32 + 7)]


def int_seed(seed: int, step: int) -> int:
    """The int seed with the bits of rng.seed_tensor(seed, step)."""
    return rng.derive_seed(seed, step % 2**32)


def _outputs(result) -> tuple[torch.Tensor, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def assert_same(got, want) -> None:
    got, want = _outputs(got), _outputs(want)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.cpu(), b.cpu())


def check_bits(call: Callable, device: str = "cpu") -> None:
    for seed, step in SEED_STEPS:
        assert_same(call(rng.seed_tensor(seed, step, device=device)), call(int_seed(seed, step)))


def check_advance(call: Callable, device: str = "cpu") -> None:
    t = rng.seed_tensor(7, 0, device=device)
    first = _outputs(call(t))
    rng.advance(t)
    second = _outputs(call(t))
    assert t.tolist() == [7, 1]
    assert not all(torch.equal(a, b) for a, b in zip(first, second)), "advance() must draw a new mask"
    assert_same(second, call(int_seed(7, 1)))


def check_compiles_once(call: Callable, device: str = "cpu") -> None:
    """Two seed tensors of other values, then one advanced in place: the eager results, and Dynamo compiled
    the function once (no recompile on a value)."""
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(call, backend=counter, fullgraph=True)
    first, second = rng.seed_tensor(3, 0, device=device), rng.seed_tensor(2**64 - 3, 9, device=device)
    assert_same(compiled(first), call(first))
    assert_same(compiled(second), call(second))
    rng.advance(second)
    assert_same(compiled(second), call(int_seed(2**64 - 3, 10)))
    assert counter.frame_count == 1


BAD_SEEDS = [torch.tensor([1, 2], dtype=torch.int32), torch.tensor(3), torch.zeros(3, dtype=torch.int64),
             torch.zeros(2, 1, dtype=torch.int64), torch.zeros(2, dtype=torch.int64, device="meta")]


def check_bad_seeds(call: Callable) -> None:
    for bad in BAD_SEEDS:
        with pytest.raises(ValueError, match="seed"):
            call(bad)


def check_cuda_graph(call: Callable) -> None:
    """Capture call(t) and rng.advance(t) in one CUDA graph (after an eager warm-up, which compiles and plans
    outside the capture); replay k gives the eager result of derive_seed(s, k)."""
    t = rng.seed_tensor(2**63 + 5, 0, device="cuda")
    call(t)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = call(t)
        rng.advance(t)
    for step in range(3):
        graph.replay()
        torch.cuda.synchronize()
        assert_same(captured, call(int_seed(2**63 + 5, step)))
