"""Benchmark JSON -> one markdown table per device and a roofline picture per device.

    python -m benchmarks.report results.json [more.json ...] --out DIR

Reads pytest-benchmark's --benchmark-json files (rows written through the `timed` fixture of
benchmarks/conftest.py) and writes:

- DIR/benchmarks.md: per device (GPU name, or CPU model), a table of op, size, dtype, provider,
  ms (median), GB/s, % of copy, peak memory, and the speed-up over the eager row and over the
  fastest torch.compile row of the same case;
- DIR/roofline-<device-slug>.png: per op, the GB/s of each provider (log axis: the eager and official
  rows are often 100x below the kernels) beside the copy-bandwidth line.

% of copy: the row's GB/s over the copy of the same size (the `copy` rows of bench_copy.py: a batch
of images copied within the device, the most an image-to-image op moving that batch can reach: a
small batch copies from cache, faster than memory); a case with no copy row of its size and dtype on
its device uses the session's large copy (harness.measure_copy_bandwidth, memory bandwidth). The copy
rows themselves are the 100% (their GB/s beside the large copy is in the table's heading).

It prints a short summary: the fastest provider of each case. Rows are matched into cases by their
extra_info: `kernel` (the op), `dtype`, and every other key the benchmark passed (batch, ...) as the
size (int and str values); the eager baseline is the row of provider "eager" or "official", else
"torch" (the eager reference); providers starting with "compile" are the compile ones.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

# Keys the `timed` fixture writes into extra_info; CASE_KEYS name the op, the implementation and the
# dtype; every other key a benchmark passes with an int or str value (batch, threads, ...) is part of
# the size (float values are the benchmark's own measurements, e.g. masks/s).
METRIC_KEYS = ("ms", "ms_p20", "ms_p80", "timer", "cache", "bytes", "GB/s", "copy_GB/s", "%copy",
               "peak_bytes", "device", "device_name", "gpu_name")
CASE_KEYS = ("kernel", "provider", "dtype")
# The baseline of "vs eager", in order of preference: the official code run eagerly, else
# mimkernels' eager torch reference (written step by step as the official code).
EAGER_PROVIDERS = ("eager", "official", "torch")
COPY_OP = "copy"   # bench_copy.py's rows: the roofline of their size


@dataclass
class Row:
    device: str
    op: str
    size: str
    dtype: str
    provider: str
    ms: float
    gbps: float | None = None
    copy_gbps: float | None = None
    peak_bytes: int | None = None
    vs_eager: float | None = None
    vs_compile: float | None = None
    same_size_copy_gbps: float | None = None   # the copy row of this size and dtype on this device, if run

    @property
    def is_copy(self) -> bool:
        return self.op == COPY_OP

    @property
    def case(self) -> tuple[str, str, str, str]:
        return self.device, self.op, self.size, self.dtype

    @property
    def label(self) -> str:
        """The case within its op, for the picture's x axis."""
        return " ".join(filter(None, (self.size, self.dtype))) or self.op

    @property
    def reference_gbps(self) -> float | None:
        """The copy this row is a % of: the same-size copy row, else the large copy."""
        return self.same_size_copy_gbps or self.copy_gbps

    @property
    def pct_copy(self) -> float | None:
        return 100 * self.gbps / self.reference_gbps if self.gbps and self.reference_gbps else None


