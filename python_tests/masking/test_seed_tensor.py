"""Seeds as device tensors in the masking family (issue 18, docs/rng.md "Seeds in a tensor", SPEC.md §1):
every random op (random_mask_indices, random_masking, simmim_mask, block_mask, with scalar and per-sample
ratios and counts) takes seed=rng.seed_tensor(s, k) on every backend and gives the bits of the int seed
derive_seed(s, k); the checks are python_tests/seed_tensor_checks.py's."""
import pytest
import torch

import mimkernels as mk
from mimkernels import _backends, _native, rng
from mimkernels.masking import nn as masking_nn
from python_tests import seed_tensor_checks as checks

RATIOS = torch.tensor([0.75, 0.1, 0.5, 1.0])
COUNTS = torch.tensor([20, 3, 0, 45])
TOKENS = torch.randn(4, 30, 8, generator=torch.Generator().manual_seed(0))


def _calls(device: str) -> dict:
    """(op, ratio or count form) -> fn(seed, backend): a small call of each random op on `device`."""
    ratios, counts, tokens = RATIOS.to(device), COUNTS.to(device), TOKENS.to(device)
    return {
        ("random_mask_indices", "scalar"): lambda seed, be: mk.random_mask_indices(
            4, 30, 0.6, seed=seed, sample_offset=3, device=device, backend=be),
        ("random_mask_indices", "per_sample"): lambda seed, be: mk.random_mask_indices(
            4, 30, ratios, seed=seed, max_keep=20, device=device, backend=be),
        ("random_masking", "scalar"): lambda seed, be: mk.random_masking(tokens, 0.6, seed=seed, backend=be),
        ("random_masking", "per_sample"): lambda seed, be: mk.random_masking(tokens, ratios, seed=seed, backend=be),
        ("simmim_mask", "scalar"): lambda seed, be: mk.simmim_mask(4, 32, 8, 4, 0.6, seed=seed, sample_offset=1,
                                                                   device=device, backend=be),
        ("block_mask", "scalar"): lambda seed, be: mk.block_mask(4, 8, 9, 20, 4, seed=seed, device=device,
                                                                 backend=be),
        ("block_mask", "per_sample"): lambda seed, be: mk.block_mask(4, 8, 9, counts, 4, seed=seed, device=device,
                                                                     variant="official", backend=be),
    }


def _backends_on(op: str, device: str) -> list[str]:
    backends = [be for be in _backends.implemented(op)
                if _backends.unavailable_reason(be, torch.device(device)) is None]
    return backends + ["auto"] if op == "random_masking" else backends  # auto on the CPU: the cpp indices


CASES = [(op, form, be) for (op, form) in _calls("cpu") for be in _backends_on(op, "cpu")]


def _call(op: str, form: str, backend: str, device: str = "cpu"):
    fn = _calls(device)[op, form]
    return lambda seed: fn(seed, backend)


# block_mask's torch backend is host-sequential (it reads the key on the host, SPEC.md §1): it does not trace
# into one graph with an int seed either.
CHECKS = [(check, case) for case in CASES for check in (checks.check_bits, checks.check_advance, checks.check_bad_seeds,
                                                        checks.check_compiles_once)
          if check is not checks.check_compiles_once or case[::2] != ("block_mask", "torch")]


@pytest.mark.parametrize("check,case", CHECKS, ids=[f"{check.__name__}-{'-'.join(case)}" for check, case in CHECKS])
def test_seed_tensor_contract(check, case):
    """Bits of derive_seed, advance, bad tensors, one compile (seed_tensor_checks.py) of each op and backend."""
    check(_call(*case))


@pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
def test_cpu_fast_path_leaves_tensor_seeds_to_the_full_path():
    """The per-sample CPU fast path of simmim_mask / block_mask (cached settings, `_C` called directly) takes
    int seeds only: with the settings cached, a seed tensor still gives the bits of its derive_seed."""
    t = rng.seed_tensor(2**63 + 1, 4)
    for fn in (mk.simmim_mask, mk.block_mask):
        fn(1, seed=1)  # caches the settings
        assert torch.equal(fn(1, seed=t), fn(1, seed=checks.int_seed(2**63 + 1, 4)))


@pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
def test_native_ops_take_a_seed_step_tensor():
    """The catalogue ops' seed_step argument (the int seed 0): opcheck (schema, fake, dispatch) of each."""
    cpu, t = torch.device("cpu"), rng.seed_tensor(9, 2)
    log_aspect = (-1.2, 1.2)
    for op, args in ((torch.ops.mimkernels.random_mask_indices.cpp, (3, 20, 5, 0, t, 1, cpu)),
                     (torch.ops.mimkernels.random_mask_indices.cpp_per_sample, (torch.tensor([3, 0, 9]), 20, 9, 0, t, 1)),
                     (torch.ops.mimkernels.simmim_mask.cpp, (3, 4, 2, 7, 0, t, 1, cpu)),
                     (torch.ops.mimkernels.block_mask.cpp, (3, 8, 8, 20, 4, 20, *log_aspect, False, 0, t, 1, cpu)),
                     (torch.ops.mimkernels.block_mask.cpp_per_sample,
                      (torch.tensor([20, 3, 0]), 8, 8, 4, 0, True, *log_aspect, False, 0, t, 1))):
        torch.library.opcheck(op, args)


def test_seed_tensor_and_generator_exclude_each_other():
    with pytest.raises(ValueError, match="seed or generator"):
        mk.simmim_mask(2, seed=rng.seed_tensor(1), generator=torch.Generator())


def test_nn_modules_forward_a_seed_tensor_unchanged():
    t = rng.seed_tensor(2**64 - 1, 2**32 + 1)
    want = checks.int_seed(2**64 - 1, 2**32 + 1)
    checks.assert_same(masking_nn.RandomMasking(0.6)(TOKENS, seed=t), masking_nn.RandomMasking(0.6)(TOKENS, seed=want))
    for module in (masking_nn.SimMIMMaskGenerator(), masking_nn.BlockMaskGenerator()):
        checks.assert_same(module(3, seed=t, sample_offset=2), module(3, seed=want, sample_offset=2))


GPU_CASES = [(op, form, be) for (op, form) in _calls("cpu") for be in _backends.implemented(op)
             if (op, be) != ("block_mask", "torch")]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs a CUDA build + GPU")
@pytest.mark.parametrize("op,form,backend", GPU_CASES, ids=[f"{op}-{form}-{be}" for op, form, be in GPU_CASES])
def test_gpu_cuda_graph_replays_draw_each_step(op, form, backend):
    """Captured with rng.advance in the graph, replay k draws the mask of derive_seed(s, k); the eager op on
    the GPU gives the bits of the int seed too."""
    call = _call(op, form, backend, "cuda")
    checks.check_bits(call, "cuda")
    checks.check_cuda_graph(call)
