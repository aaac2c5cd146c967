"""The memory-safety harness catches what it is for (issue 20: "seen to fail on a planted out-of-bounds
access"), without any test-only code in the shipped module:

- a small C library compiled with setup.py's SANITIZE_FLAGS (the flags of the MIMKERNELS_SANITIZE=1 build
  of `_C`), loaded into Python with the ASan runtime preloaded as python_tests/fuzz/sanitize.py does: a
  heap read one past the end and a signed overflow each end the process with the sanitizer's report;
- the fuzzer fails a case during which the process segfaults, or gets a sanitizer report, and goes on
  with the next case in a fresh worker;
- the fuzzer's oracle fails a result read one element past its input (a sentinel in the result).
"""
import ast
import os
import shutil
import subprocess
import sys

import pytest
import torch

from python_tests.fuzz import cases, run, sanitize, worker

ROOT = run.ROOT
PLANTED = r"""
#include <limits.h>
#include <stdlib.h>
int heap_read(int n, int i) { volatile int *a = (int *)malloc(n * sizeof(int)); for (int k = 0; k < n; ++k) a[k] = 1;
                             int v = a[i]; free((void *)a); return v; }
int signed_add(int x) { volatile int big = INT_MAX; return big + x; }
int plant(void) { return heap_read(4, 4); }
"""


def sanitize_flags() -> list[str]:
    tree = ast.parse(open(os.path.join(ROOT, "setup.py")).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SANITIZE_FLAGS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no SANITIZE_FLAGS")


@pytest.fixture(scope="module")
def planted_lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    try:
        sanitize.sanitizer_runtime()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    d = tmp_path_factory.mktemp("planted")
    (d / "planted.c").write_text(PLANTED)
    so = d / "libplanted.so"
    subprocess.run(["gcc", "-shared", "-fPIC", *sanitize_flags(), str(d / "planted.c"), "-o", str(so)], check=True)
    return str(so)


def _python_under_asan(code: str, *args):
    env = sanitize.asan_env(ROOT)
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)


def test_setup_sanitize_flags_are_asan_and_ubsan_fatal():
    flags = sanitize_flags()
    assert "-fsanitize=address,undefined" in flags and "-fno-sanitize-recover=undefined" in flags
    assert "-fno-omit-frame-pointer" in flags


def test_planted_heap_overflow_and_signed_overflow_end_the_process(planted_lib):
    code = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); "
            "print(getattr(lib, sys.argv[2])(*map(int, sys.argv[3:])))")
    ok = _python_under_asan(code, planted_lib, "heap_read", "4", "3")
    assert ok.returncode == 0 and ok.stdout.strip() == "1", ok.stderr[-2000:]
    bad = _python_under_asan(code, planted_lib, "heap_read", "4", "4")
    assert bad.returncode == 23 and "AddressSanitizer: heap-buffer-overflow" in bad.stderr, bad.stderr[-2000:]
    ub = _python_under_asan(code, planted_lib, "signed_add", "1")
    assert ub.returncode == 23 and "signed integer overflow" in ub.stderr, ub.stderr[-2000:]


def _jobs():
    return [["patchify", i, ["torch"]] for i in range(3)]


def test_fuzzer_fails_a_case_that_segfaults_and_goes_on():
    env = dict(os.environ, MIMKERNELS_FUZZ_PLANT="segv:patchify:torch:1")
    results = {r["i"]: r for r in run.run_worker_jobs(_jobs(), env=env)}
    assert set(results) == {0, 1, 2}
    assert not results[1]["ok"] and "killed by signal 11" in results[1]["what"], results[1]
    assert results[0]["ok"] and results[2]["ok"], results


def test_fuzzer_fails_a_case_with_a_sanitizer_report(planted_lib):
    env = sanitize.asan_env(ROOT)
    env["MIMKERNELS_FUZZ_PLANT"] = f"{planted_lib}:patchify:torch:1"
    results = {r["i"]: r for r in run.run_worker_jobs(_jobs(), env=env)}
    assert not results[1]["ok"] and "exit status 23" in results[1]["what"], results[1]
    assert "AddressSanitizer: heap-buffer-overflow" in results[1]["what"], results[1]
    assert results[0]["ok"] and results[2]["ok"], results


def test_oracle_fails_a_read_one_past_the_end(monkeypatch):
    """patchify on the 'triton' backend replaced by one that reads its image shifted by one element: inside
    a sentinel buffer the result holds a sentinel, which the check reports as a read outside the tensor."""
    index = next(i for i in range(500) if cases.make_case("patchify", i).label == "every tensor in a sentinel buffer")
    real = cases.mimkernels.patchify

    def shifted(imgs, patch_size, *, backend="auto"):
        if backend == "torch":
            return real(imgs, patch_size, backend="torch")
        past = imgs.as_strided(imgs.shape, imgs.stride(), imgs.storage_offset() + 1)
        return real(past, patch_size, backend="torch")

    shifted.__module__ = real.__module__  # the case generator finds the family's examples by it
    monkeypatch.setattr(cases.mimkernels, "patchify", shifted)
    ref = worker.reference("patchify", index, 0)
    ok, what = worker.check("patchify", index, 0, "torch", ref)
    assert ok, what
    ok, what = worker.check("patchify", index, 0, "triton", ref)
    assert not ok and "read outside a tensor" in what, what
    assert torch.is_tensor(ref[1])
