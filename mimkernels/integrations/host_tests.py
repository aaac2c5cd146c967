"""pytest plugin: run the hosts' own test files against the mimkernels drop-ins.

    python -m pytest -p mimkernels.integrations.host_tests <transformers checkout>/tests/models/vit_mae ...

Loaded before the test files are collected, it patches every instance the hosts' tests build, for
each host that is installed:
- transformers: every `ViTMAEForPreTraining` (`patch_hf_vitmae(decoder=True)`), `ViTMAEModel`
  (masking) and `ViTForMaskedImageModeling` (`patch_hf_simmim`) is patched at the end of its
  `__init__` (so `from_pretrained`, `_from_config` and copies are patched too);
- lightly: `patch_lightly()` (lightly.models.utils' `random_token_mask` and `patchify`);
- mmpretrain: `register_as_defaults()` (configs build the MIMK classes) and the upstream names bound
  in the `mmpretrain.*` modules (`from mmpretrain.models import MAEViT`) rebound to the MIMK classes,
  which `register_as_defaults()` alone does not do — except in a module that defines a subclass of the
  upstream class (`super(MAEViT, self)` in mmpretrain's MILANViT must keep naming upstream's MAEViT).
The official MAE repository ships no tests. `patch_every_instance()` does the same outside pytest and
returns what it patched; `MIMKERNELS_HOST_TESTS_RNG=philox` patches with rng="philox" instead of
"torch" (the tests that compare masks with upstream's for a seed expect "torch").
"""
from __future__ import annotations

import functools
import importlib.util
import os
import sys

__all__ = ["patch_every_instance", "pytest_configure", "pytest_report_header"]

_DONE: list[str] = []


def _patch_after_init(cls, patcher) -> None:
    init = cls.__init__
    if getattr(init, "_mimkernels_patches", False):
        return

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self) is cls:           # subclasses (other models) keep their own methods
            patcher(self)

    __init__._mimkernels_patches = True
    cls.__init__ = __init__


def _defines_subclass(module, cls) -> bool:
    """True when `module` defines a subclass of `cls`: its methods may call `super(<cls name>, self)`, which
    must keep naming the upstream class (mmpretrain's MILANViT does so with MAEViT)."""
    return any(isinstance(obj, type) and obj is not cls and issubclass(obj, cls) and obj.__module__ == module.__name__
               for obj in vars(module).values())


def patch_every_instance() -> list[str]:
    """Patch every instance of the hosts' classes built from now on (module docstring); returns what was done."""
    if _DONE:
        return _DONE
    rng = os.environ.get("MIMKERNELS_HOST_TESTS_RNG", "torch")
    import mimkernels.integrations  # noqa: F401  (makes torchvision importable first)

    if importlib.util.find_spec("transformers") is not None:
        from transformers import ViTForMaskedImageModeling, ViTMAEForPreTraining, ViTMAEModel

        from mimkernels.integrations.hf import patch_hf_simmim, patch_hf_vitmae

        _patch_after_init(ViTMAEForPreTraining, lambda m: patch_hf_vitmae(m, decoder=True, rng=rng))
        _patch_after_init(ViTMAEModel, lambda m: patch_hf_vitmae(m, rng=rng))
        _patch_after_init(ViTForMaskedImageModeling, patch_hf_simmim)
        _DONE.append("transformers: ViTMAEForPreTraining, ViTMAEModel, ViTForMaskedImageModeling")
    if importlib.util.find_spec("lightly") is not None:
        from mimkernels.integrations.lightly import patch_lightly

        patch_lightly()
        _DONE.append("lightly: models.utils.random_token_mask, patchify")
    if importlib.util.find_spec("mmpretrain") is not None:
        from mimkernels.integrations import mmpretrain as mkm

        mkm.register_as_defaults()
        rebound = 0
        for name, (_, upstream, ours) in mkm._REPLACES.items():
            for module_name, module in list(sys.modules.items()):
                if (module_name.startswith("mmpretrain") and getattr(module, name, None) is upstream
                        and not _defines_subclass(module, upstream)):
                    setattr(module, name, ours)
                    rebound += 1
        _DONE.append(f"mmpretrain: register_as_defaults() and {rebound} module attributes rebound")
    return _DONE


def pytest_configure(config) -> None:
    patch_every_instance()


def pytest_report_header(config) -> str:
    return "mimkernels host tests: " + ("; ".join(_DONE) or "no host installed")