def slug(name: str) -> str:
    """'NVIDIA H200' -> 'nvidia-h200' (also run_gpu.sh's results folder)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def row_of(bench: dict, machine_info: dict) -> Row:
    extra = bench.get("extra_info", {})
    ms = extra.get("ms", bench["stats"]["median"] * 1e3)
    size = ", ".join(f"{k}={v}" for k, v in sorted(extra.items())
                     if k not in METRIC_KEYS and k not in CASE_KEYS and not isinstance(v, float))
    gbps = extra["bytes"] / (ms / 1e3) / 1e9 if extra.get("bytes") else None
    return Row(
        device=extra.get("device_name") or machine_info.get("gpu", {}).get("name") or "unknown device",
        op=extra.get("kernel") or bench["name"].split("[")[0],
        size=size,
        dtype=str(extra.get("dtype", "")).replace("torch.", ""),
        provider=str(extra.get("provider") or bench.get("param") or "-"),
        ms=ms,
        gbps=gbps,
        copy_gbps=extra.get("copy_GB/s"),
        peak_bytes=extra.get("peak_bytes"),
    )


def load_rows(paths: list[Path]) -> list[Row]:
    rows = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        rows += [row_of(bench, data.get("machine_info", {})) for bench in data.get("benchmarks", [])]
    add_speedups(rows)
    add_same_size_copies(rows)
    return sorted(rows, key=lambda r: (r.device, r.op, natural(r.size), r.dtype, provider_order(r.provider)))


def natural(text: str) -> list:
    """Sort key comparing the numbers inside `text` as numbers: batch=8 before batch=256."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def provider_order(provider: str) -> tuple[int, str]:
    if provider in EAGER_PROVIDERS:
        return (EAGER_PROVIDERS.index(provider), provider)
    return (len(EAGER_PROVIDERS) + (0 if provider.startswith("compile") else 1), provider)


def add_speedups(rows: list[Row]) -> None:
    """vs_eager = baseline ms / ms (EAGER_PROVIDERS) and vs_compile = fastest compile ms / ms, per case."""
    cases = defaultdict(list)
    for row in rows:
        cases[row.case].append(row)
    for members in cases.values():
        eager = sorted((r for r in members if r.provider in EAGER_PROVIDERS), key=lambda r: provider_order(r.provider))
        compiled = [r.ms for r in members if r.provider.startswith("compile")]
        for row in members:
            row.vs_eager = eager[0].ms / row.ms if eager else None
            row.vs_compile = min(compiled) / row.ms if compiled else None


def add_same_size_copies(rows: list[Row]) -> None:
    """Each row with bytes: the fastest copy row of its device, size and dtype, as its 100% (see the module doc)."""
    copies: dict[tuple, float] = {}
    for row in rows:
        if row.is_copy and row.gbps:
            key = row.device, row.size, row.dtype
            copies[key] = max(copies.get(key, 0.0), row.gbps)
    for row in rows:
        if row.gbps:
            row.same_size_copy_gbps = copies.get((row.device, row.size, row.dtype))


