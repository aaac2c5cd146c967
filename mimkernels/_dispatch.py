"""Backend choice and the checks every op front door shares.

Backends: "torch" (eager reference, every device), "triton" (CUDA tensors; CPU tensors when
TRITON_INTERPRET=1 was set before mimkernels was imported), "cuda" (`_C` built with nvcc, CUDA
tensors), "cpp" (`_C`'s CPU build of the same kernel bodies, CPU tensors), and "auto": the
implementation measured fastest for the device (AUTO_ORDER, from benchmarks/results/).

`define_op` registers a kernel path with torch.library: `triton_op` on the GPU so torch.compile
traces into the kernels, `custom_op` when interpreting (triton_op + wrap_triton fail opcheck and
compile under the interpreter) and for native kernels. Each family writes its kernels, its fake
and its autograd, nothing else.
"""
from __future__ import annotations

import importlib.util
import math
import numbers
import os
from typing import Callable, Iterable

import torch

from mimkernels import _native

BACKENDS = ("auto", "torch", "triton", "cuda", "cpp")

# triton.jit picks the interpreter when it decorates, so this is read once, at import.
TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
HAS_TRITON = importlib.util.find_spec("triton") is not None

# "auto" tries these in order and takes the first one the op implements and the device can run.
# cuda: from the measured tables in benchmarks/results/ (Triton first where both exist until a GPU
# run says otherwise); cpu: the compiled CPU build, then the eager reference. The interpreter is a
# test vehicle, never chosen by "auto".
AUTO_ORDER = {
    "cuda": ("triton", "cuda", "torch"),
    "cpu": ("cpp", "torch"),
}
# Per-op exceptions to AUTO_ORDER, e.g. {"block_mask": {"cuda": ("cuda", "torch")}}.
AUTO_ORDER_BY_OP: dict[str, dict[str, tuple[str, ...]]] = {}


# op name -> the backends it implements; filled by `implements`, listed by `python -m mimkernels.info`.
IMPLEMENTED: dict[str, tuple[str, ...]] = {}


def implements(op: str, *backends: str) -> tuple[str, ...]:
    """Record the backends `op` implements ("triton" is dropped when triton is not installed)."""
    found = tuple(b for b in backends if b != "triton" or HAS_TRITON)
    IMPLEMENTED[op] = found
    return found


def debug_checks() -> bool:
    """MIMKERNELS_DEBUG=1 turns on checks of tensor *values* (ids in range), which sync the host."""
    return os.environ.get("MIMKERNELS_DEBUG", "0") == "1"


def backend_unavailable_reason(backend: str, device: torch.device) -> str | None:
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


def resolve_backend(op: str, backend: str, device: torch.device) -> str:
    """The backend that runs `op` (registered with `implements`) on `device`; raises with the
    reason when the one asked for cannot."""
    implemented = IMPLEMENTED[op]
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"{op}: backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        order = AUTO_ORDER_BY_OP.get(op, {}).get(device.type, AUTO_ORDER.get(device.type, ()))
        for candidate in order:
            if candidate in implemented and backend_unavailable_reason(candidate, device) is None:
                return candidate
        return "torch"
    if backend not in implemented:
        raise ValueError(f"{op}: backend {backend!r} is not implemented; implemented: {implemented}")
    reason = backend_unavailable_reason(backend, device)
    if reason is not None:
        raise RuntimeError(f"{op}: backend {backend!r} cannot run here: {reason}")
    return backend


# ---- torch.library ---------------------------------------------------------------------------

# Modules holding the package's Triton kernels; qualnames of the ops define_op made triton_ops.
TRITON_KERNEL_MODULES = ("mimkernels.masking.triton", "mimkernels.pixel.triton", "mimkernels.hog.triton",
                         "mimkernels.frequency.triton")
_TRITON_OPS: list[str] = []


def define_op(name: str, impl: Callable, *, fake: Callable, triton: bool, backward: Callable | None = None,
              setup_context: Callable | None = None, mutates_args: Iterable[str] = ()):
    """Define `torch.ops.mimkernels.<name>` from a type-annotated Python body and return its CustomOpDef.

    triton=True: `impl` launches Triton kernels through `triton_launch`. On the GPU it becomes a
    `triton_op` (torch.compile traces into the kernels; `impl` doubles as the fake), under the
    interpreter a `custom_op` with `fake`. triton=False: a `custom_op` with `fake` (native kernels,
    opaque to the compiler). `backward`/`setup_context`: registered autograd, built from ops.
    """
    qualname = f"mimkernels::{name}"
    if triton and not TRITON_INTERPRET:
        op = torch.library.triton_op(qualname, impl, mutates_args=tuple(mutates_args))
        _TRITON_OPS.append(qualname)
    else:
        op = torch.library.custom_op(qualname, impl, mutates_args=tuple(mutates_args))
        op.register_fake(fake)
    if backward is not None:
        op.register_autograd(backward, setup_context=setup_context)
    return op


