"""The GPU side of the pixel family's Triton kernels, checked without a GPU.

CI runs the kernels only under TRITON_INTERPRET=1, which never runs Triton's code generator. Here the
real launchers of mimkernels/pixel/triton.py run on meta tensors inside `record_triton_launches`
(nothing is computed or allocated), and what they would launch is
  - checked against CUDA's grid limits at the canonical shapes and at B = 2048;
  - compiled to sm_90 cubins with Triton's bundled ptxas (one subprocess without TRITON_INTERPRET),
    one launch per kernel and specialization the launchers use: every flag value, fp32/fp16/bf16
    (and uint8/float64 where a launcher passes them).
Run it as a module (`python -m python_tests.pixel.test_codegen`, TRITON_INTERPRET unset) to see each
kernel's shared memory and compile time.
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
OPS = ("patchify", "unpatchify", "patch_norm_target", "masked_mse_loss", "norm_pix_mse_loss", "masked_l1_loss")


def _launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """Call every launcher of the family on meta tensors of `batch` images of size² pixels (MAE patch
    16, SimMIM mask cells of 32 px). variants: also the flag values and dtypes the launchers take,
    each kernel in a few launches rather than the product of all."""
    from mimkernels.pixel import triton as P

    def empty(*shape, dtype=torch.float32):
        return torch.empty(shape, dtype=dtype, device=META)

    p, c = 16, 3
    grid = size // p
    length, d_pix, keep = grid * grid, p * p * c, (grid * grid) // 4
    dtypes = FLOATS if variants else FLOATS[:1]
    ids = empty(batch, keep, dtype=torch.int64)

    # patch copies (both directions, with and without ids), the normalized target and its backward
    for dt in dtypes:
        imgs = empty(batch, c, size, size, dtype=dt)
        patches = P.patchify(imgs, p)
        P.unpatchify(patches, p, c, size, size)
        P.gather_patches_backward(P.gather_patches(imgs, ids, p), imgs, ids, p, 0, [True])
        target = P.patch_norm_target(imgs, p, 1e-6)
        P.patch_norm_target_backward(target, imgs, p, 1e-6, [True])
    if variants:  # ids counting a prefix token first (gather_patches' num_prefix_tokens, lightly's indices)
        P.gather_patches_backward(P.gather_patches(imgs, ids, p, 1), imgs, ids, p, 1, [True])
    # the masked losses and their backwards
    mask = empty(batch, length, dtype=torch.bool)
    cells = empty(batch, size // 32, size // 32, dtype=torch.bool)
    imgs, pred = empty(batch, c, size, size), empty(batch, length, d_pix)
    grad = empty()
    P.norm_pix_mse_loss(pred, imgs, mask, p, True, 1e-6)  # MAE norm_pix_loss
    P.norm_pix_mse_loss_backward(grad, pred, imgs, mask, p, True, 1e-6, [True, False])
    P.masked_l1_loss(imgs, imgs, cells, c)
    P.masked_l1_loss_backward(grad, imgs, imgs, cells, c, [True, False])
    if variants:
        half = empty(batch, c, size, size, dtype=torch.bfloat16)
        rows_half = empty(batch, length, d_pix, dtype=torch.float16)
        P.masked_mse_loss(rows_half, rows_half, mask.float())
        P.norm_pix_mse_loss(pred.bfloat16(), half, mask, p, False, 0.0)
        P.masked_mse_loss_backward(grad, rows_half, rows_half, mask.float(), [True, True])
        P.norm_pix_mse_loss_backward(grad, pred.half(), half, mask, p, False, 0.0, [True, True])
        P.norm_pix_mse_loss_backward(grad, pred.double(), imgs.double(), mask, p, True, 1e-6, [False, True])
        P.masked_l1_loss(half, half, cells.to(torch.uint8), c)
        P.masked_l1_loss_backward(grad, half, imgs.half(), cells, c, [False, True])
        P.masked_l1_loss_backward(grad, imgs.double(), imgs.double(), cells.float(), c, [True, True])
        wide = empty(batch, c, 128, 128, dtype=torch.bfloat16)  # p = 64: the largest patch row in one program
        P.norm_pix_mse_loss_backward(grad, empty(batch, 4, 64 * 64 * c), wide, mask[:, :4], 64, True, 1e-6,
                                     [True, True])


def _record(batch: int, size: int, *, variants: bool) -> list[codegen.TritonLaunch]:
    with codegen.record_triton_launches() as recorder:
        _launch_every_kernel(batch, size, variants=variants)
    return recorder.launches


def _launched_kernel_names() -> set[str]:
    """Every Triton kernel of the family that a launcher launches (`triton_launch(kernel)` in triton.py;
    helpers are compiled through their callers)."""
    from mimkernels.pixel import triton as P

    return set(re.findall(r"triton_launch\((\w+)", inspect.getsource(P)))


def compile_set() -> list[codegen.TritonLaunch]:
    """One launch per distinct compiled binary of the representative launches."""
    unique = {}
    for launch in _record(2, 64, variants=True):
        unique.setdefault(launch.key(), launch)
    return list(unique.values())


# The tensors each kernel writes (either direction of the copy kernel): the launchers' outputs.
KERNEL_OUTPUTS = {
    "_patch_copy_kernel": {"img_ptr", "patch_ptr"},
    "_patch_norm_target_kernel": {"out_ptr"},
    "_patch_norm_target_bwd_kernel": {"grad_img_ptr"},
    "_masked_mse_fwd_kernel": {"part_ptr"},
    "_masked_mse_bwd_kernel": {"grad_pred_ptr", "grad_tgt_ptr"},
    "_masked_l1_fwd_kernel": {"part_ptr"},
    "_masked_l1_bwd_kernel": {"grad_xr_ptr", "grad_img_ptr"},
}


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
    for kernel in ("_patch_copy_kernel", "_masked_mse_fwd_kernel", "_masked_l1_bwd_kernel"):
        for ty in ("*fp32", "*bf16", "*fp16"):
            assert (kernel, ty) in dtypes, (kernel, ty)


@pytest.mark.parametrize("batch", [256, 2048])
def test_grids_within_cuda_limits(batch):
    """Every launch at 224 px (B = 256 and 2048) and at a 1024 px image fits CUDA's grid limits, and no
    kernel gets a torch.bool tensor (Triton makes it an int1 pointer; the launchers pass masks as uint8)."""
    launches = _record(batch, 224, variants=False) + _record(2, 1024, variants=False)
    assert {launch.name for launch in launches} == _launched_kernel_names()
    for launch in launches:
        assert all(0 < n <= limit for n, limit in zip(launch.grid, codegen.MAX_GRID)), (launch.name, launch.grid)
        assert "*i1" not in launch.signature()[0].values(), f"{launch.name}: a torch.bool pointer (load as uint8)"


def test_masked_l1_grid_on_tall_images():
    """SimMIM's L1 tiles a (b, c) plane along the grid's axes 1 and 2 (≤ 65535 each): a 1 × 2^17 and a
    2^17 × 8 image still fit."""
    from mimkernels.pixel import triton as P

    for h, w in ((8, 2 ** 17), (2 ** 17, 8)):
        imgs = torch.empty(1, 1, h, w, device=META)
        with codegen.record_triton_launches() as recorder:
            P.masked_l1_loss(imgs, imgs, torch.empty(1, h // 8, w // 8, dtype=torch.bool, device=META), 1)
        (launch,) = recorder.launches
        assert all(n <= limit for n, limit in zip(launch.grid, codegen.MAX_GRID)), launch.grid


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
    not fail (it would then take every tensor as written) nor over-approximate (a store through an
    offset returned by a helper that took pointers counts as a store to those pointers): the tensors
    a launch writes must be among its kernel's outputs. Needs only a target, given by a stub driver."""
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
    """catalogue entry -> the arguments of a call on small CPU tensors, for every triton_op of the family."""
    imgs, rows, grad = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 768), torch.ones(())
    mask, cells = torch.rand(2, 4) < 0.5, torch.rand(2, 2, 2) < 0.5
    return {
        "patchify.triton": (imgs, 16),
        "patchify.triton_backward": (rows, imgs, 16, [True]),
        "unpatchify.triton": (rows, 16, 3, 32, 32),
        "unpatchify.triton_backward": (imgs, rows, 16, 3, 32, 32, [True]),
        "patch_norm_target.triton": (imgs, 16, 1e-6),
        "patch_norm_target.triton_backward": (rows, imgs, 16, 1e-6, [True]),
        "masked_mse_loss.triton": (rows, rows, mask),
        "masked_mse_loss.triton_backward": (grad, rows, rows, mask, [True, True]),
        "norm_pix_mse_loss.triton": (rows, imgs, mask, 16, True, 1e-6),
        "norm_pix_mse_loss.triton_backward": (grad, rows, imgs, mask, 16, True, 1e-6, [True, True]),
        "masked_l1_loss.triton": (imgs, imgs, cells, 3),
        "masked_l1_loss.triton_backward": (grad, imgs, imgs, cells, 3, [True, True]),
    }