def gbps_text(value: float) -> str:
    """GB/s to three significant digits, without an exponent: 0.603, 74.6, 3333."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{spec}}{suffix}"


def by_device(rows: list[Row]) -> dict[str, list[Row]]:
    devices: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        devices[row.device].append(row)
    return devices


def markdown(rows: list[Row]) -> str:
    out = []
    for device, members in by_device(rows).items():
        copies = sorted({r.copy_gbps for r in members if r.copy_gbps})
        if not copies:
            copy = "copy bandwidth not measured"
        elif len(copies) == 1:
            copy = f"measured copy bandwidth {gbps_text(copies[0])} GB/s (read + write)"
        else:  # rows of several runs: each row's % is of its own run's measurement
            copy = f"measured copy bandwidth {gbps_text(copies[0])} to {gbps_text(copies[-1])} GB/s over {len(copies)} runs"
        sized = sorted(((r.size, r.dtype, r.gbps, r.copy_gbps) for r in members if r.is_copy and r.gbps),
                       key=lambda c: natural(c[0]))
        if sized:
            copy += "; copy of each size: " + ", ".join(
                f"{size} {dtype} {gbps_text(gbps)} GB/s" + (f" ({100 * gbps / large:.0f}% of the large copy)" if large else "")
                for size, dtype, gbps, large in sized)
        legend = (f"{copy}; % of copy = GB/s over the copy of the same size and dtype where one ran (the most an op "
                  "moving that batch can reach), else over the large copy; ms = median; vs eager = eager ms / ms (the "
                  "official code, else the torch reference), vs compile = fastest torch.compile ms / ms.")
        out += [f"### {device}", "", legend,
                "", "| op | size | dtype | provider | ms | GB/s | % of copy | peak memory | vs eager | vs compile |",
                "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in members:
            peak = None if r.peak_bytes is None else r.peak_bytes / 2**20
            out.append(f"| {r.op} | {r.size or '—'} | {r.dtype or '—'} | {r.provider} | {r.ms:.4g} | "
                       f"{gbps_text(r.gbps) if r.gbps else '—'} | {fmt(r.pct_copy, '.0f', '%')} | {fmt(peak, '.1f', ' MiB')} | "
                       f"{fmt(r.vs_eager, '.2f', 'x')} | {fmt(r.vs_compile, '.2f', 'x')} |")
        out.append("")
    return "\n".join(out)


def plot(rows: list[Row], path: Path) -> bool:
    """One panel per op: bars of GB/s per case (size, dtype) and provider; the copy bandwidth as a line.
    False (and no file) when no row has bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.gbps:
            ops[row.op].append(row)
    if not ops:
        return False
    ncols = min(3, len(ops))
    nrows = math.ceil(len(ops) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 4 * nrows), squeeze=False)
    for ax, (op, members) in zip(axes.flat, sorted(ops.items())):
        plot_op(ax, op, members)
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    fig.suptitle(rows[0].device)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_op(ax, op: str, members: list[Row]) -> None:
    """One op's panel: bars of GB/s per case and provider on a log axis, the copy bandwidths as lines."""
    cases = list(dict.fromkeys(r.label for r in members))
    providers = sorted({r.provider for r in members}, key=provider_order)
    width = 0.8 / len(providers)
    for i, provider in enumerate(providers):
        mine = [r for r in members if r.provider == provider]
        offset = (i - (len(providers) - 1) / 2) * width
        ax.bar([cases.index(r.label) + offset for r in mine], [r.gbps for r in mine], width, label=provider)
    copies = [r.copy_gbps for r in members if r.copy_gbps]
    if copies:
        ax.axhline(max(copies), color="black", linestyle="--", linewidth=1,
                   label=f"large copy {gbps_text(max(copies))} GB/s")
    ax.set_title(op)
    ax.set_yscale("log")
    ax.set_ylabel("GB/s (minimum bytes / median time), log")
    values = [r.gbps for r in members] + copies
    # a decade below the slowest bar, and room for the legend above the fastest
    ax.set_ylim(min(values) / 10, max(values) * 30)
    ax.set_xticks(range(len(cases)), cases, rotation=20, ha="right", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", ncol=3)


def summary(rows: list[Row]) -> str:
    """The fastest provider of each case, one line each."""
    best: dict[tuple, Row] = {}
    for row in rows:
        if row.case not in best or row.ms < best[row.case].ms:
            best[row.case] = row
    columns = "{:<20} {:<22} {:<22} {:<9} {:<10} {:>9} {:>6} {:>8} {:>10}"
    lines = [columns.format("device", "op", "size", "dtype", "fastest", "ms", "%copy", "vs eager", "vs compile")]
    for (device, op, size, dtype), r in best.items():
        lines.append(columns.format(device[:20], op[:22], size[:22], dtype[:9], r.provider[:10], f"{r.ms:.4g}",
                                    fmt(r.pct_copy, ".0f", "%"), fmt(r.vs_eager, ".2f", "x"),
                                    fmt(r.vs_compile, ".2f", "x")))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n")[0])
    parser.add_argument("json", nargs="+", type=Path, help="pytest-benchmark --benchmark-json files")
    parser.add_argument("--out", type=Path, required=True, help="folder for benchmarks.md and roofline-*.png")
    args = parser.parse_args(argv)
    rows = load_rows(args.json)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.md").write_text(markdown(rows) if rows else "No benchmark rows in the input.\n")
    devices = by_device(rows)
    pictures = [f"roofline-{slug(d)}.png" for d, members in devices.items()
                if plot(members, args.out / f"roofline-{slug(d)}.png")]
    if rows:
        print(summary(rows))
    print(f"report: {len(rows)} rows, {len(devices)} devices -> {args.out / 'benchmarks.md'}"
          + "".join(f", {p}" for p in pictures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
