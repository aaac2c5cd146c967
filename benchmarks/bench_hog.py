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



@gpu
@pytest.mark.parametrize("provider", ["official"] + backends_on("hog_map", "cuda", exclude=("torch",)))
def test_gpu_hog_map_batch_256(timed, provider):
    """SlowFast's MaskFeat target: the cell map without the window (HOGLayerC), fp32."""
    imgs = _images(256, torch.float32, "cuda")
    fn = ((lambda: reference.hog_map(imgs, 9, 8, 0)) if provider == "official"
          else (lambda: mk.hog_map(imgs, gaussian_window=0, backend=provider)))
    timed(fn, bytes_moved=_bytes(imgs), kernel="hog_map", provider=provider, dtype="torch.float32", batch=256)

# ---- interleaved CPU rounds against the official module (python -m benchmarks.bench_hog) -------------

def official_hog_generator():
    """mmpretrain 1.x's HOGGenerator, the class exactly as its source file defines it (models/selfsup/
    maskfeat.py), executed without importing mmpretrain.models (whose import chain needs a matching
    torchvision): BaseModule is nn.Module and the registry decorator a no-op; nothing else is touched.
    Falls back to None when mmpretrain is not installed."""
    import ast
    import importlib.util
    import math
    import os

    spec = importlib.util.find_spec("mmpretrain")
    if spec is None:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "models", "selfsup", "maskfeat.py")
    tree = ast.parse(open(path).read())
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "HOGGenerator")
    cls.decorator_list = []
    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "math": math,
                 "BaseModule": torch.nn.Module, "Optional": __import__("typing").Optional,
                 "np": __import__("numpy")}
    exec(compile(ast.Module(body=[cls], type_ignores=[]), path, "exec"), namespace)
    return namespace["HOGGenerator"]


def _round(fn, calls: int) -> float:
    import time

    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def cpu_rounds(batch: int, rounds: int = 15, warmup: int = 3) -> dict:
    """One thread; each round times the official module then the cpp backend on the same images (calls
    sized to ~0.2 s per side), and the ratio official / cpp of that round. Median and range over rounds."""
    import statistics

    torch.set_num_threads(1)
    imgs = _images(batch, torch.float32, "cpu")
    generator = official_hog_generator()
    official = generator(nbins=9, pool=8, gaussian_window=16).eval() if generator else None
    fns = {"official": (lambda: official(imgs)) if official else (lambda: reference.hog(imgs)),
           "cpp": lambda: mk.hog(imgs, backend="cpp")}
    with torch.no_grad():
        got, want = fns["cpp"](), fns["official"]()
        assert got.shape == want.shape, (got.shape, want.shape)
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        calls = {name: max(1, int(0.2 / _round(fn, 1))) for name, fn in fns.items()}
        times = {name: [] for name in fns}
        for _ in range(rounds):
            for name, fn in fns.items():
                times[name].append(_round(fn, calls[name]))
    ratios = sorted(o / c for o, c in zip(times["official"], times["cpp"]))
    return {"batch": batch, "official": "mmpretrain HOGGenerator" if official else "reference.hog",
            "ms_official": statistics.median(times["official"]) * 1e3, "ms_cpp": statistics.median(times["cpp"]) * 1e3,
            "ratio_median": statistics.median(ratios), "ratio_min": ratios[0], "ratio_max": ratios[-1],
            "rounds": rounds, "calls": calls}


# Under callgrind the calls of each (provider, batch) run inside their own C function of the interpreter (the
# "wrapper"), and callgrind_annotate's inclusive count of that function is their instructions alone: a function
# nothing else in the process runs (not map_next, which counted 190 M instructions for a call of 25 M).
CALLGRIND_WRAPPERS = {("official", 8): "functools_reduce", ("cpp", 8): "dropwhile_next",
                      ("official", 1): "filter_next", ("cpp", 1): "starmap_next"}


def callgrind_body(calls: int) -> None:
    """The process run under callgrind (see callgrind_instructions): a warm-up call of each, then `calls`
    calls of each (provider, batch) inside its wrapper."""
    import functools

    torch.set_num_threads(1)
    module = official_hog_generator()(nbins=9, pool=8, gaussian_window=16).eval()
    fns = {}
    for batch in (8, 1):
        imgs = _images(batch, torch.float32, "cpu")
        fns[("official", batch)] = functools.partial(module, imgs)
        fns[("cpp", batch)] = functools.partial(mk.hog, imgs, backend="cpp")
    import itertools

    wrappers = {"functools_reduce": lambda fn: functools.reduce(lambda acc, _: fn(), range(calls), None),
                "dropwhile_next": lambda fn: list(itertools.dropwhile(lambda _: fn() is not None, range(calls))),
                "filter_next": lambda fn: list(filter(lambda _: fn() is None, range(calls))),
                "starmap_next": lambda fn: list(itertools.starmap(fn, [()] * calls))}
    with torch.no_grad():
        for fn in fns.values():
            fn()
        for key, wrapper in CALLGRIND_WRAPPERS.items():
            wrappers[wrapper](fns[key])


def callgrind_instructions(calls: int = 1, keep: str | None = None) -> dict:
    """Instructions per call (valgrind --tool=callgrind, Ir) of each (provider, batch), one thread: the
    inclusive count of its wrapper / calls. Imports, images and warm-up calls fall outside the wrappers."""
    import os
    import re
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c",
               f"from benchmarks.bench_hog import callgrind_body; callgrind_body({calls})"]
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                              capture_output=True, text=True, check=True).stdout
        if keep:
            with open(keep, "w") as f:
                f.write(text)
    result = {}
    for key, wrapper in CALLGRIND_WRAPPERS.items():
        # the wrapper's inclusive count (its inlined parts appear under other file names, as subsets)
        counts = [int(m.group(1).replace(",", "")) for m in
                  re.finditer(r"^\s*([\d,]+) .*:" + wrapper + r"(?:'\d+)? ", text, re.M)]
        if not counts:
            raise RuntimeError(f"{wrapper} not in callgrind_annotate's output")
        result[key] = max(counts) / calls
    return result


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="HOG on one CPU thread against mmpretrain's HOGGenerator")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 1])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per call")
    args = parser.parse_args(argv)
    print("| B | official | official ms/call | cpp ms/call | ratio median | ratio range | rounds |"
          + (" Ir official / call | Ir cpp / call | Ir ratio |" if args.callgrind else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|---|" if args.callgrind else ""))
    counts = callgrind_instructions() if args.callgrind else {}
    for batch in args.batch:
        r = cpu_rounds(batch, args.rounds)
        line = (f"| {batch} | {r['official']} | {r['ms_official']:.2f} | {r['ms_cpp']:.3f} | {r['ratio_median']:.1f}× | "
                f"{r['ratio_min']:.1f}–{r['ratio_max']:.1f}× | {r['rounds']} |")
        if ("official", batch) in counts:
            io, ic = counts[("official", batch)], counts[("cpp", batch)]
            line += f" {io / 1e6:.1f} M | {ic / 1e6:.2f} M | {io / ic:.1f}× |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