def register_triton_kernels() -> None:
    """Give every triton_op define_op made the kernels of TRITON_KERNEL_MODULES (once all families are
    imported). torch.compile's AOTAutograd cache hashes an op's kernel sources into its key, and
    torch's scan of the op body cannot follow `triton_launch`: without this, an edited kernel would be
    served from the cache as compiled before the edit. (Every op gets every kernel: a superset only
    costs cache hits after an edit.)"""
    if not _TRITON_OPS:
        return
    from torch._library.triton import triton_ops_to_kernels
    from triton.runtime.jit import JITFunction

    kernels = list({id(obj): obj for name in TRITON_KERNEL_MODULES
                    for obj in vars(importlib.import_module(name)).values() if isinstance(obj, JITFunction)}.values())
    for qualname in _TRITON_OPS:
        triton_ops_to_kernels[qualname] = kernels


def triton_launch(kernel, *, traceable: bool = True):
    """`triton_launch(kernel)[grid](...)` inside the body of a define_op(triton=True) op.

    traceable=False in the body of an opaque op (define_op(triton=False)): the kernel itself. Outside
    a triton_op, wrap_triton dispatches a higher-order op per launch and keeps each launch's constant
    arguments in torch's global kernel side table, which then grows with every call.
    """
    if TRITON_INTERPRET or not traceable:
        return kernel
    from torch.library import wrap_triton

    return wrap_triton(kernel)


# ---- shared argument checks (front doors call these once) ---------------------------------------

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_tensor(t, name: str, *, ndim: int | None = None, dtypes: Iterable[torch.dtype] | None = None,
                 what: str = "") -> None:
    """TypeError/ValueError naming `name` when `t` is not a tensor of the expected rank and dtype."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D{' ' + what if what else ''}, got shape {tuple(t.shape)}")
    if dtypes is not None:
        dtypes = tuple(dtypes)
        if t.dtype not in dtypes:
            names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
            raise TypeError(f"{name} must have dtype in ({names}), got {str(t.dtype).replace('torch.', '')}")


def check_same_device(**tensors: torch.Tensor) -> torch.device:
    """The common device of `tensors`; ValueError listing every shape and device otherwise."""
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        listing = ", ".join(f"{k}: {tuple(v.shape)} on {v.device}" for k, v in tensors.items())
        raise ValueError(f"tensors must be on one device, got {listing}")
    return next(iter(tensors.values())).device


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """`value` as a Python int (bools refused); ValueError below `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                strict_minimum: bool = False, finite: bool = False) -> float:
    """`value` (any real number, bools refused) as a Python float; ValueError when it is NaN, infinite
    while `finite`, or outside [minimum, maximum] ((minimum, maximum] when `strict_minimum`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    low_ok = minimum is None or (v > minimum if strict_minimum else v >= minimum)
    if math.isnan(v) or (finite and math.isinf(v)) or not low_ok or (maximum is not None and v > maximum):
        if minimum is not None and maximum is not None:
            expected = f"in {'(' if strict_minimum else '['}{minimum:g}, {maximum:g}]"
        elif minimum is not None:
            expected = f"{'>' if strict_minimum else '>='} {minimum:g}"
        else:
            expected = f"<= {maximum:g}" if maximum is not None else "not NaN"
        raise ValueError(f"{name} must be a {'finite ' if finite else ''}number {expected}, got {value!r}")
    return v


def check_patch_grid(height: int, width: int, patch_size: int, name: str = "imgs") -> tuple[int, int]:
    """(H/p, W/p); ValueError when the patch does not tile the image."""
    check_int(patch_size, "patch_size", minimum=1)
    if height % patch_size or width % patch_size:
        raise ValueError(f"{name}: height {height} and width {width} must be divisible by "
                         f"patch_size {patch_size}")
    return height // patch_size, width // patch_size


def as_device(device) -> torch.device:
    """torch.device from None (CPU), a string, an int (CUDA index) or a device."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, int):
        return torch.device("cuda", device)
    return torch.device(device)
