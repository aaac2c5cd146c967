"""The GPU side of the family's Triton kernels, checked without a GPU.

CI runs the kernels only under TRITON_INTERPRET=1, which never runs Triton's code generator. Here the
family's launchers (masking/triton.py, one per op and backward; gather_patches runs the pixel
family's launchers, compiled by python_tests/pixel/test_codegen.py) run on meta tensors inside
`benchmarks.codegen.record_triton_launches` (nothing is computed or allocated), and what they would launch is
  - checked against CUDA's grid limits at the canonical shapes and at B = 2048;
  - compiled to sm_90 cubins with Triton's bundled ptxas (one subprocess without TRITON_INTERPRET),
    one launch per kernel and specialization the launchers use: every flag value, fp32/fp16/bf16
    (and float64 where a launcher passes it).
The same subprocess, where the family's Triton ops are triton_ops, checks that torch.compile traces
each op (backwards and the noise overload included) into its kernels, sees each kernel's stores, and
lists each op's kernels. Run it as a module (`python -m python_tests.masking.test_codegen`,
TRITON_INTERPRET unset) to see each kernel's shared memory and compile time.
"""
import contextlib
import inspect
import os
import re
import subprocess
import sys
import time

import pytest
import torch

from benchmarks import codegen
from mimkernels import _backends

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

META = torch.device("meta")
FLOATS = (torch.float32, torch.bfloat16, torch.float16)

# The tensors each kernel writes (either direction of the copy kernels): the launchers' outputs.
KERNEL_OUTPUTS = {
    "_mae_mask_kernel": {"ids_keep_ptr", "ids_restore_ptr", "mask_ptr"},
    "_row_copy_kernel": {"rows_ptr", "x_ptr"},
    "_unshuffle_kernel": {"out_ptr"},
    "_unshuffle_backward_kernel": {"gx_ptr", "part_ptr"},
}


def _launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """Call every launcher of the family on meta tensors of `batch` images of size² pixels (MAE patch
    16, D = 1024 tokens). variants: also the flag values and dtypes the launchers take."""
    from mimkernels.masking import triton as M

    def empty(*shape, dtype=torch.float32):
        return torch.empty(shape, dtype=dtype, device=META)

    grid = size // 16
    length, keep, d_tok = grid * grid, (grid * grid) // 4, 1024
    ids = empty(batch, keep, dtype=torch.int64)
    ids_restore = empty(batch, length, dtype=torch.int64)
    token = empty(1, 1, d_tok)

    M.random_mask_indices(batch, length, keep, 2 ** 40 + 7, 3, META)
    if not variants:  # the largest sort: recorded, not compiled (a minute of ptxas for 16384 int64 keys)
        M.random_mask_indices(batch, M.MAX_PATCHES, 1, 1, 0, META)
    for dt in FLOATS if variants else FLOATS[:1]:
        M.random_mask_indices_from_noise(empty(batch, length, dtype=dt), keep)
        tokens = empty(batch, length, d_tok, dtype=dt)
        M.random_masking_backward(M.random_masking(tokens, ids), tokens, ids, [True])
        x = empty(batch, 1 + keep, d_tok, dtype=dt)
        M.unshuffle_tokens(x, ids_restore, token)
        M.unshuffle_tokens_backward(empty(batch, 1 + length, d_tok, dtype=dt), x, ids_restore, token, 1, [True, True])
    if variants:
        wide = empty(batch, 1 + keep, 64, dtype=torch.float64)
        M.unshuffle_tokens_backward(empty(batch, 1 + length, 64, dtype=torch.float64), wide, ids_restore,
                                    empty(64, dtype=torch.float64), 1, [True, True])
        for prefix in (0, 5):  # no prefix token; timm's cls + 4 registers (1 is the default above)
            x = empty(batch, prefix + keep, d_tok)
            M.unshuffle_tokens(x, ids_restore, token, prefix)
            M.unshuffle_tokens_backward(empty(batch, prefix + length, d_tok), x, ids_restore, token, prefix,
                                        [True, True])


def _record(batch: int, size: int, *, variants: bool) -> list[codegen.TritonLaunch]:
    with codegen.record_triton_launches() as recorder:
        _launch_every_kernel(batch, size, variants=variants)
    return recorder.launches


