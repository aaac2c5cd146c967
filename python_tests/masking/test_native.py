"""The native backends (cpp / cuda, csrc/masking): random_mask_indices bit-identical to the torch
reference, and the contract between the front doors and the kernels: every pointer handed to C++ is
a contiguous tensor of the dtype the kernel reads, sizes past the kernels' integer types are refused,
the cpp kernels give the same bits on any number of OpenMP threads, and the CUDA kernels (GPU tests)
run on the tensor's device and current stream, are capturable in a CUDA graph and give the bits of
the cpp build."""
import math
import os

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
    torch.library.opcheck(op, (6, 49, 12, -1, None, 3, torch.device("cpu")))
    torch.library.opcheck(op, (2, 7, 0, 2**63 - 1, None, 0, torch.device("cpu")))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs CUDA and a CUDA build")
@pytest.mark.parametrize("batch,length", [(4_096, 49), (512, 196), (16, 1), (16, 7), (8, 257), (2, 16_384)])
def test_cuda_equals_torch(batch, length):
    for seed in (0, 12345, 2**64 - 1):
        ref = random_mask_indices(batch, length, 0.75, seed=seed, sample_offset=3, device="cuda", backend="torch")
        got = torch.ops.mimkernels.random_mask_indices.cuda(
            batch, length, ref[0].shape[1], rng.seed_to_i64(seed), None, 3, torch.device("cuda"))
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


# ---- the C++ bodies bound the caller's counts and sizes (issue 20) --------------------------------
# The op bodies are called here through _C directly, past the front door's validation, on a buffer with
# guard bytes before and after the masks: a write outside the masks would change a guard.

_GUARD = 64


def _guarded(nbytes):
    buf = torch.full((nbytes + 2 * _GUARD,), 0xAB, dtype=torch.uint8)
    return buf, buf.data_ptr() + _GUARD


def _check_guards(buf, nbytes):
    assert (buf[:_GUARD] == 0xAB).all() and (buf[_GUARD + nbytes:] == 0xAB).all(), "a write outside the masks"
    body = buf[_GUARD:_GUARD + nbytes]
    assert ((body == 0) | (body == 1)).all()
    return body


LN = math.log(0.3)
BLOCK_LIMITS = [  # height, width, num_masking_patches, min_num_patches, max_num_patches, log lo, log hi, mmpretrain
    (14, 14, 196, 15, 196, LN, -LN, False),          # every cell
    (14, 14, 10**6, 15, 10**6, LN, -LN, False),      # past the grid
    (14, 14, 2**62, 1, 2**62, LN, -LN, False),       # areas far past the grid
    (14, 14, 78, 0, 78, LN, -LN, False),             # blocks of area 0 and 1
    (14, 14, 78, 100, 78, LN, -LN, False),           # min above the cap
    (14, 14, 78, 15, 0, LN, -LN, False),             # cap 0
    (14, 14, 78, 15, -5, LN, -LN, False),            # negative cap
    (14, 14, -3, 15, 78, LN, -LN, False),            # nothing asked
    (1, 1, 5, 1, 5, LN, -LN, False),                 # a side of 1 holds no block
    (1, 40, 20, 1, 20, LN, -LN, False),
    (40, 2, 20, 1, 20, LN, -LN, False),
    (14, 14, 78, 15, 78, -math.inf, math.inf, False),  # NaN aspect
    (14, 14, 78, 15, 78, 0.0, 700.0, False),          # aspects up to e^700
    (14, 14, 78, 15, 78, math.nan, math.nan, False),
    (6, 6, 36, 1, 36, LN, -LN, True),                # mmpretrain past (H - 1)(W - 1): stops after 2^16 blocks
    (6, 6, 25, 1, 25, LN, -LN, True),                # mmpretrain at its limit
    (3, 5, 2**40, -2**40, 2**40, LN, -LN, True),
]


@pytest.mark.parametrize("case", BLOCK_LIMITS)
def test_block_mask_body_stays_inside_the_mask_at_and_past_the_limits(case):
    height, width, num, lo_count, hi_count, lo, hi, mmpretrain = case
    batch = 3
    nbytes = batch * height * width
    for threads in (1, 2):
        buf, ptr = _guarded(nbytes)
        _native.lib.block_mask_cpu(ptr, batch, height, width, num, lo_count, hi_count, lo, hi, mmpretrain, 7, 0, 5,
                                   threads)
        counts = _check_guards(buf, nbytes).reshape(batch, -1).sum(1)
        if not mmpretrain:
            assert (counts <= max(num, 0)).all()
        if num <= 0 or hi_count <= 0 or min(height, width) == 1:
            assert (counts == 0).all()


