"""Instructions per call of the mask zoo's front doors (callgrind: independent of the machine's load).

    python -m benchmarks.callgrind_zoo [CASE ...]           # the table, every case by default
    python -m benchmarks.callgrind_zoo --run CASE CALLS     # the driver valgrind runs

Each case is one B = 256 call (block_b1: one sample) with a fresh seed (the *_lists cases: the lists the collators
return, MultiBlockMaskCollator.masks / MultiBlock3DMaskCollator.masks); the driver makes CALLS calls inside
functools.reduce, so `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce`
counts exactly those calls. To compare two checkouts, run this with PYTHONPATH set to each.
"""
import functools
import itertools
import re
import subprocess
import sys

import torch

import mimkernels as mk
from mimkernels.mask_zoo.nn import MultiBlock3DMaskCollator, MultiBlockMaskCollator

_SEEDS = itertools.count(1)
_IJEPA = MultiBlockMaskCollator(input_size=(224, 224), patch_size=14, enc_mask_scale=(0.85, 1.0),
                                pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4, min_keep=10)
_VJEPA = MultiBlock3DMaskCollator([dict(spatial_scale=(0.15, 0.15), aspect_ratio=(0.75, 1.5), num_blocks=8),
                                   dict(spatial_scale=(0.7, 0.7), aspect_ratio=(0.75, 1.5), num_blocks=2)])
_SCORES = torch.rand(256, 196, generator=torch.Generator().manual_seed(0))
CASES = {
    "ijepa_fixed": lambda: mk.multiblock_mask(256, seed=next(_SEEDS)),
    "ijepa_official": lambda: mk.multiblock_mask(256, seed=next(_SEEDS), variant="official"),
    "vjepa_fixed": lambda: mk.multiblock_mask_3d(256, seed=next(_SEEDS)),
    "vjepa_official": lambda: mk.multiblock_mask_3d(256, seed=next(_SEEDS), variant="official"),
    "ijepa_lists": lambda: _IJEPA.masks(256, next(_SEEDS)),
    "vjepa_lists": lambda: _VJEPA.masks(256, next(_SEEDS)),
    "hpm": lambda: mk.score_mask(_SCORES, num_masked=147, score_share=0.3025, seed=next(_SEEDS)),
    "attmask_hint": lambda: mk.score_mask(_SCORES, 0.3, hint_pool=0.1, hint_ratio=0.03, seed=next(_SEEDS)),
    "data2vec": lambda: mk.data2vec_block_mask(256, seed=next(_SEEDS)),
    "running_cell": lambda: mk.running_cell_mask(256, seed=next(_SEEDS)),
    "tube": lambda: mk.tube_mask(256, seed=next(_SEEDS)),
    "block_b256": lambda: mk.block_mask(256, seed=next(_SEEDS)),
    "block_b1": lambda: mk.block_mask(1, seed=next(_SEEDS)),
}


def instructions(case: str, calls: int) -> int:
    """Instructions per call of `case` under callgrind (collection on only inside the measured loop)."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
                          "--callgrind-out-file=/dev/null", sys.executable, "-m", "benchmarks.callgrind_zoo", "--run",
                          case, str(calls)], capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1)) // calls


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        torch.set_num_threads(1)
        fn = CASES[sys.argv[2]]
        fn(), fn()  # lazy initialisation and the settings caches outside the count
        functools.reduce(lambda acc, _: fn(), range(int(sys.argv[3])), None)
    else:
        print("| case | instructions per call |\n|---|---|")
        for case in sys.argv[1:] or CASES:
            print(f"| {case} | {instructions(case, 200 if case == 'block_b1' else 3):,} |", flush=True)