def _launched_kernel_names() -> set[str]:
    """The kernels masking/triton.py launches (`triton_launch(kernel)` in its source)."""
    from mimkernels.masking import triton as M

    return set(re.findall(r"triton_launch\((\w+)", inspect.getsource(M)))


def compile_set() -> list[codegen.TritonLaunch]:
    """One launch per distinct compiled binary of the representative launches."""
    unique = {}
    for launch in _record(2, 64, variants=True):
        unique.setdefault(launch.key(), launch)
    return list(unique.values())


def test_every_kernel_is_recorded_with_every_flag_value():
    """The compile set covers every launched kernel, and each bool constexpr with both values."""
    launches = compile_set()
    assert {launch.name for launch in launches} == _launched_kernel_names() == set(KERNEL_OUTPUTS)
    flags: dict[tuple[str, str], set] = {}
    for launch in launches:
        _, constexprs = launch.signature()
        for name, value in constexprs.items():
            if isinstance(value, bool):
                flags.setdefault((launch.name, name), set()).add(value)
    one_sided = {key: values for key, values in flags.items() if values != {False, True}}
    assert not one_sided, one_sided
    dtypes = {(launch.name, ty) for launch in launches for ty in launch.signature()[0].values()}
    for kernel in ("_row_copy_kernel", "_unshuffle_kernel", "_mae_mask_kernel"):
        for ty in ("*fp32", "*bf16", "*fp16"):
            assert (kernel, ty) in dtypes, (kernel, ty)


@pytest.mark.parametrize("batch", [256, 2048])
def test_grids_within_cuda_limits(batch):
    """Every launch at 224 px (B = 256 and 2048) and at a 1024 px image fits CUDA's grid limits, and no
    kernel gets a torch.bool tensor (Triton makes it an int1 pointer)."""
    launches = _record(batch, 224, variants=False) + _record(2, 1024, variants=False)
    assert {launch.name for launch in launches} == _launched_kernel_names()
    for launch in launches:
        assert all(0 < n <= limit for n, limit in zip(launch.grid, codegen.MAX_GRID)), (launch.name, launch.grid)
        assert "*i1" not in launch.signature()[0].values(), f"{launch.name}: a torch.bool pointer (load as uint8)"


@contextlib.contextmanager
def _target_only_driver():
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


def check_torch_sees_each_store(launches) -> None:
    """Under torch.compile a triton_op's launches are functionalized from torch's analysis of the
    kernel's TTIR: the tensors it writes are cloned first and copied back after. The analysis must
    not fail (it would then take every tensor as written) nor over-approximate: the tensors a launch
    writes must be among its kernel's outputs. Needs only a target, given by a stub driver."""
    from torch._higher_order_ops.triton_kernel_wrap import analyze_kernel_access, generate_ttir, ttir_to_functions

    with _target_only_driver():
        for launch in launches:
            kwargs = {k: torch.empty_strided(v.shape, v.stride(), dtype=v.dtype) if isinstance(v, torch.Tensor)
                      else v for k, v in launch.arguments.items()}
            ttir, names = generate_ttir(launch.kernel, kwargs, {})
            functions = ttir_to_functions(ttir)
            analyze_kernel_access.reset()
            tensors = frozenset(i for i, name in enumerate(names) if isinstance(kwargs[name], torch.Tensor))
            accesses = analyze_kernel_access(functions, next(iter(functions)), len(names), tuple(names), tensors)
            written = {dep.name for dep in accesses.read_writes.writes}
            outputs = KERNEL_OUTPUTS[launch.name]
            assert written and written <= outputs, f"{launch.name}: torch sees writes to {sorted(written)}, " \
                                                   f"the kernel writes {sorted(outputs)}"


def _triton_op_calls():
    """overload name -> the arguments of a call of torch.ops.mimkernels.<op>.<overload> on small CPU
    tensors, for every triton_op of the family."""
    imgs, rows = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 768)
    ids, ids_restore = torch.tensor([[0, 2], [3, 1]]), torch.tensor([[0, 2, 3, 1], [1, 0, 2, 3]])
    tokens, token = torch.randn(2, 4, 8), torch.zeros(1, 1, 8)
    return {
        "random_mask_indices.triton": (2, 4, 1, 7, 0, torch.device("cpu")),
        "random_mask_indices.triton_from_noise": (torch.rand(2, 4), 1),
        "random_masking.triton": (tokens, ids),
        "random_masking.triton_backward": (tokens[:, :2], tokens, ids, [True]),
        "gather_patches.triton": (imgs, ids, 16),
        "gather_patches.triton_backward": (rows[:, :2], imgs, ids, 16, 0, [True]),
        "unshuffle_tokens.triton": (tokens[:, :3], ids_restore, token),
        "unshuffle_tokens.triton_backward": (torch.randn(2, 5, 8), tokens[:, :3], ids_restore, token, 1, [True, True]),
    }


