"""benchmarks/report.py on a synthetic pytest-benchmark JSON with known numbers, and the harness's
measuring helpers on the CPU (the CUDA timing paths run in benchmarks/run_gpu.sh)."""
import json
import math

import matplotlib.image
import pytest
import torch

from benchmarks import harness, report

H200, H100 = "NVIDIA H200", "NVIDIA H100 80GB HBM3"


def bench(device, provider, ms, *, kernel="patchify", batch=256, dtype="torch.float32", nbytes=10**9,
          copy=4000.0, peak=2**21, extra_ms=True):
    """One benchmark record as pytest-benchmark writes it through the `timed` fixture."""
    extra = {"kernel": kernel, "provider": provider, "batch": batch, "dtype": dtype, "device": "cuda",
             "device_name": device, "gpu_name": device, "timer": "cuda_events", "cache": "one input set",
             "bytes": nbytes, "copy_GB/s": copy, "peak_bytes": peak}
    if extra_ms:
        extra.update(ms=ms, ms_p20=ms * 0.9, ms_p80=ms * 1.1)
    return {"name": f"test_{kernel}[{provider}]", "param": provider, "extra_info": extra,
            "stats": {"median": (ms if not extra_ms else 9.0) / 1e3}}


@pytest.fixture
def results(tmp_path):
    benchmarks = [
        bench(H200, "eager", 2.0), bench(H200, "compile", 1.0), bench(H200, "compile-max-autotune", 0.8),
        bench(H200, "triton", 0.5),
        bench(H200, "triton", 0.25, extra_ms=False),  # ms from pytest-benchmark's stats: a different size below
        bench(H200, "eager", 0.1, dtype="torch.bfloat16", nbytes=0, peak=None),
        bench(H100, "eager", 3.0, copy=3000.0), bench(H100, "triton", 1.0, copy=3000.0),
    ]
    benchmarks[4]["extra_info"]["batch"] = 8
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": benchmarks}))
    return path


def table(markdown, device):
    """The rows of `device`'s markdown table as dicts keyed by the header."""
    section = markdown.split(f"### {device}\n")[1].split("### ")[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


def test_markdown_numbers(results, tmp_path):
    assert report.main([str(results), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "benchmarks.md").read_text()
    rows = table(text, H200)
    by_provider = {(r["size"], r["dtype"], r["provider"]): r for r in rows}
    triton = by_provider["batch=256", "float32", "triton"]
    assert float(triton["ms"]) == 0.5
    assert float(triton["GB/s"]) == pytest.approx(2000.0)  # 1e9 bytes / 0.5 ms
    assert triton["% of copy"] == "50%"
    assert triton["peak memory"] == "2.0 MiB"
    assert triton["vs eager"] == "4.00x"
    assert triton["vs compile"] == "1.60x"  # against the fastest compile row, 0.8 ms
    assert by_provider["batch=256", "float32", "eager"]["vs compile"] == "0.40x"
    # A row without extra_info["ms"] falls back to pytest-benchmark's median; its case has no baseline.
    alone = by_provider["batch=8", "float32", "triton"]
    assert float(alone["ms"]) == 0.25 and alone["vs eager"] == "—" and alone["vs compile"] == "—"
    # No bytes: no GB/s; no peak: a dash.
    bf16 = by_provider["batch=256", "bfloat16", "eager"]
    assert bf16["GB/s"] == "—" and bf16["% of copy"] == "—" and bf16["peak memory"] == "—"
    # Order within a case: eager, compile variants, then the kernels.
    assert [r["provider"] for r in rows if r["size"] == "batch=256" and r["dtype"] == "float32"] == [
        "eager", "compile", "compile-max-autotune", "triton"]
    assert "measured copy bandwidth 4000 GB/s" in text
    # The other GPU is its own table, matched only within itself.
    h100 = {r["provider"]: r for r in table(text, H100)}
    assert h100["triton"]["vs eager"] == "3.00x" and h100["triton"]["% of copy"] == "33%"
    assert len(rows) == 6 and len(h100) == 2


def test_pictures_one_per_device(results, tmp_path):
    report.main([str(results), "--out", str(tmp_path)])
    for device in (H200, H100):
        image = matplotlib.image.imread(tmp_path / f"roofline-{report.slug(device)}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert report.slug(H100) == "nvidia-h100-80gb-hbm3"


def test_summary_names_the_fastest(results):
    lines = report.summary(report.load_rows([results])).splitlines()
    h200 = [line for line in lines if line.startswith(H200) and "batch=256" in line and "float32" in line]
    assert len(h200) == 1 and " triton " in h200[0] and "4.00x" in h200[0] and "1.60x" in h200[0]


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
def test_cuda_timing_and_peak_memory():
    device = torch.device("cuda")
    x = torch.randn(2**24, device=device)
    times = harness.time_cuda(lambda t: t * 2, [(x,)], device, seconds=0.01)
    assert len(times) >= 10 and all(t > 0 for t in times)
    assert harness.peak_memory_cuda(lambda t: t * 2, (x,), device) >= x.numel() * 4  # the output
    assert harness.device_of((x,)).type == "cuda"
    assert harness.cache_policy([(x,)], device) == "one input set, L2 flushed before each launch"
    assert 100 < harness.measure_copy_bandwidth(device) < 100_000
