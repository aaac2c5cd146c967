"""Measuring one op: device-side timing, input rotation, peak memory, copy bandwidth and roofline.

`benchmarks/conftest.py` wraps these into the `timed` and `copy_bandwidth` fixtures;
`benchmarks/report.py` reads what they write into pytest-benchmark's `extra_info` (its METRIC_KEYS).

CUDA ops are timed with CUDA events, many launches back to back and one synchronization at the end
(as `triton.testing.do_bench` does), so launch gaps are hidden when the op is longer than its launch;
the cache is defeated either by rotating through input sets that together exceed twice the L2, or,
with a single input set, by overwriting a 2 x L2 buffer before each launch. CPU ops are timed on the
wall clock by pytest-benchmark itself.

Environment: MIMKERNELS_BENCH_SECONDS (default 0.1): device time aimed at per measurement.
"""
from __future__ import annotations

import itertools
import math
import os
import platform
import statistics
import time
from typing import Any, Callable, Sequence

import torch
from torch.utils._pytree import tree_leaves

GB = 1e9
GPU_COPY_BYTES = 2**30  # >= 1 GB source; bytes moved = read + write = 2 GiB
CPU_COPY_BYTES = 2**26  # 64 MiB (128 MiB touched): beyond the CPU's caches, cheap enough for CI
CPU_ROTATION_BYTES = 2**26  # CPU caches are not read off the device: assume <= 32 MiB, rotate over 64 MiB
MAX_INPUT_SETS = 64
SECONDS_PER_MEASUREMENT = float(os.environ.get("MIMKERNELS_BENCH_SECONDS", "0.1"))


def tensors_in(tree: Any) -> list[torch.Tensor]:
    return [leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor)]


def device_of(*trees: Any) -> torch.device:
    """cuda if any tensor in `trees` (arguments, outputs) is a CUDA tensor, else cpu."""
    cuda = [t.device for tree in trees for t in tensors_in(tree) if t.is_cuda]
    return cuda[0] if cuda else torch.device("cpu")


def device_name(device: torch.device) -> str:
    """The GPU's name (as torch reports it), or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return "CPU " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()}"


def nbytes(tree: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors_in(tree))


def rotation_bytes(device: torch.device) -> int:
    """Bytes of inputs to cycle through so that no set is still cached when it comes back: 2 x L2."""
    if device.type == "cuda":
        return 2 * torch.cuda.get_device_properties(device).L2_cache_size
    return CPU_ROTATION_BYTES


def as_args(inputs: Any) -> tuple:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def input_sets(make_inputs: Callable[[], Any], max_sets: int = MAX_INPUT_SETS) -> list[tuple]:
    """Call make_inputs() (a tuple of arguments, or one tensor) until the sets together hold
    rotation_bytes of tensors (one set when it alone is that large; at most max_sets)."""
    first = as_args(make_inputs())
    per_set = nbytes(first)
    wanted = rotation_bytes(device_of(first))
    count = 1 if per_set == 0 else min(max_sets, max(1, math.ceil(wanted / per_set)))
    return [first] + [as_args(make_inputs()) for _ in range(count - 1)]


def needs_flush(sets: Sequence[tuple], device: torch.device) -> bool:
    """True when the input sets together are smaller than rotation_bytes: time_cuda then overwrites
    a 2 x L2 buffer before each launch."""
    return sum(nbytes(s) for s in sets) < rotation_bytes(device)


def cache_policy(sets: Sequence[tuple], device: torch.device) -> str:
    """How the measurement keeps the cache cold, for extra_info["cache"]."""
    policy = f"rotate {len(sets)} input sets" if len(sets) > 1 else "one input set"
    if device.type == "cuda" and needs_flush(sets, device):
        policy += ", L2 flushed before each launch"
    return policy


def version_of(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def quantiles_ms(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, 20th and 80th percentile (the numbers do_bench reports)."""
    p20, _, _, p80 = statistics.quantiles(times_ms, n=5, method="inclusive")
    return {"ms": statistics.median(times_ms), "ms_p20": p20, "ms_p80": p80}


