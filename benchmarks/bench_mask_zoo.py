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
