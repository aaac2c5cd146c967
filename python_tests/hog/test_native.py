"""The native backends of HOG (cpp here; cuda on a GPU in test_backends.py): any layout and dtype
through the front door and through the catalogue entry itself."""
import pytest
import torch

import mimkernels as mk
from mimkernels.hog import reference as hog_reference
from mimkernels.hog.ops import tables
from mimkernels.testing import backends_on
from python_tests.hog.oracles import integer_images
from python_tests.test_native_contract import strided_views

pytestmark = pytest.mark.skipif("cpp" not in backends_on("hog"), reason="needs _C")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.uint8])
def test_hog_cpp_any_layout_any_dtype(dtype):
    imgs = integer_images((1, 3, 16, 32), seed=1, dtype=dtype)
    expected = mk.hog(imgs, backend="cpp")
    torch.testing.assert_close(expected, hog_reference.hog(imgs), rtol=0, atol=1e-6)
    for name, view in strided_views(imgs):
        assert not view.is_contiguous(), name
        got = mk.hog(view, backend="cpp")
        assert torch.equal(got, expected.expand_as(got)), name
        assert torch.equal(mk.hog_map(view, pool=4, backend="cpp"), mk.hog_map(imgs, pool=4, backend="cpp")
                           .expand(view.shape[0], -1, -1, -1, -1)), name



def test_native_op_body_makes_its_input_contiguous():
    """torch.ops.mimkernels.hog.cpp, reachable without the front door (e.g. from a compiled graph), copies a
    strided input before taking its pointer."""
    imgs = integer_images((2, 3, 16, 16), seed=2)
    cot, window = tables(9, 16, imgs.device)
    op = torch.ops.mimkernels.hog.cpp
    expected = op(imgs, cot, window, 9, 8, 16, 16, True)
    assert torch.equal(op(imgs.contiguous(memory_format=torch.channels_last), cot, window, 9, 8, 16, 16, True),
                       expected)


# The family's rows of python_tests/test_native_contract.py's sweeps (thread counts, streams, graphs, devices).
CPP_CALLS = {"hog": lambda: mk.hog(integer_images((3, 2, 32, 16), seed=7, dtype=torch.uint8), backend="cpp")}


def cuda_cases(device):
    """(name, thunk on `device` with the cuda backend, the cpp result); inputs copied outside the thunks."""
    imgs = torch.randn(3, 3, 48, 80, generator=torch.Generator().manual_seed(9))
    odd = torch.randn(2, 2, 37, 45, generator=torch.Generator().manual_seed(10)).to(torch.bfloat16)
    imgs_d, odd_d = imgs.to(device), odd.to(device)
    return [
        ("hog", lambda: mk.hog(imgs_d, backend="cuda"), mk.hog(imgs, backend="cpp")),
        # pool 1: 49 KiB of shared memory per block (the opt-in path); odd sides: partial tiles, halo at the edges
        ("hog pool 1", lambda: mk.hog_map(imgs_d, pool=1, gaussian_window=0, backend="cuda"),
         mk.hog_map(imgs, pool=1, gaussian_window=0, backend="cpp")),
        ("hog odd", lambda: mk.hog_map(odd_d, pool=5, gaussian_window=0, backend="cuda"),
         mk.hog_map(odd, pool=5, gaussian_window=0, backend="cpp")),
    ]
