"""Drop-ins for the trainers researchers already use (integration.md): one call each.

    from mimkernels.integrations import patch_mae, patch_hf_vitmae, patch_hf_simmim, forward_masked, unpatch

`import mimkernels` never imports this package, and this package imports a host (transformers,
timm, lightly, mmengine) only when a name that needs it is first used.
"""
from __future__ import annotations

import importlib

from mimkernels.integrations._patching import is_patched, unpatch

# public name -> submodule that defines it (imported on first use)
_LAZY = {
    "patch_mae": "mae",
    "patch_hf_vitmae": "hf",
    "patch_hf_simmim": "hf",
    "hf_simmim_loss": "hf",
    "SimMIMCollator": "hf",
    "forward_masked": "timm",
    "random_token_mask": "lightly",
    "masked_patch_target": "lightly",
    "patch_lightly": "lightly",
    "unpatch_lightly": "lightly",
}

__all__ = ["unpatch", "is_patched", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"mimkernels.integrations.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mimkernels.integrations' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
