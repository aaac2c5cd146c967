"""The Triton kernels as a GPU would build them, without a GPU: `record_triton_launches` runs the real
launchers (on meta tensors they cost nothing) and keeps what they would launch (kernel, grid,
arguments); `compile_for_gpu` builds one launch to an sm_90 cubin with Triton's bundled ptxas, in a
process where TRITON_INTERPRET is unset (the interpreter never runs Triton's code generator).
Used by python_tests/test_triton_codegen.py."""
from __future__ import annotations

import sys

import torch


def triton_kernel_modules() -> list:
    """The imported mimkernels modules that launch Triton kernels (they import `_triton_lib.triton_launch`)."""
    from mimkernels import _triton_lib

    return [m for name, m in list(sys.modules.items())
            if name.startswith("mimkernels.") and getattr(m, "triton_launch", None) is _triton_lib.triton_launch]


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


def compile_for_gpu(launch: TritonLaunch, arch: int = 90):
    """Compile a recorded launch for sm_<arch> down to a cubin (Triton ships ptxas; no GPU needed).
    Runs Triton's code generator, which the interpreter never does. Needs a process where
    TRITON_INTERPRET was unset when mimkernels was imported. Returns the CompiledKernel."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature, constexprs = launch.signature()
    compiled = triton.compile(ASTSource(launch.kernel, signature, constexprs), target=GPUTarget("cuda", arch, 32),
                              options=dict(launch.options))
    if "cubin" not in compiled.asm:
        raise RuntimeError(f"{launch.name}: no cubin, got {sorted(compiled.asm)}")
    return compiled
