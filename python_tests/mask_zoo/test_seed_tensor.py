"""Seeds as device tensors in the mask zoo (issue 18, docs/rng.md "Seeds in a tensor", SPEC.md §1): every random
op (multiblock_mask, multiblock_mask_3d, tube_mask, running_cell_mask, uniform_mask, data2vec_block_mask,
score_mask, dino_collate_masks v2 and v3) takes seed=rng.seed_tensor(s, k) on every backend and gives the bits
of the int seed derive_seed(s, k); the checks are python_tests/seed_tensor_checks.py's."""
import pytest
import torch

import mimkernels as mk
from mimkernels import _backends, _native, rng
from mimkernels.mask_zoo import nn as zoo_nn
from python_tests import seed_tensor_checks as checks

SCORES = (torch.randn(5, 30, generator=torch.Generator().manual_seed(0)) * 4).round() / 4  # ties included


def _calls(device: str) -> dict:
    """op -> fn(seed, backend): a small call of each random op on `device` (batch splits, odd grids, the
    per-batch draws: I-JEPA's block sizes, V-JEPA's, DINO's strata, shuffle and shifts)."""
    scores = SCORES.to(device)
    zoo = mk.mask_zoo
    return {
        "multiblock_mask": lambda seed, be: zoo.multiblock_mask(
            5, 9, 8, pred_mask_scale=(0.1, 0.4), aspect_ratio=(0.5, 2.0), num_pred_masks=3, min_keep=3, seed=seed,
            sample_offset=2, device=device, backend=be),
        "multiblock_mask_3d": lambda seed, be: zoo.multiblock_mask_3d(
            4, 3, 5, 6, spatial_scale=(0.1, 0.5), temporal_scale=(0.3, 1.0), num_blocks=3, seed=seed,
            sample_offset=1, device=device, backend=be),
        "tube_mask": lambda seed, be: mk.tube_mask(6, 2, 5, 4, 0.6, seed=seed, sample_offset=3, device=device,
                                                   backend=be),
        "running_cell_mask": lambda seed, be: mk.running_cell_mask(16, 3, 4, 5, 0.5, seed=seed, device=device,
                                                                   backend=be),
        "uniform_mask": lambda seed, be: mk.uniform_mask(5, 8, 6, 0.4, seed=seed, sample_offset=1, device=device,
                                                         backend=be),
        "data2vec_block_mask": lambda seed, be: mk.data2vec_block_mask(3, 49, clone_batch=2, seed=seed,
                                                                       sample_offset=4, device=device, backend=be),
        "score_mask": lambda seed, be: mk.score_mask(scores, 0.6, score_share=0.5, hint_pool=0.2, hint_ratio=0.1,
                                                     seed=seed, sample_offset=2, backend=be),
        "dino_collate_masks[v2]": lambda seed, be: mk.dino_collate_masks(10, 6, 7, seed=seed, device=device,
                                                                         backend=be),
        "dino_collate_masks[v3]": lambda seed, be: mk.dino_collate_masks(
            10, 6, 7, version="v3", random_circular_shift=True, seed=seed, device=device, backend=be),
    }


def _op(name: str) -> str:
    return name.split("[")[0]


CASES = [(name, be) for name in _calls("cpu") for be in _backends.implemented(_op(name))
         if _backends.unavailable_reason(be, torch.device("cpu")) is None]
IDS = [f"{name}-{be}" for name, be in CASES]


def _call(name: str, backend: str, device: str = "cpu"):
    fn = _calls(device)[name]
    return lambda seed: fn(seed, backend)


def test_every_random_op_is_covered_on_torch_and_cpp():
    random_ops = {"multiblock_mask", "multiblock_mask_3d", "tube_mask", "running_cell_mask", "uniform_mask",
                  "data2vec_block_mask", "score_mask", "dino_collate_masks"}
    assert {_op(name) for name, _ in CASES} == random_ops
    if _native.available():
        assert {(_op(name), be) for name, be in CASES} >= {(op, "cpp") for op in random_ops}


@pytest.mark.parametrize("name,backend", CASES, ids=IDS)
def test_seed_tensor_gives_the_bits_of_derive_seed(name, backend):
    checks.check_bits(_call(name, backend))


@pytest.mark.parametrize("name,backend", CASES, ids=IDS)
def test_advance_draws_the_next_derive_seed(name, backend):
    checks.check_advance(_call(name, backend))


@pytest.mark.parametrize("name,backend", CASES, ids=IDS)
def test_bad_seed_tensors_raise_naming_seed(name, backend):
    checks.check_bad_seeds(_call(name, backend))


