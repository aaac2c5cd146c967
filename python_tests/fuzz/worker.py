"""One fuzz worker process: reads jobs (JSON lines `[op, index, [backends...]]`) from the file named by
argv[1], and for each job prints `B op index backend` before running a backend (so that the parent can
name the case that crashed the process) and one JSON result line after it.

A result is ok when the call raised TypeError/ValueError/RuntimeError with a message, or returned what
the oracle says: the reference's result (torch backend) where the reference defines it, zeros in the
rows of out-of-range ids (and no gradient scattered from them), no sentinel of a canary buffer read into
the result where the reference has none, and every sentinel unchanged after the call (forward and
backward). NaN/Inf inputs: compared where both results are finite. On the CPU Triton runs under the
interpreter (TRITON_INTERPRET=1, set here before mimkernels is imported); MIMKERNELS_FUZZ_DEVICE=cuda
builds the cases on the GPU (python_tests/fuzz/test_gpu_memcheck.py), the reference staying on the CPU.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import sys
import traceback

if os.environ.get("MIMKERNELS_FUZZ_DEVICE", "cpu") == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

from python_tests.fuzz import cases  # noqa: E402

CLEAN = (TypeError, ValueError, RuntimeError)
# A call past this many seconds is a hang (a Python loop is interrupted here; native code that never
# returns is killed by the parent, run.CASE_TIMEOUT_S). Tiny cases take milliseconds (Triton's
# interpreter: under a second).
SOFT_TIMEOUT_S = float(os.environ.get("MIMKERNELS_FUZZ_SOFT_TIMEOUT", "10"))
TRITON_SCALE = 4.0  # the interpreter: up to half a second a program on tiny shapes


# A RuntimeError with one of these is no clean error: the kernel touched memory it must not (and the CUDA
# context is lost: the worker exits, and the parent restarts it on the next case).
CUDA_FAULTS = ("illegal memory access", "misaligned address", "device-side assert", "unspecified launch failure",
               "CUDA error", "an illegal instruction")


class DeviceFault(BaseException):
    """A CUDA fault or an interrupted hang during a case: reported as a failure, then the worker exits
    (DEVICE_FAULT_EXIT) and the parent goes on in a fresh one."""


DEVICE_FAULT_EXIT = 75


class CaseTimeout(BaseException):
    """Raised by SIGALRM in the call: not an Exception, so that no op's `except Exception` swallows it."""


def _alarm(signum, frame):
    raise CaseTimeout()


