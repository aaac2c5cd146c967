"""The GPU side of every Triton kernel, checked without a GPU.

CI runs the kernels only under TRITON_INTERPRET=1, which never runs Triton's code generator. Here the
real launchers run on meta tensors inside `record_triton_launches` (nothing is computed or allocated),
and what they would launch is
  - checked against CUDA's grid limits at the canonical shapes and at B = 2048;
  - compiled to sm_90 cubins with Triton's bundled ptxas (one subprocess without TRITON_INTERPRET),
    one launch per kernel and specialization the launchers use: every flag value, fp32/fp16/bf16
    (and uint8/float64 where a launcher passes them).
Run it as a module (`python -m python_tests.test_triton_codegen`, TRITON_INTERPRET unset) to
see each kernel's shared memory and compile time.
"""
import contextlib
import os
import subprocess
import sys
import time

import pytest
import torch

from benchmarks import codegen
from mimkernels import _backends, _library

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

META = torch.device("meta")
FLOATS = (torch.float32, torch.bfloat16, torch.float16)


def _launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """Call every Triton launcher of the package on meta tensors of `batch` images of size² pixels
    (MAE patch 16, SimMIM mask cells of 32 px, HOG pool 8). variants: also the flag values and
    dtypes the launchers take, each kernel in a few launches rather than the product of all."""
    import importlib

    from mimkernels.hog import triton as H
    from mimkernels.masking import triton as M
    from mimkernels.pixel import triton as P

    frequency, hog = importlib.import_module("mimkernels.frequency"), importlib.import_module("mimkernels.hog")

    def empty(*shape, dtype=torch.float32):
        return torch.empty(shape, dtype=dtype, device=META)

    p, c = 16, 3
    grid = size // p
    length, d_pix, keep = grid * grid, p * p * c, (grid * grid) // 4
    d_tok = 1024
    dtypes = FLOATS if variants else FLOATS[:1]
    ids = empty(batch, keep, dtype=torch.int64)
    ids_restore = empty(batch, length, dtype=torch.int64)

    # masking: indices (Philox keys and caller noise), row gather/scatter, unshuffle and its backward
    M.random_mask_indices(batch, length, keep, 2 ** 40 + 7, 3, 1, META)
    if not variants:  # the largest sort: recorded, not compiled (a minute of ptxas for 16384 int64 keys)
        M.random_mask_indices(batch, M.MAX_PATCHES, 1, 1, 0, 1, META)
    for i, dt in enumerate(dtypes):
        M.random_mask_indices(batch, length, keep, 0, 0, 1, META, noise=empty(batch, length, dtype=dt))
        tokens = empty(batch, length, d_tok, dtype=dt)
        rows = M.gather_rows(tokens, ids)
        M.scatter_rows(rows, ids, length)
        M.unshuffle_tokens(empty(batch, 1 + keep, d_tok, dtype=dt), ids_restore, empty(1, 1, d_tok))
        M.unshuffle_tokens_backward(empty(batch, 1 + length, d_tok, dtype=dt), ids_restore, keep)
    if variants:
        M.unshuffle_tokens_backward(empty(batch, 1 + length, 64, dtype=torch.float64), ids_restore, keep)
        for prefix in (0, 5):  # no prefix token; timm's cls + 4 registers (1 is the default above)
            M.unshuffle_tokens(empty(batch, prefix + keep, d_tok), ids_restore, empty(1, 1, d_tok), prefix)
            M.unshuffle_tokens_backward(empty(batch, prefix + length, d_tok), ids_restore, keep, prefix)

    # pixel: patch copies, the normalized target, the masked losses and their backwards
    for dt in dtypes:
        imgs = empty(batch, c, size, size, dtype=dt)
        patches = P.patchify(imgs, p)
        P.unpatchify(patches, p, c, size, size)
        P.unpatchify(P.patchify(imgs, p, ids), p, c, size, size, ids)
        target = P.patch_norm_target(imgs, p, 1e-6)
        P.patch_norm_target_backward(target, imgs, p, 1e-6)
    if variants:  # ids counting a prefix token first (gather_patches' num_prefix_tokens, lightly's indices)
        P.unpatchify(P.patchify(imgs, p, ids, 1), p, c, size, size, ids, 1)
    mask = empty(batch, length, dtype=torch.bool)
    cells = empty(batch, size // 32, size // 32, dtype=torch.bool)
    imgs, pred = empty(batch, c, size, size), empty(batch, length, d_pix)
    grad = empty()
    P.masked_mse_loss(pred, imgs, mask, p, True, True, 1e-6)  # MAE norm_pix_loss
    P.masked_mse_loss_backward(grad, pred, imgs, mask, True, False, p, True, True, 1e-6)
    P.masked_l1_loss(imgs, imgs, cells, c)
    P.masked_l1_loss_backward(grad, imgs, imgs, cells, c, True, False)
    if variants:
        half = empty(batch, c, size, size, dtype=torch.bfloat16)
        rows_half = empty(batch, length, d_pix, dtype=torch.float16)
        P.masked_mse_loss(rows_half, rows_half, mask.float(), 1, False, False, 0.0)
        P.masked_mse_loss(pred.bfloat16(), half, mask, p, True, False, 0.0)
        P.masked_mse_loss_backward(grad, rows_half, rows_half, mask.float(), True, True)
        P.masked_mse_loss_backward(grad, pred.half(), half, mask, True, True, p, True, False, 0.0)
        P.masked_mse_loss_backward(grad, pred.double(), imgs.double(), mask, False, True, p, True, True, 1e-6)
        P.masked_l1_loss(half, half, cells.to(torch.uint8), c)
        P.masked_l1_loss_backward(grad, half, imgs.half(), cells, c, False, True)
        P.masked_l1_loss_backward(grad, imgs.double(), imgs.double(), cells.float(), c, True, True)
        wide = empty(batch, c, 128, 128, dtype=torch.bfloat16)  # p = 64: the largest patch row in one program
        P.masked_mse_loss_backward(grad, empty(batch, 4, 64 * 64 * c), wide, mask[:, :4], True, True, 64, True,
                                   True, 1e-6)

    # hog: MaskFeat's patch layout and the map, fp32 and half/uint8 images
    for i, dt in enumerate(dtypes + ((torch.uint8,) if variants else ())):
        imgs = empty(batch, c, size, size, dtype=dt)
        nbins, pool, gw = (9, 8, 16) if i % 2 == 0 else (12, 4, 0)
        cot, window = hog.tables(nbins, gw, META)
        H.hog(imgs, cot, window, nbins, pool, gw, p if i % 2 == 0 else 0, i < 2)

    # frequency: MFM (complement, clamp, normalize; its backward), PixMIM exact and not; one dtype each
    imgs = empty(batch, c, size, size)
    mean, std = list(frequency.IMAGENET_MEAN), list(frequency.IMAGENET_STD)
    frequency._mfm_filter_impl(imgs, empty(batch, dtype=torch.bool), 16.0, None, [0.0, 1.0], mean, std)
    if variants:
        frequency._pixmim_target_impl(imgs.bfloat16(), 30.0, mean, std, True)
        frequency._mfm_filter_backward_impl(imgs.half(), imgs.half(), empty(batch, dtype=torch.bool), 16.0, 64.0,
                                            None, None)
        frequency._pixmim_target_impl(imgs.double(), 8.0, None, None, False)
    else:
        frequency._pixmim_target_impl(imgs, 30.0, mean, std, True)


def _record(batch: int, size: int, *, variants: bool) -> list[codegen.TritonLaunch]:
    with codegen.record_triton_launches() as recorder:
        _launch_every_kernel(batch, size, variants=variants)
    return recorder.launches


def _launched_kernel_names() -> set[str]:
    """Every Triton kernel of the package that a launcher launches (`triton_launch(kernel)` in the
    source of the kernel modules; helpers are compiled through their callers)."""
    import inspect
    import re

    return {name for module in codegen.triton_kernel_modules()
            for name in re.findall(r"triton_launch\((\w+)", inspect.getsource(module))}


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
    for kernel in ("_row_copy_kernel", "_unshuffle_kernel", "_patch_copy_kernel", "_hog_kernel",
                   "_truncated_dft_filter_kernel", "_masked_mse_fwd_kernel", "_masked_l1_bwd_kernel"):
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


def check_opaque_ops_launch_directly() -> None:
    """The frequency family's Triton ops are opaque custom ops: their launches must not go through
    wrap_triton's higher-order op, which keeps every launch's constants in torch's global side table
    (it would grow by one entry per call; the op's launch on meta tensors is a no-op either way)."""
    import importlib

    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table

    frequency = importlib.import_module("mimkernels.frequency")
    kernel = frequency._kernels._truncated_dft_filter_kernel
    launched = []
    kernel.run = lambda *args, **kwargs: launched.append(kwargs["grid"])  # kernel[grid](...) calls run
    try:
        imgs = torch.empty(2, 3, 32, 32, device=META)
        before = len(kernel_side_table.constant_args)
        frequency._pixmim_target_impl(imgs, 8.0, None, None, True)
        frequency._mfm_filter_impl(imgs, torch.empty(2, dtype=torch.bool, device=META), 8.0, None, None, None, None)
    finally:
        del kernel.run
    assert len(kernel_side_table.constant_args) == before and len(launched) == 2, \
        "frequency launches went through wrap_triton"


# The tensors each kernel writes (either direction of the copy kernels): the launchers' outputs.
KERNEL_OUTPUTS = {
    "_mae_mask_kernel": {"ids_keep_ptr", "ids_restore_ptr", "mask_ptr"},
    "_row_copy_kernel": {"rows_ptr", "x_ptr"},
    "_unshuffle_kernel": {"out_ptr"},
    "_unshuffle_backward_kernel": {"gx_ptr", "part_ptr"},
    "_patch_copy_kernel": {"img_ptr", "patch_ptr"},
    "_patch_norm_target_kernel": {"out_ptr"},
    "_patch_norm_target_bwd_kernel": {"grad_img_ptr"},
    "_masked_mse_fwd_kernel": {"part_ptr"},
    "_masked_mse_bwd_kernel": {"grad_pred_ptr", "grad_tgt_ptr"},
    "_masked_l1_fwd_kernel": {"part_ptr"},
    "_masked_l1_bwd_kernel": {"grad_xr_ptr", "grad_img_ptr"},
    "_hog_kernel": {"out_ptr"},
    "_truncated_dft_filter_kernel": {"y_ptr"},
}


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


def check_triton_ops_list_their_kernels() -> None:
    """Every triton_op lists the package's launched kernels (`register_triton_kernels`): torch.compile's
    AOTAutograd cache keys on their sources."""
    from torch._library.triton import triton_ops_to_kernels

    from torch._inductor.codegen.wrapper import user_defined_triton_kernel_transitive_closure_source_code

    ops = {name: kernels for name, kernels in triton_ops_to_kernels.items() if name.startswith("mimkernels::")}
    names = {name: {kernel.fn.__name__ for kernel in kernels} for name, kernels in ops.items()}
    assert ops and all(kernels >= _launched_kernel_names() for kernels in names.values()), names
    l1_backward = next(k for k in next(iter(ops.values())) if k.fn.__name__ == "_masked_l1_bwd_kernel")
    assert "def _l1_diff" in user_defined_triton_kernel_transitive_closure_source_code(l1_backward)  # helpers hashed


def _triton_op_calls():
    """op name -> the arguments of a call of torch.ops.mimkernels.<op> on small CPU tensors, for every triton_op."""
    import importlib

    hog = importlib.import_module("mimkernels.hog")
    imgs, rows, grad = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 768), torch.ones(())
    mask, cells = torch.rand(2, 4) < 0.5, torch.rand(2, 2, 2) < 0.5
    ids, ids_restore = torch.tensor([[0, 2], [3, 1]]), torch.tensor([[0, 2, 3, 1], [1, 0, 2, 3]])
    tokens, cot_window = torch.randn(2, 4, 8), hog.tables(9, 16, torch.device("cpu"))
    return {
        "patchify": (imgs, 16),
        "unpatchify": (rows, 16, 3, 32, 32),
        "patch_norm_target": (imgs, 16, 1e-6),
        "patch_norm_target_backward": (rows, imgs, 16, 1e-6),
        "masked_mse_loss": (rows, rows, mask),
        "masked_mse_loss_backward": (grad, rows, rows, mask, True, True),
        "norm_pix_mse_loss": (rows, imgs, mask, 16, True, 1e-6),
        "norm_pix_mse_loss_backward": (grad, rows, imgs, mask, 16, True, 1e-6,
                                                                            True, True),
        "masked_l1_loss": (imgs, imgs, cells, 3),
        "masked_l1_loss_backward": (grad, imgs, imgs, cells, 3, True, True),
        "hog": (imgs, *cot_window, 9, 8, 16, 16, True),
        "mae_random_mask_indices": (2, 4, 1, 7, 0, torch.device("cpu")),
        "mae_random_mask_indices_from_noise": (torch.rand(2, 4), 1),
        "gather_rows": (tokens, ids),
        "scatter_rows": (tokens[:, :2], ids, 4),
        "gather_patches": (imgs, ids, 16),
        "scatter_patches": (rows[:, :2], ids, 16, 3, 32, 32),
        "unshuffle_tokens": (tokens[:, :3], ids_restore, torch.zeros(1, 1, 8)),
        "unshuffle_tokens_backward": (torch.randn(2, 5, 8), ids_restore, 2),
    }


