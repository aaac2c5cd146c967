"""Native (cpp / cuda) backends of random_mask_indices: bit-identical to the torch reference."""
import pytest
import torch

from mimkernels import _native, rng
from mimkernels.masking import random_mask_indices

pytestmark = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")

SEEDS = [0, 1, 12345, 2**63 - 1, 2**63, 2**64 - 1]


def _same(a, b):
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape and x.device == y.device
        assert torch.equal(x, y)


@pytest.mark.parametrize("batch,length,ratio", [(10_000, 49, 0.75), (2_000, 196, 0.75), (64, 1, 0.5),
                                                (64, 7, 0.6), (32, 257, 0.75)])
def test_cpp_equals_torch(batch, length, ratio):
    for seed in (SEEDS if batch <= 2_000 else SEEDS[:2] + SEEDS[-1:]):
        got = random_mask_indices(batch, length, ratio, seed=seed, backend="cpp")
        ref = random_mask_indices(batch, length, ratio, seed=seed, backend="torch")
        _same(got, ref)
        assert got[0].is_contiguous() and got[1].is_contiguous() and got[2].is_contiguous()


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_cpp_k_zero_and_k_full(ratio):
    got = random_mask_indices(16, 49, ratio, seed=7, backend="cpp")
    _same(got, random_mask_indices(16, 49, ratio, seed=7, backend="torch"))
    assert got[0].shape[1] == (49 if ratio == 0.0 else 0)
    assert torch.all(got[2] == ratio)


def test_cpp_sample_offset_split():
    whole = random_mask_indices(8, 49, 0.75, seed=3, backend="cpp")
    a = random_mask_indices(4, 49, 0.75, seed=3, sample_offset=0, backend="cpp")
    b = random_mask_indices(4, 49, 0.75, seed=3, sample_offset=4, backend="cpp")
    for w, x, y in zip(whole, a, b):
        assert torch.equal(w, torch.cat([x, y]))
    _same(b, random_mask_indices(4, 49, 0.75, seed=3, sample_offset=4, backend="torch"))


def test_cpp_generator_and_empty_batch():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    _same(random_mask_indices(4, 49, generator=g1, backend="cpp"),
          random_mask_indices(4, 49, generator=g2, backend="torch"))
    _same(random_mask_indices(0, 49, seed=1, backend="cpp"), random_mask_indices(0, 49, seed=1, backend="torch"))


def test_cpp_permutation():
    keep, restore, mask = random_mask_indices(32, 196, 0.75, seed=11, backend="cpp")
    ar = torch.arange(196).expand(32, 196)
    assert torch.equal(restore.sort(1).values, ar)
    shuffle = torch.empty_like(restore).scatter_(1, restore, ar)
    assert torch.equal(shuffle[:, :keep.shape[1]], keep)
    assert torch.equal(mask, (restore >= keep.shape[1]).float())


def test_opcheck_native_op():
    op = torch.ops.mimkernels.mae_random_mask_indices_native.default
    torch.library.opcheck(op, (6, 49, 12, -1, 3, torch.device("cpu")))
    torch.library.opcheck(op, (2, 7, 0, 2**63 - 1, 0, torch.device("cpu")))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs CUDA and a CUDA build")
@pytest.mark.parametrize("batch,length", [(4_096, 49), (512, 196), (16, 1), (16, 7), (8, 257), (2, 16_384)])
def test_cuda_equals_torch(batch, length):
    for seed in (0, 12345, 2**64 - 1):
        ref = random_mask_indices(batch, length, 0.75, seed=seed, sample_offset=3, device="cuda", backend="torch")
        got = torch.ops.mimkernels.mae_random_mask_indices_native(
            batch, length, ref[0].shape[1], rng.seed_to_i64(seed), 3, torch.device("cuda"))
        _same(got, ref)
