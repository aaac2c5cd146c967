"""The front doors' contract, driven by the family's table (examples.py): every op has a valid call,
which runs on every backend and agrees with torch; bad arguments raise TypeError (wrong type) or
ValueError (wrong value, shape or device) naming the argument, before any kernel runs (BAD_CALLS
and the cases below); `backend` is keyword-only; freq_mask's values are checked only under
MIMKERNELS_DEBUG=1."""
import inspect

import pytest
import torch

import mimkernels as mk
from mimkernels import frequency
from mimkernels.frequency import IMAGENET_MEAN, examples
from mimkernels.testing import backends_on

CPU = torch.device("cpu")


def _call(op: str, **override):
    """The op's valid call (examples.valid_calls on the CPU) with `override` replacing arguments."""
    args, kwargs = examples.valid_calls(CPU)[op]
    fn = getattr(frequency, op)
    bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    if "generator" in override:
        bound.arguments.pop("seed", None)  # seed/generator exclude each other
    bound.arguments.update(override)
    return fn(*bound.args, **bound.kwargs)


def _same(got, expected) -> bool:
    """Outputs equal: integer and bool ones exactly, floating ones to fp32 rounding."""
    if isinstance(expected, tuple):
        return len(got) == len(expected) and all(_same(g, e) for g, e in zip(got, expected))
    if expected.is_floating_point():
        return got.shape == expected.shape and torch.allclose(got.float(), expected.float(), rtol=1e-4, atol=1e-5,
                                                              equal_nan=True)
    return torch.equal(got, expected)


def test_the_table_covers_every_op_of_the_family():
    ops = {name for name in frequency.__all__ if inspect.isfunction(getattr(frequency, name))}
    assert ops == set(examples.OPS) == set(examples.valid_calls(CPU))
    assert {op for op, *_ in examples.BAD_CALLS} == ops
    assert ops <= set(mk.__all__)


@pytest.mark.parametrize("op,backend", [(op, b) for op in examples.OPS for b in backends_on(op)])
def test_valid_call_runs_on_every_backend(op, backend):
    assert _same(_call(op, backend=backend), _call(op, backend="torch"))


@pytest.mark.parametrize("op,arg,value,exc", examples.BAD_CALLS,
                         ids=[f"{op}-{arg}-{i}" for i, (op, arg, *_) in enumerate(examples.BAD_CALLS)])
def test_bad_argument_names_it(op, arg, value, exc):
    with pytest.raises(exc) as info:
        _call(op, **{arg: value})
    assert arg in str(info.value), f"{op}({arg}={value!r}) raised {info.value!r}: the message must name {arg!r}"


@pytest.mark.parametrize("op", examples.OPS)
def test_backend_is_keyword_only(op):
    parameter = inspect.signature(getattr(frequency, op)).parameters["backend"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default == "auto"


def test_bad_arguments():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="radius"):
        mk.circular_filter(x, -1, False)
    with pytest.raises(TypeError, match="radius"):
        mk.frequency_mask(8, 8, float("nan"))
    with pytest.raises(ValueError, match="imgs"):
        mk.circular_filter(x[0], 2, False)
    with pytest.raises(TypeError, match="imgs"):
        mk.circular_filter((x * 255).to(torch.uint8), 2, False)
    with pytest.raises(TypeError, match="imgs"):
        mk.lowfreq_target(torch.zeros(2, 3, 8, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="mean"):
        mk.circular_filter(x, 2, False, mean=(0.5, 0.5), std=(0.2, 0.2))
    with pytest.raises(ValueError, match="std"):
        mk.lowfreq_target(x, 2, std=(0.2,) * 4)
    with pytest.raises(ValueError, match="both mean and std"):
        mk.mfm_corrupt(x, 2, mean=IMAGENET_MEAN, std=None)
    with pytest.raises(ValueError, match="high_pass"):
        mk.circular_filter(x, 2, torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="high_pass"):
        mk.circular_filter(x, 2, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="low_pass_prob"):
        mk.mfm_corrupt(x, 2, 1.5)
    with pytest.raises(ValueError, match="outer_radius"):
        mk.circular_filter(x, 4, False, outer_radius=2)
    with pytest.raises(ValueError, match="clamp"):
        mk.circular_filter(x, 4, False, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="freq_mask"):
        mk.frequency_loss(x, x, torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="freq_mask"):
        mk.frequency_loss(x, x, torch.ones(8, 7))
    with pytest.raises(ValueError, match="same shape"):
        mk.frequency_loss(x, x[:1], None)
    with pytest.raises(ValueError, match="gamma"):
        mk.frequency_loss(x, x, None, gamma=0)
    with pytest.raises(ValueError, match="center"):
        mk.frequency_mask(8, 8, 2, center="middle")
    with pytest.raises(ValueError, match="backend"):
        mk.frequency_loss(x, x, None, backend="triton")
    with pytest.raises(TypeError, match="mean"):
        mk.circular_filter(x, 2, False, mean=torch.zeros(3), std=(1.0,) * 3)

def test_debug_check_of_mask_values(monkeypatch):
    x = torch.rand(2, 3, 8, 8)
    bad = torch.full((8, 8), 0.5)
    assert torch.isfinite(mk.frequency_loss(x, x + 1, bad))  # unchecked by default: no host sync
    monkeypatch.setenv("MIMKERNELS_DEBUG", "1")
    with pytest.raises(ValueError, match="freq_mask"):
        mk.frequency_loss(x, x, bad)
