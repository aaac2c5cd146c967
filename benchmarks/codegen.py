"""The Triton kernels as a GPU would build them, without a GPU: `record_triton_launches` runs the real
launchers (on meta tensors they cost nothing) and keeps what they would launch (kernel, grid,
arguments); `compile_for_gpu` builds one launch to an sm_90 cubin with Triton's bundled ptxas, in a
process where TRITON_INTERPRET is unset (the interpreter never runs Triton's code generator).
Used by python_tests/test_codegen.py and every family's python_tests/<family>/test_codegen.py."""
from __future__ import annotations

import contextlib
import sys
import time

import torch


def triton_kernel_modules() -> list:
    """The imported mimkernels modules that launch Triton kernels (they import `_triton_lib.triton_launch`)."""
    from mimkernels import _triton_lib

    return [m for name, m in list(sys.modules.items())
            if name.startswith("mimkernels.") and m is not _triton_lib
            and getattr(m, "triton_launch", None) is _triton_lib.triton_launch]


# CUDA's launch limits: blocks per grid along x, y, z.
MAX_GRID = (2 ** 31 - 1, 65535, 65535)

_TRITON_TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64",
                 torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8",
                 torch.bool: "i1"}
_LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas")


def _kernel_params(kernel):
    """The parameters of a Triton kernel (the interpreter's wrapper holds the plain function)."""
    from triton.runtime.jit import JITFunction

    return (kernel if isinstance(kernel, JITFunction) else JITFunction(kernel.fn)).params


class TritonLaunch:
    """One recorded launch: the kernel (a JITFunction, or the interpreter's wrapper), the grid as a
    3-tuple, the arguments bound to the kernel's parameter names, and the launch options."""

    def __init__(self, kernel, grid, args, kwargs):
        self.kernel = kernel
        self.grid = tuple(grid) + (1,) * (3 - len(grid))
        params = _kernel_params(kernel)
        self.arguments = dict(zip([p.name for p in params], args)) | {
            k: v for k, v in kwargs.items() if k not in _LAUNCH_OPTIONS}
        self.options = {k: v for k, v in kwargs.items() if k in _LAUNCH_OPTIONS}
        self.constexprs = {p.name for p in params if p.is_constexpr}
        self.name = kernel.fn.__name__ if hasattr(kernel, "fn") else kernel.__name__

    def signature(self) -> tuple[dict[str, str], dict[str, object]]:
        """(Triton signature, constexpr values) as the GPU launcher would specialize the arguments:
        tensors as typed pointers, ints as i32 (i64 from 2^31 on), floats as fp32."""
        signature, constexprs = {}, {}
        for name, value in self.arguments.items():
            if name in self.constexprs:
                signature[name], constexprs[name] = "constexpr", value
            elif isinstance(value, torch.Tensor):
                signature[name] = "*" + _TRITON_TYPES[value.dtype]
            elif isinstance(value, bool):
                signature[name] = "i1"
            elif isinstance(value, int):
                signature[name] = "i32" if -2 ** 31 <= value < 2 ** 31 else "i64"
            elif isinstance(value, float):
                signature[name] = "fp32"
            else:
                raise TypeError(f"{self.name}: argument {name} of type {type(value).__name__}")
        return signature, constexprs

    def key(self):
        """Launches with one key compile to one binary."""
        signature, constexprs = self.signature()
        return self.name, tuple(signature.items()), tuple((k, str(v)) for k, v in constexprs.items()), \
            tuple(sorted(self.options.items()))


class record_triton_launches:
    """Context manager: within it, the launchers of triton_kernel_modules() record their launches in
    `.launches` instead of running them (call them on meta tensors to record any size for free)."""

    def __enter__(self):
        self.launches: list[TritonLaunch] = []
        self._saved = []
        for module in triton_kernel_modules():
            self._saved.append((module, module.triton_launch))
            module.triton_launch = self._launcher
        return self

    def _launcher(self, kernel, **_):
        launches = self.launches

        class Grid:
            def __getitem__(self, grid):
                return lambda *args, **kwargs: launches.append(TritonLaunch(kernel, grid, args, kwargs))

        return Grid()

    def __exit__(self, *exc):
        for module, launcher in self._saved:
            module.triton_launch = launcher
        return False


