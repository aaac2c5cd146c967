"""Drop-ins for the trainers researchers already use (integration.md): one call each.

    from mimkernels.integrations import patch_mae, patch_hf_vitmae, patch_hf_simmim, forward_masked, unpatch

`import mimkernels` never imports this package, and this package imports a host (transformers,
timm, lightly, mmengine) only when a name that needs it is first used.

Importing this package calls `mimkernels.testing.make_torchvision_importable()` (it imports nothing:
torchvision is looked up, not imported): beside a CPU-only torch, torchvision's PyPI wheel (a CUDA
build) fails to import, and with it `transformers.ViTMAEForPreTraining`, timm, lightly and mmpretrain.
The call declares the two operator schemas torchvision then needs, so they import; with a torchvision
that loads, it only loads torchvision's own `_C`, as `import torchvision` would. Import
`mimkernels.integrations` (or call that function) before the first torchvision import; a failed
`from transformers import ...` before it succeeds when repeated after it.
"""
from __future__ import annotations

import importlib

from mimkernels.integrations._patching import is_patched, unpatch
from mimkernels.testing import make_torchvision_importable

TORCHVISION_STATE = make_torchvision_importable()  # what it did: "torchvision absent", "... _C loaded", ...

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
