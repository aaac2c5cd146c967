"""Masking family benchmarks (mimkernels/masking; SPEC.md).

MAE, GPU (skipped without a GPU), at the canonical batch (B=256, 3x224x224, patch 16, ratio 0.75,
D=768, decoder 512): random_mask_indices, gather_patches, unshuffle_tokens and random_masking
(forward + backward): MAE's eager code, its torch.compile, and each mimkernels backend. Bytes: the
minimum each op must move.

Mask generators: masks per second for a batch of B = 256, against the official generators.
CPU (runs on every machine, one thread: torch.set_num_threads(1), which the cpp backend follows):
- block_mask, MaskFeat 78/15 and BEiT 75/16 on 14x14: the official unilm/SlowFast Python generator
  (the official algorithm restated, mimkernels.testing.OfficialMaskingGenerator, one call per image as in a data
  loader) vs mimkernels cpp and the torch reference;
- simmim_mask 192/32/4/0.6: the official numpy generator vs mimkernels cpp and torch;
- mask_avg_dist of 64 block masks at 224 px (patch 16), cpp (the torch reference is ~7x slower: not timed,
  to keep the CI run short).
GPU: one launch for B = 256 of each.
Results: benchmarks/results/cpu/masking.md. Run:
  python -m pytest benchmarks/bench_masking.py --benchmark-columns=median,ops

The honest CPU comparison (issue 17 item 4), written to benchmarks/results/cpu/masking.md:
  OMP_NUM_THREADS=1 python -m benchmarks.bench_masking --rounds 7 [--callgrind]
Each case times the upstream code (benchmarks/upstream_masks.py: unilm's MaskingGenerator and SimMIM's
MaskGenerator line for line, one call per image as their data loaders; MAE's random_masking as in
models_mae.py) and the mimkernels call in interleaved rounds in one process, one thread, and reports
the median and range of the per-round time ratios; --callgrind adds the instructions per call
counted by `valgrind --tool=callgrind` on benchmarks/callgrind_masks.py (independent of load).
"""
import random

import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels.masking import reference
from benchmarks.upstream_masks import OfficialMaskingGenerator, OfficialSimMIMMaskGenerator
from mimkernels.testing import backends_on

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")


# ---- MAE: random_mask_indices, gather_patches, unshuffle_tokens, random_masking (GPU) ------------

B, L, P, RATIO = 256, 196, 16, 0.75
K = int(L * (1 - RATIO))


def mae_indices(noise):
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(B, L, device=noise.device)
    mask[:, :K] = 0
    return ids_shuffle[:, :K], ids_restore, torch.gather(mask, 1, ids_restore)


@needs_gpu
@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("random_mask_indices", "cuda"))
def test_index_generation(timed, provider):
    noise = torch.rand(B, L, device="cuda")
    fns = {"eager": lambda: mae_indices(noise), "compile": torch.compile(lambda: mae_indices(noise))}
    fn = fns.get(provider) or (lambda: mk.random_mask_indices(B, L, RATIO, seed=1, device="cuda", backend=provider))
    timed(fn, bytes_moved=B * (K + 2 * L) * 8, kernel="random_mask_indices", provider=provider)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("gather_patches", "cuda"))
def test_gather_patches(timed, dtype, provider):
    imgs = torch.randn(B, 3, 224, 224, device="cuda", dtype=dtype)
    ids_keep = torch.rand(B, L, device="cuda").argsort(1)[:, :K]
    fns = {"eager": lambda: reference.gather_patches(imgs, ids_keep, P),
           "compile": torch.compile(lambda: reference.gather_patches(imgs, ids_keep, P))}
    fn = fns.get(provider) or (lambda: mk.gather_patches(imgs, ids_keep, P, backend=provider))
    timed(fn, bytes_moved=2 * B * K * P * P * 3 * imgs.element_size(), kernel="gather_patches",
          provider=provider, dtype=str(dtype))


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("unshuffle_tokens", "cuda"))
def test_unshuffle_tokens(timed, dtype, provider):
    x = torch.randn(B, 1 + K, 512, device="cuda", dtype=dtype)
    ids_restore = torch.rand(B, L, device="cuda").argsort(1).argsort(1)
    token = torch.randn(512, device="cuda", dtype=dtype)
    fns = {"eager": lambda: reference.unshuffle_tokens(x, ids_restore, token),
           "compile": torch.compile(lambda: reference.unshuffle_tokens(x, ids_restore, token))}
    fn = fns.get(provider) or (lambda: mk.unshuffle_tokens(x, ids_restore, token, backend=provider))
    timed(fn, bytes_moved=(x.numel() + B * (1 + L) * 512) * x.element_size(), kernel="unshuffle_tokens",
          provider=provider, dtype=str(dtype))


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("random_masking", "cuda"))
def test_random_masking_forward_backward(timed, dtype, provider):
    """MAE's random_masking of the embedded tokens (B, L, 768) with the same noise, forward + backward."""
    x = torch.randn(B, L, 768, device="cuda", dtype=dtype, requires_grad=True)
    noise = torch.rand(B, L, device="cuda")
    grad = torch.randn(B, K, 768, device="cuda", dtype=dtype)
    fns = {"eager": lambda: reference.random_masking(x, RATIO, noise),
           "compile": torch.compile(lambda: reference.random_masking(x, RATIO, noise))}
    forward = fns.get(provider) or (lambda: mk.random_masking(x, RATIO, noise=noise, backend=provider))

    def step():
        x_visible = forward()[0]
        return torch.autograd.grad(x_visible, x, grad)

    # forward reads and writes K rows; backward writes the L-row gradient and reads the K-row one
    timed(step, bytes_moved=(2 * K + L + K) * B * 768 * x.element_size(), kernel="random_masking_fwd_bwd",
          provider=provider, dtype=str(dtype))


