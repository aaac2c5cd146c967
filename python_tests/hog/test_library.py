"""torch.library: the catalogue entries pass opcheck; torch.compile traces the front door whole."""
import pytest
import torch
from torch.library import opcheck

import mimkernels as mk
from mimkernels.hog import reference
from mimkernels.hog.ops import tables
from mimkernels.testing import backends_on
from python_tests.hog.oracles import integer_images

KERNELS = backends_on("hog", exclude=("torch",))


def test_opcheck():
    """Every registered backend of hog and hog_map, each on the device it runs on here."""
    imgs = integer_images((1, 1, 16, 16))
    cot, window = tables(9, 16, torch.device("cpu"))
    for backend in KERNELS:
        opcheck(getattr(torch.ops.mimkernels.hog, backend), (imgs, cot, window, 9, 8, 16, 16, True))
        opcheck(getattr(torch.ops.mimkernels.hog_map, backend), (imgs, cot, window, 9, 8, 16, True))


def test_catalogue_lists_every_backend():
    """hog and hog_map: torch, triton (where installed), cpp and cuda overloads in torch.ops.mimkernels."""
    for op in ("hog", "hog_map"):
        assert {"cpp", "cuda"} <= set(getattr(torch.ops.mimkernels, op).overloads())


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_fullgraph():
    imgs = integer_images((1, 3, 16, 16))
    for backend in KERNELS:
        compiled = torch.compile(lambda x: mk.hog(x, backend=backend), fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(imgs), reference.hog(imgs), rtol=0, atol=1e-6)
