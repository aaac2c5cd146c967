"""Fixtures every benchmarks/bench_<family>.py uses: `timed` (device-synchronized timing with cache
rotation, peak memory and the roofline, all in pytest-benchmark's extra_info) and `copy_bandwidth`
(the device's copy GB/s, measured once per session). The measuring itself is benchmarks/harness.py.

GPU benchmarks skip without a GPU (module-level skipif); CPU benchmarks (mask generators, HOG cpp) run everywhere.
Run: python -m pytest benchmarks --benchmark-json=out.json; then python -m benchmarks.report out.json --out DIR
"""
import functools

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
def one_thread():
    """CPU benchmarks on one thread (the cpp backends follow torch.set_num_threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def timed(benchmark, copy_bandwidth):
    """timed(fn, *args, bytes_moved=0, inputs=None, device=None, **extra): harness.measure with this
    test's pytest-benchmark fixture and the session's copy bandwidth."""
    return functools.partial(harness.measure, benchmark, copy_bandwidth)


@pytest.hookimpl(optionalhook=True)
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
