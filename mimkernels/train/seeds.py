"""Every random draw of the trainer, named, from the one `--seed`.

A stream is the first key of `rng.derive_seed(seed, stream, *keys)` (one Philox call: counter =
(stream, *keys), key = seed), so each draw has its own numbers and changing one (say, the
augmentation) leaves the others as they were. These are the trainer's numbers: they are *not*
`rng.STREAM_*`, the counter word that each random op uses inside its own draws (a step's masks are
drawn by the ops from the key `STEP` gives them).

| stream           | keys          | draws                                                               |
|------------------|---------------|---------------------------------------------------------------------|
| `EMBEDDED_TRAIN` | ()            | the embedded training images (`data.embedded`)                       |
| `EMBEDDED_TEST`  | ()            | the embedded test images                                             |
| `DATA_ORDER`     | (epoch,)      | the epoch's permutation of the training images, the same on every rank |
| `AUGMENT`        | (epoch, rank) | the rank's crops and flips of the epoch                              |
| `STEP`           | (step,)       | the Philox key of the step's random ops (masks, MFM's filter choice), the same on every rank; rank r numbers its samples from r·B |
| `PICTURES`       | ()            | the key of the masks drawn for pictures.png                          |

Not from a stream: the initial weights (`torch.manual_seed(seed)` on every rank, so all ranks start
alike), the split of an image folder (`torch.Generator().manual_seed(seed)`) and the linear probe's
fixed shuffle (seed 0).

`EMBEDDED_TEST` and `DATA_ORDER` share the number 1, so the test images and epoch 0's permutation
are drawn from generators with the same seed (counter (1, 0)). Harmless (one draws pictures, the
other a permutation of other pictures) and kept: a new number would change every recorded run
(benchmarks/results/cpu/train_probe.md reproduces bit for bit).
"""
from __future__ import annotations

import torch

from mimkernels import rng

EMBEDDED_TRAIN = 0
EMBEDDED_TEST = 1
DATA_ORDER = 1
AUGMENT = 2
STEP = 3
PICTURES = 4


def key(seed: int, stream: int, *keys: int) -> int:
    """The 64-bit Philox key of `stream` at `keys` (what the MIM ops take as `seed=`)."""
    return rng.derive_seed(seed, stream, *keys)


def generator(seed: int, stream: int, *keys: int) -> torch.Generator:
    """A CPU torch.Generator for `stream` at `keys` (torch takes a 63-bit seed: the key >> 1)."""
    return torch.Generator().manual_seed(key(seed, stream, *keys) >> 1)
