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

def _multiblock(variant, backend, device="cpu"):
    return tuple(mk.mask_zoo.multiblock_mask(37, 14, 14, enc_mask_scale=(0.2, 0.8), pred_mask_scale=(0.2, 0.8),
                                             aspect_ratio=(0.3, 3.0), num_pred_masks=3, min_keep=4, variant=variant,
                                             seed=2**64 - 5, sample_offset=9, device=device, backend=backend))


def _multiblock_3d(variant, backend, device="cpu"):
    return tuple(mk.mask_zoo.multiblock_mask_3d(19, 4, 6, 7, spatial_scale=(0.2, 0.5), temporal_scale=(0.5, 1.0),
                                                variant=variant, seed=77, sample_offset=3, device=device,
                                                backend=backend))


for _fn, _op in ((_multiblock, "multiblock_mask"), (_multiblock_3d, "multiblock_mask_3d")):
    for _name, _variant in ((_op, "fixed"), (f"{_op}[official]", "official")):
        CPP_CALLS[_name] = lambda fn=_fn, v=_variant: fn(v, "cpp")
        TORCH_CALLS[_name] = lambda fn=_fn, v=_variant: fn(v, "torch")


def _multiblock_cuda_cases(device):
    return [(f"{fn.__name__}[{variant}]", lambda fn=fn, v=variant: fn(v, "cuda", device), fn(variant, "cpp"))
            for fn in (_multiblock, _multiblock_3d) for variant in ("fixed", "official")]


_CUDA_CASES.append(_multiblock_cuda_cases)



# ---- VideoMAE tube and running cell, UM-MAE ---------------------------------------------------------


# ---- data2vec 2.0 block masks, score-guided masks ---------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------


def test_every_native_op_is_in_the_contract():
    """An op of the family with a cpp overload runs in the thread-count contract."""
    import torch
    native = {op for op in mk.mask_zoo.__all__ if hasattr(getattr(torch.ops.mimkernels, op, None), "cpp")}
    assert native <= set(CPP_CALLS), native - set(CPP_CALLS)
