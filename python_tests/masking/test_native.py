"""The native backends (cpp / cuda, csrc/masking): random_mask_indices bit-identical to the torch
reference, and the contract between the front doors and the kernels: every pointer handed to C++ is
a contiguous tensor of the dtype the kernel reads, sizes past the kernels' integer types are refused,
the cpp kernels give the same bits on any number of OpenMP threads, and the CUDA kernels (GPU tests)
run on the tensor's device and current stream, are capturable in a CUDA graph and give the bits of
the cpp build."""
import math

import pytest
import torch

import mimkernels as mk
from mimkernels import _native, rng
from mimkernels.masking import random_mask_indices
from mimkernels.masking import reference as masking_reference

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
    op = torch.ops.mimkernels.random_mask_indices.cpp
    torch.library.opcheck(op, (6, 49, 12, -1, 3, torch.device("cpu")))
    torch.library.opcheck(op, (2, 7, 0, 2**63 - 1, 0, torch.device("cpu")))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs CUDA and a CUDA build")
@pytest.mark.parametrize("batch,length", [(4_096, 49), (512, 196), (16, 1), (16, 7), (8, 257), (2, 16_384)])
def test_cuda_equals_torch(batch, length):
    for seed in (0, 12345, 2**64 - 1):
        ref = random_mask_indices(batch, length, 0.75, seed=seed, sample_offset=3, device="cuda", backend="torch")
        got = torch.ops.mimkernels.random_mask_indices.cuda(
            batch, length, ref[0].shape[1], rng.seed_to_i64(seed), 3, torch.device("cuda"))
        _same(got, ref)


# ---- the native contract (pointers, integer bounds, OpenMP threads, CUDA streams and graphs) -------

gpu = pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs a CUDA build + GPU")


def test_native_op_bodies_make_their_inputs_contiguous():
    """The ops themselves (torch.ops.mimkernels.<op>.cpp, reachable without the front door, e.g. from a
    compiled graph) copy a strided input before taking its pointer."""
    mask = torch.rand(2, 6, 5, generator=torch.Generator().manual_seed(0)) > 0.5
    expected = torch.ops.mimkernels.mask_avg_dist.cpp(mask, 4)
    assert torch.equal(torch.ops.mimkernels.mask_avg_dist.cpp(mask.transpose(1, 2).contiguous().transpose(1, 2), 4),
                       expected)
    assert torch.equal(torch.ops.mimkernels.mask_avg_dist.cpp(mask[:1].expand(3, -1, -1), 4), expected[:1].expand(3))


def test_avg_dist_cpp_unusual_dtypes_and_layouts():
    """Nonzero = masked for every dtype: negative ints, fractions, NaN (NaN != 0) and -0.0 (== 0)."""
    g = torch.Generator().manual_seed(3)
    values = torch.randint(-2, 3, (4, 7, 6), generator=g)
    expected = masking_reference.mask_avg_dist(values != 0, 2)
    as_float = values.double() * 0.25
    as_float[values == 0] = -0.0
    as_half = values.half()
    as_half[values == 1] = float("nan")
    wide = torch.stack([as_half, torch.zeros_like(as_half)], -1)[..., 0]  # stride 2 along w
    for m in (values, values.to(torch.int8), as_float, as_half, values.transpose(1, 2).contiguous().transpose(1, 2),
              wide, as_float[:1].expand(4, -1, -1)):
        want = expected[:1].expand(4) if m.stride(0) == 0 else expected
        torch.testing.assert_close(mk.mask_avg_dist(m, 2, backend="cpp"), want, rtol=1e-6, atol=0, equal_nan=True)


def test_front_doors_refuse_sizes_past_the_kernels_integer_types():
    with pytest.raises(ValueError, match="num_patches must be < 2\\^31"):
        mk.random_mask_indices(1, 2**31, seed=0, backend="cpp")
    with pytest.raises(ValueError, match="< 2\\^30 pixels"):
        mk.mask_avg_dist(torch.ones(1, 1, 2, dtype=torch.bool), 2**30, backend="cpp")


# The family's rows of python_tests/test_native_contract.py's sweeps (thread counts, streams, graphs, devices).
# Odd batches (uneven splits), big enough per sample that two threads overlap in time.
CPP_CALLS = {
    "random_mask_indices": lambda: mk.random_mask_indices(101, 1024, 0.75, seed=5, sample_offset=3, backend="cpp"),
    "simmim_mask": lambda: mk.simmim_mask(101, 256, 8, 8, seed=5, sample_offset=3, backend="cpp"),
    "block_mask": lambda: mk.block_mask(101, seed=5, sample_offset=3, backend="cpp"),
    "mask_avg_dist": lambda: mk.mask_avg_dist(mk.block_mask(101, seed=6, backend="cpp"), 4, backend="cpp"),
}
TORCH_CALLS = {
    "random_mask_indices": lambda: mk.random_mask_indices(101, 1024, 0.75, seed=5, sample_offset=3, backend="torch"),
    "simmim_mask": lambda: mk.simmim_mask(101, 256, 8, 8, seed=5, sample_offset=3, backend="torch"),
}  # the block mask's torch reference is a Python loop: tested against cpp in test_backends.py


def cuda_cases(device):
    """(name, thunk on `device` with the cuda backend, the cpp result). Inputs are copied to `device`
    here, outside the thunks (a graph cannot capture a copy from pageable host memory)."""
    mask = mk.block_mask(64, seed=4, backend="cpp")
    mask_d = mask.to(device)
    return [
        ("mae", lambda: mk.random_mask_indices(64, 196, seed=1, device=device, backend="cuda"),
         mk.random_mask_indices(64, 196, seed=1, backend="cpp")),
        ("simmim", lambda: mk.simmim_mask(64, seed=2, device=device, backend="cuda"),
         mk.simmim_mask(64, seed=2, backend="cpp")),
        ("block", lambda: mk.block_mask(64, seed=3, device=device, backend="cuda"),
         mk.block_mask(64, seed=3, backend="cpp")),
        ("avg_dist", lambda: mk.mask_avg_dist(mask_d, 16, backend="cuda"), mk.mask_avg_dist(mask, 16, backend="cpp")),
    ]


@pytest.mark.gpu
@gpu
def test_gpu_block_mask_exp_agrees_with_the_host():
    """The block mask's one libm call: aspect = exp(log-uniform). CUDA's double exp has up to 1 ulp error,
    glibc's is correctly rounded in nearly all cases; a mask can differ only when √(area·aspect) lies
    within ~1e-15 of a half-integer. Measures how often exp differs on the real draws and checks 2^18 masks."""
    i = torch.arange(2**20, dtype=torch.int64)
    words = rng.draw(7, i % 64, i // 64, rng.STREAM_BLOCK_MASK)
    lo, hi = math.log(0.3), math.log(1 / 0.3)
    log_aspect = lo + (hi - lo) * rng.unit_double(words[2], words[3])  # float64, one rounding per op
    host = torch.tensor([math.exp(x) for x in log_aspect.tolist()], dtype=torch.float64)  # glibc, as the cpp build
    device = log_aspect.cuda().exp().cpu()  # CUDA's exp, as the cuda build
    ulps = (host.view(torch.int64) - device.view(torch.int64)).abs()
    print(f"CUDA exp vs glibc exp on 2^20 draws: {(ulps > 0).double().mean().item():.4%} differ, max {ulps.max()} ulp")
    assert ulps.max() <= 1
    ref = mk.block_mask(2**18, seed=11, backend="cpp")
    assert torch.equal(mk.block_mask(2**18, seed=11, device="cuda", backend="cuda").cpu(), ref)