def _op(name: str):
    packet, overload = name.split(".")
    return getattr(getattr(torch.ops.mimkernels, packet), overload)


def check_triton_ops_list_their_kernels() -> None:
    """Every triton_op of the family lists the kernels it launches (`_library.register_triton_kernels`):
    torch.compile's AOTAutograd cache keys on their sources. gather_patches runs the pixel family's
    launchers, so its ops list the pixel family's kernels, the patch copy among them."""
    from torch._library.triton import triton_ops_to_kernels

    from mimkernels import _library

    _library.register_triton_kernels()
    names = {name: {kernel.fn.__name__ for kernel in triton_ops_to_kernels.get(f"mimkernels::{name}", ())}
             for name in _triton_op_calls()}
    for name, kernels in names.items():
        assert kernels >= ({"_patch_copy_kernel"} if name.startswith("gather_patches.") else set(KERNEL_OUTPUTS)), \
            (name, kernels)


def check_triton_ops_trace_into_kernels() -> None:
    """The GPU registration: every triton op of the family is a triton_op whose body torch.compile's
    functional tracing (fake tensors: nothing runs) turns into Triton kernel launches. A body that
    syncs, reads tensor values or launches without `triton_launch` fails here."""
    from functorch.compile import aot_function

    from mimkernels import _library

    class Traced(Exception):
        pass

    def capture(graph, _):
        raise Traced(graph)

    calls = _triton_op_calls()
    family = {name for name in _library._TRITON_OPS if name.split("::")[1].split(".")[0] in
              {"random_mask_indices", "random_masking", "gather_patches", "unshuffle_tokens"}}
    assert {f"mimkernels::{name}" for name in calls} == family
    for name, args in calls.items():
        at = [i for i, arg in enumerate(args) if isinstance(arg, torch.Tensor)]

        def call(*tensors, op=_op(name), args=args, at=at):
            return op(*[tensors[at.index(i)] if i in at else arg for i, arg in enumerate(args)])

        try:
            with _target_only_driver():
                aot_function(call, fw_compiler=capture)(*[args[i] for i in at])
            raise AssertionError(f"{name}: not traced")
        except Traced as traced:
            targets = {str(node.target) for node in traced.args[0].graph.nodes}
        assert "triton_kernel_wrapper_functional" in targets, (name, targets)


def compile_all(report=print) -> None:
    """Compile the compile set for sm_90 (TRITON_INTERPRET must be unset); report shared memory and time."""
    start = time.perf_counter()
    launches = compile_set()
    for launch in launches:
        t0 = time.perf_counter()
        compiled = codegen.compile_for_gpu(launch)
        report(f"{launch.name:32s} smem {compiled.metadata.shared:6d} {time.perf_counter() - t0:5.1f}s "
               f"{launch.options} {launch.signature()[1]}")
    report(f"compiled {len(launches)} kernels in {time.perf_counter() - start:.1f}s")


def test_every_kernel_compiles_for_sm90(tmp_path):
    """Triton's code generator and ptxas, which the interpreter never runs, on every launch of the
    compile set: a type error, an unsupported op or a shape the GPU backend refuses fails here. The
    same process (GPU registration, no interpreter) runs `check_triton_ops_list_their_kernels`,
    `check_torch_sees_each_store` and `check_triton_ops_trace_into_kernels`."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # compile for real, not from a cache
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    done = subprocess.run([sys.executable, "-m", "python_tests.masking.test_codegen"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "compiled" in done.stdout, done.stdout


if __name__ == "__main__":
    assert not _backends.TRITON_INTERPRET, "run without TRITON_INTERPRET"
    check_triton_ops_list_their_kernels()
    check_torch_sees_each_store(compile_set())
    check_triton_ops_trace_into_kernels()
    compile_all()