# ---- mask generators: block_mask, simmim_mask, mask_avg_dist (CPU, one thread; GPU) ----------------

B_AVG_DIST = 64  # AvgDist works on 224x224 pixels per mask: a smaller batch keeps the CI run short
BLOCK = {"maskfeat": dict(num_masking_patches=78, min_num_patches=15),
         "beit": dict(num_masking_patches=75, min_num_patches=16)}


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


# ---- the honest CPU comparison: interleaved rounds, per-round ratios, callgrind -------------------

def cpu_cases():
    """case -> (label, upstream fn, mimkernels fn, masks per call). Seeds advance per call, as in a loader."""
    from benchmarks.upstream_masks import SimMIMMaskGenerator, UnilmMaskingGenerator

    unilm = UnilmMaskingGenerator(14, 78, 15, rnd=random.Random(0))
    simmim = SimMIMMaskGenerator(192, 32, 4, 0.6, rs=np.random.RandomState(0))
    counter = iter(range(1 << 62))
    x = torch.randn(64, 196, 768)

    def mae_eager():
        noise = torch.rand(64, 196)
        return _mae_random_masking(x, RATIO, noise)

    return {
        "block_b256": ("block mask MaskFeat 78/15, 14x14, B = 256", lambda: np.stack([unilm() for _ in range(256)]),
                       lambda: mk.block_mask(256, seed=next(counter)), 256),
        "block_b1": ("block mask MaskFeat 78/15, one sample per call", unilm,
                     lambda: mk.block_mask(1, seed=next(counter)), 1),
        "simmim_b256": ("SimMIM 192/32/4/0.6, B = 256", lambda: np.stack([simmim() for _ in range(256)]),
                        lambda: mk.simmim_mask(256, seed=next(counter)), 256),
        "simmim_b1": ("SimMIM 192/32/4/0.6, one sample per call", simmim,
                      lambda: mk.simmim_mask(1, seed=next(counter)), 1),
        "random_masking": ("MAE random_masking, x (64, 196, 768) fp32", mae_eager,
                           lambda: mk.random_masking(x, RATIO, seed=next(counter)), 64),
    }


def _mae_random_masking(x, mask_ratio, noise):
    """facebookresearch/mae models_mae.py MaskedAutoencoderViT.random_masking, noise passed in."""
    N, L, D = x.shape  # noqa: N806
    len_keep = int(L * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
    mask = torch.ones([N, L], device=x.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return x_masked, mask, ids_restore


def _time_per_call(fn, budget_s: float = 0.25) -> float:
    import time
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s and calls >= 3:
            return elapsed / calls


def callgrind_instructions(case: str, provider: str, calls: int) -> float:
    """Instructions per call of one case (benchmarks/callgrind_masks.py under callgrind, collection on
    only inside the measured loop)."""
    import re
    import subprocess
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                              "--toggle-collect=functools_reduce", f"--callgrind-out-file={tmp}/cg.out",
                              sys.executable, "-m", "benchmarks.callgrind_masks", case, provider, str(calls)],
                             capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1).replace(",", "")) / calls


def cpu_report(rounds: int = 7, callgrind: bool = False, cases: dict | None = None) -> str:
    """The markdown table of `cases` (default: this file's cpu_cases(); the mask zoo passes its own,
    without callgrind: benchmarks/callgrind_masks.py knows this file's cases only)."""
    import platform
    import statistics
    torch.set_num_threads(1)
    cases = cpu_cases() if cases is None else cases
    rows = []
    for case, (label, upstream, ours, masks) in cases.items():
        ratios, t_up, t_ours = [], [], []
        for _ in range(rounds):  # interleaved: upstream, then ours, in every round
            a = _time_per_call(upstream)
            b = _time_per_call(ours)
            t_up.append(a)
            t_ours.append(b)
            ratios.append(a / b)
        row = dict(case=case, label=label, up=statistics.median(t_up), ours=statistics.median(t_ours),
                   ratio=statistics.median(ratios), lo=min(ratios), hi=max(ratios), masks=masks)
        if callgrind:
            n = 3 if masks > 1 else 200
            row["ir_up"] = callgrind_instructions(case, "upstream", n)
            row["ir_ours"] = callgrind_instructions(case, "mimkernels", n)
        rows.append(row)
        print(row, flush=True)
    lines = ["| case | upstream per call | mimkernels per call | time ratio, median (range) over rounds |"
             + (" instructions per call, upstream / mimkernels (ratio) |" if callgrind else ""),
             "|---|---|---|---|" + ("---|" if callgrind else "")]
    for r in rows:
        line = (f"| {r['label']} | {r['up'] * 1e6:,.1f} µs | {r['ours'] * 1e6:,.2f} µs | "
                f"**{r['ratio']:.1f}×** ({r['lo']:.1f}–{r['hi']:.1f}) |")
        if callgrind:
            line += f" {r['ir_up']:,.0f} / {r['ir_ours']:,.0f} (**{r['ir_up'] / r['ir_ours']:.1f}×**) |"
        lines.append(line)
    head = (f"{rounds} interleaved rounds in one process, one thread (torch.set_num_threads(1)), "
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, numpy {np.__version__}.")
    return head + "\n\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="honest CPU numbers of the mask generators (module docstring)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    print(cpu_report(args.rounds, args.callgrind))