def check_triton_ops_trace_into_kernels() -> None:
    """The GPU registration: every define_op(triton=True) op is a triton_op whose body torch.compile's
    functional tracing (fake tensors: nothing runs) turns into Triton kernel launches. A body that
    syncs, reads tensor values or launches without `triton_launch` fails here."""
    from functorch.compile import aot_function

    class Traced(Exception):
        pass

    def capture(graph, _):
        raise Traced(graph)

    calls = _triton_op_calls()
    assert {f"mimkernels::{name}" for name in calls} == set(_library._TRITON_OPS)
    for name, args in calls.items():
        at = [i for i, arg in enumerate(args) if isinstance(arg, torch.Tensor)]

        def call(*tensors, op=getattr(torch.ops.mimkernels, name), args=args, at=at):
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
        constexprs = {k: v for k, v in launch.signature()[1].items()}
        report(f"{launch.name:32s} smem {compiled.metadata.shared:6d} {time.perf_counter() - t0:5.1f}s "
               f"{launch.options} {constexprs}")
    report(f"compiled {len(launches)} kernels in {time.perf_counter() - start:.1f}s")


def test_every_kernel_compiles_for_sm90(tmp_path):
    """Triton's code generator and ptxas, which the interpreter never runs, on every launch of the
    compile set: a type error, an unsupported op or a shape the GPU backend refuses fails here. The
    same process (GPU registration, no interpreter) runs `check_opaque_ops_launch_directly` and
    `check_torch_sees_each_store`, `check_triton_ops_list_their_kernels` and
    `check_triton_ops_trace_into_kernels`."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # compile for real, not from a cache
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "python_tests.test_triton_codegen"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "compiled" in done.stdout, done.stdout


if __name__ == "__main__":
    assert not _backends.TRITON_INTERPRET, "run without TRITON_INTERPRET"
    check_opaque_ops_launch_directly()
    check_triton_ops_list_their_kernels()
    check_torch_sees_each_store(compile_set())
    check_triton_ops_trace_into_kernels()
    compile_all()
