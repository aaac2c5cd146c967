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

def _data2vec_cases():
    """fairseq's compute_block_mask_2d as data2vec 2.0 calls it (torch, its global generator): per image in
    MaeImageDataset (shape (16, 196): one call per sample) and for a batch in the model ((B·16, 196))."""
    from benchmarks.upstream_data2vec import compute_block_mask_2d
    counter = iter(range(1 << 62))
    config = {"mask_prob": 0.8, "mask_length": 3, "mask_prob_adjust": 0.07, "inverse_mask": True,
              "require_same_masks": True}
    return {
        "data2vec_b256": ("data2vec 2.0 block mask 196, K = 16 clones, B = 256 (4096 masks)",
                          lambda: compute_block_mask_2d((B * 16, 196), **config),
                          lambda: mk.data2vec_block_mask(B, seed=next(counter)), B * 16),
        "data2vec_b1": ("data2vec 2.0 block mask 196, K = 16 clones, one image per call",
                        lambda: compute_block_mask_2d((16, 196), **config),
                        lambda: mk.data2vec_block_mask(1, seed=next(counter)), 16),
    }


def _score_cases():
    """AttMask-hint (show_max 0.1, pred_ratio 0.3) and HPM (epoch 120 of 200) on (B, 196) scores: their code
    restated (benchmarks/upstream_data2vec.py, numpy) against score_mask on the same scores."""
    from benchmarks.upstream_data2vec import TorchLikeRandom, attmask, hpm_generate_mask
    counter = iter(range(1 << 62))
    rnd = TorchLikeRandom(0)
    scores = {b: torch.rand(b, 196, generator=torch.Generator().manual_seed(0)) for b in (B, 1)}
    share = float((120 + 1) / 200) * 0.5
    cases = {}
    for b, tag in ((B, "b256"), (1, "b1")):
        s, a = scores[b], scores[b].numpy().astype(np.float64)
        cases[f"attmask_hint_{tag}"] = (
            f"AttMask-hint 0.3 / show_max 0.1, 196 tokens, B = {b}",
            lambda a=a: attmask(a, 1.0, "attmask_hint", 0.3, 0.1 * 0.3, 0.1, rnd=rnd),
            lambda s=s: mk.score_mask(s, 0.3, hint_pool=0.1, hint_ratio=0.1 * 0.3, seed=next(counter)), b)
        cases[f"hpm_{tag}"] = (
            f"HPM 0.75, hard share {share:.3f}, 196 tokens, B = {b}",
            lambda a=a: hpm_generate_mask(a, 0.75, epoch=120, rnd=rnd),
            lambda s=s: mk.score_mask(s, num_masked=147, score_share=share, seed=next(counter)), b)
    return cases


CPU_CASES.update({name: (lambda name=name: _data2vec_cases()[name]) for name in ("data2vec_b256", "data2vec_b1")})
CPU_CASES.update({name: (lambda name=name: _score_cases()[name])
                  for name in ("attmask_hint_b256", "attmask_hint_b1", "hpm_b256", "hpm_b1")})


@pytest.mark.parametrize("backend", backends_on("data2vec_block_mask", "cpu"))
def test_data2vec_block_mask_cpu(benchmark, one_thread, backend):
    benchmark(mk.data2vec_block_mask, 16, seed=0, backend=backend)


@pytest.mark.parametrize("backend", backends_on("score_mask", "cpu"))
def test_score_mask_cpu(benchmark, one_thread, backend):
    scores = torch.rand(64, 196)
    benchmark(mk.score_mask, scores, 0.75, score_share=0.3, seed=0, backend=backend)


@needs_gpu
def test_data2vec_block_mask_gpu(benchmark):
    benchmark(lambda: (mk.data2vec_block_mask(B, seed=0, device="cuda"), torch.cuda.synchronize()))


@needs_gpu
def test_score_mask_gpu(benchmark):
    scores = torch.rand(B, 196, device="cuda")
    benchmark(lambda: (mk.score_mask(scores, 0.75, score_share=0.3, seed=0), torch.cuda.synchronize()))


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