def _jit_function(kernel):
    """The JITFunction of a recorded kernel (the interpreter's wrapper holds the plain function)."""
    from triton.runtime.jit import JITFunction

    return kernel if isinstance(kernel, JITFunction) else JITFunction(kernel.fn)


def specialize(launch: TritonLaunch, arch: int = 90):
    """Triton 3.6's launch-time specialisation of a recorded launch, by Triton's own binder (the code
    `JITFunction.run` runs before it compiles): integer arguments equal to 1 become constants, ints and
    pointers get `tt.divisibility = 16` where they are multiples of 16 (pointers: 16-byte aligned; meta
    tensors have data_ptr 0, as aligned as torch's allocator makes every fresh tensor), floats stay
    runtime. Returns (jit function, options, signature, constexprs, attrs), the arguments of
    `triton.compile(ASTSource(...))`; no GPU needed (the target is named, not asked of a driver)."""
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel = _jit_function(launch.kernel)
    backend = make_backend(GPUTarget("cuda", arch, 32))
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    kwargs = dict(launch.options)
    kwargs["debug"] = kwargs.get("debug", kernel.debug) or knobs.runtime.debug  # as JITFunction.run sets them
    kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
    bound, spec, opts = binder(*[launch.arguments[p.name] for p in kernel.params], **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound, spec, opts)
    return kernel, options, signature, constexprs, attrs


def binary_key(launch: TritonLaunch, arch: int = 90) -> tuple:
    """Launches with one binary key compile to one binary under launch specialisation (finer than
    `TritonLaunch.key`, which ignores the divisibility and equal-to-1 specialisations)."""
    kernel, options, signature, constexprs, attrs = specialize(launch, arch)
    return (kernel.cache_key, tuple(signature.items()), tuple(sorted((str(k), str(v)) for k, v in constexprs.items())),
            tuple(sorted((str(k), str(v)) for k, v in attrs.items())),
            tuple(sorted((k, str(v)) for k, v in options.__dict__.items())))


def compile_for_gpu(launch: TritonLaunch, arch: int = 90, *, specialized: bool = True):
    """Compile a recorded launch for sm_<arch> down to a cubin (Triton ships ptxas; no GPU needed), the
    binary a GPU would run: with Triton's launch-time specialisation (`specialize`) for the recorded
    arguments. specialized=False compiles the plain signature (no divisibility, no constant 1s: what
    this function did before, kept to show the difference). Runs Triton's code generator, which the
    interpreter never does: needs a process where TRITON_INTERPRET was unset when mimkernels was
    imported. Returns the CompiledKernel (its .asm holds ttgir, ptx, cubin; .metadata the resources)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    if specialized:
        kernel, options, signature, constexprs, attrs = specialize(launch, arch)
        compiled = triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target,
                                  options=options.__dict__)
    else:
        signature, constexprs = launch.signature()
        compiled = triton.compile(ASTSource(_jit_function(launch.kernel), signature, constexprs), target=target,
                                  options=dict(launch.options))
    if "cubin" not in compiled.asm:
        raise RuntimeError(f"{launch.name}: no cubin, got {sorted(compiled.asm)}")
    return compiled


# ---- the checks of every family's python_tests/<family>/test_codegen.py -------------------------
# A family's codegen module provides `launch_every_kernel(batch, size, *, variants)` (every launcher on
# meta tensors; variants: the flag values and dtypes too), `KERNEL_OUTPUTS` (kernel -> the pointer
# arguments it writes), and optionally `triton_op_calls()` (catalogue entry -> arguments on small CPU
# tensors, for its triton_ops) and `GPU_CHECKS` (more checks for the process without the interpreter).
# `python -m benchmarks.codegen` runs every family's checks and compiles every kernel in one process.

def family_codegen_modules() -> list:
    """The `python_tests.<family>.test_codegen` modules (imported), one per family with Triton kernels."""
    import importlib
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent / "python_tests"
    return [importlib.import_module(f"python_tests.{path.parent.name}.test_codegen")
            for path in sorted(root.glob("*/test_codegen.py"))]


def record(family, batch: int, size: int, *, variants: bool) -> list[TritonLaunch]:
    """The launches of `family.launch_every_kernel` at `batch` images of size² pixels."""
    with record_triton_launches() as recorder:
        family.launch_every_kernel(batch, size, variants=variants)
    return recorder.launches


def compile_set(family) -> list[TritonLaunch]:
    """One launch per distinct binary of the family's representative launches (small sizes, variants)."""
    unique = {}
    for launch in record(family, 2, 64, variants=True):
        unique.setdefault(launch.key(), launch)
    return list(unique.values())


