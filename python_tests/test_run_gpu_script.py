"""benchmarks/run_gpu.sh in its dry-run mode (MIMKERNELS_GPU_DRY_RUN=1) on a tiny subset: a failed step
is recorded and the next ones still run, budgets are enforced, and the benchmark JSON, the report and
the summary land in the results folder. No build here (CI builds once); the GPU steps are run by the
script itself on a GPU machine."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report

ROOT = Path(__file__).resolve().parents[1]


def run_script(results: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run the dry run; returns the process and {step: status} read off the summary table it prints last
    (the seconds each step took are in the process's `seconds` attribute)."""
    full_env = {**os.environ, "MIMKERNELS_GPU_DRY_RUN": "1", "MIMKERNELS_GPU_RESULTS": str(results),
                "PYTHON": sys.executable, **env}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "run_gpu.sh")], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    header = max(i for i, line in enumerate(lines) if line.split()[:3] == ["step", "status", "seconds"])
    rows = [line.split() for line in lines[header + 1:-1]]
    proc.seconds = {row[0]: int(row[2]) for row in rows}
    return proc, {row[0]: row[1] for row in rows}


def test_dry_run_records_a_failure_and_goes_on(tmp_path):
    proc, steps = run_script(tmp_path, MIMKERNELS_GPU_STEPS="tests,bench,report,memcheck",
                             MIMKERNELS_GPU_TESTS="python_tests/no_such_file.py",
                             MIMKERNELS_GPU_BENCH="benchmarks/bench_copy.py", MIMKERNELS_GPU_BENCH_K="cpu")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert steps == {"tests": "FAILED(4)", "bench_copy": "ok", "report": "ok", "memcheck": "skipped"}
    assert proc.stdout.rstrip().endswith("Some step failed or ran out of time: see its log in " f"{tmp_path}/.")
    assert (tmp_path / "summary.txt").read_text().splitlines()[-1] == proc.stdout.splitlines()[-1]

    # The copy benchmark ran on the CPU through the timed fixture: its numbers are consistent.
    (row,) = json.loads((tmp_path / "bench_copy.json").read_text())["benchmarks"]
    extra = row["extra_info"]
    assert (extra["kernel"], extra["provider"], extra["batch"], extra["device"]) == ("copy", "eager", 8, "cpu")
    assert extra["bytes"] == 2 * 8 * 3 * 224 * 224 * 4
    assert extra["ms_p20"] <= extra["ms"] <= extra["ms_p80"]
    assert extra["GB/s"] == pytest.approx(extra["bytes"] / extra["ms"] / 1e6)
    assert extra["%copy"] == pytest.approx(100 * extra["GB/s"] / extra["copy_GB/s"])
    assert extra["cache"].startswith("rotate ") and extra["timer"] == "perf_counter"
    assert row["stats"]["rounds"] >= 5

    table = (tmp_path / "benchmarks.md").read_text()
    assert f"| copy | batch=8 | float32 | eager | {extra['ms']:.4g} | {report.gbps_text(extra['GB/s'])} |" in table
    assert list(tmp_path.glob("roofline-*.png"))
    assert "python_tests/no_such_file.py" in (tmp_path / "tests.log").read_text()


def test_budgets_are_enforced(tmp_path):
    proc, steps = run_script(tmp_path, MIMKERNELS_GPU_STEPS="info", MIMKERNELS_GPU_BUDGET_INFO="1")
    assert proc.returncode == 1 and steps == {"info": "TIMEOUT"} and proc.seconds["info"] <= 3
    proc, steps = run_script(tmp_path, MIMKERNELS_GPU_STEPS="build,report", MIMKERNELS_GPU_TOTAL="0")
    assert proc.returncode == 1 and steps == {"build": "SKIPPED", "report": "skipped"}
