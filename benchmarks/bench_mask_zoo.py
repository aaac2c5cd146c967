"""Mask zoo benchmarks (mimkernels/mask_zoo; SPEC.md).

CPU, one thread (torch.set_num_threads(1), which the cpp backend follows): every generator against its
upstream generator restated line for line (benchmarks/upstream_<repo>.py), called as the upstream data
loaders call it (one call per sample or per batch), at B = 256 and at one sample per call. Interleaved
rounds in one process, median and range of the per-round time ratios (bench_masking.cpu_report):
  OMP_NUM_THREADS=1 python -m benchmarks.bench_mask_zoo --rounds 7   # -> benchmarks/results/cpu/mask_zoo.md
pytest-benchmark rows (CPU here, GPU where there is one: one launch for B = 256):
  python -m pytest benchmarks/bench_mask_zoo.py --benchmark-columns=median,ops
"""
import random

import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels.testing import backends_on

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")
B = 256
# case -> function() -> (label, upstream fn, mimkernels fn, masks per call); each section adds its cases
CPU_CASES = {}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- I-JEPA / V-JEPA multi-block ------------------------------------------------------------------

def _ijepa_upstream(**config):
    from benchmarks import upstream_jepa
    return upstream_jepa.IJepaMaskCollator(input_size=(224, 224), patch_size=14, enc_mask_scale=(0.85, 1.0),
                                           pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4,
                                           min_keep=10, draws=upstream_jepa.PythonDraws(0), **config)


def _ijepa_lightly(batch: int):
    """lightly's IJEPAMaskCollator (a copy of ijepa's, torch draws) on `batch` tiny samples."""
    from mimkernels.testing import make_torchvision_importable
    make_torchvision_importable()  # lightly imports torchvision
    from lightly.data.ijepa_collate import IJEPAMaskCollator
    collator = IJEPAMaskCollator(input_size=(224, 224), patch_size=14, enc_mask_scale=(0.85, 1.0),
                                 pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4, min_keep=10)
    samples = [torch.zeros(1) for _ in range(batch)]
    return lambda: collator(samples)


def _vjepa_upstream():
    from benchmarks import upstream_jepa
    collator = upstream_jepa.VJepaMaskCollator(upstream_jepa.VITL16_MASKS, patch_size=16,
                                               draws=upstream_jepa.PythonDraws(0))
    return lambda batch: [generator(batch) for generator in collator.mask_generators]


def _vjepa_ours(batch: int, variant: str = "fixed"):
    from benchmarks import upstream_jepa
    configs = [dict(spatial_scale=c["spatial_scale"], num_blocks=c["num_blocks"]) for c in upstream_jepa.VITL16_MASKS]
    return lambda: [mk.multiblock_mask_3d(batch, seed=k, variant=variant, **c).to_upstream() for k, c in enumerate(configs)]


CPU_CASES["ijepa_b256"] = lambda: (
    "I-JEPA multi-block ViT-H/14 (16x16, 4 targets + context), B = 256, lists (masks_enc, masks_pred)",
    lambda u=_ijepa_upstream(): u.masks(B), lambda: mk.multiblock_mask(B, seed=1).to_upstream(), B)
CPU_CASES["ijepa_b256_official"] = lambda: (
    "I-JEPA multi-block, B = 256, variant='official'",
    lambda u=_ijepa_upstream(): u.masks(B), lambda: mk.multiblock_mask(B, seed=1, variant="official").to_upstream(), B)
CPU_CASES["ijepa_b256_lightly"] = lambda: (
    "I-JEPA multi-block, B = 256, baseline lightly's IJEPAMaskCollator (torch draws, as upstream)",
    _ijepa_lightly(B), lambda: mk.multiblock_mask(B, seed=1).to_upstream(), B)
CPU_CASES["ijepa_b1"] = lambda: (
    "I-JEPA multi-block, one sample per call",
    lambda u=_ijepa_upstream(): u.masks(1), lambda: mk.multiblock_mask(1, seed=1).to_upstream(), 1)
CPU_CASES["vjepa_b256"] = lambda: (
    "V-JEPA ViT-L/16 (8x14x14, its two generators: 8 blocks at 0.15, 2 at 0.7), B = 256",
    lambda u=_vjepa_upstream(): u(B), _vjepa_ours(B), B)
CPU_CASES["vjepa_b1"] = lambda: (
    "V-JEPA ViT-L/16, both generators, one sample per call",
    lambda u=_vjepa_upstream(): u(1), _vjepa_ours(1), 1)


@pytest.mark.parametrize("backend", backends_on("multiblock_mask", "cpu"))
def test_multiblock_mask_b256_cpu(benchmark, one_thread, backend):
    benchmark(lambda: mk.multiblock_mask(B, seed=1, backend=backend))


@pytest.mark.parametrize("backend", backends_on("multiblock_mask_3d", "cpu"))
def test_multiblock_mask_3d_b256_cpu(benchmark, one_thread, backend):
    benchmark(lambda: mk.multiblock_mask_3d(B, seed=1, backend=backend))


@needs_gpu
@pytest.mark.parametrize("op", ["multiblock_mask", "multiblock_mask_3d"])
def test_multiblock_b256_gpu(benchmark, op):
    fn = getattr(mk, op)
    benchmark(lambda: (fn(B, seed=1, device="cuda", backend="cuda"), torch.cuda.synchronize()))



# ---- VideoMAE tube and running cell, UM-MAE ---------------------------------------------------------


# ---- data2vec 2.0 block masks, score-guided masks ---------------------------------------------------


# ---- DINOv2 / DINOv3 collate masks ----------------------------------------------------------------


if __name__ == "__main__":
    import argparse

    from benchmarks.bench_masking import cpu_report
    parser = argparse.ArgumentParser(description="honest CPU numbers of the mask zoo (module docstring)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated case names")
    args = parser.parse_args()
    only = [c for c in args.only.split(",") if c]
    print(cpu_report(args.rounds, cases={name: make() for name, make in CPU_CASES.items() if not only or name in only}))