def time_cuda(fn: Callable, sets: Sequence[tuple], device: torch.device,
              seconds: float = SECONDS_PER_MEASUREMENT) -> list[float]:
    """Milliseconds of each of n launches of fn on `device`, timed with CUDA events, the input sets
    used in turn; n aims at `seconds` of device time (10 to 1000). When the sets together are smaller
    than rotation_bytes, a 2 x L2 buffer is overwritten before each launch (outside the events) so
    the op never reads from a warm cache."""
    flush = torch.empty(rotation_bytes(device) // 4, dtype=torch.int32, device=device) if needs_flush(sets, device) else None
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    start.record()
    for i in range(3):
        fn(*sets[i % len(sets)])
    end.record()
    torch.cuda.synchronize(device)
    estimate_ms = max(start.elapsed_time(end) / 3, 1e-3)
    reps = min(1000, max(10, math.ceil(seconds * 1e3 / estimate_ms)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        if flush is not None:
            flush.zero_()
        starts[i].record()
        fn(*sets[i % len(sets)])
        ends[i].record()
    torch.cuda.synchronize(device)
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def peak_memory_cuda(fn: Callable, args: tuple, device: torch.device) -> int:
    """Bytes of device memory fn(*args) holds at its peak beyond what was allocated before it:
    outputs plus scratch (max_memory_allocated after reset_peak_memory_stats)."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    out = fn(*args)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del out
    return peak


def measure_copy_bandwidth(device: torch.device) -> float:
    """GB/s of a large copy within `device` (bytes read + bytes written over the median time):
    1 GiB on a GPU (CUDA events), 64 MiB on the CPU (wall clock). Random bytes, not zeros."""
    size = GPU_COPY_BYTES if device.type == "cuda" else CPU_COPY_BYTES
    src = torch.randn(size // 4, device=device).view(torch.uint8)
    dst = torch.empty_like(src)
    if device.type == "cuda":
        times = time_cuda(lambda s, d: d.copy_(s), [(src, dst)], device, seconds=0.05)
    else:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            dst.copy_(src)
            times.append((time.perf_counter() - t0) * 1e3)
    seconds = statistics.median(times) / 1e3
    del src, dst
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return 2 * size / seconds / GB


def roofline(bytes_moved: int, ms: float, copy_gbps: float | None) -> dict[str, float]:
    """Effective GB/s of an op that must move `bytes_moved` in `ms`, and its % of the copy bandwidth."""
    if not bytes_moved or ms <= 0:
        return {}
    gbps = bytes_moved / (ms / 1e3) / GB
    out = {"bytes": bytes_moved, "GB/s": gbps}
    if copy_gbps:
        out["copy_GB/s"] = copy_gbps
        out["%copy"] = 100 * gbps / copy_gbps
    return out


def measure(benchmark, copy_bandwidth: Callable[[torch.device], float], fn: Callable, *args,
            bytes_moved: int = 0, inputs=None, device=None, **extra):
    """The `timed` fixture: time fn(*args) through pytest-benchmark's `benchmark` fixture and record in
    its extra_info `extra` (the case: kernel, provider, dtype, batch, ...) and report.METRIC_KEYS.
    copy_bandwidth(device) -> GB/s is the conftest's session fixture.

    inputs: instead of *args, either a list of argument tuples, or a function returning one tuple
    (or one tensor) that is called until the sets together exceed twice the L2 (input_sets);
    the calls cycle through the sets so that small ops are not timed out of a warm cache.
    bytes_moved: the fewest bytes the op must move (each input read once, each output written once);
    gives GB/s and % of the measured copy bandwidth.
    device: where fn runs, needed only when no tensor argument or output says so (an op returning None).

    CUDA: 3 warm-up calls; `ms` = median of CUDA-event times of back-to-back launches
    (time_cuda); `peak_bytes` = device memory the op allocates at its peak; pytest-benchmark's
    own stats time 10 synchronized calls (launch and sync latency included).
    CPU: pytest-benchmark's wall-clock rounds; `ms` = their median. Returns the last call's output."""
    if inputs is not None and args:
        raise TypeError("timed: pass the arguments either positionally or as inputs=, not both")
    if inputs is None:
        sets = [args]
    elif callable(inputs):
        sets = input_sets(inputs)
    else:
        sets = [as_args(s) for s in inputs]
    if not benchmark.enabled:  # --benchmark-disable: run once, as a test
        return fn(*sets[0])

    out = None
    for args_now in itertools.islice(itertools.cycle(sets), max(3, min(len(sets), 8))):  # compile, autotune
        out = fn(*args_now)
    device = torch.device(device) if device is not None else device_of(sets[0], out)
    info = {"device": device.type, "device_name": device_name(device),
            "cache": cache_policy(sets, device)}
    if device.type == "cuda":
        info["gpu_name"] = info["device_name"]
        info["peak_bytes"] = peak_memory_cuda(fn, sets[0], device)
        info.update(quantiles_ms(time_cuda(fn, sets, device)))
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
        rounds = min(200, max(5, math.ceil(SECONDS_PER_MEASUREMENT / (time.perf_counter() - start))))
    rotation = itertools.cycle(sets)
    result = benchmark.pedantic(call, setup=lambda: (next(rotation), {}), rounds=rounds)
    if device.type == "cpu":
        info.update(quantiles_ms([t * 1e3 for t in benchmark.stats.stats.data]))
        info["timer"] = "perf_counter"
    info.update(roofline(bytes_moved, info["ms"], copy_bandwidth(device) if bytes_moved else None))
    benchmark.extra_info.update(extra)
    benchmark.extra_info.update(info)
    return result
