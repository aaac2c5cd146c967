"""The contract between the Python front doors and the native kernels (csrc/): every pointer handed to C++
is a contiguous tensor of the dtype the kernel reads, whatever the caller passed (strides, storage offset,
stride 0, channels_last, unusual dtypes); the cpp kernels give the same bits on 1 and 2 OpenMP threads
and follow torch.set_num_threads; the CUDA kernels (GPU tests) run on the tensor's device and current
stream, are capturable in a CUDA graph and give the bits of the cpp build."""
import math

import pytest
import torch

import mimkernels as mk
from mimkernels import _native, rng
from mimkernels.masking import reference as masking_reference

pytestmark = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
gpu = pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs a CUDA build + GPU")


def integer_images(shape, seed=0, dtype=torch.float32) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def on_threads(threads: int, fn, *args, **kw):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args, **kw)
    finally:
        torch.set_num_threads(before)


# ---- pointers: contiguous, of the kernel's dtype --------------------------------------------------

def test_ptr_refuses_what_a_kernel_would_misread():
    x = torch.zeros(3, 4)
    assert _native.ptr(x, torch.float32) == x.data_ptr()
    assert _native.ptr(x[1:], torch.float32) == x.data_ptr() + 16  # storage offset included
    with pytest.raises(RuntimeError, match="contiguous torch.float32 tensor, got torch.float32 of shape \\(4, 3\\)"):
        _native.ptr(x.t(), torch.float32)
    with pytest.raises(RuntimeError, match="contiguous torch.int32 tensor, got torch.float32"):
        _native.ptr(x, torch.int32)
    with pytest.raises(RuntimeError, match="contiguous"):
        _native.ptr(x.expand(2, 3, 4), torch.float32)


def strided_views(imgs: torch.Tensor):
    """The same values under other layouts: channels_last, a transposed copy read back, every other
    column of a wider tensor, a storage offset, and a batch broadcast with stride 0."""
    b, c, h, w = imgs.shape
    padded = torch.zeros((b, c, h + 1, w + 2), dtype=imgs.dtype)
    padded[:, :, 1:, 1:w + 1] = imgs
    yield "channels_last", imgs.contiguous(memory_format=torch.channels_last)
    yield "transposed", imgs.transpose(2, 3).contiguous().transpose(2, 3)
    yield "stride 2", torch.stack([imgs, imgs + 1], dim=-1)[..., 0]
    yield "offset", padded[:, :, 1:, 1:w + 1]
    if b == 1:
        yield "stride 0", imgs.expand(3, -1, -1, -1)


def test_native_op_bodies_make_their_inputs_contiguous():
    """The ops themselves (torch.ops.mimkernels.<op>.cpp, reachable without the front door, e.g. from a
    compiled graph) copy a strided input before taking its pointer (HOG's: python_tests/hog/test_native.py)."""
    mask = torch.rand(2, 6, 5, generator=torch.Generator().manual_seed(0)) > 0.5
    expected = torch.ops.mimkernels.mask_avg_dist_native(mask, 4)
    assert torch.equal(torch.ops.mimkernels.mask_avg_dist_native(mask.transpose(1, 2).contiguous().transpose(1, 2), 4),
                       expected)
    assert torch.equal(torch.ops.mimkernels.mask_avg_dist_native(mask[:1].expand(3, -1, -1), 4), expected[:1].expand(3))


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


# ---- bounds the kernels' integer types impose (checked before anything is allocated) -------------

def test_front_doors_refuse_sizes_past_the_kernels_integer_types():
    with pytest.raises(ValueError, match="num_patches must be < 2\\^31"):
        mk.random_mask_indices(1, 2**31, seed=0, backend="cpp")
    with pytest.raises(ValueError, match="< 2\\^30 pixels"):
        mk.mask_avg_dist(torch.ones(1, 1, 2, dtype=torch.bool), 2**30, backend="cpp")


# ---- OpenMP: the same bits on any thread count ------------------------------------------------------

# Odd batches (uneven splits), big enough per sample that two threads overlap in time.
CPP_OPS = {
    "random_mask_indices": lambda: mk.random_mask_indices(101, 1024, 0.75, seed=5, sample_offset=3, backend="cpp"),
    "simmim_mask": lambda: mk.simmim_mask(101, 256, 8, 8, seed=5, sample_offset=3, backend="cpp"),
    "block_mask": lambda: mk.block_mask(101, seed=5, sample_offset=3, backend="cpp"),
    "mask_avg_dist": lambda: mk.mask_avg_dist(mk.block_mask(101, seed=6, backend="cpp"), 4, backend="cpp"),
    "hog": lambda: mk.hog(integer_images((3, 2, 32, 16), seed=7, dtype=torch.uint8), backend="cpp"),
}
TORCH_OPS = {
    "random_mask_indices": lambda: mk.random_mask_indices(101, 1024, 0.75, seed=5, sample_offset=3, backend="torch"),
    "simmim_mask": lambda: mk.simmim_mask(101, 256, 8, 8, seed=5, sample_offset=3, backend="torch"),
}  # the block mask's torch reference is a Python loop: tested against cpp in test_mask_generators.py


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


