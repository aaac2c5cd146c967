"""benchmarks/harness.py: the `timed` fixture's measurement (harness.measure) with pytest-benchmark's real
`benchmark` fixture on the CPU, and its helpers. The CUDA paths are `gpu` tests (run by run_gpu.sh)."""
import math
import statistics

import pytest
import torch

from benchmarks import harness


def copy_10_gbps(device):
    return 10.0  # stands in for the session's measured copy bandwidth


def not_asked(device):
    raise AssertionError("the copy bandwidth is needed only for ops with bytes_moved")


def test_measure_positional_arguments(benchmark):
    x = torch.randn(1000)
    out = harness.measure(benchmark, copy_10_gbps, torch.neg, x, bytes_moved=8000, kernel="neg",
                          provider="eager", batch=1)
    assert torch.equal(out, -x)
    info = benchmark.extra_info
    assert (info["kernel"], info["provider"], info["batch"], info["device"]) == ("neg", "eager", 1, "cpu")
    assert info["timer"] == "perf_counter" and info["cache"] == "one input set"
    data_ms = [t * 1e3 for t in benchmark.stats.stats.data]
    assert len(data_ms) >= 5 and info["ms"] == pytest.approx(statistics.median(data_ms))
    assert info["ms_p20"] <= info["ms"] <= info["ms_p80"]
    assert info["GB/s"] == pytest.approx(8000 / info["ms"] / 1e6)
    assert info["%copy"] == pytest.approx(10 * info["GB/s"])  # 100 * GB/s / 10 GB/s
    assert "peak_bytes" not in info  # device memory only


def test_measure_rotates_input_sets(benchmark):
    sets = [(torch.full((4,), float(i)),) for i in range(3)]
    seen = []

    def fn(t):
        seen.append(int(t[0]))
        return t + 1

    harness.measure(benchmark, not_asked, fn, inputs=sets, kernel="add")
    rounds = benchmark.stats.stats.rounds
    timed_calls = seen[-rounds:]
    assert timed_calls == [i % 3 for i in range(rounds)]  # pedantic's rounds cycle through the sets
    assert benchmark.extra_info["cache"] == "rotate 3 input sets" and "GB/s" not in benchmark.extra_info


def test_measure_takes_args_or_inputs():
    x = torch.ones(2)
    with pytest.raises(TypeError, match="not both"):
        harness.measure(None, not_asked, torch.neg, x, inputs=[(x,)])


def test_input_sets_fill_the_rotation():
    one_mib = lambda: (torch.empty(2**17), torch.empty(2**17))  # noqa: E731  (1 MiB, 2 tensors)
    sets = harness.input_sets(one_mib)
    assert len(sets) == harness.CPU_ROTATION_BYTES // 2**20
    assert len({s[0].data_ptr() for s in sets}) == len(sets)  # distinct buffers
    assert len(harness.input_sets(lambda: torch.empty(2**26))) == 1  # one set already exceeds the cache
    assert len(harness.input_sets(lambda: (4, 8))) == 1  # no tensors: nothing to rotate
    assert len(harness.input_sets(lambda: torch.empty(16), max_sets=5)) == 5
    assert harness.input_sets(lambda: torch.empty(2**26))[0][0].shape == (2**26,)  # one tensor -> a 1-tuple


def test_roofline_and_quantiles():
    assert harness.roofline(3 * 10**9, 1.5, 4000.0) == {
        "bytes": 3 * 10**9, "GB/s": pytest.approx(2000.0), "copy_GB/s": 4000.0, "%copy": pytest.approx(50.0)}
    assert harness.roofline(0, 1.0, 4000.0) == {}
    assert "%copy" not in harness.roofline(10**9, 1.0, None)
    q = harness.quantiles_ms([float(x) for x in range(1, 11)])
    assert q["ms"] == 5.5 and q["ms_p20"] == pytest.approx(2.8) and q["ms_p80"] == pytest.approx(8.2)


def test_device_of_and_copy_bandwidth():
    assert harness.device_of((1, torch.ones(2)), [torch.zeros(1)]).type == "cpu"
    assert harness.device_name(torch.device("cpu")).startswith("CPU")
    gbps = harness.measure_copy_bandwidth(torch.device("cpu"))
    assert math.isfinite(gbps) and 0.1 < gbps < 10_000


@pytest.mark.gpu
def test_gpu_timing_and_peak_memory():
    device = torch.device("cuda")
    x = torch.randn(2**24, device=device)
    times = harness.time_cuda(lambda t: t * 2, [(x,)], device, seconds=0.01)
    assert len(times) >= 10 and all(t > 0 for t in times)
    assert harness.peak_memory_cuda(lambda t: t * 2, (x,), device) >= x.numel() * 4  # the output
    assert harness.device_of((x,)).type == "cuda"
    assert harness.cache_policy([(x,)], device) == "one input set, L2 flushed before each launch"
    assert 100 < harness.measure_copy_bandwidth(device) < 100_000


@pytest.mark.gpu
def test_measure_on_gpu(benchmark):
    x = torch.randn(2**20, device="cuda")
    harness.measure(benchmark, copy_10_gbps, torch.neg, x, bytes_moved=2 * 2**22, kernel="neg")
    info = benchmark.extra_info
    assert info["device"] == "cuda" and info["timer"] == "cuda_events" and info["gpu_name"] == info["device_name"]
    assert info["peak_bytes"] >= 2**22 and 0 < info["ms_p20"] <= info["ms"] <= info["ms_p80"]
    assert info["GB/s"] == pytest.approx(2 * 2**22 / info["ms"] / 1e6)
    assert info["cache"] == "one input set, L2 flushed before each launch"
