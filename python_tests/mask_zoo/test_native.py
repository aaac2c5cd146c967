"""The mask zoo's native backends (cpp / cuda, csrc/mask_zoo) in the generic contract tests
(python_tests/test_native_contract.py): CPP_CALLS run on 1, 2 and 3 OpenMP threads for the same bits and,
where TORCH_CALLS has the op, equal the torch reference; cuda_cases run on a GPU (side stream, CUDA graph)
and equal the cpp build. Each section adds its ops."""
import pytest
import torch

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
CPP_CALLS["tube_mask"] = lambda: mk.tube_mask(97, 3, 9, 11, 0.7, seed=4, sample_offset=2, backend="cpp")
TORCH_CALLS["tube_mask"] = lambda: mk.tube_mask(97, 3, 9, 11, 0.7, seed=4, sample_offset=2, backend="torch")
CPP_CALLS["running_cell_mask"] = lambda: mk.running_cell_mask(97, 5, 7, 6, 0.75, seed=4, backend="cpp")
TORCH_CALLS["running_cell_mask"] = lambda: mk.running_cell_mask(97, 5, 7, 6, 0.75, seed=4, backend="torch")
CPP_CALLS["uniform_mask"] = lambda: mk.uniform_mask(97, 10, 12, 0.4, seed=4, sample_offset=1, backend="cpp")
TORCH_CALLS["uniform_mask"] = lambda: mk.uniform_mask(97, 10, 12, 0.4, seed=4, sample_offset=1, backend="torch")


def _video_cuda_cases(device):
    """VideoMAE's defaults, UM-MAE's, odd sides and a complement-picking ratio, at B = 256 (warps and
    blocks past one)."""
    return [
        ("tube", lambda: mk.tube_mask(256, seed=1, device=device, backend="cuda"),
         mk.tube_mask(256, seed=1, backend="cpp")),
        ("tube_odd", lambda: mk.tube_mask(77, 3, 7, 5, 0.3, seed=2, sample_offset=9, device=device, backend="cuda"),
         mk.tube_mask(77, 3, 7, 5, 0.3, seed=2, sample_offset=9, backend="cpp")),
        ("running_cell", lambda: mk.running_cell_mask(256, seed=3, device=device, backend="cuda"),
         mk.running_cell_mask(256, seed=3, backend="cpp")),
        ("running_cell_odd", lambda: mk.running_cell_mask(33, 4, 7, 9, 0.25, seed=4, device=device, backend="cuda"),
         mk.running_cell_mask(33, 4, 7, 9, 0.25, seed=4, backend="cpp")),
        ("uniform", lambda: mk.uniform_mask(256, seed=5, device=device, backend="cuda"),
         mk.uniform_mask(256, seed=5, backend="cpp")),
        ("uniform_complement", lambda: mk.uniform_mask(130, 14, 10, 0.8, seed=6, device=device, backend="cuda"),
         mk.uniform_mask(130, 14, 10, 0.8, seed=6, backend="cpp")),
    ]


_CUDA_CASES.append(_video_cuda_cases)


# ---- data2vec 2.0 block masks, score-guided masks ---------------------------------------------------

def _scores(batch, tokens, dtype=torch.float32):
    """Scores with ties (rounded to 0.25) and NaNs, the cases the order defines."""
    gen = torch.Generator().manual_seed(7)
    s = (torch.randn(batch, tokens, generator=gen) * 4).round() / 4
    s[::5, 3] = float("nan")
    return s.to(dtype)


CPP_CALLS["data2vec_block_mask"] = lambda: mk.data2vec_block_mask(23, seed=5, sample_offset=3, backend="cpp")
TORCH_CALLS["data2vec_block_mask"] = lambda: mk.data2vec_block_mask(23, seed=5, sample_offset=3, backend="torch")
CPP_CALLS["score_mask"] = lambda: mk.score_mask(_scores(101, 196), 0.75, score_share=0.5, hint_pool=0.1,
                                                hint_ratio=0.05, seed=5, sample_offset=3, backend="cpp")
TORCH_CALLS["score_mask"] = lambda: mk.score_mask(_scores(101, 196), 0.75, score_share=0.5, hint_pool=0.1,
                                                  hint_ratio=0.05, seed=5, sample_offset=3, backend="torch")


def _data2vec_score_cuda_cases(device):
    scores = {dtype: _scores(64, 196, dtype) for dtype in (torch.float32, torch.float64, torch.bfloat16)}
    on_device = {dtype: s.to(device) for dtype, s in scores.items()}
    cases = [
        ("data2vec", lambda: mk.data2vec_block_mask(16, seed=1, device=device, backend="cuda"),
         mk.data2vec_block_mask(16, seed=1, backend="cpp")),
        ("data2vec_non_overlapping", lambda: mk.data2vec_block_mask(16, 225, non_overlapping=True, seed=2,
                                                                    device=device, backend="cuda"),
         mk.data2vec_block_mask(16, 225, non_overlapping=True, seed=2, backend="cpp")),
    ]
    for dtype, host in scores.items():
        cases.append((f"score_mask_{dtype}", lambda dtype=dtype: mk.score_mask(
            on_device[dtype], 0.75, largest=dtype != torch.float64, score_share=0.5, hint_pool=0.1, hint_ratio=0.05,
            seed=3, backend="cuda"),
            mk.score_mask(host, 0.75, largest=dtype != torch.float64, score_share=0.5, hint_pool=0.1,
                          hint_ratio=0.05, seed=3, backend="cpp")))
    return cases


_CUDA_CASES.append(_data2vec_score_cuda_cases)


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------
CPP_CALLS["dino_collate_masks"] = lambda: mk.dino_collate_masks(300, 12, 13, version="v3", random_circular_shift=True,
                                                                 seed=3, backend="cpp")
TORCH_CALLS["dino_collate_masks"] = lambda: mk.dino_collate_masks(300, 12, 13, version="v3", random_circular_shift=True,
                                                                   seed=3, backend="torch")


def _dino_cuda_cases(device):
    """Capturable: the strata stay on the GPU after the warm-up call (mask_zoo/SPEC.md §9)."""
    return [(f"dino_collate_masks[{version}]",
             lambda version=version: mk.dino_collate_masks(300, 12, 13, version=version,
                                                           random_circular_shift=version == "v3", seed=3,
                                                           device=device, backend="cuda"),
             mk.dino_collate_masks(300, 12, 13, version=version, random_circular_shift=version == "v3", seed=3,
                                   backend="cpp"))
            for version in ("v2", "v3")]


_CUDA_CASES.append(_dino_cuda_cases)


def test_every_native_op_is_in_the_contract():
    """An op of the family with a cpp overload runs in the thread-count contract."""
    import torch
    native = {op for op in mk.mask_zoo.__all__ if hasattr(getattr(torch.ops.mimkernels, op, None), "cpp")}
    assert native <= set(CPP_CALLS), native - set(CPP_CALLS)
