"""Bad input (SPEC.md §1): every bad argument raises TypeError (wrong type) or ValueError (wrong
value, shape or device) whose message names it, before any kernel runs. The table-driven cases of
mimkernels/masking/examples.py (valid_calls, BAD_CALLS) run in python_tests/test_contract.py with
every family's; here, that the table covers the family, and each op's own cases."""
import inspect

import pytest
import torch

import mimkernels as mk
from mimkernels import masking
from mimkernels.masking.examples import BAD_CALLS, valid_calls


def test_the_call_table_covers_every_op_of_the_family():
    ops = {name for name in masking.__all__ if inspect.isfunction(getattr(masking, name))}
    assert ops == set(valid_calls(torch.device("cpu"))) == {op for op, *_ in BAD_CALLS}
    assert ops <= set(mk.__all__)


# ---- each op's own cases ---------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [-0.1, 1.01, float("nan"), 2])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        mk.random_mask_indices(2, 10, ratio, seed=0)
    with pytest.raises(ValueError, match="mask_ratio"):
        mk.random_masking(torch.zeros(2, 10, 3), ratio, seed=0)


def test_bad_inputs():
    with pytest.raises(TypeError, match="mask_ratio"):
        mk.random_mask_indices(2, 10, "0.5", seed=0)
    with pytest.raises(ValueError, match="num_patches"):
        mk.random_mask_indices(2, 0, 0.5, seed=0)
    with pytest.raises(TypeError, match="batch"):
        mk.random_mask_indices(2.0, 10, 0.5, seed=0)
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 11))
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 10, 1))
    with pytest.raises(TypeError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 10), seed=1)
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 10), device="meta")
    with pytest.raises(ValueError, match="seed or generator"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="sample_offset"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, sample_offset=-1)
    with pytest.raises(ValueError, match="backend"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, backend="nope")
    with pytest.raises(ValueError, match="not implemented"):
        mk.random_masking(torch.zeros(2, 10, 3), 0.5, seed=1, backend="cuda")
    with pytest.raises(RuntimeError, match="cannot run here"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, backend="cuda")  # CPU device
    with pytest.raises(ValueError, match="x must be 3-D"):
        mk.random_masking(torch.zeros(2, 10), 0.5, seed=0)
    with pytest.raises(ValueError, match="L >= 1"):
        mk.random_masking(torch.zeros(2, 0, 3), 0.5, seed=0)
    with pytest.raises(ValueError, match="noise"):
        mk.random_masking(torch.zeros(2, 10, 3), 0.5, noise=torch.rand(3, 10))


def test_unshuffle_bad_inputs():
    ids = torch.arange(6).expand(2, 6).contiguous()
    x = torch.zeros(2, 4, 3)
    tok = torch.zeros(3)
    with pytest.raises(ValueError, match="x must be 3-D"):
        mk.unshuffle_tokens(torch.zeros(2, 4), ids, tok)
    with pytest.raises(TypeError, match="ids_restore"):
        mk.unshuffle_tokens(x, ids.to(torch.int32), tok)
    with pytest.raises(ValueError, match="ids_restore"):
        mk.unshuffle_tokens(x, ids[:, :2], tok)
    with pytest.raises(ValueError, match="ids_restore"):
        mk.unshuffle_tokens(x, ids[:1], tok)
    with pytest.raises(ValueError, match="mask_token"):
        mk.unshuffle_tokens(x, ids, torch.zeros(4))
    with pytest.raises(TypeError, match="mask_token"):
        mk.unshuffle_tokens(x, ids, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="device"):
        mk.unshuffle_tokens(x, ids, torch.zeros(3, device="meta"))


