"""Argument checks of the op front doors, public for integrations and extensions: each raises
TypeError (wrong type) or ValueError (wrong value, shape or device) naming the argument and what was
expected. They read metadata only (never tensor values): free, and safe inside torch.compile."""
from __future__ import annotations

import math
import numbers
from typing import Iterable

import torch

__all__ = ["FLOAT_DTYPES", "check_tensor", "check_real_tensor", "check_same_device", "check_int", "check_float",
           "check_patch_grid", "as_device"]

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
def check_tensor(t, name: str, *, ndim: int | None = None, dtypes: Iterable[torch.dtype] | None = None,
                 what: str = "") -> None:
    """TypeError/ValueError naming `name` when `t` is not a tensor of the expected rank and dtype."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D{' ' + what if what else ''}, got shape {tuple(t.shape)}")
    if dtypes is not None:
        dtypes = tuple(dtypes)
        if t.dtype not in dtypes:
            names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
            raise TypeError(f"{name} must have dtype in ({names}), got {str(t.dtype).replace('torch.', '')}")


def check_real_tensor(t: torch.Tensor, name: str) -> None:
    """TypeError naming `name` when `t` is complex (ops that copy any real dtype take no complex one)."""
    if t.is_complex():
        raise TypeError(f"{name} must have a real dtype, got {str(t.dtype).replace('torch.', '')}")


def check_same_device(**tensors: torch.Tensor) -> torch.device:
    """The common device of `tensors`; ValueError listing every shape and device otherwise."""
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        listing = ", ".join(f"{k}: {tuple(v.shape)} on {v.device}" for k, v in tensors.items())
        raise ValueError(f"tensors must be on one device, got {listing}")
    return next(iter(tensors.values())).device


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """`value` as a Python int (bools refused); ValueError below `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_float(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                strict_minimum: bool = False, finite: bool = False) -> float:
    """`value` (any real number, bools refused) as a Python float; ValueError when it is NaN, infinite
    while `finite`, or outside [minimum, maximum] ((minimum, maximum] when `strict_minimum`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    low_ok = minimum is None or (v > minimum if strict_minimum else v >= minimum)
    if math.isnan(v) or (finite and math.isinf(v)) or not low_ok or (maximum is not None and v > maximum):
        if minimum is not None and maximum is not None:
            expected = f"in {'(' if strict_minimum else '['}{minimum:g}, {maximum:g}]"
        elif minimum is not None:
            expected = f"{'>' if strict_minimum else '>='} {minimum:g}"
        else:
            expected = f"<= {maximum:g}" if maximum is not None else "not NaN"
        raise ValueError(f"{name} must be a {'finite ' if finite else ''}number {expected}, got {value!r}")
    return v


def check_patch_grid(height: int, width: int, patch_size: int, name: str = "imgs") -> tuple[int, int]:
    """(H/p, W/p); ValueError when the patch does not tile the image."""
    check_int(patch_size, "patch_size", minimum=1)
    if height % patch_size or width % patch_size:
        raise ValueError(f"{name}: height {height} and width {width} must be divisible by "
                         f"patch_size {patch_size}")
    return height // patch_size, width // patch_size


def as_device(device) -> torch.device:
    """torch.device from None (CPU), a string, an int (CUDA index) or a device."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, int):
        return torch.device("cuda", device)
    return torch.device(device)
