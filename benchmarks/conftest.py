"""Fixtures every benchmarks/bench_<family>.py uses: CUDA-synchronized timing through
pytest-benchmark, and the roofline: minimum bytes of an op -> GB/s in `extra_info`.

GPU benchmarks skip without a GPU; CPU benchmarks (masks, HOG cpp) run everywhere.
Run: python -m pytest benchmarks --benchmark-json=out.json
"""
import pytest
import torch


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@pytest.fixture
def timed(benchmark):
    """timed(fn, *args, bytes_moved=..., **extra): time fn(*args) (synchronized, with warm-up) and
    record the effective bandwidth (bytes_moved / median time) with `extra` in extra_info."""

    def run(fn, *args, bytes_moved: int = 0, **extra):
        def call():
            out = fn(*args)
            _sync()
            return out

        for _ in range(3):  # warm-up: compile, autotune, caches
            call()
        result = benchmark.pedantic(call, rounds=20, iterations=1)
        median = benchmark.stats.stats.median
        benchmark.extra_info.update(extra)
        if bytes_moved:
            benchmark.extra_info["bytes"] = bytes_moved
            benchmark.extra_info["GB/s"] = bytes_moved / median / 1e9
        if torch.cuda.is_available():
            benchmark.extra_info["gpu_name"] = torch.cuda.get_device_name()
        return result

    return run
