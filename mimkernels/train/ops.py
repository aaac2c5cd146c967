"""The one table through which the trainer calls MIM ops, so that `--ops` swaps them and nothing else.

`--ops torch` calls every op's front door with `backend="torch"`, the eager reference written step
by step as the official code (`mimkernels/<family>/reference.py`); `--ops mimkernels` calls it with
`backend="auto"`, the fastest kernel that can run on the device (Triton or CUDA on a GPU, the
compiled `cpp` build on a CPU, the reference where an op has no kernel there). Both paths take the
same arguments and validate them the same way, and random ops draw the same Philox masks.
"""
from __future__ import annotations

import functools

import mimkernels

OPS_CHOICES = ("torch", "mimkernels")

# Every MIM op a method may call (`Method.needs`), each a front door `mimkernels.<name>(..., backend=)`.
MIM_OPS = (
    "patchify", "unpatchify", "patch_norm_target", "norm_pix_mse_loss", "masked_mse_loss", "masked_l1_loss",
    "random_mask_indices", "gather_patches", "unshuffle_tokens", "simmim_mask", "block_mask",
    "hog",
    "mfm_corrupt", "lowfreq_target", "frequency_loss",
)


class Ops:
    """`ops.<name>(...)` = `mimkernels.<name>(..., backend=...)` for the `--ops` choice `kind`."""

    def __init__(self, kind: str):
        if kind not in OPS_CHOICES:
            raise ValueError(f"--ops must be one of {OPS_CHOICES}, got {kind!r}")
        self.kind = kind
        self.backend = "torch" if kind == "torch" else "auto"

    def __getattr__(self, name: str):
        if name not in MIM_OPS:
            raise AttributeError(f"{name!r} is not a MIM op of the trainer's table (train/ops.py MIM_OPS)")
        op = functools.partial(getattr(mimkernels, name), backend=self.backend)
        setattr(self, name, op)  # cache: __getattr__ runs once per op
        return op

    def __repr__(self) -> str:
        return f"Ops({self.kind!r}, backend={self.backend!r})"
