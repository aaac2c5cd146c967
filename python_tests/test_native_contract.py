"""The contract between the Python front doors and the native kernels (csrc/): every pointer handed to C++
is a contiguous tensor of the dtype the kernel reads, whatever the caller passed (strides, storage offset,
stride 0, channels_last, unusual dtypes); the cpp kernels give the same bits on 1 and 2 OpenMP threads
and follow torch.set_num_threads; the CUDA kernels (GPU tests) run on the tensor's device and current
stream, are capturable in a CUDA graph and give the bits of the cpp build. The calls come from each
family's python_tests/<family>/test_native.py (`CPP_CALLS`, optional `TORCH_CALLS`, `cuda_cases`)."""
import importlib
import pathlib

import pytest
import torch

from mimkernels import _native

pytestmark = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
gpu = pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs a CUDA build + GPU")


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


# ---- OpenMP: the same bits on any thread count ------------------------------------------------------


def _family_native_tests() -> list:
    root = pathlib.Path(__file__).resolve().parent
    return [importlib.import_module(f"python_tests.{path.parent.name}.test_native")
            for path in sorted(root.glob("*/test_native.py"))]


FAMILIES = _family_native_tests()
CPP_OPS = {name: call for family in FAMILIES for name, call in getattr(family, "CPP_CALLS", {}).items()}
TORCH_OPS = {name: call for family in FAMILIES for name, call in getattr(family, "TORCH_CALLS", {}).items()}


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
    """(name, thunk on `device` with the cuda backend, the cpp result) of every family."""
    return [case for family in FAMILIES if hasattr(family, "cuda_cases") for case in family.cuda_cases(device)]


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
