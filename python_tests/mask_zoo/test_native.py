"""The mask zoo's native backends (cpp / cuda, csrc/mask_zoo) in the generic contract tests
(python_tests/test_native_contract.py): CPP_CALLS run on 1, 2 and 3 OpenMP threads for the same bits and,
where TORCH_CALLS has the op, equal the torch reference; cuda_cases run on a GPU (side stream, CUDA graph)
and equal the cpp build. Each section adds its ops."""
import pytest

import mimkernels as mk
from mimkernels import _native

pytestmark = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")

CPP_CALLS = {}
TORCH_CALLS = {}
_CUDA_CASES = []  # function(device) -> list of (name, thunk on device with the cuda backend, the cpp result)


def cuda_cases(device):
    return [case for cases in _CUDA_CASES for case in cases(device)]


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------


# ---- VideoMAE tube and running cell, UM-MAE ---------------------------------------------------------


# ---- data2vec 2.0 block masks, score-guided masks ---------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
# (no cuda case: the strata are copied to the device per call, which a CUDA graph cannot capture; cuda ==
# cpp is python_tests/mask_zoo/test_dino.py::test_gpu_cuda_equals_cpp, on a side stream)
CPP_CALLS["dino_collate_masks"] = lambda: mk.dino_collate_masks(300, 12, 13, version="v3", random_circular_shift=True,
                                                                 seed=3, backend="cpp")
TORCH_CALLS["dino_collate_masks"] = lambda: mk.dino_collate_masks(300, 12, 13, version="v3", random_circular_shift=True,
                                                                   seed=3, backend="torch")


def test_every_native_op_is_in_the_contract():
    """An op of the family with a cpp overload runs in the thread-count contract."""
    import torch
    native = {op for op in mk.mask_zoo.__all__ if hasattr(getattr(torch.ops.mimkernels, op, None), "cpp")}
    assert native <= set(CPP_CALLS), native - set(CPP_CALLS)
