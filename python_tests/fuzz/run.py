"""The fuzz parent: runs cases in worker subprocesses (python_tests/fuzz/worker.py) and collects one result
per (op, case, backend). A worker killed by a signal (segmentation fault), a sanitizer report (ASan/UBSan
exit), or a case that runs past its time limit fails that case; the worker is restarted on the next one.

  python -m python_tests.fuzz.run                      # every op, every CPU backend, failures as a table
  python -m python_tests.fuzz.run --op gather_patches --backend triton --case 3 -v   # one case, all results
  MIMKERNELS_FUZZ_CASES=1000      cases per op on torch and cpp (the fast backends)
  MIMKERNELS_FUZZ_TRITON=48       of those, the first N on Triton under the interpreter (10-500 ms a call);
                                  "all" for every case (a long run, not CI)
  MIMKERNELS_FUZZ_SEED=0          a different seed gives other cases
  MIMKERNELS_FUZZ_WORKERS=2       worker processes
  MIMKERNELS_FUZZ_OPS=a,b         only these ops (also for python_tests/fuzz/test_fuzz.py)
  MIMKERNELS_FUZZ_SOFT_TIMEOUT=10 seconds a call may take (Triton: 4x) before it counts as a hang
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASE_TIMEOUT_S = float(os.environ.get("MIMKERNELS_FUZZ_HARD_TIMEOUT", "60"))


def default_counts() -> tuple[int, int | None]:
    n = int(os.environ.get("MIMKERNELS_FUZZ_CASES", "1000"))
    t = os.environ.get("MIMKERNELS_FUZZ_TRITON", "48")
    return n, (None if t == "all" else int(t))


def cpu_backends(op: str, include=("torch", "cpp", "triton")) -> list[str]:
    import torch

    from mimkernels import _backends
    return [b for b in _backends.implemented(op)
            if b in include and _backends.unavailable_reason(b, torch.device("cpu")) is None]


def make_jobs(ops, n_cases: int, n_triton: int | None, backends=("torch", "cpp", "triton"), only_case=None):
    """[op, index, [backends]] jobs: every case on torch and cpp, the first n_triton on triton."""
    jobs = []
    for op in ops:
        available = cpu_backends(op, backends)
        indices = [only_case] if only_case is not None else range(n_cases)
        for i in indices:
            bes = [b for b in available if b != "triton" or n_triton is None or i < n_triton]
            if bes:
                jobs.append([op, i, bes])
    return jobs


def _stderr_tail(path: str, chars: int = 600) -> str:
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "Fatal Python error", "Segmentation fault"):
        at = text.find(marker)
        if at >= 0:
            return text[at:at + chars]
    return text[-chars:]


def run_worker_jobs(jobs: list, env: dict | None = None, timeout_s: float = CASE_TIMEOUT_S,
                    python=sys.executable, log=None, root: str = ROOT) -> list[dict]:
    """Results of `jobs` in a worker subprocess, restarted after each crash or hang (that case failed).
    `root`: where the worker runs and imports from (the sanitizer run's copy of the package)."""
    results: list[dict] = []
    pending = [list(j) for j in jobs]
    env = dict(os.environ if env is None else env)
    if env.get("MIMKERNELS_FUZZ_DEVICE", "cpu") == "cpu":
        env.setdefault("TRITON_INTERPRET", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    soft = float(env.get("MIMKERNELS_FUZZ_SOFT_TIMEOUT", "10"))
    dead: dict = {}
    with tempfile.TemporaryDirectory(prefix="mk_fuzz_") as tmp:
        restarts = 0
        while pending:
            jobs_file, err_file = os.path.join(tmp, "jobs.jsonl"), os.path.join(tmp, f"stderr{restarts}.txt")
            with open(jobs_file, "w") as f:
                f.writelines(json.dumps(j) + "\n" for j in pending)
            with open(err_file, "w") as err:
                proc = subprocess.Popen([python, "-m", "python_tests.fuzz.worker", jobs_file], cwd=root, env=env,
                                        stdout=subprocess.PIPE, stderr=err, text=True)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=lambda: ([lines.put(x) for x in proc.stdout], lines.put(None)),
                             daemon=True).start()
            current, started, hung = None, time.monotonic(), False
            while True:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    limit = min(timeout_s, soft * (4 if current and current[2] == "triton" else 1) + 5)
                    if current is not None and time.monotonic() - started > limit:
                        proc.kill()
                        hung = limit
                    continue
                if line is None:
                    break
                if line.startswith("B "):
                    _, op, i, be = line.split()
                    current, started = (op, int(i), be), time.monotonic()
                elif line.startswith("{"):
                    r = json.loads(line)
                    results.append(r)
                    if log:
                        log(r)
                    _done(pending, r["op"], r["i"], r["backend"])
                    current = None
            rc = proc.wait()
            if current is None and rc == 75:  # worker.DEVICE_FAULT_EXIT: its case is recorded; a fresh context
                restarts += 1
                _count_dead(results[-1:], dead)
                pending = _drop_dead_cells(pending, dead)
                continue
            if current is None and rc != 0 and pending:  # died before any case began: no use restarting
                raise RuntimeError(f"fuzz worker exited {rc} before running a case:\n{_stderr_tail(err_file, 3000)}")
            if current is not None:
                op, i, be = current
                what = (f"hang: over {hung:.0f} s (killed)" if hung else
                        f"crash: killed by signal {-rc}" if rc < 0 else f"crash: exit status {rc}")
                tail = _stderr_tail(err_file)
                r = {"op": op, "i": i, "backend": be, "cat": _category(op, i), "label": _label(op, i),
                     "ok": False, "what": f"{what}; {tail.strip()[:400]}"}
                results.append(r)
                if log:
                    log(r)
                _done(pending, op, i, be)
                restarts += 1
                # A cell (op, backend, category) that already crashed or hung MAX_RESTARTS_PER_CELL times
                # has failed: its other cases are not run (each would cost a fresh worker). A fixed cell
                # never gets here, so the strict xfail of known.py still sees it pass.
                _count_dead(results[-1:], dead)
                pending = _drop_dead_cells(pending, dead)
            elif rc != 0 and pending:
                raise RuntimeError(f"fuzz worker exited {rc}: {_stderr_tail(err_file, 3000)}")
    return results


MAX_RESTARTS_PER_CELL = 1


def _count_dead(results: list, dead: dict) -> None:
    for r in results:
        if not r["ok"] and r["what"].startswith(("crash", "hang")):
            key = (r["op"], r["backend"], r["cat"])
            dead[key] = dead.get(key, 0) + 1


def _drop_dead_cells(pending: list, dead: dict) -> list:
    out = []
    for op, i, backends in pending:
        keep = [b for b in backends if dead.get((op, b, _category(op, i)), 0) < MAX_RESTARTS_PER_CELL]
        if keep:
            out.append([op, i, keep])
    return out


def _done(pending: list, op: str, i: int, backend: str) -> None:
    while pending and (pending[0][0], pending[0][1]) != (op, i):
        pending.pop(0)  # never happens for a well-behaved worker; keeps the list in step if it does
    if pending and backend in pending[0][2]:
        pending[0][2] = pending[0][2][pending[0][2].index(backend) + 1:]
        if not pending[0][2]:
            pending.pop(0)


def _case(op, i):
    from python_tests.fuzz import cases
    seed = int(os.environ.get("MIMKERNELS_FUZZ_SEED", "0"))
    return cases.make_case(op, i, seed)


def _category(op, i):
    from python_tests.fuzz import cases
    return cases.category_of(op, i, int(os.environ.get("MIMKERNELS_FUZZ_SEED", "0")))


def _label(op, i):
    try:
        return _case(op, i).label
    except Exception as exc:  # noqa: BLE001
        return f"(case not rebuilt: {type(exc).__name__}: {exc})"


def run_parallel(jobs: list, workers: int | None = None, **kw) -> list[dict]:
    """Jobs dealt round-robin by op-interleaved chunks over `workers` worker subprocesses."""
    workers = workers or int(os.environ.get("MIMKERNELS_FUZZ_WORKERS", "2"))
    # balance: triton jobs are 100x slower, so deal each op's jobs round-robin
    shares = [[] for _ in range(max(1, workers))]
    for k, job in enumerate(jobs):
        shares[k % len(shares)].append(job)
    out: list[list] = [[] for _ in shares]
    errors = []

    def go(k):
        try:
            out[k] = run_worker_jobs(shares[k], **kw)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(len(shares)) if shares[k]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [r for part in out for r in part]


def summarize(results: list[dict]) -> dict:
    """(op, backend, category) -> {"cases": n, "failures": [result, ...]}."""
    table: dict = defaultdict(lambda: {"cases": 0, "failures": []})
    for r in results:
        cell = table[(r["op"], r["backend"], r["cat"])]
        cell["cases"] += 1
        if not r["ok"]:
            cell["failures"].append(r)
    return dict(table)


def failure_table(results: list[dict], limit_per_cell: int = 2) -> str:
    rows = ["| op | backend | category | failed / cases | example case (index: input) | what happened |",
            "|---|---|---|---|---|---|"]
    for (op, be, cat), cell in sorted(summarize(results).items()):
        if cell["failures"]:
            for r in cell["failures"][:limit_per_cell]:
                what = r["what"].replace("|", "/").replace("\n", " ")[:200]
                rows.append(f"| {op} | {be} | {cat} | {len(cell['failures'])}/{cell['cases']} | "
                            f"{r['i']}: {r['label'][:90]}{' (grad)' if r.get('grad') else ''}"
                            f"{' (DEBUG)' if r.get('debug') else ''} | {what} |")
    return "\n".join(rows)


def known_entries(results: list[dict]) -> str:
    """The failing cells as python_tests/fuzz/known.py lines: (op, backend, category): "n/N failed: what
    (case index: input)", the most common kind of failure first."""
    lines = []
    for (op, be, cat), cell in sorted(summarize(results).items()):
        if not cell["failures"]:
            continue
        kinds: dict = defaultdict(list)
        for r in cell["failures"]:
            kind = r["what"].split(";")[0].split(":")[0] if r["what"].startswith(("crash", "hang")) else \
                r["what"].split("(worst")[0].split(": ")[-1][:60] if "differ" in r["what"] else r["what"][:70]
            kinds[kind].append(r)
        parts = [f"{len(rs)}x {k} (e.g. case {rs[0]['i']}: {rs[0]['label'][:70]})"
                 for k, rs in sorted(kinds.items(), key=lambda kv: -len(kv[1]))[:2]]
        text = f"{len(cell['failures'])}/{cell['cases']} failed: " + "; ".join(parts)
        lines.append(f"    ({op!r}, {be!r}, {cat!r}):\n        {json.dumps(text)},")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", action="append", help="op(s) to fuzz (default: every public op)")
    parser.add_argument("--backend", action="append", help="backend(s): torch, cpp, triton (default: all)")
    parser.add_argument("--case", type=int, help="only this case index")
    parser.add_argument("-v", action="store_true", help="print every result")
    parser.add_argument("--json", help="write every result to this file")
    parser.add_argument("--from-json", help="read the results of an earlier --json run instead of running")
    parser.add_argument("--known", action="store_true", help="print the failing cells as known.py entries")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_INTERPRET", "1")
    sys.path.insert(0, ROOT)
    from python_tests.fuzz import cases

    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        if args.known:
            print(known_entries(results))
        else:
            print(failure_table(results))
        return 0
    n, t = default_counts()
    jobs = make_jobs(args.op or cases.ops(), n, t, tuple(args.backend or ("torch", "cpp", "triton")), args.case)
    t0 = time.time()
    lock = threading.Lock()

    def log(r):
        with lock:
            print(json.dumps(r), flush=True)
    results = run_parallel(jobs, log=log if args.v else None)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)
    failed = [r for r in results if not r["ok"]]
    print(failure_table(results) if failed else "no failures")
    print(f"{len(results)} results, {len(failed)} failed, {time.time() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
