"""The one table through which the trainer calls MIM ops, so that `--ops` swaps them and nothing else.

`--ops torch` calls every op's front door with `backend="torch"`, the eager reference written step
by step as the official code (`mimkernels/<family>/reference.py`); `--ops mimkernels` calls it with
`backend="auto"`, the fastest kernel that can run on the device (Triton or CUDA on a GPU, the
compiled `cpp` build on a CPU, the reference where an op has no kernel there). Both paths take the
same arguments and validate them the same way, and random ops draw the same Philox masks.

An op family that has not landed in this mimkernels yet makes the methods that need it
unavailable; `python -m mimkernels.train --help` lists them with the ops they miss.
"""
from __future__ import annotations

import functools

import mimkernels

OPS_CHOICES = ("torch", "mimkernels")

# op -> family (for messages): every MIM op a method may call.
FAMILY = {
    "patchify": "pixel", "unpatchify": "pixel", "patch_norm_target": "pixel", "norm_pix_mse_loss": "pixel",
    "masked_mse_loss": "pixel", "masked_l1_loss": "pixel",
    "random_mask_indices": "masking", "gather_patches": "masking", "unshuffle_tokens": "masking",
    "simmim_mask": "masking", "block_mask": "masking",
    "hog": "hog",
    "mfm_corrupt": "frequency", "lowfreq_target": "frequency", "frequency_loss": "frequency",
}


def missing(names) -> list[str]:
    """The ops of `names` that this mimkernels does not export yet."""
    return [name for name in names if not hasattr(mimkernels, name)]


class Ops:
    """`ops.<name>(...)` = `mimkernels.<name>(..., backend=...)` for the `--ops` choice `kind`."""

    def __init__(self, kind: str):
        if kind not in OPS_CHOICES:
            raise ValueError(f"--ops must be one of {OPS_CHOICES}, got {kind!r}")
        self.kind = kind
        self.backend = "torch" if kind == "torch" else "auto"

    def __getattr__(self, name: str):
        if name not in FAMILY:
            raise AttributeError(f"{name!r} is not a MIM op of the trainer's table (train/ops.py)")
        if not hasattr(mimkernels, name):
            raise RuntimeError(f"mimkernels.{name} ({FAMILY[name]} family) is not in this version of mimkernels")
        op = functools.partial(getattr(mimkernels, name), backend=self.backend)
        setattr(self, name, op)  # cache: __getattr__ runs once per op
        return op

    def __repr__(self) -> str:
        return f"Ops({self.kind!r}, backend={self.backend!r})"
