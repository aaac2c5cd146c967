"""Mask zoo benchmarks (mimkernels/mask_zoo; SPEC.md).

CPU, one thread (torch.set_num_threads(1), which the cpp backend follows): every generator against its
upstream generator restated line for line (benchmarks/upstream_<repo>.py), called as the upstream data
loaders call it (one call per sample or per batch), at B = 256 and at one sample per call. Interleaved
rounds in one process, median and range of the per-round time ratios (bench_masking.cpu_report):
  OMP_NUM_THREADS=1 python -m benchmarks.bench_mask_zoo --rounds 7   # -> benchmarks/results/cpu/mask_zoo.md
pytest-benchmark rows (CPU here, GPU where there is one: one launch for B = 256):
  python -m pytest benchmarks/bench_mask_zoo.py --benchmark-columns=median,ops
"""
import itertools
import random

import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels.testing import backends_on

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")
B = 256
# A fresh seed for every call of ours (the upstream draws advance too): with one seed a call repeats its
# masks, and the branch predictor learns them (the fixed variant's sorts ran ~30% faster so: measured).
_SEEDS = itertools.count()
# case -> function() -> (label, upstream fn, mimkernels fn, masks per call); each section adds its cases
CPU_CASES = {}


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


def _ijepa_ours(variant: str = "fixed"):
    """Our collator's masks (what its collate_fn calls per batch: MultiBlockMaskCollator.masks)."""
    from mimkernels.mask_zoo.nn import MultiBlockMaskCollator
    collator = MultiBlockMaskCollator(input_size=(224, 224), patch_size=14, enc_mask_scale=(0.85, 1.0),
                                      pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4,
                                      min_keep=10, variant=variant)
    return lambda batch: collator.masks(batch, next(_SEEDS))


def _vjepa_ours(batch: int):
    """Our V-JEPA collator's masks, its two generators (MultiBlock3DMaskCollator.masks)."""
    from benchmarks import upstream_jepa
    from mimkernels.mask_zoo.nn import MultiBlock3DMaskCollator
    collator = MultiBlock3DMaskCollator(upstream_jepa.VITL16_MASKS)
    return lambda: collator.masks(batch, next(_SEEDS))


# The multi-block rows: upstream's collator's masks (its __call__ less the image collate) against ours.
CPU_CASES["ijepa_b256"] = lambda: (
    "I-JEPA multi-block ViT-H/14 (16x16, 4 targets + context), B = 256, lists (masks_enc, masks_pred)",
    lambda u=_ijepa_upstream(): u.masks(B), lambda ours=_ijepa_ours(): ours(B), B)
CPU_CASES["ijepa_b256_official"] = lambda: (
    "I-JEPA multi-block, B = 256, variant='official'",
    lambda u=_ijepa_upstream(): u.masks(B), lambda ours=_ijepa_ours("official"): ours(B), B)
CPU_CASES["ijepa_b256_lightly"] = lambda: (
    "I-JEPA multi-block, B = 256, baseline lightly's IJEPAMaskCollator (torch draws, as upstream)",
    _ijepa_lightly(B), lambda ours=_ijepa_ours(): ours(B), B)
CPU_CASES["ijepa_b1"] = lambda: (
    "I-JEPA multi-block, one sample per call",
    lambda u=_ijepa_upstream(): u.masks(1), lambda ours=_ijepa_ours(): ours(1), 1)
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
# Upstream: one generator call per video / image in the loader (benchmarks/upstream_videomae.py,
# upstream_ummae.py); ours: the front door at B = 256, and per sample the front door (B = 1) and the
# drop-in class (what a loader swapping its import line runs: numpy float64 out, as upstream).
def _video_cases():
    from benchmarks import upstream_ummae, upstream_videomae
    from mimkernels.mask_zoo import nn as zoo_nn

    window = (8, 14, 14)  # VideoMAE: 16 frames, tubelet 2, 224 / 16
    tube = upstream_videomae.TubeMaskingGenerator(window, 0.9, rnd=np.random.RandomState(0))
    cell = upstream_videomae.RunningCellMaskingGenerator(window, 0.5, rnd=np.random.RandomState(0))
    uniform = upstream_ummae.RandomMaskingGenerator(16, 0.75, regular=True, rnd=np.random.RandomState(0))
    tube_drop_in = zoo_nn.TubeMaskingGenerator(window, 0.9, seed=0)
    cell_drop_in = zoo_nn.RunningCellMaskingGenerator(window, 0.5, seed=0)
    uniform_drop_in = zoo_nn.UniformMaskingGenerator(16, 0.75, True, seed=0)
    counter = iter(range(1 << 62))
    return {
        "tube_b256": ("VideoMAE tube 8x14x14 / 0.9, B = 256", lambda: np.stack([tube() for _ in range(B)]),
                      lambda: mk.tube_mask(B, seed=next(counter)), B),
        "tube_b1": ("VideoMAE tube, one video per call", tube, lambda: mk.tube_mask(1, seed=next(counter)), 1),
        "tube_dropin": ("VideoMAE tube, one video per call, drop-in class (float64 numpy)", tube, tube_drop_in, 1),
        "running_cell_b256": ("VideoMAE v2 running cell 8x14x14 / 0.5, B = 256",
                              lambda: np.stack([cell() for _ in range(B)]),
                              lambda: mk.running_cell_mask(B, seed=next(counter)), B),
        "running_cell_b1": ("VideoMAE v2 running cell, one video per call", cell,
                            lambda: mk.running_cell_mask(1, seed=next(counter)), 1),
        "running_cell_dropin": ("VideoMAE v2 running cell, one video per call, drop-in class", cell, cell_drop_in, 1),
        "uniform_b256": ("UM-MAE uniform 16x16 (+ secondary 0.25 in ours), B = 256",
                         lambda: np.stack([uniform() for _ in range(B)]),
                         lambda: mk.uniform_mask(B, seed=next(counter)), B),
        "uniform_b1": ("UM-MAE uniform, one image per call", uniform,
                       lambda: mk.uniform_mask(1, seed=next(counter)), 1),
        "uniform_dropin": ("UM-MAE uniform, one image per call, drop-in class", uniform, uniform_drop_in, 1),
    }