@pytest.mark.parametrize("count", [-5, 0, 1, 35, 36, 37, 1000, 2**62])
def test_simmim_body_bounds_the_masked_count(count):
    """mask_count past the grid masks every cell, a negative one none: never a read past the keys."""
    batch, rand_size, scale = 3, 6, 4
    nbytes = batch * (rand_size * scale) ** 2
    buf, ptr = _guarded(nbytes)
    _native.lib.simmim_mask_cpu(ptr, batch, rand_size, scale, count, 11, 0, 0, 2)
    cells = _check_guards(buf, nbytes).reshape(batch, rand_size, scale, rand_size, scale)[:, :, 0, :, 0]
    assert (cells.reshape(batch, -1).sum(1) == min(max(count, 0), rand_size ** 2)).all()
    if 0 < count < rand_size ** 2:
        ref = torch.ops.mimkernels.simmim_mask.cpp(batch, rand_size, scale, count, 11, None, 0, torch.device("cpu"))
        assert torch.equal(cells.bool(), ref[:, ::scale, ::scale])


def test_cpp_build_runs_the_warp_body():
    """The cpp build runs the block mask's team body (block_mask_sample_team with one lane), the GPU the
    same body with a warp: cpp == torch (test_backends.py) checks the body the GPU runs, and the masks
    do not depend on the batch split or the thread count."""
    whole = mk.block_mask(37, 9, 11, 40, 4, seed=3, backend="cpp")
    assert torch.equal(whole, mk.block_mask(37, 9, 11, 40, 4, seed=3, backend="torch"))
    for threads in (1, 3):
        out = torch.empty(37, 9, 11, dtype=torch.bool)
        _native.lib.block_mask_cpu(out.data_ptr(), 37, 9, 11, 40, 4, 40, LN, -LN, False, 3, 0, 0, threads)
        assert torch.equal(out, whole)


def test_warp_kernel_bodies_emulated_on_32_threads_equal_the_cpp_build(tmp_path):
    """The body the GPU's warp kernels run (StridedTeam of block_mask.h: the lane split, every lane's draws,
    the team's write ordering; the SimMIM rank path), on 32 host threads with a barrier where the GPU has
    shuffles and __syncwarp: the masks equal the cpp build's (python_tests/masking/warp_emulation.cpp)."""
    import shutil
    import subprocess
    from pathlib import Path

    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    root = Path(__file__).resolve().parents[2]
    if not (root / "csrc" / "include").is_dir():  # a copy of the tests without the sources (the ASan run)
        pytest.skip("csrc/include not beside the tests")
    exe = tmp_path / "warp_emulation"
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # not the sanitizer run's runtime
    subprocess.run([cxx, "-std=c++20", "-O1", "-pthread", "-ffp-contract=off", "-I", str(root / "csrc" / "include"),
                    str(Path(__file__).with_name("warp_emulation.cpp")), "-o", str(exe)], check=True, timeout=300,
                   env=plain)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, env=plain)
    assert done.returncode == 0 and "differs" not in done.stdout, done.stdout
    assert done.stdout.count(": ok") == 12, done.stdout


@pytest.mark.gpu
@gpu
def test_gpu_mask_generators_both_paths_equal_cpp():
    """The warp kernels on shared memory (the canonical grids) and on global memory (a block mask of
    > 24 K cells, a SimMIM grid of > 2048 cells: the cpp build's sort by lane 0), and counts past the
    limits through the op bodies."""
    cases = [dict(height=14, width=14), dict(height=200, width=160, num_masking_patches=9000,
                                              max_num_patches=2000, min_num_patches=16),
             dict(height=14, width=14, num_masking_patches=150, variant="mmpretrain")]
    for kw in cases:
        ref = mk.block_mask(130, seed=2**64 - 1, sample_offset=5, backend="cpp", **kw)
        assert torch.equal(mk.block_mask(130, seed=2**64 - 1, sample_offset=5, device="cuda", backend="cuda",
                                         **kw).cpu(), ref)
    for args in ((192, 32, 4, 0.6), (224, 32, 16, 0.6), (480, 8, 8, 0.75), (96, 2, 2, 0.5)):  # 2304 cells
        ref = mk.simmim_mask(65, *args, seed=9, sample_offset=2, backend="cpp")
        assert torch.equal(mk.simmim_mask(65, *args, seed=9, sample_offset=2, device="cuda", backend="cuda").cpu(),
                           ref)
    cuda = torch.device("cuda")
    for count in (-5, 0, 36, 37, 2**62):
        want = torch.ops.mimkernels.simmim_mask.cpp(5, 6, 4, count, 3, None, 0, torch.device("cpu"))
        assert torch.equal(torch.ops.mimkernels.simmim_mask.cuda(5, 6, 4, count, 3, None, 0, cuda).cpu(), want)
    for case in BLOCK_LIMITS:
        args = (3, *case[:8], 7, None, 5)
        want = torch.ops.mimkernels.block_mask.cpp(*args, torch.device("cpu"))
        assert torch.equal(torch.ops.mimkernels.block_mask.cuda(*args, cuda).cpu(), want)