@pytest.mark.parametrize("op", sorted(CPP_OPS))
def test_cpp_bits_independent_of_thread_count(op):
    """On 1, 2 (three times: a race shows only when threads overlap) and 3 threads: per-thread scratch,
    no shared state."""
    one = as_tuple(on_threads(1, CPP_OPS[op]))
    for threads in (2, 2, 2, 3):
        for a, b in zip(one, as_tuple(on_threads(threads, CPP_OPS[op]))):
            assert torch.equal(a, b), (op, threads)
    if op in TORCH_OPS:
        for a, b in zip(one, as_tuple(TORCH_OPS[op]())):
            assert torch.equal(a, b), op


def test_cpu_threads_follow_torch_capped_by_work():
    assert on_threads(3, lambda: _native.cpu_threads(1000)) == 3
    assert on_threads(1, lambda: _native.cpu_threads(1000)) == 1
    assert on_threads(3, lambda: _native.cpu_threads(2)) == 2   # never more threads than items
    assert on_threads(3, lambda: _native.cpu_threads(0)) == 1


# ---- GPU: device, stream, graphs, cpp == cuda bit for bit (run by benchmarks/run_gpu.sh) -----------

def cuda_cases(device):
    """(name, thunk on `device` with the cuda backend, the cpp result). Inputs are copied to `device`
    here, outside the thunks (a graph cannot capture a copy from pageable host memory)."""
    imgs = torch.randn(3, 3, 48, 80, generator=torch.Generator().manual_seed(9))
    odd = torch.randn(2, 2, 37, 45, generator=torch.Generator().manual_seed(10)).to(torch.bfloat16)
    mask = mk.block_mask(64, seed=4, backend="cpp")
    imgs_d, odd_d, mask_d = imgs.to(device), odd.to(device), mask.to(device)
    return [
        ("mae", lambda: mk.random_mask_indices(64, 196, seed=1, device=device, backend="cuda"),
         mk.random_mask_indices(64, 196, seed=1, backend="cpp")),
        ("simmim", lambda: mk.simmim_mask(64, seed=2, device=device, backend="cuda"),
         mk.simmim_mask(64, seed=2, backend="cpp")),
        ("block", lambda: mk.block_mask(64, seed=3, device=device, backend="cuda"),
         mk.block_mask(64, seed=3, backend="cpp")),
        ("avg_dist", lambda: mk.mask_avg_dist(mask_d, 16, backend="cuda"), mk.mask_avg_dist(mask, 16, backend="cpp")),
        ("hog", lambda: mk.hog(imgs_d, backend="cuda"), mk.hog(imgs, backend="cpp")),
        # pool 1: 49 KiB of shared memory per block (the opt-in path); odd sides: partial tiles, halo at the edges
        ("hog pool 1", lambda: mk.hog_map(imgs_d, pool=1, gaussian_window=0, backend="cuda"),
         mk.hog_map(imgs, pool=1, gaussian_window=0, backend="cpp")),
        ("hog odd", lambda: mk.hog_map(odd_d, pool=5, gaussian_window=0, backend="cuda"),
         mk.hog_map(odd, pool=5, gaussian_window=0, backend="cpp")),
    ]


def assert_same_bits(got, expected, name):
    for a, b in zip(as_tuple(got), as_tuple(expected)):
        assert torch.equal(a.cpu(), b), name


@pytest.mark.gpu
@gpu
def test_gpu_cuda_equals_cpp_bit_for_bit_on_a_side_stream():
    """Shared MK_HD bodies, two compilers: the same bits, fp32 HOG of random (not integer) images included;
    launched on the current (non-default) stream, which the results wait for."""
    stream = torch.cuda.Stream()
    for name, run, expected in cuda_cases(torch.device("cuda")):
        with torch.cuda.stream(stream):
            got = run()
        stream.synchronize()
        assert_same_bits(got, expected, name)


@pytest.mark.gpu
@gpu
def test_gpu_cuda_graph_capture_and_replay():
    """No host sync, no default-stream work, workspaces from the caching allocator: capturable."""
    cases = cuda_cases(torch.device("cuda"))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _, run, _ in cases:
            run()  # warm-up: tables cached, allocator pools primed
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = [run() for _, run, _ in cases]
    for out in outputs:
        for t in as_tuple(out):
            t.zero_()
    graph.replay()
    torch.cuda.synchronize()
    for (name, _, expected), got in zip(cases, outputs):
        assert_same_bits(got, expected, name)


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2 or not _native.cuda_built(), reason="needs two GPUs")
def test_gpu_kernels_run_on_the_tensors_device():
    """Inputs on cuda:1 while cuda:0 is current: launched on cuda:1's stream with cuda:1 current."""
    torch.cuda.set_device(0)
    for name, run, expected in cuda_cases(torch.device("cuda", 1)):
        got = run()
        assert all(t.device == torch.device("cuda", 1) for t in as_tuple(got)), name
        assert_same_bits(got, expected, name)


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