CPU_CASES.update({name: (lambda name=name: _video_cases()[name]) for name in (
    "tube_b256", "tube_b1", "tube_dropin", "running_cell_b256", "running_cell_b1", "running_cell_dropin",
    "uniform_b256", "uniform_b1", "uniform_dropin")})

VIDEO_OPS = {"tube_mask": lambda backend, device=None: mk.tube_mask(B, seed=1, device=device, backend=backend),
             "running_cell_mask": lambda backend, device=None: mk.running_cell_mask(B, seed=1, device=device,
                                                                                    backend=backend),
             "uniform_mask": lambda backend, device=None: mk.uniform_mask(B, seed=1, device=device, backend=backend)}


@pytest.mark.parametrize("op, provider", [(op, p) for op in VIDEO_OPS for p in backends_on(op, "cpu")])
def test_video_masks_cpu(timed, benchmark, one_thread, op, provider):
    timed(lambda: VIDEO_OPS[op](provider), kernel=op, provider=provider, batch=B, threads=1)
    benchmark.extra_info["masks/s"] = B / benchmark.stats.stats.median


@needs_gpu
@pytest.mark.parametrize("op", list(VIDEO_OPS))
def test_video_masks_gpu(timed, benchmark, op):
    timed(lambda: VIDEO_OPS[op]("cuda", "cuda"), kernel=op, provider="cuda", batch=B)
    benchmark.extra_info["masks/s"] = B / benchmark.stats.stats.median


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
# Upstream: the collate's mask part (benchmarks/upstream_dino.py) with the generator train.py builds for
# 224 px / patch 14 (16 x 16 tokens); per call a batch of B masks (B = 2 · samples: one sample per call
# is B = 2, its two global crops).

def _dino_case(version: str, batch: int):
    from benchmarks import upstream_dino
    rnd, np_rng = random.Random(0), np.random.default_rng(0)
    generator = upstream_dino.mask_generator(224, 14, complete=version == "v3", rnd=rnd, np_rng=np_rng)
    collate = upstream_dino.collate_masks_v3 if version == "v3" else upstream_dino.collate_masks_v2
    seeds = iter(range(1 << 62))
    label = f"dino_collate_masks {version}, 16x16, B = {batch}" + (" (one sample: 2 global crops)" if batch == 2 else "")
    return (label, lambda: collate(batch, (0.1, 0.5), 0.5, 256, generator, rnd=rnd),
            lambda: mk.dino_collate_masks(batch, 16, 16, version=version, seed=next(seeds)), batch)


for _version in ("v2", "v3"):
    CPU_CASES[f"dino_{_version}"] = lambda version=_version: _dino_case(version, B)
    CPU_CASES[f"dino_{_version}_one"] = lambda version=_version: _dino_case(version, 2)


@pytest.mark.parametrize("version", ["v2", "v3"])
@pytest.mark.parametrize("provider", ["upstream", *backends_on("dino_collate_masks", "cpu")])
def test_dino_collate_masks_cpu(benchmark, one_thread, version, provider):
    if provider == "upstream":
        _, fn, _, _ = _dino_case(version, B)
    else:
        def fn():
            return mk.dino_collate_masks(B, 16, 16, version=version, seed=0, backend=provider)
    benchmark(fn)


@needs_gpu
@pytest.mark.parametrize("version", ["v2", "v3"])
def test_dino_collate_masks_gpu(benchmark, version):
    def fn():
        out = mk.dino_collate_masks(B, 16, 16, version=version, seed=0, device="cuda", backend="cuda")
        torch.cuda.synchronize()
        return out
    benchmark(fn)


if __name__ == "__main__":
    import argparse

    from benchmarks.bench_masking import cpu_report
    parser = argparse.ArgumentParser(description="honest CPU numbers of the mask zoo (module docstring)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated case names")
    args = parser.parse_args()
    only = [c for c in args.only.split(",") if c]
    print(cpu_report(args.rounds, cases={name: make() for name, make in CPU_CASES.items() if not only or name in only}))