# The torch references of multiblock (its rejection loop), tube, uniform (Python loops over the draws) and DINO
# (per-row block masks) run step by step on the host, reading the key there (SPEC.md §1): they do not trace into
# one graph with an int seed either. The others trace whole, the cpp ops as opaque catalogue ops.
HOST_REFERENCES = {"multiblock_mask", "multiblock_mask_3d", "tube_mask", "uniform_mask", "dino_collate_masks"}
COMPILED = [(name, be) for name, be in CASES if not (be == "torch" and _op(name) in HOST_REFERENCES)]


@pytest.mark.parametrize("name,backend", COMPILED, ids=[f"{name}-{be}" for name, be in COMPILED])
def test_compile_traces_once_for_every_seed_value(name, backend):
    checks.check_compiles_once(_call(name, backend))


@pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
def test_cpu_fast_paths_leave_tensor_seeds_to_the_full_path():
    """The per-sample CPU fast paths (cached settings, `_C` called directly) take int seeds only: with the
    settings cached, a seed tensor still gives the bits of its derive_seed."""
    t, want = rng.seed_tensor(2**63 + 1, 4), checks.int_seed(2**63 + 1, 4)
    for fn in (mk.mask_zoo.multiblock_mask, mk.mask_zoo.multiblock_mask_3d, mk.tube_mask, mk.running_cell_mask,
               mk.uniform_mask):
        fn(1, seed=1)  # caches the settings
        checks.assert_same(fn(1, seed=t), fn(1, seed=want))


@pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
def test_native_ops_take_a_seed_step_tensor():
    """The catalogue ops' seed_step argument (the int seed 0): opcheck (schema, fake, dispatch) of each."""
    cpu, t = torch.device("cpu"), rng.seed_tensor(9, 2)
    probs = torch.linspace(0.1, 0.5, 4)
    ops = torch.ops.mimkernels
    for op, args in (
            (ops.multiblock_mask.cpp, (3, 8, 8, 0.85, 1.0, 0.15, 0.2, 0.75, 1.5, 1, 4, 10, False, False, 0, t, 1, cpu)),
            (ops.multiblock_mask_3d.cpp, (3, 2, 6, 6, 1.0, 1.0, 0.15, 0.15, 0.75, 1.5, 4, 1.0, True, 0, t, 1, cpu)),
            (ops.tube_mask.cpp, (3, 2, 12, 7, 0, t, 1, cpu)),
            (ops.running_cell_mask.cpp, (3, 2, 3, 5, 2, 0, t, 0, cpu)),
            (ops.uniform_mask.cpp, (3, 4, 6, 4, 0, t, 2, cpu)),
            (ops.data2vec_block_mask.cpp, (3, 4, 7, 3, 5, 9, True, True, False, 0, t, 1, cpu)),
            (ops.score_mask.cpp, (SCORES, 20, 8, 6, 3, True, 0, t, 2)),
            (ops.dino_collate_masks.cpp, (probs, 6, 3, 5, 4, 4, 10, -1.2, 1.2, True, True, 0, t))):
        torch.library.opcheck(op, args)


def test_seed_tensor_and_generator_exclude_each_other():
    with pytest.raises(ValueError, match="seed or generator"):
        mk.tube_mask(2, seed=rng.seed_tensor(1), generator=torch.Generator())


def test_nn_modules_forward_a_seed_tensor_unchanged():
    t, want = rng.seed_tensor(2**64 - 1, 2**32 + 1), checks.int_seed(2**64 - 1, 2**32 + 1)
    checks.assert_same(zoo_nn.Data2vecMaskGenerator(49, clone_batch=2)(3, seed=t, sample_offset=1),
                       zoo_nn.Data2vecMaskGenerator(49, clone_batch=2)(3, seed=want, sample_offset=1))
    checks.assert_same(zoo_nn.ScoreMasking(0.5, score_share=0.5)(SCORES, seed=t),
                       zoo_nn.ScoreMasking(0.5, score_share=0.5)(SCORES, seed=want))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs a CUDA build + GPU")
@pytest.mark.parametrize("name", list(_calls("cpu")))
def test_gpu_cuda_graph_replays_draw_each_step(name):
    """The cuda backend, DINO included (its strata stay on the GPU after the warm-up call): captured with
    rng.advance in the graph, replay k draws the mask of derive_seed(s, k); the eager op on the GPU gives the
    bits of the int seed and of the cpp build."""
    call = _call(name, "cuda", "cuda")
    checks.check_bits(call, "cuda")
    checks.check_cuda_graph(call)
    if _native.available():
        t = rng.seed_tensor(2**63 + 5, 2)
        checks.assert_same(call(t.cuda()), _call(name, "cpp")(t))
