"""The value fuzzer in the test suite (issue 20): every public op on every CPU backend (torch, cpp, Triton
under the interpreter), MIMKERNELS_FUZZ_CASES cases per op (default 1000) on torch and cpp and the first
MIMKERNELS_FUZZ_TRITON of them (default 48: the interpreter takes 10-500 ms a call) on Triton, all in
MIMKERNELS_FUZZ_WORKERS worker subprocesses (default 2) so that a segfault fails its case and not the
run. One test per (op, backend, category): it passes when every case of the cell gave a clean error or
the defined result (python_tests/fuzz/worker.py says which); known failing cells (known.py) are strict
xfail. Failures print a table of cases; rerun one with
`python -m python_tests.fuzz.run --op OP --backend BACKEND --case INDEX -v`."""
import pytest

from python_tests.fuzz import cases, known, run

N_CASES, N_TRITON = run.default_counts()
SEED = run.os.environ.get("MIMKERNELS_FUZZ_SEED", "0")


def _cells():
    cells = []
    for op in cases.ops():
        for backend in run.cpu_backends(op):
            n = N_CASES if backend != "triton" or N_TRITON is None else min(N_CASES, N_TRITON)
            for category in sorted({cases.category_of(op, i, int(SEED)) for i in range(n)}):
                cells.append((op, backend, category))
    return cells


CELLS = _cells()


def _param(cell):
    marks = []
    if cell in known.KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(strict=True, reason=known.KNOWN_FAILURES[cell]))
    return pytest.param(*cell, marks=marks, id="-".join(cell))


@pytest.fixture(scope="module")
def fuzz_results():
    jobs = run.make_jobs(cases.ops(), N_CASES, N_TRITON)
    return run.summarize(run.run_parallel(jobs))


def test_every_op_gets_its_cases():
    ops = {op for op, _, _ in CELLS}
    assert ops == set(cases.ops())
    assert not run.os.environ.get("MIMKERNELS_FUZZ_OPS") or ops, "MIMKERNELS_FUZZ_OPS names no op"
    assert N_CASES >= 1000 or run.os.environ.get("MIMKERNELS_FUZZ_CASES"), "issue 20: at least 1000 cases per op"


def test_known_failures_name_existing_cells():
    """Every entry of known.py is a cell that runs here (its backend available), or was mistyped."""
    here = {(op, backend) for op, backend, _ in CELLS}  # (MIMKERNELS_FUZZ_OPS: the ops fuzzed)
    stale = {cell for cell in known.KNOWN_FAILURES if cell[:2] in here and cell not in CELLS}
    assert not stale, stale


@pytest.mark.parametrize("op,backend,category", [_param(c) for c in CELLS])
def test_fuzz(fuzz_results, op, backend, category):
    cell = fuzz_results.get((op, backend, category))
    assert cell and cell["cases"], f"no case of {(op, backend, category)} ran"
    assert not cell["failures"], (f"{len(cell['failures'])} of {cell['cases']} cases failed:\n"
                                  + run.failure_table(cell["failures"], limit_per_cell=5))
