"""The GPU side of the truncated DFT kernel, checked without a GPU (CI runs it only under
TRITON_INTERPRET=1, which never runs Triton's code generator).

The real launchers of triton.py run on meta tensors inside `record_triton_launches` (nothing is
computed or allocated); what they would launch is checked against CUDA's grid limits and compiled
to sm_90 with Triton's bundled ptxas, in one subprocess without TRITON_INTERPRET, one launch per
specialization the launchers use (every flag value; fp32, fp16, bf16 and fp64). The same process
checks that the opaque ops launch directly (not through wrap_triton) and that torch's analysis of
the kernel sees it write its output only. Run it as a module
(`python -m python_tests.frequency.test_codegen`, TRITON_INTERPRET unset) to see each
specialization's shared memory and compile time.
"""
import os
import subprocess
import sys
import time

import pytest
import torch

from benchmarks import codegen
from mimkernels import _backends

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

META = torch.device("meta")
KERNEL = "_truncated_dft_filter_kernel"


def _launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """Call the family's launchers on meta tensors of `batch` RGB images of size² pixels: MFM's filter
    (complement, clamp, normalize) and its corruption, PixMIM's target; variants: also the backward
    (with and without the clamp), the half, bfloat16 and float64 inputs, exact=False."""
    from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD
    from mimkernels.frequency import triton as F

    imgs = torch.empty(batch, 3, size, size, device=META)
    high_pass = torch.empty(batch, dtype=torch.bool, device=META)
    mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    F.circular_filter(imgs, 16.0, high_pass, [0.0, 1.0], None, mean, std)
    if variants:
        F.mfm_corrupt(imgs, 16.0, high_pass, None, mean, std)
        F.lowfreq_target(imgs.bfloat16(), 30.0, mean, std, True)
        F.circular_filter_backward(imgs.half(), imgs.half(), 16.0, high_pass, None, 64.0, None, None, [True])
        F.circular_filter_backward(imgs, imgs, 16.0, high_pass, [0.0, 1.0], None, mean, std, [True])
        F.lowfreq_target(imgs.double(), 8.0, None, None, False)
    else:
        F.lowfreq_target(imgs, 30.0, mean, std, True)


def _record(batch: int, size: int, *, variants: bool) -> list[codegen.TritonLaunch]:
    with codegen.record_triton_launches() as recorder:
        _launch_every_kernel(batch, size, variants=variants)
    return recorder.launches


def _launched_kernel_names() -> set[str]:
    """The kernels triton.py launches (`triton_launch(kernel)` in its source)."""
    import inspect
    import re

    from mimkernels.frequency import triton as F

    return set(re.findall(r"triton_launch\((\w+)", inspect.getsource(F)))


def compile_set() -> list[codegen.TritonLaunch]:
    """One launch per distinct compiled binary of the representative launches."""
    unique = {}
    for launch in _record(2, 64, variants=True):
        unique.setdefault(launch.key(), launch)
    return list(unique.values())


def test_every_kernel_is_recorded_with_every_flag_value():
    """The compile set holds each bool constexpr of the kernel with both values, each OUTPUT mode,
    and fp32, bf16 and fp16 pointers."""
    launches = compile_set()
    assert {launch.name for launch in launches} == _launched_kernel_names() == {KERNEL}
    flags: dict[str, set] = {}
    for launch in launches:
        for name, value in launch.signature()[1].items():
            if isinstance(value, bool) or name == "OUTPUT":
                flags.setdefault(name, set()).add(value)
    assert {name: values for name, values in flags.items() if name != "OUTPUT"} == dict.fromkeys(
        ("HAS_COMPLEMENT", "CLAMP", "DENORM_IN", "NORM_OUT"), {False, True})
    assert flags["OUTPUT"] == {0, 1, 2}
    pointer_types = {ty for launch in launches for ty in launch.signature()[0].values()}
    assert {"*fp32", "*bf16", "*fp16", "*fp64"} <= pointer_types


@pytest.mark.parametrize("batch", [256, 2048])
def test_grids_within_cuda_limits(batch):
    """Every launch at 224 px (B = 256 and 2048) and at a 1024 px image fits CUDA's grid limits, and
    no launch gets a torch.bool tensor (Triton would make it an int1 pointer: complement goes as int8)."""
    launches = _record(batch, 224, variants=False) + _record(2, 1024, variants=False)
    assert len(launches) == 4
    for launch in launches:
        assert all(0 < n <= limit for n, limit in zip(launch.grid, codegen.MAX_GRID)), (launch.name, launch.grid)
        assert "*i1" not in launch.signature()[0].values(), f"{launch.name}: a torch.bool pointer"


def check_opaque_ops_launch_directly() -> None:
    """The family's Triton ops are opaque custom ops: their launches must not go through wrap_triton's
    higher-order op, which keeps every launch's constants in torch's global side table (it would grow
    by one entry per call; the op's launch on meta tensors is a no-op either way)."""
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table

    from mimkernels.frequency import triton as F

    kernel = F._truncated_dft_filter_kernel
    launched = []
    kernel.run = lambda *args, **kwargs: launched.append(kwargs["grid"])  # kernel[grid](...) calls run
    try:
        imgs = torch.empty(2, 3, 32, 32, device=META)
        high_pass = torch.empty(2, dtype=torch.bool, device=META)
        before = len(kernel_side_table.constant_args)
        F.lowfreq_target(imgs, 8.0, None, None, True)
        F.circular_filter(imgs, 8.0, high_pass, None, None, None, None)
        F.mfm_corrupt(imgs, 8.0, high_pass, None, None, None)
    finally:
        del kernel.run
    assert len(kernel_side_table.constant_args) == before and len(launched) == 3, \
        "frequency launches went through wrap_triton"


def check_torch_sees_each_store(launches) -> None:
    """torch's analysis of the kernel's TTIR (what torch.compile would functionalize) must succeed and
    find the output y_ptr as the only tensor written. Needs only a target, given by a stub driver."""
    import triton
    from torch._higher_order_ops.triton_kernel_wrap import analyze_kernel_access, generate_ttir, ttir_to_functions
    from triton.backends.compiler import GPUTarget

    class TargetOnlyDriver:
        def get_current_target(self):
            return GPUTarget("cuda", 90, 32)

    previous = triton.runtime.driver._active
    triton.runtime.driver.set_active(TargetOnlyDriver())
    try:
        for launch in launches:
            kwargs = {k: torch.empty_strided(v.shape, v.stride(), dtype=v.dtype) if isinstance(v, torch.Tensor)
                      else v for k, v in launch.arguments.items()}
            ttir, names = generate_ttir(launch.kernel, kwargs, {})
            functions = ttir_to_functions(ttir)
            analyze_kernel_access.reset()
            tensors = frozenset(i for i, name in enumerate(names) if isinstance(kwargs[name], torch.Tensor))
            accesses = analyze_kernel_access(functions, next(iter(functions)), len(names), tuple(names), tensors)
            written = {dep.name for dep in accesses.read_writes.writes}
            assert written == {"y_ptr"}, f"{launch.name}: torch sees writes to {sorted(written)}"
    finally:
        triton.runtime.driver.set_active(previous)


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
    compile set; the same process (no interpreter) runs `check_opaque_ops_launch_directly` and
    `check_torch_sees_each_store`."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # compile for real, not from a cache
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-m", "python_tests.frequency.test_codegen"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "compiled" in done.stdout, done.stdout


if __name__ == "__main__":
    assert not _backends.TRITON_INTERPRET, "run without TRITON_INTERPRET"
    check_opaque_ops_launch_directly()
    check_torch_sees_each_store(compile_set())
    compile_all()
