"""Fixtures every benchmarks/bench_<family>.py uses: `timed` (device-synchronized timing with cache
rotation, peak memory and the roofline, all in pytest-benchmark's extra_info) and `copy_bandwidth`
(the device's copy GB/s, measured once per session). The measuring itself is benchmarks/harness.py.

GPU benchmarks skip without a GPU (module-level skipif); CPU benchmarks (masks, HOG cpp) run everywhere.
Run: python -m pytest benchmarks --benchmark-json=out.json; then python -m benchmarks.report out.json --out DIR
"""
import itertools
import math
import time

import pytest
import torch

from benchmarks import harness

_copy_gbps: dict[str, float] = {}  # device name -> GB/s, for machine_info


@pytest.fixture(scope="session")
def copy_bandwidth():
    """copy_bandwidth(device) -> GB/s of a large copy within that device (bytes read + written),
    measured the first time a device is asked for, then reused for the session."""
    measured: dict[torch.device, float] = {}

    def get(device: torch.device) -> float:
        if device not in measured:
            measured[device] = harness.measure_copy_bandwidth(device)
            _copy_gbps[harness.device_name(device)] = measured[device]
        return measured[device]

    return get


@pytest.fixture
def timed(benchmark, copy_bandwidth):
    """timed(fn, *args, bytes_moved=0, inputs=None, **extra): time fn(*args) and record in extra_info
    `extra` (the case: kernel, provider, dtype, batch, ...) and report.METRIC_KEYS.

    inputs: instead of *args, either a list of argument tuples, or a function returning one tuple
    (or one tensor) that is called until the sets together exceed twice the L2 (harness.input_sets);
    the calls cycle through the sets so that small ops are not timed out of a warm cache.
    bytes_moved: the fewest bytes the op must move (each input read once, each output written once);
    gives GB/s and % of the measured copy bandwidth.

    CUDA (any tensor argument or output on a GPU): 3 warm-up calls; `ms` = median of CUDA-event times
    of back-to-back launches (harness.time_cuda), `peak_bytes` = device memory the op allocates at its
    peak; pytest-benchmark's own stats time synchronized calls (launch + sync latency included).
    CPU: pytest-benchmark's wall-clock rounds; `ms` = their median. Returns the last call's output."""

    def run(fn, *args, bytes_moved: int = 0, inputs=None, **extra):
        if inputs is not None and args:
            raise TypeError("timed: pass the arguments either positionally or as inputs=, not both")
        if inputs is None:
            sets = [args]
        elif callable(inputs):
            sets = harness.input_sets(inputs)
        else:
            sets = [harness.as_args(s) for s in inputs]
        if not benchmark.enabled:  # --benchmark-disable: run once, as a test
            return fn(*sets[0])

        out = None
        for args_now in itertools.islice(itertools.cycle(sets), max(3, min(len(sets), 8))):  # compile, autotune
            out = fn(*args_now)
        device = harness.device_of(sets[0], out)
        info = {"device": device.type, "device_name": harness.device_name(device),
                "cache": harness.cache_policy(sets, device)}
        if device.type == "cuda":
            info["gpu_name"] = info["device_name"]
            info["peak_bytes"] = harness.peak_memory_cuda(fn, sets[0], device)
            info.update(harness.quantiles_ms(harness.time_cuda(fn, sets, device)))
            info["timer"] = "cuda_events"

        def call(*a):
            result = fn(*a)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return result

        if device.type == "cuda":
            rounds = 10
        else:
            start = time.perf_counter()
            call(*sets[0])
            rounds = min(200, max(5, math.ceil(harness.SECONDS_PER_MEASUREMENT / (time.perf_counter() - start))))
        rotation = itertools.cycle(sets)
        result = benchmark.pedantic(call, setup=lambda: (next(rotation), {}), rounds=rounds)
        if device.type == "cpu":
            info.update(harness.quantiles_ms([t * 1e3 for t in benchmark.stats.stats.data]))
            info["timer"] = "perf_counter"
        info.update(harness.roofline(bytes_moved, info["ms"], copy_bandwidth(device) if bytes_moved else None))
        benchmark.extra_info.update(extra)
        benchmark.extra_info.update(info)
        return result

    return run


def pytest_benchmark_update_machine_info(config, machine_info):
    """Versions, the GPU and the copy bandwidths measured in this session, into the JSON's machine_info."""
    import mimkernels
    from mimkernels import _native

    machine_info["mimkernels"] = {"version": mimkernels.__version__, "git": _native.build_info().get("git")}
    machine_info["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda}
    machine_info["triton"] = harness.version_of("triton")
    if torch.cuda.is_available():
        machine_info["gpu"] = {"name": torch.cuda.get_device_name(),
                               "compute_capability": "%d.%d" % torch.cuda.get_device_capability()}
    machine_info["copy_GB/s"] = dict(_copy_gbps)