def test_gather_patches_bad_input(monkeypatch):
    imgs = torch.zeros(2, 3, 8, 8)
    with pytest.raises(TypeError, match="ids_keep must have dtype"):
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.float32), 4)
    with pytest.raises(ValueError, match="ids_keep has batch 1"):
        mk.gather_patches(imgs, torch.zeros(1, 1, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="divisible by patch_size"):
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.int64), 3)
    with pytest.raises(ValueError, match="ids_keep must be 2-D"):
        mk.gather_patches(imgs, torch.zeros(2, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.int64), 4, num_prefix_tokens=-1)
    monkeypatch.setenv("MIMKERNELS_DEBUG", "1")
    with pytest.raises(ValueError, match=r"ids_keep values must be in \[P, P \+ L\) = \[0, 4\)"):
        mk.gather_patches(imgs, torch.full((2, 1), 4, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match=r"= \[1, 5\)"):   # a prefix token (cls, index 0) has no pixels
        mk.gather_patches(imgs, torch.zeros(2, 1, dtype=torch.int64), 4, num_prefix_tokens=1)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(mask_ratio=1.5), ValueError, "mask_ratio"), (dict(mask_ratio=-0.1), ValueError, "mask_ratio"),
    (dict(mask_ratio=float("nan")), ValueError, "mask_ratio"), (dict(mask_ratio="0.5"), TypeError, "mask_ratio"),
    (dict(input_size=200), ValueError, "input_size"), (dict(model_patch_size=5), ValueError, "model_patch_size"),
    (dict(mask_patch_size=0), ValueError, "mask_patch_size"), (dict(input_size=192.0), TypeError, "input_size"),
    (dict(batch=-1), ValueError, "batch"), (dict(sample_offset=-1), ValueError, "sample_offset"),
    (dict(seed=1, generator=torch.Generator()), ValueError, "seed or generator"),
    (dict(backend="triton"), ValueError, "not implemented"), (dict(backend="nope"), ValueError, "backend"),
])
def test_simmim_bad_input(kw, exc, match):
    kw = {"batch": 2, "seed": 0, **kw}
    with pytest.raises(exc, match=match):
        mk.simmim_mask(kw.pop("batch"), **kw)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(height=0), ValueError, "height"), (dict(width=0), ValueError, "width"),
    (dict(height=2.0), TypeError, "height"), (dict(min_aspect=0.0), ValueError, "min_aspect"),
    (dict(min_aspect=-1.0), ValueError, "min_aspect"), (dict(min_aspect=float("inf")), ValueError, "min_aspect"),
    (dict(min_aspect=2.0, max_aspect=1.0), ValueError, "max_aspect"), (dict(max_aspect=-2.0), ValueError, "max_aspect"),
    (dict(min_num_patches=-1), ValueError, "min_num_patches"),
    (dict(max_num_patches=-1), ValueError, "max_num_patches"),
    (dict(num_masking_patches=7.5), TypeError, "num_masking_patches"), (dict(batch=-2), ValueError, "batch"),
    (dict(sample_offset=2**32), ValueError, "sample_offset"), (dict(backend="triton"), ValueError, "not implemented"),
    (dict(variant="slowfast"), ValueError, "variant"),
    (dict(variant="mmpretrain", num_masking_patches=170), ValueError, "num_masking_patches"),
    (dict(variant="mmpretrain", num_masking_patches=-1), ValueError, "num_masking_patches"),
])
def test_block_bad_input(kw, exc, match):
    kw = {"batch": 2, "seed": 0, **kw}
    with pytest.raises(exc, match=match):
        mk.block_mask(kw.pop("batch"), **kw)


def test_avg_dist_bad_input():
    with pytest.raises(ValueError, match="3-D"):
        mk.mask_avg_dist(torch.ones(4, 4, dtype=torch.bool), 2)
    with pytest.raises(TypeError, match="mask"):
        mk.mask_avg_dist([[[1]]], 2)
    with pytest.raises(ValueError, match="patch_size"):
        mk.mask_avg_dist(torch.ones(1, 4, 4), 0)
    with pytest.raises(ValueError, match="non-empty"):
        mk.mask_avg_dist(torch.ones(1, 0, 4), 2)


def test_block_mask_sizes_past_memory_fail_cleanly():
    """Issue 20 (fuzz): height = 2^31 - 1 hung the torch backend building Python lists of cells, and a batch
    of 2^31 raised MemoryError from a list of 2^31 masks. Grids are < 2^31 cells; the output is allocated
    first, so a size past memory is the allocator's RuntimeError on every backend."""
    with pytest.raises(ValueError, match="2\\^31 cells"):
        mk.block_mask(2, 2**31 - 1, 14, seed=0, backend="torch")
    with pytest.raises(ValueError, match="2\\^31 cells"):
        mk.block_mask(2, 2**16, 2**15, seed=0, backend="cpp")
    for backend in ("torch", "cpp"):
        with pytest.raises(RuntimeError, match="allocate"):
            mk.block_mask(2**32, 2**15 - 1, 2**15 - 1, seed=0, backend=backend)


def test_random_mask_indices_empty_batch_allocates_nothing():
    """Issue 20 (fuzz): batch 0 with num_patches = 2^31 - 1 made the cpp body size its sort keys (16 GiB):
    std::bad_alloc (MemoryError), and the torch backend drew keys for a (1, L) index row (16 GiB). An empty
    batch is empty outputs, no kernel called, no draw made."""
    for backend in ("cpp", "torch"):
        ids_keep, ids_restore, mask = mk.random_mask_indices(0, 2**31 - 1, 0.75, seed=0, backend=backend)
        assert ids_keep.shape == (0, (2**31 - 1) // 4) and ids_restore.shape == mask.shape == (0, 2**31 - 1)
