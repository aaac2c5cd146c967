"""The AddressSanitizer + UndefinedBehaviorSanitizer run (issue 20, a CI step):

  python -m python_tests.fuzz.sanitize [--keep DIR] [--cases N]

1. builds `_C`'s host code with gcc's -fsanitize=address,undefined (`MIMKERNELS_SANITIZE=1 python setup.py
   build_ext --build-lib DIR/build`; CUDA sources skipped; needs pybind11 importable and ninja);
2. copies the package, the tests and pyproject.toml into DIR/pkg, with the sanitized `_C` in place of the
   normal one (the checkout's own `_C` is left alone), and checks that the sanitized one is what loads;
3. runs, with the ASan runtime preloaded (ASAN_ENV below), the cpp tests (CPP_TESTS, and the
   family test_backends.py files' cpp cases) and the value fuzzer's cpp cases (--cases per op, default 250,
   every op with a cpp backend). Any sanitizer report aborts its process: a failed test, or a failed fuzz
   case. The fuzz failures in python_tests/fuzz/known.py (strict) are expected; anything else fails.

By hand, after `MIMKERNELS_SANITIZE=1 python setup.py build_ext --inplace` (which replaces the in-place
`_C`: rebuild without the switch afterwards):
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \
  ASAN_OPTIONS=detect_leaks=0 python -m pytest --capture=sys ...
(detect_leaks=0: CPython and torch keep memory to the end by design; every other finding is fatal.
libstdc++ preloaded: ASan intercepts __cxa_throw, and python does not link libstdc++ itself.
--capture=sys: pytest's default fd capture would swallow the report of a process that ASan ends.)
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPP_TESTS = ["python_tests/test_native_contract.py", *sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "python_tests", "*", "test_native.py"))),
    "python_tests/test_rng.py"]
# allocator_may_return_null: a huge allocation is a clean RuntimeError from torch (as without ASan), not
# an ASan abort; halt_on_error/exitcode: any finding ends the process with status 23.
ASAN_OPTIONS = "detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:exitcode=23:print_summary=1"
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1:exitcode=23"


def sanitizer_runtime() -> str:
    """LD_PRELOAD for python: gcc's ASan runtime first, then libstdc++ (python does not link it; without
    it ASan's __cxa_throw interceptor finds no real one and aborts at torch's first C++ exception)."""
    paths = []
    for lib in ("libasan.so", "libstdc++.so"):
        path = subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True,
                              check=True).stdout.strip()
        if not os.path.isabs(path) or not os.path.exists(path):
            raise RuntimeError(f"gcc's {lib} was not found (install gcc with its sanitizer runtimes)")
        paths.append(os.path.realpath(path))
    return " ".join(paths)


def asan_env(pkg_dir: str) -> dict:
    env = dict(os.environ)
    env.update(LD_PRELOAD=sanitizer_runtime(), ASAN_OPTIONS=ASAN_OPTIONS, UBSAN_OPTIONS=UBSAN_OPTIONS,
               PYTHONPATH=pkg_dir, TRITON_INTERPRET="1", PYTHONDONTWRITEBYTECODE="1")
    # ASan slows the host code several fold: a case is a hang only past the hard limit (run.CASE_TIMEOUT_S).
    env.setdefault("MIMKERNELS_FUZZ_SOFT_TIMEOUT", "55")
    return env


def build(dest: str) -> str:
    """Builds the sanitized `_C` into dest/build/mimkernels and copies the package + tests into dest/pkg;
    returns dest/pkg."""
    env = dict(os.environ, MIMKERNELS_SANITIZE="1", MIMKERNELS_STRICT_BUILD="1")
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", os.path.join(dest, "build"),
                    "--build-temp", os.path.join(dest, "tmp")], cwd=ROOT, env=env, check=True)
    built = glob.glob(os.path.join(dest, "build", "mimkernels", "_C*.so"))
    if len(built) != 1:
        raise RuntimeError(f"the sanitizer build left {built} in {dest}/build/mimkernels")
    pkg = os.path.join(dest, "pkg")
    ignore = shutil.ignore_patterns("_C*.so", "__pycache__", "*.pyc")
    for name in ("mimkernels", "python_tests", "benchmarks"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(pkg, name), ignore=ignore, dirs_exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), pkg)
    shutil.copy(built[0], os.path.join(pkg, "mimkernels"))
    shutil.copy(os.path.join(dest, "build", "mimkernels", "_build_info.json"), os.path.join(pkg, "mimkernels"))
    return pkg


CHECK = """
import mimkernels, sys
from mimkernels import _native
assert mimkernels.__file__.startswith(sys.argv[1]), mimkernels.__file__
assert _native.available(), _native.load_error
assert _native.build_info()["env"].get("MIMKERNELS_SANITIZE") == "1", _native.build_info()
print("sanitized _C loaded from", _native.lib.__file__)
"""


def run(cmd, env, cwd, label):
    t0 = time.time()
    print(f"== {label}: {' '.join(cmd)}", flush=True)
    rc = subprocess.run(cmd, env=env, cwd=cwd).returncode
    print(f"== {label}: exit {rc}, {time.time() - t0:.0f} s", flush=True)
    return rc


def fuzz_cpp(pkg: str, cases: int, strict: bool = True) -> int:
    """The fuzzer's cpp cases under ASan; fails on anything not in KNOWN_FAILURES (and on a known failure
    that passed: strict)."""
    sys.path.insert(0, ROOT)
    os.environ.setdefault("TRITON_INTERPRET", "1")
    from python_tests.fuzz import known, run as fuzz_run
    from python_tests.fuzz.cases import ops

    env = asan_env(pkg)
    jobs = fuzz_run.make_jobs(ops(), cases, 0, backends=("cpp",))
    t0 = time.time()
    results = fuzz_run.run_parallel(jobs, env=env, root=pkg)
    table = fuzz_run.summarize(results)
    unexpected, fixed = [], []
    for (op, be, cat), cell in sorted(table.items()):
        expected = (op, be, cat) in known.KNOWN_FAILURES
        if cell["failures"] and not expected:
            unexpected += cell["failures"]
        if strict and expected and not cell["failures"]:
            fixed.append((op, be, cat))
    print(f"== fuzz (cpp, ASan+UBSan): {len(results)} cases in {time.time() - t0:.0f} s, "
          f"{sum(len(c['failures']) for c in table.values())} failed")
    if unexpected:
        print(fuzz_run.failure_table(unexpected, limit_per_cell=3))
    for key in fixed:
        print(f"known failure {key} passed: remove it from python_tests/fuzz/known.py")
    return 1 if unexpected or fixed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", help="build into this folder and keep it (default: a temporary folder)")
    # 250 cpp cases per op under ASan in CI (about 4x slower than without: the full 1000 run without ASan
    # in test_fuzz.py); --cases 1000 for the full set, which also holds known.py's cpp entries strictly.
    parser.add_argument("--cases", type=int, default=int(os.environ.get("MIMKERNELS_SANITIZE_CASES", "250")))
    parser.add_argument("--steps", default="tests,fuzz", help="tests (the cpp tests), fuzz, or both (default)")
    args = parser.parse_args(argv)
    dest = args.keep or tempfile.mkdtemp(prefix="mk_asan_")
    try:
        pkg = build(dest)
        env = asan_env(pkg)
        py = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "--capture=sys"]
        steps = args.steps.split(",")
        rcs = [run([sys.executable, "-c", CHECK, pkg], env, pkg, "load")]
        if "tests" in steps:
            rcs.append(run([*py, *CPP_TESTS], env, pkg, "cpp tests"))
            rcs.append(run([*py, *sorted(os.path.relpath(p, ROOT) for p in glob.glob(
                os.path.join(ROOT, "python_tests", "*", "test_backends.py"))), "python_tests/test_backends.py",
                "-k", "cpp"], env, pkg, "cpp cases of the backend tests"))
        if "fuzz" in steps:
            rcs.append(fuzz_cpp(pkg, args.cases, strict=args.cases >= 1000))  # fewer: known cells may not fail
        rcs = [0 if rc == 5 else rc for rc in rcs]  # 5: pytest selected nothing
        print("sanitize:", "ok" if not any(rcs) else f"FAILED {rcs}")
        return 1 if any(rcs) else 0
    finally:
        if not args.keep:
            shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
