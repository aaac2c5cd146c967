"""Backend choice: which implementation of an op runs on a device.

Backends: "torch" (the eager reference, every device), "triton" (CUDA tensors; CPU tensors when
TRITON_INTERPRET=1 was set before mimkernels was imported), "cuda" (`_C` built with nvcc, CUDA
tensors), "cpp" (`_C`'s CPU build of the same kernel bodies, CPU tensors), and "auto": the
implementation measured fastest for the device (AUTO_ORDER).

An op's backends are those of the torch.library catalogue: "torch" (every op has a reference) plus
the overloads its family registered, `torch.ops.mimkernels.<op>.<backend>`, which `_library` records
here as it registers them (a dict lookup torch.compile traces; `OpOverloadPacket.overloads()` is
not traceable). Nothing here names a family or an op.
"""
from __future__ import annotations

import importlib.util
import os

import torch

from mimkernels import _native

BACKENDS = ("auto", "torch", "triton", "cuda", "cpp")
KERNEL_BACKENDS = ("triton", "cuda", "cpp")

# triton.jit picks the interpreter when it decorates, so this is read once, at import.
TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
HAS_TRITON = importlib.util.find_spec("triton") is not None

# "auto" tries these in order and takes the first one the op implements and the device can run.
# cuda: Triton first where both exist until a GPU run says otherwise; cpu: the compiled CPU build,
# then the eager reference. The interpreter is a test vehicle, never chosen by "auto".
AUTO_ORDER = {
    "cuda": ("triton", "cuda", "torch"),
    "cpu": ("cpp", "torch"),
}


# op -> the kernel backends registered as torch.ops.mimkernels.<op>.<backend> (filled by _library)
_REGISTERED: dict[str, set[str]] = {}


def register(op: str, backend: str) -> None:
    """Record that `torch.ops.mimkernels.<op>.<backend>` exists (called by _library.define_op)."""
    _REGISTERED.setdefault(op, set()).add(backend)


def implemented(op: str) -> tuple[str, ...]:
    """The backends of `op`: "torch", then its registered kernel backends in KERNEL_BACKENDS order."""
    registered = _REGISTERED.get(op, ())
    return ("torch", *(b for b in KERNEL_BACKENDS if b in registered))


def debug_checks() -> bool:
    """MIMKERNELS_DEBUG=1 turns on checks of tensor *values* (ids in range), which sync the host."""
    return os.environ.get("MIMKERNELS_DEBUG", "0") == "1"


def unavailable_reason(backend: str, device: torch.device) -> str | None:
    """None when `backend` can run on tensors of `device`, else why not."""
    dev = device.type
    if backend == "torch":
        return None
    if dev == "cuda" and not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    if backend == "triton":
        if not HAS_TRITON:
            return "triton is not installed (pip install 'triton>=3.6,<3.7'; Linux x86_64 only)"
        if dev == "cuda":
            return "TRITON_INTERPRET=1 is set: Triton kernels run on CPU tensors only" if TRITON_INTERPRET else None
        if dev == "cpu":
            return None if TRITON_INTERPRET else (
                "Triton kernels need CUDA tensors (set TRITON_INTERPRET=1 before importing mimkernels to run "
                "them on the CPU, slowly, as the tests do)")
        return f"Triton kernels do not run on {dev} tensors"
    if backend == "cpp":
        if not _native.available():
            return _native.unavailable_reason()
        return None if dev == "cpu" else f"the cpp backend runs on CPU tensors, got {dev}"
    if backend == "cuda":
        if not _native.available():
            return _native.unavailable_reason()
        if not _native.cuda_built():
            return "mimkernels._C was built without CUDA (nvcc not found at build time, or MIMKERNELS_SKIP_CUDA=1)"
        if dev != "cuda":
            return f"the cuda backend runs on CUDA tensors, got {dev}"
        return None
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def resolve(op: str, backend: str, device: torch.device) -> str:
    """The backend that runs `op` on `device`; raises with the reason when the one asked for cannot."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"{op}: backend must be one of {BACKENDS}, got {backend!r}")
    found = implemented(op)
    if backend == "auto":
        for candidate in AUTO_ORDER.get(device.type, ()):
            if candidate in found and unavailable_reason(candidate, device) is None:
                return candidate
        return "torch"
    if backend not in found:
        raise ValueError(f"{op}: backend {backend!r} is not implemented; implemented: {found}")
    reason = unavailable_reason(backend, device)
    if reason is not None:
        raise RuntimeError(f"{op}: backend {backend!r} cannot run here: {reason}")
    return backend


_NATIVE_LOADED = _native.available()  # read once: the fast path's first test


def cpu_fast_path(batch, seed, sample_offset, device, generator, backend: str) -> bool:
    """Whether a random mask op's call may go straight to `_C` with its cached settings (the per-sample path a
    DataLoader transform takes): `_C` built, plain ints in range, no device or generator, the cpp (or auto)
    backend on the CPU, outside torch.compile. Anything else takes the checks and the catalogue op."""
    return (_NATIVE_LOADED and device is None and generator is None and (backend == "auto" or backend == "cpp")
            and type(batch) is int and type(seed) is int and type(sample_offset) is int and 0 <= seed < 1 << 63
            and 0 <= batch and 0 <= sample_offset and sample_offset + batch <= 1 << 32
            and not torch.compiler.is_compiling())
