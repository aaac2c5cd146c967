"""benchmarks/report.py on a synthetic pytest-benchmark JSON with known numbers."""
import json

import matplotlib.image
import pytest

from benchmarks import report

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
    benchmarks += [bench(H100, "torch", 4.0, kernel="avg_dist"), bench(H100, "cuda", 1.0, kernel="avg_dist")]
    for provider, ms in (("torch", 12.0), ("official", 6.0), ("cpp", 0.2)):  # the official code is the baseline
        benchmarks.append(bench(H200, provider, ms, kernel="block_mask", nbytes=0, peak=None))
        benchmarks[-1]["extra_info"].update({"threads": 1, "masks/s": 256 / ms * 1e3})
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
    assert [report.gbps_text(x) for x in (0.60328, 74.61, 3333.33)] == ["0.603", "74.6", "3333"]
    # The other GPU is its own table, matched only within itself.
    h100 = {r["provider"]: r for r in table(text, H100) if r["op"] == "patchify"}
    assert h100["triton"]["vs eager"] == "3.00x" and h100["triton"]["% of copy"] == "33%"
    assert len(rows) == 9 and len(h100) == 2
    # "official" is the eager baseline; a float extra (masks/s) is a measurement, not part of the size.
    cpp = by_provider["batch=256, threads=1", "float32", "cpp"]
    assert cpp["vs eager"] == "30.00x" and cpp["op"] == "block_mask"
    assert by_provider["batch=256, threads=1", "float32", "torch"]["vs eager"] == "0.50x"
    # Without an eager or official row, the torch reference is the baseline.
    avg_dist = {r["provider"]: r for r in table(text, H100) if r["op"] == "avg_dist"}
    assert avg_dist["cuda"]["vs eager"] == "4.00x" and avg_dist["torch"]["vs eager"] == "1.00x"


def test_pictures_one_per_device(results, tmp_path):
    report.main([str(results), "--out", str(tmp_path)])
    for device in (H200, H100):
        image = matplotlib.image.imread(tmp_path / f"roofline-{report.slug(device)}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert report.slug(H100) == "nvidia-h100-80gb-hbm3"


def test_summary_names_the_fastest(results):
    lines = report.summary(report.load_rows([results])).splitlines()
    h200 = [line for line in lines if line.startswith(H200) and " patchify " in line and "batch=256 " in line
            and "float32" in line]
    assert len(h200) == 1 and " triton " in h200[0] and "4.00x" in h200[0] and "1.60x" in h200[0]


def test_copy_rows_are_the_100_percent_of_their_size(tmp_path):
    """A small batch copies from cache faster than the large copy: the copy row is the roofline of its size
    (100%), not "250% of copy"; an op of that size is a % of it; an op of a size without a copy row is a % of
    the large copy."""
    benchmarks = [bench(H200, "eager", 0.004, kernel="copy", batch=8, nbytes=10**7),         # 2500 GB/s
                  bench(H200, "triton", 0.008, batch=8, nbytes=10**7),                        # 1250 GB/s
                  bench(H200, "triton", 0.5, batch=256)]                                      # 2000 GB/s
    path = tmp_path / "copy.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": benchmarks}))
    report.main([str(path), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "benchmarks.md").read_text()
    rows = {(r["op"], r["size"]): r for r in table(text, H200)}
    assert float(rows["copy", "batch=8"]["GB/s"]) == pytest.approx(2500)
    assert rows["copy", "batch=8"]["% of copy"] == "100%"
    assert rows["patchify", "batch=8"]["% of copy"] == "50%"          # of the same-size copy, 2500 GB/s
    assert rows["patchify", "batch=256"]["% of copy"] == "50%"        # of the large copy, 4000 GB/s
    assert "batch=8 float32 2500 GB/s (62% of the large copy)" in text


def test_roofline_axis_is_logarithmic_and_shows_the_slowest_bar():
    """The official/eager bars, 1000x below the kernels, stay visible: log axis, the slowest bar inside it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [report.row_of(bench(H200, provider, ms), {}) for provider, ms in (("official", 500.0), ("triton", 0.5))]
    fig, ax = plt.subplots()
    report.plot_op(ax, "patchify", rows)
    bottom, top = ax.get_ylim()
    heights = sorted(bar.get_height() for bar in ax.patches)
    assert ax.get_yscale() == "log"
    assert heights == pytest.approx([2.0, 2000.0])
    assert bottom < heights[0] / 2 and top > 4000             # the slowest bar and the copy line inside the axis
    plt.close(fig)
