"""The floors behind the mask zoo's unmet CPU goals (benchmarks/results/cpu/mask_zoo.md, README):

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python -m benchmarks.zoo_floors

Per B = 256 call, one thread, fresh seeds, median of 15 rounds of 20 calls: each `_C` entry alone on
preallocated outputs (no front door, no tensors made; the multi-block entries as the collators call them,
without padding the lists), and copying a V-JEPA generator's cut lists out (`multiblock_cut_lists_cpu`
into tensors made per call, as the collators do).
"""
import itertools
import statistics
import time

import torch

import mimkernels as mk
from mimkernels import _native
from mimkernels import mask_zoo as zoo

B = 256
_SEEDS = itertools.count(1)


def _median_us(fn, rounds: int = 15, calls: int = 20) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def _native_alone(op: str, entry: str, variant: str):
    """`_C.<entry>` for B samples of `op` at its defaults, on outputs allocated once."""
    (mk.multiblock_mask if op == "2d" else mk.multiblock_mask_3d)(B, seed=0, variant=variant)  # caches the setting
    setting = next(v for k, v in zoo._MULTIBLOCK_SETTINGS.items() if k[0] == op and variant in k[1])
    out = zoo._run_cpu(entry, B, setting, 0, 0)  # held by the closure below: `_C` writes into it
    fn = getattr(_native.lib, entry)
    return lambda: fn(*(t.data_ptr() for t in out), B, *setting[2], next(_SEEDS), 0, 0, False, 1)


def _vjepa_cut_lists():
    """The copy a V-JEPA collator makes after `_C`: the batch's cut lists into two fresh (B, K) tensors."""
    mk.multiblock_mask_3d(B, seed=0)  # caches the setting
    setting = next(v for k, v in zoo._MULTIBLOCK_SETTINGS.items() if k[0] == "3d" and "fixed" in k[1])
    blocks, ids, counts = zoo._run_cpu("multiblock_mask_3d_cpu", B, setting, 1, 0)
    keep_pred, keep_enc = _native.lib.multiblock_list_widths_cpu(counts.data_ptr(), B, 2, 1)

    def cut():
        pred, enc = torch.empty(B, keep_pred, dtype=torch.int64), torch.empty(B, keep_enc, dtype=torch.int64)
        _native.lib.multiblock_cut_lists_cpu(ids.data_ptr(), B, 2, ids.shape[2], 1, keep_pred, keep_enc,
                                             pred.data_ptr(), enc.data_ptr())
        return blocks, pred, enc
    return cut


def main() -> None:
    torch.set_num_threads(1)
    rows = {f"{name} {variant}, `_C` alone": _native_alone(op, entry, variant)
            for name, op, entry in (("I-JEPA", "2d", "multiblock_mask_cpu"), ("V-JEPA", "3d", "multiblock_mask_3d_cpu"))
            for variant in ("official", "fixed")}
    scores = torch.rand(B, 196, generator=torch.Generator().manual_seed(0))
    mk.score_mask(scores, num_masked=147, score_share=0.3025, seed=0)  # caches the setting
    setting = next(iter(zoo._SCORE_SETTINGS.values()))
    masks = torch.empty(B, 196, dtype=torch.bool)
    rows["HPM, `_C` alone"] = lambda: _native.lib.score_mask_cpu(masks.data_ptr(), scores.data_ptr(), setting[0], B,
                                                                  *setting[1], next(_SEEDS), 0, 0, 1)
    rows["V-JEPA generator's cut lists copied out (fresh tensors)"] = _vjepa_cut_lists()
    print("| B = 256, one thread | µs per call |\n|---|---|")
    for label, fn in rows.items():
        print(f"| {label} | {_median_us(fn):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
