"""Loads the compiled extension `mimkernels._C`; the one place that says why it can't.

Import never fails: without `_C`, `lib` is a stand-in whose every attribute raises a RuntimeError
with the diagnosis (what happened, why, what to do, the original error). Set
MIMKERNELS_MORE_DETAILS=1 to append the full traceback.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent


def _diagnosis(exc: BaseException) -> str:
    if isinstance(exc, ImportError) and not list(_HERE.glob("_C*")):
        what = "mimkernels._C was not built (no compiled extension next to the package)."
        why = ("the install was pure Python (MIMKERNELS_NO_NATIVE=1, or no C++ compiler / pybind11 at "
               "install time), or Python imports the source folder of a checkout that was not built in place.")
    else:
        what = "mimkernels._C exists but could not be loaded."
        why = (f"it was built for another Python (this is {sys.version.split()[0]}) or against a newer "
               "glibc/CUDA driver than this machine has.")
    msg = (f"{what}\nWhy: usually {why}\n"
           "Fix: `pip install -e .` from the repository (or `python setup.py build_ext --inplace`); "
           "on an offline GPU machine `pip install --no-build-isolation --no-deps -e .`.\n"
           f"Original error: {type(exc).__name__}: {exc}\n"
           "Run `python -m mimkernels.info` and include its output in an issue.")
    if os.environ.get("MIMKERNELS_MORE_DETAILS") == "1":
        msg += "\n" + "".join(traceback.format_exception(exc))
    return msg


class _Unavailable:
    """Stand-in for `_C`: raises the diagnosis on first use, naming the function asked for."""

    with_cuda = False

    def __init__(self, message: str):
        self._message = message

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"mimkernels._C.{name} is unavailable: {self._message}")

        return unavailable


try:
    from mimkernels import _C as lib  # noqa: N812

    load_error: BaseException | None = None
except Exception as exc:  # ImportError, OSError (bad .so), ...
    load_error = exc
    lib = _Unavailable(_diagnosis(exc))


def available() -> bool:
    """True when `_C` loaded (the cpp backend can run)."""
    return load_error is None


def unavailable_reason() -> str:
    return "" if load_error is None else lib._message.splitlines()[0]


def cuda_built() -> bool:
    """True when `_C` was compiled with nvcc (the cuda backend exists in this build)."""
    return available() and bool(lib.with_cuda)


def build_info() -> dict:
    """What setup.py recorded at build time (compilers, archs, switches, git hash); {} if not built."""
    path = _HERE / "_build_info.json"
    return json.loads(path.read_text()) if path.exists() else {}


def ptr(t: torch.Tensor, dtype: torch.dtype) -> int:
    """Raw data pointer of `t` for the native kernels, which read and write it as a dense row-major
    array of `dtype`. A non-contiguous tensor or another dtype would give a silently wrong answer, so
    either raises RuntimeError (a bug of the caller: op bodies make their inputs contiguous first).
    Metadata checks only: no synchronization."""
    if t.dtype != dtype or not t.is_contiguous():
        raise RuntimeError(f"mimkernels internal error: a native kernel needs a contiguous {dtype} tensor, got "
                           f"{t.dtype} of shape {tuple(t.shape)} and strides {t.stride()}")
    return t.data_ptr()


# Work of at most this many items (samples, bands) runs on the calling thread, with no OpenMP team: a
# parallel region costs more than a sample on a loaded machine (1-3 ms against 0.1 ms, measured). Not
# more: python_tests/test_native_contract.py runs 2-sample ops on 2 and 3 threads to catch races.
SERIAL_ITEMS = 1

# True in a child made by os.fork() (multiprocessing's fork start, a DataLoader worker, a raw fork): GNU
# OpenMP's thread pool does not survive fork, and a team opened in the child waits forever for the
# parent's threads (issue 20), so the child's cpp ops run on its one thread.
_forked_child = False


def _mark_forked_child() -> None:
    global _forked_child
    _forked_child = True


os.register_at_fork(after_in_child=_mark_forked_child)


def cpu_threads(work_items: int) -> int:
    """OpenMP threads of a cpp kernel over `work_items` independent items (samples, bands): torch's
    intra-op count (torch.set_num_threads; 1 in DataLoader workers), so a cpp op never runs more threads
    than the torch ops around it, and never more than it has items; 1 (the kernels then open no parallel
    region) for SERIAL_ITEMS items or fewer and in a forked child."""
    if _forked_child or work_items <= SERIAL_ITEMS:
        return 1
    return max(1, min(torch.get_num_threads(), work_items))


def cuda_call(name: str, device: torch.device, *args):
    """`lib.<name>(*args, stream)` with `device` as the current CUDA device and the handle of its current
    stream last: native kernels launch on the caller's device and stream (never another GPU's, never
    stream 0), as torch's own ops do."""
    with torch.cuda.device(device):
        return getattr(lib, name)(*args, torch.cuda.current_stream(device).cuda_stream)


def seed_step_ptr(seed_step) -> int:
    """The `seed_step` argument of the `_C` entries: 0, or the address of a seed tensor's (seed, step) int64 pair."""
    return 0 if seed_step is None else ptr(seed_step, torch.int64)
