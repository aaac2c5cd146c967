"""The GPU side of the HOG kernel, checked without a GPU (CI runs it only under TRITON_INTERPRET=1,
which never runs Triton's code generator): the real launchers run on meta tensors inside
`record_triton_launches`; what they would launch is checked against CUDA's grid limits here and
compiled to sm_90 by python_tests/test_codegen.py (every family in one process), with torch's store
analysis and the triton_op tracing of `triton_op_calls`."""
import sys

import pytest
import torch

from benchmarks import codegen
from mimkernels import _backends
from mimkernels.hog import triton as H
from mimkernels.hog.ops import tables

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

META = torch.device("meta")
FLOATS = (torch.float32, torch.bfloat16, torch.float16)
# The pointer each kernel writes.
KERNEL_OUTPUTS = {"_hog_kernel": {"out_ptr"}}


def launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """MaskFeat's patch layout and the map, on `batch` RGB images of size² pixels; variants: bf16, fp16
    and uint8 images too, with and without the window, normalized or not."""
    dtypes = FLOATS + (torch.uint8,) if variants else FLOATS[:1]
    for i, dt in enumerate(dtypes):
        imgs = torch.empty(batch, 3, size, size, dtype=dt, device=META)
        nbins, pool, gw = (9, 8, 16) if i % 2 == 0 else (12, 4, 0)
        cot, window = tables(nbins, gw, META)
        if i % 2 == 0:
            H.hog(imgs, cot, window, nbins, pool, gw, 16, i < 2)
        else:
            H.hog_map(imgs, cot, window, nbins, pool, gw, i < 2)
    if variants:  # a plane whose span passes 2^31 elements (a strided view): int64 offsets inside the plane
        big = torch.empty_strided((1, 1, 64, 64), (2**32, 2**32, 2**26, 1), dtype=torch.uint8, device=META)
        cot, window = tables(9, 0, META)
        H.hog_map(big, cot, window, 9, 8, 0, True)


def triton_op_calls():
    """catalogue entry -> the arguments of a call on small CPU tensors."""
    imgs = torch.randn(2, 3, 32, 32)
    cot, window = tables(9, 16, torch.device("cpu"))
    return {"hog.triton": (imgs, cot, window, 9, 8, 16, 16, True),
            "hog_map.triton": (imgs, cot, window, 9, 8, 16, True)}


def test_every_kernel_is_recorded_with_every_flag_value():
    launches = codegen.compile_set(sys.modules[__name__])
    assert {launch.name for launch in launches} == codegen.launched_kernel_names(H) == set(KERNEL_OUTPUTS)
    flags = codegen.bool_flag_values(launches)
    assert flags and all(values == {False, True} for values in flags.values()), flags
    pointer_types = {ty for launch in launches for ty in launch.signature()[0].values()}
    assert {"*fp32", "*bf16", "*fp16", "*u8"} <= pointer_types


@pytest.mark.parametrize("batch", [256, 2048])
def test_grids_within_cuda_limits(batch):
    launches = codegen.check_grids(sys.modules[__name__], batch)
    assert launches
