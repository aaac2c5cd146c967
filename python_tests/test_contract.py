"""The public contract of every exported op, driven by each family's table of calls
(`mimkernels/<family>/examples.py`, also what `python -m mimkernels.info` runs): bad arguments raise
TypeError (wrong type) or ValueError (wrong value, shape or device) whose message names the argument,
before any kernel runs; every op is in the torch.library catalogue, listed and sanity-run by info."""
import inspect

import pytest
import torch

import mimkernels
from mimkernels import _backends
from mimkernels.info import family_examples, public_ops

OPS = public_ops()
VALID = {op: family_examples(op).valid_calls(torch.device("cpu"))[op] for op in OPS}
# (op, argument, bad value, expected exception). The argument is named in the message.
BAD = [*[(op, "backend", "cuda-ish", ValueError) for op in OPS],
       *(row for module in {family_examples(op) for op in OPS} for row in module.BAD_CALLS)]


def _call(op: str, **override):
    args, kwargs = VALID[op]
    fn = getattr(mimkernels, op)
    bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    if "generator" in override or "noise" in override:
        bound.arguments.pop("seed", None)  # seed/generator/noise exclude each other
    bound.arguments.update(override)
    return fn(*bound.args, **bound.kwargs)


def test_every_exported_op_has_valid_and_bad_calls():
    assert set(VALID) == set(OPS)
    assert {op for op, argument, *_ in BAD if argument != "backend"} == set(OPS)


@pytest.mark.parametrize("op", OPS)
def test_every_op_is_in_the_catalogue_under_its_public_name(op):
    """torch.ops.mimkernels.<op> exists, with an overload per backend the front door can take."""
    packet = getattr(torch.ops.mimkernels, op)
    assert set(_backends.implemented(op)) - {"torch"} <= set(packet.overloads())


@pytest.mark.parametrize("op", sorted(VALID))
def test_valid_call_runs(op):
    _call(op)


@pytest.mark.parametrize("op,arg,value,exc", BAD, ids=[f"{op}-{arg}-{i}" for i, (op, arg, *_) in enumerate(BAD)])
def test_bad_argument_names_it(op, arg, value, exc):
    with pytest.raises(exc) as info:
        _call(op, **{arg: value})
    assert arg in str(info.value), f"{op}({arg}={value!r}) raised {info.value!r}: the message must name {arg!r}"


@pytest.mark.parametrize("op", sorted(VALID))
def test_backend_is_keyword_only(op):
    parameter = inspect.signature(getattr(mimkernels, op)).parameters["backend"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default == "auto"


def test_info_lists_and_sanity_runs_every_op():
    """`python -m mimkernels.info` (in a fresh process, with this process' TRITON_INTERPRET) lists every
    implemented op's backends and runs every op on every backend available here, all ok."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(mimkernels.__file__)))
    run = subprocess.run([sys.executable, "-m", "mimkernels.info"], capture_output=True, text=True, cwd=root,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dict(line.split(None, 1) for line in run.stdout.splitlines() if line.startswith(("backend.", "sanity.")))
    for op in OPS:
        for backend in _backends.implemented(op):
            assert f"backend.{op}.{backend}" in lines
            if _backends.unavailable_reason(backend, torch.device("cpu")) is None:
                assert lines[f"sanity.{op}.{backend}.cpu"] == "ok", (op, backend)


def _readme_blocks():
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(mimkernels.__file__)))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


# The README's python blocks are examples/ files, each run as written by python_tests/test_examples.py.


def test_readme_examples_name_only_existing_functions():
    """Every `mk.<name>(`, `mknn.<name>(` and `mkl.<name>(` the README's examples call, and every name they
    import from mimkernels, exists."""
    import importlib
    import re

    import mimkernels.integrations.lightly as mkl
    import mimkernels.nn as mknn

    modules = {"mk": mimkernels, "mknn": mknn, "mkl": mkl}
    calls = {m.groups() for b in _readme_blocks() for m in re.finditer(r"\b(mk|mknn|mkl)\.(\w+)\(", b)}
    assert calls
    missing = [f"{mod}.{name}" for mod, name in calls if not hasattr(modules[mod], name)]
    for b in _readme_blocks():  # and every `from mimkernels... import a, b`
        for module, names in re.findall(r"from (mimkernels[\w.]*) import ([\w, ]+)", b):
            imported = importlib.import_module(module)
            missing += [f"{module}.{n.split()[0]}" for n in names.split(",") if not hasattr(imported, n.split()[0])]
    assert not missing