def launched_kernel_names(module) -> set[str]:
    """The kernels a module launches (`triton_launch(kernel)` in its source; helpers compile through them)."""
    import inspect
    import re

    return set(re.findall(r"triton_launch\((\w+)", inspect.getsource(module)))


def bool_flag_values(launches) -> dict[tuple[str, str], set]:
    """(kernel, constexpr) -> the values each bool constexpr takes over `launches`."""
    flags: dict[tuple[str, str], set] = {}
    for launch in launches:
        for name, value in launch.signature()[1].items():
            if isinstance(value, bool):
                flags.setdefault((launch.name, name), set()).add(value)
    return flags



def check_grids(family, batch: int) -> list[TritonLaunch]:
    """The family's launches at `batch` images of 224 px and at 2 of 1024 px: every grid within CUDA's limits
    and no torch.bool pointer (Triton would make it an int1 pointer). Returns the launches."""
    launches = record(family, batch, 224, variants=False) + record(family, 2, 1024, variants=False)
    for launch in launches:
        assert all(0 < n <= limit for n, limit in zip(launch.grid, MAX_GRID)), (launch.name, launch.grid)
        assert "*i1" not in launch.signature()[0].values(), f"{launch.name}: a torch.bool pointer"
    return launches

@contextlib.contextmanager
def target_only_driver():
    """Triton's active driver stubbed to name an sm_90 target: all torch's kernel analysis needs."""
    import triton
    from triton.backends.compiler import GPUTarget

    class TargetOnlyDriver:
        def get_current_target(self):
            return GPUTarget("cuda", 90, 32)

    previous = triton.runtime.driver._active
    triton.runtime.driver.set_active(TargetOnlyDriver())
    try:
        yield
    finally:
        triton.runtime.driver.set_active(previous)


def check_torch_sees_each_store(launches, kernel_outputs: dict[str, set[str]]) -> None:
    """Under torch.compile a triton_op's launches are functionalized from torch's analysis of the
    kernel's TTIR: the tensors it writes are cloned first and copied back after. The analysis must
    not fail (it would then take every tensor as written) nor over-approximate (a store through an
    offset returned by a helper that took pointers counts as a store to those pointers): the tensors
    a launch writes must be among its kernel's outputs."""
    from torch._higher_order_ops.triton_kernel_wrap import analyze_kernel_access, generate_ttir, ttir_to_functions

    with target_only_driver():
        for launch in launches:
            kwargs = {k: torch.empty_strided(v.shape, v.stride(), dtype=v.dtype) if isinstance(v, torch.Tensor)
                      else v for k, v in launch.arguments.items()}
            ttir, names = generate_ttir(launch.kernel, kwargs, {})
            functions = ttir_to_functions(ttir)
            analyze_kernel_access.reset()
            tensors = frozenset(i for i, name in enumerate(names) if isinstance(kwargs[name], torch.Tensor))
            accesses = analyze_kernel_access(functions, next(iter(functions)), len(names), tuple(names), tensors)
            written = {dep.name for dep in accesses.read_writes.writes}
            outputs = kernel_outputs[launch.name]
            assert written and written <= outputs, f"{launch.name}: torch sees writes to {sorted(written)}, " \
                                                   f"the kernel writes {sorted(outputs)}"