def _family_triton_ops() -> set[str]:
    """The qualnames of the family's triton_ops (those of the other families left out)."""
    from mimkernels import _library

    return {name for name in _library._TRITON_OPS if name.split("::")[1].split(".")[0] in OPS}


def check_triton_ops_list_their_kernels() -> None:
    """Every triton_op of the family lists the family's launched kernels (`register_triton_kernels`):
    torch.compile's AOTAutograd cache keys on their sources."""
    from torch._inductor.codegen.wrapper import user_defined_triton_kernel_transitive_closure_source_code
    from torch._library.triton import triton_ops_to_kernels

    from mimkernels import _library

    _library.register_triton_kernels()
    names = {name: {kernel.fn.__name__ for kernel in triton_ops_to_kernels[name]} for name in _family_triton_ops()}
    assert names and all(kernels >= _launched_kernel_names() for kernels in names.values()), names
    kernels = triton_ops_to_kernels["mimkernels::masked_l1_loss.triton_backward"]
    l1_backward = next(k for k in kernels if k.fn.__name__ == "_masked_l1_bwd_kernel")
    assert "def _l1_diff" in user_defined_triton_kernel_transitive_closure_source_code(l1_backward)  # helpers hashed


def check_triton_ops_trace_into_kernels() -> None:
    """The GPU registration: every define_op(triton=True) op of the family is a triton_op whose body
    torch.compile's functional tracing (fake tensors: nothing runs) turns into Triton kernel launches. A
    body that syncs, reads tensor values or launches without `triton_launch` fails here."""
    from functorch.compile import aot_function

    class Traced(Exception):
        pass

    def capture(graph, _):
        raise Traced(graph)

    calls = _triton_op_calls()
    assert {f"mimkernels::{name}" for name in calls} == _family_triton_ops()
    for name, args in calls.items():
        at = [i for i, arg in enumerate(args) if isinstance(arg, torch.Tensor)]
        packet, overload = name.split(".")

        def call(*tensors, op=getattr(getattr(torch.ops.mimkernels, packet), overload), args=args, at=at):
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
    same process (GPU registration, no interpreter) runs `check_torch_sees_each_store`,
    `check_triton_ops_list_their_kernels` and `check_triton_ops_trace_into_kernels`."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # compile for real, not from a cache
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-m", "python_tests.pixel.test_codegen"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "compiled" in done.stdout, done.stdout


if __name__ == "__main__":
    assert not _backends.TRITON_INTERPRET, "run without TRITON_INTERPRET"
    import mimkernels  # noqa: F401  (every family registered)

    check_triton_ops_list_their_kernels()
    check_torch_sees_each_store(compile_set())
    check_triton_ops_trace_into_kernels()
    compile_all()
