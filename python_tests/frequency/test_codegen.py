"""The GPU side of the truncated DFT kernel, checked without a GPU (CI runs it only under
TRITON_INTERPRET=1, which never runs Triton's code generator).

The real launchers of triton.py run on meta tensors inside `record_triton_launches` (nothing is
computed or allocated); what they would launch is checked against CUDA's grid limits and compiled
to sm_90 with Triton's bundled ptxas by python_tests/test_codegen.py (`python -m benchmarks.codegen`,
every family in one process without TRITON_INTERPRET), one launch per specialization the launchers
use (every flag value; fp32, fp16, bf16 and fp64). The same process checks that the opaque ops
launch directly (not through wrap_triton) and that torch's analysis of the kernel sees it write its
output only.
"""
import sys

import pytest
import torch

from benchmarks import codegen
from mimkernels import _backends
from mimkernels.frequency import triton as F

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

META = torch.device("meta")
KERNELS = ("_dft_spectrum_kernel", "_dft_synthesis_kernel")


def launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """Call the family's launchers on meta tensors of `batch` RGB images of size² pixels: MFM's filter
    (complement, clamp, normalize) and its corruption, PixMIM's target; variants: also the backward
    (with and without the clamp), the half, bfloat16 and float64 inputs, exact=False, a bfloat16 filter
    without statistics (TF32-exact pixels)."""
    from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD

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
        F.circular_filter(imgs.bfloat16(), 16.0, high_pass, None, None, None, None)  # X_TF32
    else:
        F.lowfreq_target(imgs, 30.0, mean, std, True)


def test_every_kernel_is_recorded_with_every_flag_value():
    """The compile set holds each bool constexpr of the kernels with both values (SPLIT: 3xTF32 for
    fp32, ieee for fp64; X_TF32: fp16/bf16 pixels without de-normalization), each OUTPUT mode, and fp32,
    bf16 and fp16 pointers."""
    launches = codegen.compile_set(sys.modules[__name__])
    assert {launch.name for launch in launches} == codegen.launched_kernel_names(F) == set(KERNEL_OUTPUTS)
    flags: dict[str, set] = {}
    for launch in launches:
        for name, value in launch.signature()[1].items():
            if isinstance(value, bool) or name == "OUTPUT":
                flags.setdefault(name, set()).add(value)
    assert {name: values for name, values in flags.items() if name != "OUTPUT"} == dict.fromkeys(
        ("HAS_COMPLEMENT", "CLAMP", "DENORM_IN", "NORM_OUT", "SPLIT", "X_TF32"), {False, True})
    assert flags["OUTPUT"] == {0, 1, 2}
    pointer_types = {ty for launch in launches for ty in launch.signature()[0].values()}
    assert {"*fp32", "*bf16", "*fp16", "*fp64"} <= pointer_types


@pytest.mark.parametrize("batch", [256, 2048])
def test_grids_within_cuda_limits(batch):
    """Every launch at 224 px (B = 256 and 2048) and at a 1024 px image fits CUDA's grid limits, and
    no launch gets a torch.bool tensor (Triton would make it an int1 pointer: complement goes as int8)."""
    launches = codegen.check_grids(sys.modules[__name__], batch)
    assert len(launches) == 8  # spectrum + synthesis per op


def check_opaque_ops_launch_directly() -> None:
    """The family's Triton ops are opaque custom ops: their launches must not go through wrap_triton's
    higher-order op, which keeps every launch's constants in torch's global side table (it would grow
    by one entry per call; the op's launch on meta tensors is a no-op either way)."""
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table


    kernels = (F._dft_spectrum_kernel, F._dft_synthesis_kernel)
    launched = []
    for kernel in kernels:
        kernel.run = lambda *args, **kwargs: launched.append(kwargs["grid"])  # kernel[grid](...) calls run
    try:
        imgs = torch.empty(2, 3, 32, 32, device=META)
        high_pass = torch.empty(2, dtype=torch.bool, device=META)
        before = len(kernel_side_table.constant_args)
        F.lowfreq_target(imgs, 8.0, None, None, True)
        F.circular_filter(imgs, 8.0, high_pass, None, None, None, None)
        F.mfm_corrupt(imgs, 8.0, high_pass, None, None, None)
    finally:
        for kernel in kernels:
            del kernel.run
    assert len(kernel_side_table.constant_args) == before and len(launched) == 6, \
        "frequency launches went through wrap_triton"


# The pointer each kernel writes (the spectrum its workspace); the ops are opaque custom ops (no triton_op_calls).
KERNEL_OUTPUTS = {"_dft_spectrum_kernel": {"s_ptr"}, "_dft_synthesis_kernel": {"y_ptr"}}
GPU_CHECKS = (check_opaque_ops_launch_directly,)
