"""HOG (MaskFeat target) benchmarks, 3x224x224, mmpretrain's defaults (9 bins, pool 8, window 16, patch 16).

CPU (runs everywhere; HOG is computed in data-loader workers today): the cpp backend against the
official module (the eager reference: pad, conv, atan2, scatter, unfold, normalize), one thread,
reported as images/s in extra_info. GPU: B=256, fp32 and uint8 input, the official module eager
and under torch.compile against the fused kernels. Bytes: the input read once plus the output
written once (what a fused pass must move).
Results: benchmarks/results/cpu/hog.md (CPU).
"""
import pytest
import torch

import mimkernels as mk
from mimkernels.hog import reference
from mimkernels.testing import backends_on, sample_photos

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")


def _images(batch: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """The two sample photographs, repeated to `batch`: [0, 1] float, or 0..255 uint8."""
    photos = sample_photos(224, torch.uint8 if dtype == torch.uint8 else torch.float32)
    return photos.repeat((batch + 1) // 2, 1, 1, 1)[:batch].to(device=device, dtype=dtype).contiguous()


def _bytes(imgs: torch.Tensor) -> int:
    b, c, h, w = imgs.shape
    return imgs.numel() * imgs.element_size() + b * (h // 8) * (w // 8) * c * 9 * 4


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the cpp backend runs torch.get_num_threads() OpenMP threads
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("provider", ["official"] + backends_on("hog", "cpu", exclude=("torch", "triton")))
def test_cpu_one_thread(timed, benchmark, one_thread, dtype, provider):
    batch = 2  # the two photographs; per-image throughput, small enough for CI
    imgs = _images(batch, dtype, "cpu")
    fn = (lambda: reference.hog(imgs)) if provider == "official" else (lambda: mk.hog(imgs, backend=provider))
    timed(fn, bytes_moved=_bytes(imgs), kernel="hog", provider=provider, dtype=str(dtype), threads=1, batch=batch)
    benchmark.extra_info["images_per_s"] = batch / benchmark.stats.stats.median


@gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("provider", ["official", "compile"] + backends_on("hog", "cuda", exclude=("torch",)))
def test_gpu_batch_256(timed, dtype, provider):
    imgs = _images(256, dtype, "cuda")
    fns = {"official": lambda: reference.hog(imgs), "compile": torch.compile(lambda: reference.hog(imgs))}
    fn = fns.get(provider) or (lambda: mk.hog(imgs, backend=provider))
    timed(fn, bytes_moved=_bytes(imgs), kernel="hog", provider=provider, dtype=str(dtype), batch=256)
