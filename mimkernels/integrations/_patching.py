"""Binding mimkernels methods onto existing model instances, Liger-style (integration.md §6).

A patcher binds functions onto one instance (`module.__dict__[name] = MethodType(fn, module)`), so
the class, other instances, parameters, buffers and the state_dict are untouched. The instance
keeps what it had under each name in `_mimkernels_originals`, which `unpatch` puts back; the
top-level model records its flags in `_mimkernels_patched`. Patching twice equals patching once:
a patcher first undoes an earlier patch of the same model.
"""
from __future__ import annotations

import functools
import inspect
import types
from typing import Callable, Iterable

import torch
from torch import nn

import mimkernels as mk

ORIGINALS = "_mimkernels_originals"
PATCHED = "_mimkernels_patched"
_ABSENT = object()  # the name was not in the instance __dict__ (the class method was used)

RNG_MODES = ("torch", "philox")


def bind(module: nn.Module, name: str, fn: Callable) -> None:
    """Bind fn(self, ...) as `module.<name>`, remembering what the instance held before. fn takes the name,
    docstring, signature and annotations of the class's method of that name (functools.wraps), so code
    that inspects `module.<name>` (transformers' tests, its output-recording checks) sees upstream's."""
    upstream = inspect.getattr_static(type(module), name, None)
    if isinstance(upstream, types.FunctionType) and fn is not upstream and not hasattr(fn, "__wrapped__"):
        fn = functools.wraps(upstream)(fn)
    originals = module.__dict__.setdefault(ORIGINALS, {})
    if name not in originals:
        originals[name] = module.__dict__.get(name, _ABSENT)
    module.__dict__[name] = types.MethodType(fn, module)


def bind_name(module: nn.Module, tag: str = "mimkernels") -> None:
    """repr(model) shows `<Class>[mimkernels]` while patched."""
    name = f"{type(module).__name__}[{tag}]"
    bind(module, "_get_name", lambda self: name)


def unpatch(model: nn.Module) -> nn.Module:
    """Restore every method a mimkernels patcher bound on `model` or its submodules; returns model."""
    for module in model.modules():
        originals = module.__dict__.pop(ORIGINALS, None)
        for name, original in (originals or {}).items():
            if original is _ABSENT:
                module.__dict__.pop(name, None)
            else:
                module.__dict__[name] = original
        module.__dict__.pop(PATCHED, None)
    return model


def is_patched(model: nn.Module) -> bool:
    return PATCHED in model.__dict__


def mark_patched(model: nn.Module, **flags) -> None:
    model.__dict__[PATCHED] = dict(flags)


def require(obj, owner: str, names: Iterable[str], why: str) -> None:
    """ValueError naming the first attribute of `names` that `obj` lacks (a fork changed the model)."""
    for name in names:
        if not hasattr(obj, name):
            raise ValueError(f"{owner} has no attribute {name!r}, which {why} needs: this model's structure "
                             "differs from the upstream one")


def original(module: nn.Module, name: str):
    """`module.<name>` as it was before any mimkernels patch."""
    held = module.__dict__.get(ORIGINALS, {}).get(name, None)
    if held is None:
        return getattr(module, name)
    return getattr(type(module), name).__get__(module) if held is _ABSENT else held


def check_signature(module: nn.Module, owner: str, name: str, params: tuple[str, ...]) -> None:
    """ValueError unless the unpatched `module.<name>` takes len(params) positional arguments (or *args)."""
    sig = inspect.signature(original(module, name)).parameters.values()
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in sig)
    if positional != len(params) and not any(p.kind is p.VAR_POSITIONAL for p in sig):
        raise ValueError(f"{owner}.{name} does not take the upstream arguments ({', '.join(params)}); "
                         "this model changed it (turn that flag off, or patch by hand)")


def check_rng(rng: str, generator) -> None:
    if rng not in RNG_MODES:
        raise ValueError(f"rng must be one of {RNG_MODES}, got {rng!r}")
    if generator is not None:
        if rng != "philox":
            raise ValueError("generator= seeds the Philox masks: pass it with rng='philox'")
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise TypeError(f"generator must be a CPU torch.Generator, got {generator!r}")


def patch_size_of(patch_embed, owner: str) -> int:
    """The (square) patch size of a timm-style PatchEmbed: `patch_size` is an int or an (h, w) tuple."""
    size = getattr(patch_embed, "patch_size", None)
    if size is None:
        raise ValueError(f"{owner} has no attribute 'patch_size', which the loss needs")
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise ValueError(f"{owner}.patch_size must be square, got {tuple(size)}")
        size = size[0]
    return int(size)


def masked_tokens(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None, rng: str,
                  generator: torch.Generator | None, backend: str):
    """MAE random masking as the patched hosts call it: x (B, L, D) -> (x_visible, mask, ids_restore), the
    mask (1 = masked) in torch's default dtype, as upstream's `torch.ones([N, L])` (float32 unless changed).

    rng="torch" draws `torch.rand(B, L, device=x.device)` where MAE and HF draw it, so the global RNG
    stream and the masks equal upstream's (ties in the noise aside: ours break by index). Caller
    `noise` (HF's argument) wins over both modes and is moved to x's device, as HF does.
    rng="philox" keys the masks by one seed drawn from `generator` (else torch's default CPU generator).
    That draw is a host integer, so under torch.compile the Philox call runs eagerly (one graph break,
    no recompilation per seed); the masks are those of eager mode.
    """
    if noise is None and rng == "torch":
        noise = torch.rand(x.shape[0], x.shape[1], device=x.device)
    if noise is not None:
        x, mask, ids_restore = mk.random_masking(x, mask_ratio, noise=noise.to(x.device), backend=backend)
    else:
        x, mask, ids_restore = _philox_masking(x, mask_ratio, generator=generator, backend=backend)
    # upstream builds the mask as torch.ones([N, L]): the default dtype (float32 unless changed)
    return x, mask.to(torch.get_default_dtype()), ids_restore


@torch.compiler.disable
def _philox_masking(x, mask_ratio, *, generator, backend):
    return mk.random_masking(x, mask_ratio, generator=generator, backend=backend)