def check_triton_ops_list_their_kernels(calls: dict[str, tuple], kernel_names: set[str]) -> None:
    """Every triton_op among `calls` lists the kernels its family launches (`register_triton_kernels`):
    torch.compile's AOTAutograd cache keys on their sources."""
    from torch._library.triton import triton_ops_to_kernels

    from mimkernels import _library

    _library.register_triton_kernels()
    for name in calls:
        listed = {kernel.fn.__name__ for kernel in triton_ops_to_kernels[f"mimkernels::{name}"]}
        assert listed >= kernel_names, (name, listed)


def check_triton_ops_trace_into_kernels(calls: dict[str, tuple]) -> None:
    """The GPU registration: each triton_op among `calls` is one whose body torch.compile's functional
    tracing (fake tensors: nothing runs) turns into Triton kernel launches. A body that syncs, reads
    tensor values or launches without `triton_launch` fails here."""
    from functorch.compile import aot_function

    from mimkernels import _library

    class Traced(Exception):
        pass

    def capture(graph, _):
        raise Traced(graph)

    assert {f"mimkernels::{name}" for name in calls} <= set(_library._TRITON_OPS)
    for name, args in calls.items():
        at = [i for i, arg in enumerate(args) if isinstance(arg, torch.Tensor)]
        packet, overload = name.split(".")

        def call(*tensors, op=getattr(getattr(torch.ops.mimkernels, packet), overload), args=args, at=at):
            return op(*[tensors[at.index(i)] if i in at else arg for i, arg in enumerate(args)])

        try:
            with target_only_driver():
                aot_function(call, fw_compiler=capture)(*[args[i] for i in at])
            raise AssertionError(f"{name}: not traced")
        except Traced as traced:
            targets = {str(node.target) for node in traced.args[0].graph.nodes}
        assert "triton_kernel_wrapper_functional" in targets, (name, targets)


def compile_all(launches, report=print) -> None:
    """Compile `launches` for sm_90 (TRITON_INTERPRET must be unset); report shared memory and time."""
    start = time.perf_counter()
    for launch in launches:
        t0 = time.perf_counter()
        compiled = compile_for_gpu(launch)
        report(f"{launch.name:32s} smem {compiled.metadata.shared:6d} {time.perf_counter() - t0:5.1f}s "
               f"{launch.options} {launch.signature()[1]}")
    report(f"compiled {len(launches)} kernels in {time.perf_counter() - start:.1f}s")


def main() -> None:
    """Every family's GPU-side checks and sm_90 compiles, in this one process (GPU registration)."""
    from mimkernels import _backends

    assert not _backends.TRITON_INTERPRET, "run without TRITON_INTERPRET"
    import mimkernels  # noqa: F401  (every family registered)

    for family in family_codegen_modules():
        calls = family.triton_op_calls() if hasattr(family, "triton_op_calls") else {}
        kernels = set(family.KERNEL_OUTPUTS)
        check_triton_ops_list_their_kernels(calls, kernels)
        check_triton_ops_trace_into_kernels(calls)
        for check in getattr(family, "GPU_CHECKS", ()):
            check()
        launches = compile_set(family)
        check_torch_sees_each_store(launches, family.KERNEL_OUTPUTS)
        compile_all(launches, report=lambda line, name=family.__name__: print(f"{name}: {line}"))


if __name__ == "__main__":
    main()
