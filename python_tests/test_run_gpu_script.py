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
    proc, steps = run_script(tmp_path, MIMKERNELS_GPU_STEPS="smoke", MIMKERNELS_GPU_BUDGET_SMOKE="1")
    assert proc.returncode == 1 and steps == {"smoke": "TIMEOUT"} and proc.seconds["smoke"] <= 3
    proc, steps = run_script(tmp_path, MIMKERNELS_GPU_STEPS="build,report", MIMKERNELS_GPU_TOTAL="0")
    assert proc.returncode == 1 and steps == {"build": "SKIPPED", "report": "skipped"}


def test_plan_puts_what_matters_first_within_one_device_call():
    """The order: build, the smoke run of every kernel, the benchmarks and their report, then the tests and
    the sanitizers with the time left; the steps before the tests fit the total, which leaves the tar
    and the machine's start inside a 9-minute call."""
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "run_gpu.sh"), "--plan"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    total = int(lines[0].split("total ")[1].split("s")[0])
    budgets = {name: int(seconds.rstrip("s")) for name, seconds in (line.split() for line in lines[1:])}
    assert list(budgets) == ["build", "smoke", "bench", "report", "tests", "memcheck", "racecheck"]
    assert budgets["smoke"] <= 60 and sum(budgets[s] for s in ("build", "smoke", "bench", "report")) <= total <= 9 * 60 - 30


def test_summary_is_written_after_every_step(tmp_path):
    """A run cut off in the middle of a step (the device call's limit) still leaves the summary of the
    steps it finished."""
    import signal

    env = {**os.environ, "MIMKERNELS_GPU_DRY_RUN": "1", "MIMKERNELS_GPU_RESULTS": str(tmp_path), "PYTHON": sys.executable,
           "MIMKERNELS_GPU_STEPS": "smoke,tests", "MIMKERNELS_GPU_BUDGET_SMOKE": "1",
           "MIMKERNELS_GPU_TESTS": "python_tests"}  # the whole suite: far longer than the cut-off below
    proc = subprocess.Popen(["bash", str(ROOT / "benchmarks" / "run_gpu.sh")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    rows = [line.split() for line in (tmp_path / "summary.txt").read_text().splitlines()[2:]]
    assert [row[:2] for row in rows] == [["smoke", "TIMEOUT"]]
