"""Driver for callgrind: `python -m benchmarks.callgrind_masks CASE PROVIDER CALLS` makes CALLS calls of
one case of benchmarks/bench_masking.py's CPU comparison inside functools.reduce, so that
`valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce` counts exactly the
calls (not the start-up). The upstream providers import no torch."""
import functools
import random
import sys

import numpy as np

case, provider, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
if provider == "upstream" and case != "random_masking":
    from benchmarks.upstream_masks import SimMIMMaskGenerator, UnilmMaskingGenerator
    unilm = UnilmMaskingGenerator(14, 78, 15, rnd=random.Random(0))
    simmim = SimMIMMaskGenerator(192, 32, 4, 0.6, rs=np.random.RandomState(0))
    fn = {"block_b256": lambda: np.stack([unilm() for _ in range(256)]), "block_b1": unilm,
          "simmim_b256": lambda: np.stack([simmim() for _ in range(256)]), "simmim_b1": simmim}[case]
else:
    import torch
    torch.set_num_threads(1)
    from benchmarks.bench_masking import cpu_cases
    _, upstream, ours, _ = cpu_cases()[case]
    fn = upstream if provider == "upstream" else ours
fn()  # first call (lazy initialisation) outside the count
functools.reduce(lambda acc, _: fn(), range(calls), None)
