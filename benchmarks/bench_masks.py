"""Mask generation: masks per second for a batch of B = 256, against the official generators.

CPU (runs on every machine, one thread: torch.set_num_threads(1), which the cpp backend follows):
- block mask, MaskFeat 78/15 and BEiT 75/16 on 14x14: the official unilm/SlowFast Python generator
  (a literal port, mimkernels.testing.OfficialMaskingGenerator, one call per image as in a data
  loader) vs mimkernels cpp and the torch reference;
- SimMIM 192/32/4/0.6: the official numpy generator vs mimkernels cpp and torch;
- AvgDist of 64 block masks at 224 px (patch 16), cpp (the torch reference is ~7x slower: not timed,
  to keep the CI run short).
GPU (skipped without a GPU): one launch for B = 256 of each.
Results: benchmarks/results/cpu/masks.md. Run:
  python -m pytest benchmarks/bench_masks.py --benchmark-columns=median,ops
"""
import random

import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels.testing import OfficialMaskingGenerator, OfficialSimMIMMaskGenerator, backends_on

B = 256
B_AVG_DIST = 64  # AvgDist works on 224x224 pixels per mask: a smaller batch keeps the CI run short
BLOCK = {"maskfeat": dict(num_masking_patches=78, min_num_patches=15),
         "beit": dict(num_masking_patches=75, min_num_patches=16)}
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _masks_per_second(timed, benchmark, fn, kernel, provider, **extra):
    timed(fn, kernel=kernel, provider=provider, batch=B, **extra)
    benchmark.extra_info["masks/s"] = B / benchmark.stats.stats.median


@pytest.mark.parametrize("setting", list(BLOCK))
@pytest.mark.parametrize("provider", ["official"] + backends_on("block_mask", "cpu"))
def test_block_mask_cpu(timed, benchmark, one_thread, setting, provider):
    kw = BLOCK[setting]
    if provider == "official":
        gen = OfficialMaskingGenerator(14, rnd=random.Random(0), **kw)
        fn = lambda: np.stack([gen() for _ in range(B)])  # noqa: E731
    else:
        fn = lambda: mk.block_mask(B, seed=1, backend=provider, **kw)  # noqa: E731
    _masks_per_second(timed, benchmark, fn, "block_mask", provider, setting=setting, threads=1)


@pytest.mark.parametrize("provider", ["official"] + backends_on("simmim_mask", "cpu"))
def test_simmim_mask_cpu(timed, benchmark, one_thread, provider):
    if provider == "official":
        gen = OfficialSimMIMMaskGenerator(192, 32, 4, 0.6, rs=np.random.RandomState(0))
        fn = lambda: np.stack([gen() for _ in range(B)])  # noqa: E731
    else:
        fn = lambda: mk.simmim_mask(B, 192, 32, 4, 0.6, seed=1, backend=provider)  # noqa: E731
    _masks_per_second(timed, benchmark, fn, "simmim_mask", provider, threads=1)


@pytest.mark.parametrize("provider", backends_on("mask_avg_dist", "cpu", exclude=("torch",)))
def test_mask_avg_dist_cpu(timed, benchmark, one_thread, provider):
    masks = mk.block_mask(B_AVG_DIST, seed=1)
    fn = lambda: mk.mask_avg_dist(masks, 16, backend=provider)  # noqa: E731
    timed(fn, kernel="mask_avg_dist", provider=provider, batch=B_AVG_DIST, threads=1)
    benchmark.extra_info["masks/s"] = B_AVG_DIST / benchmark.stats.stats.median


@needs_gpu
@pytest.mark.parametrize("op", ["block_mask", "simmim_mask", "mask_avg_dist"])
def test_masks_gpu(timed, benchmark, op):
    masks = mk.block_mask(B, seed=1, device="cuda")
    fns = {"block_mask": lambda: mk.block_mask(B, seed=1, device="cuda", backend="cuda"),
           "simmim_mask": lambda: mk.simmim_mask(B, seed=1, device="cuda", backend="cuda"),
           "mask_avg_dist": lambda: mk.mask_avg_dist(masks, 16, backend="cuda")}
    _masks_per_second(timed, benchmark, fns[op], op, "cuda")
