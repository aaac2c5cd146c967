"""The fuzzer's adversarial calls on CUDA tensors, for `compute-sanitizer --tool memcheck` (issue 20).

benchmarks/run_gpu.sh's memcheck step runs the tests selected by `-m gpu -k cuda`, which these are (gpu
mark, "cuda" in every name), with PYTORCH_NO_CUDA_MEMORY_CACHING=1 so that one cudaMalloc per tensor makes
an access past a tensor an access outside its allocation. The calls run in a fuzz worker subprocess
(python_tests/fuzz/worker.py with MIMKERNELS_FUZZ_DEVICE=cuda; compute-sanitizer follows child processes),
so that a CUDA fault loses that worker's context and not the test session's: the worker reports the case
and exits, and the next case runs in a fresh one. memcheck fails the step on any access outside an
allocation; the tests fail on a CUDA fault, an unclean error, or a result other than the defined one
(the reference's, computed on the CPU, or zeros for out-of-range ids), as the CPU fuzzer's do.

Cases: per op with a cuda or Triton backend, the first case of each memory category below and the first
IDS_CASES out-of-range-id cases (the issue's table), the same seeded cases as the CPU fuzzer's, built on
the GPU. Without a GPU they are skipped (conftest.py). By hand: `compute-sanitizer --tool memcheck
python -m pytest python_tests/fuzz/test_gpu_memcheck.py -m gpu -q`.
"""
import os

import pytest
import torch

from mimkernels import _backends
from python_tests.fuzz import cases, known, run

# One case per category keeps the step within run_gpu.sh's memcheck budget (each Triton specialization
# compiles once, under the sanitizer). Counts and patch sizes are refused by the front doors, the same
# code on every device: the CPU fuzzer covers them, without huge GPU allocations.
GPU_CATEGORIES = ("ids_out_of_range", "ids_duplicate", "zero_size", "stride0", "overlap", "canary", "noncontig")
CASES_PER_CELL = 1
IDS_CASES = 6  # past the end, negative, 10**6, 2**31, 2**63 - 1, ...


def gpu_jobs() -> list:
    jobs = []
    for op in cases.ops():
        backends = [b for b in _backends.implemented(op) if b in ("cuda", "triton")]
        if not backends:
            continue
        seen: dict = {}
        for i in range(400):
            cat = cases.category_of(op, i)
            limit = IDS_CASES if cat == "ids_out_of_range" else CASES_PER_CELL
            if cat in GPU_CATEGORIES and seen.get(cat, 0) < limit:
                seen[cat] = seen.get(cat, 0) + 1
                jobs.append([op, i, backends])
    return jobs


def _cells():
    out = []
    for op, _, backends in gpu_jobs():
        for backend in backends:
            if (op, backend) not in out:
                out.append((op, backend))
    return out


@pytest.fixture(scope="module")
def gpu_results():
    env = dict(os.environ, MIMKERNELS_FUZZ_DEVICE="cuda")
    env.pop("TRITON_INTERPRET", None)
    results = run.run_worker_jobs(gpu_jobs(), env=env, timeout_s=300)
    return [r for r in results]


def _param(op, backend):
    marks = [pytest.mark.gpu]
    reason = known.KNOWN_FAILURES_GPU.get((op, backend))
    if reason:  # not strict: no GPU run has confirmed these yet
        marks.append(pytest.mark.xfail(strict=False, reason=reason))
    return pytest.param(op, backend, marks=marks, id=f"{op}-{backend}")


@pytest.mark.gpu
@pytest.mark.parametrize("op,backend", [_param(*c) for c in _cells()])
def test_gpu_cuda_adversarial_calls(gpu_results, op, backend):
    reason = _backends.unavailable_reason(backend, torch.device("cuda"))
    if reason:
        pytest.skip(reason)
    mine = [r for r in gpu_results if r["op"] == op and r["backend"] == backend]
    assert mine, f"no adversarial case of {op} ran on {backend}"
    failed = [r for r in mine if not r["ok"]]
    assert not failed, f"{len(failed)} of {len(mine)} cases failed:\n" + run.failure_table(failed, limit_per_cell=10)