def timed(fn, *args, scale: float = 1.0):
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, SOFT_TIMEOUT_S * scale)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def limit_memory(extra_gib: float) -> None:
    """Address space = what the process holds now + extra: a huge allocation fails (RuntimeError from
    torch's allocator) instead of swapping the machine. Under ASan the reserved shadow is counted in
    what the process holds, so the same limit works (with ASAN_OPTIONS=allocator_may_return_null=1)."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    limit = vm + int(extra_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def as_tuple(x):
    if isinstance(x, (tuple, list)):
        return tuple(x)
    return (x,)


def _finite_equal(got: torch.Tensor, want: torch.Tensor, loose: bool) -> str | None:
    if got.shape != want.shape:
        return f"shape {tuple(got.shape)} != reference {tuple(want.shape)}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != reference {want.dtype}"
    if got.device.type == "meta" or want.device.type == "meta":
        return None if got.device == want.device else f"device {got.device} != reference {want.device}"
    if got.dtype == torch.bool or not (got.is_floating_point() or got.is_complex()):
        bad = (got != want)
        return None if not bad.any() else f"{int(bad.sum())} of {got.numel()} elements differ from the reference"
    g, w = got.detach(), want.detach()
    if got.is_complex():
        g, w = torch.view_as_real(g.resolve_conj()), torch.view_as_real(w.resolve_conj())
    g, w = g.double(), w.double()
    if loose:
        both = torch.isfinite(g) & torch.isfinite(w)
        g, w = g[both], w[both]
    else:
        same_nan = torch.isnan(g) == torch.isnan(w)
        if not same_nan.all():
            return f"NaN at {int((~same_nan).sum())} elements where the reference has none (or the reverse)"
        inf = torch.isinf(g) | torch.isinf(w)
        if not (g[inf] == w[inf]).all():
            return "±Inf elements differ from the reference"
        keep = torch.isfinite(g) & torch.isfinite(w)
        g, w = g[keep], w[keep]
    low = got.dtype in (torch.float16, torch.bfloat16)
    tol = (2e-2, 2e-2) if low else (1e-4, 1e-5)
    diff = (g - w).abs()
    bound = tol[1] + tol[0] * w.abs()
    if (diff > bound).any():
        i = int((diff - bound).argmax())
        return (f"{int((diff > bound).sum())} of {got.numel()} elements differ from the reference "
                f"(worst {float(g[i])} vs {float(w[i])})")
    return None


def compare(got, want, loose: bool) -> str | None:
    got, want = as_tuple(got), as_tuple(want)
    if len(got) != len(want):
        return f"{len(got)} outputs, reference {len(want)}"
    for i, (a, b) in enumerate(zip(got, want)):
        if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
            return f"output {i}: {type(a).__name__} vs reference {type(b).__name__}"
        if isinstance(a, torch.Tensor):
            why = _finite_equal(a, b, loose)
            if why:
                return f"output {i}: {why}"
    return None


def _sentinels_in(result) -> int:
    n = 0
    for t in as_tuple(result):
        if isinstance(t, torch.Tensor) and t.device.type != "meta" and t.dtype not in (torch.bool,):
            n += int((t.detach() == cases.SENTINEL).sum())
    return n


def _canary_damage(case) -> str | None:
    for buf, start, numel, before in case.canaries:
        outside = torch.ones(buf.numel(), dtype=torch.bool, device=buf.device)
        outside[start:start + numel] = False
        changed = (buf != before) & outside
        if changed.any():
            return f"wrote {int(changed.sum())} elements outside a tensor (sentinel buffer changed)"
    return None


def _float_inputs(case) -> list[str]:
    return [k for k, v in case.arguments.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.device.type != "meta"
            and k not in ("noise",) and v.numel()]


def run_call(case, backend: str, weights_seed: int, rows: torch.Tensor | None = None):
    """(outputs, grads or None) of the case on `backend`; grads of every float input when case.grad, of the
    outputs weighted by small integers (zero in the rows where `rows` is False: the oracle's "dropped")."""
    names = _float_inputs(case) if case.grad else []
    for k in names:
        case.arguments[k] = case.arguments[k].detach().requires_grad_(True)
    out = case.call(backend)
    grads = None
    if names:
        outs = [t for t in as_tuple(out) if isinstance(t, torch.Tensor) and t.requires_grad]
        if outs:
            gen = torch.Generator().manual_seed(weights_seed)
            weights = [torch.randint(1, 4, t.shape, generator=gen).to(t.dtype) for t in outs]
            if rows is not None:  # dropped in the backward: no weight on rows of out-of-range ids
                weights = [w * rows.reshape(*rows.shape, *([1] * (w.dim() - 2))).to(w.dtype) for w in weights]
            grads = torch.autograd.grad(outs, [case.arguments[k] for k in names], weights, allow_unused=True)
            grads = tuple(torch.zeros_like(case.arguments[k]) if g is None else g for g, k in zip(grads, names))
    return out, grads


def reference(op: str, index: int, seed: int):
    """('ok', outputs, grads) | ('error', message) of the torch backend on the case, the oracle applied:
    for an ids op with out-of-range ids, the reference of the repaired call with those rows zeroed."""
    case = cases.make_case(op, index, seed)
    try:
        rows = cases.valid_rows(op, case.arguments)
    except Exception:  # noqa: BLE001  (a call the front door refuses: no oracle)
        rows = None
    if rows is not None and not rows.all():
        case.arguments = cases.repaired(op, case.arguments)
    try:
        out, grads = timed(run_call, case, "torch", index, rows)
    except CaseTimeout:
        return ("error", f"the reference timed out (over {SOFT_TIMEOUT_S:.0f} s)")
    except Exception as exc:  # noqa: BLE001
        return ("error", f"{type(exc).__name__}: {exc}")
    if rows is not None and not rows.all():
        keep = rows.reshape(*rows.shape, *([1] * (out.dim() - 2)))
        out = torch.where(keep, out.detach(), torch.zeros((), dtype=out.dtype))
    return ("ok", out, grads)


def _to_cpu(x):
    if x is None:
        return None
    return tuple(t.detach().cpu() if isinstance(t, torch.Tensor) and t.device.type != "meta" else t
                 for t in as_tuple(x))


def check(op: str, index: int, seed: int, backend: str, ref, device: str = "cpu") -> tuple[bool, str]:
    """(ok, what happened) of case `index` of `op` on `backend`, its tensors on `device` (the reference `ref`
    is computed on the CPU: torch's own CUDA kernels device-assert on an out-of-range id)."""
    case = cases.make_case(op, index, seed, device)
    if case.debug:
        os.environ["MIMKERNELS_DEBUG"] = "1"
    else:
        os.environ.pop("MIMKERNELS_DEBUG", None)
    try:
        out, grads = timed(run_call, case, backend, index, scale=TRITON_SCALE if backend == "triton" else 1.0)
    except CaseTimeout:
        raise DeviceFault(f"hang: over {SOFT_TIMEOUT_S * (TRITON_SCALE if backend == 'triton' else 1):.0f} s") from None  # interrupted anywhere: a fresh worker
    except CLEAN as exc:
        if not str(exc).strip():
            return False, f"{type(exc).__name__} without a message"
        if device != "cpu" and any(m in str(exc) for m in CUDA_FAULTS):
            raise DeviceFault(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
        damage = _canary_damage(case)
        return (damage is None), (damage or f"clean error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    except Exception as exc:  # noqa: BLE001
        return False, f"unclean error {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    finally:
        os.environ.pop("MIMKERNELS_DEBUG", None)
    damage = _canary_damage(case)
    if damage:
        return False, damage
    if device != "cpu":
        out, grads = _to_cpu(out), _to_cpu(grads)
    loose = case.nonfinite
    if ref[0] == "ok":
        why = compare(out, ref[1], loose)
        if why is None and grads is not None and ref[2] is not None:
            why = compare(grads, ref[2], loose)
            why = why and f"gradient: {why}"
        if why:
            if _sentinels_in(out) > _sentinels_in(ref[1]):
                why = f"read outside a tensor (sentinel in the result); {why}"
            return False, why
        return True, "defined result (equals the reference / oracle)"
    if _sentinels_in(out):
        return False, f"read outside a tensor: sentinel in the result (reference: {ref[1][:80]})"
    return True, f"result where the reference raises ({ref[1][:80]})"


def planted(op: str, index: int, backend: str) -> None:
    """MIMKERNELS_FUZZ_PLANT="KIND:op:backend:index" (python_tests/fuzz/test_sanitize.py only): a planted bug
    just before that case runs, to show that the fuzzer fails it. KIND: "segv" (a read of address 0), or
    the path of a shared library whose plant() the test compiled with a bug (under ASan: a report)."""
    spec = os.environ.get("MIMKERNELS_FUZZ_PLANT")
    if not spec:
        return
    kind, p_op, p_backend, p_index = spec.rsplit(":", 3)
    if (p_op, p_backend, int(p_index)) != (op, backend, index):
        return
    import ctypes
    if kind == "segv":
        ctypes.string_at(0)
    else:
        ctypes.CDLL(kind).plant()


def warm_up(jobs: list, device: str) -> None:
    """Each (op, backend)'s valid call once, forward and backward, before any timer runs: lazy imports
    (torch._dynamo, sympy) and first-call set-up are not charged to a case (a timer interrupting an
    import would leave a module half initialized)."""
    import mimkernels

    done = set()
    for op, _, backends in jobs:
        for backend in backends:
            if (op, backend) in done:
                continue
            done.add((op, backend))
            try:
                args = cases.base_arguments(op, torch.device(device))
                for k, v in args.items():
                    if isinstance(v, torch.Tensor) and v.is_floating_point() and op in cases.GRAD_OPS:
                        args[k] = v.detach().requires_grad_(True)
                out = getattr(mimkernels, op)(**args, backend=backend)
                outs = [t for t in as_tuple(out) if isinstance(t, torch.Tensor) and t.requires_grad]
                if outs:
                    torch.autograd.grad(outs, [v for v in args.values() if isinstance(v, torch.Tensor)
                                               and v.requires_grad], [torch.ones_like(t) for t in outs],
                                        allow_unused=True)
            except Exception:  # noqa: BLE001  (the cases will say)
                pass


def _synchronize(device: str) -> str | None:
    if device == "cpu":
        return None
    try:
        torch.cuda.synchronize()
    except RuntimeError as exc:
        return str(exc).splitlines()[0][:200]
    return None


def main() -> None:
    jobs_file = sys.argv[1]
    seed = int(os.environ.get("MIMKERNELS_FUZZ_SEED", "0"))
    device = os.environ.get("MIMKERNELS_FUZZ_DEVICE", "cpu")
    torch.set_num_threads(int(os.environ.get("MIMKERNELS_FUZZ_THREADS", "1")))
    if device == "cpu":  # CUDA reserves its address space at initialization: no limit there
        limit_memory(float(os.environ.get("MIMKERNELS_FUZZ_MEMORY_GIB", "3")))
    with open(jobs_file) as f:
        jobs = [json.loads(line) for line in f if line.strip()]
    warm_up(jobs, device)
    out = sys.stdout
    for op, index, backends in jobs:
        ref = None
        for backend in backends:
            print(f"B {op} {index} {backend}", file=out, flush=True)
            if ref is None:
                ref = reference(op, index, seed)
            planted(op, index, backend)
            fault = None
            try:
                ok, what = check(op, index, seed, backend, ref, device)
                fault = _synchronize(device)  # an asynchronous fault belongs to this case
                if fault:
                    ok, what = False, f"CUDA fault: {fault}"
            except DeviceFault as exc:
                what = str(exc) if str(exc).startswith("hang") else f"CUDA fault: {exc}"
                ok, fault = False, exc
            except Exception as exc:  # noqa: BLE001  (a bug of the fuzzer itself: reported, not hidden)
                ok, what = False, f"fuzzer error: {type(exc).__name__}: {exc} {traceback.format_exc(limit=-2)}"
            case = cases.make_case(op, index, seed)
            print(json.dumps({"op": op, "i": index, "backend": backend, "cat": case.category, "label": case.label,
                              "debug": case.debug, "grad": case.grad, "ok": ok, "what": what}), file=out, flush=True)
            # A fault, a hang, or a failed Triton case (the interpreter may have written outside a tensor,
            # and heap damage shows only at some later free()): the rest runs in a fresh worker, so that
            # no later case inherits the damage.
            if fault is not None or (not ok and backend == "triton"):
                os._exit(DEVICE_FAULT_EXIT)


if __name__ == "__main__":
    main()
