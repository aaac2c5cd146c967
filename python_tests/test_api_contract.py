"""The public contract of every exported op: bad arguments raise TypeError (wrong type) or ValueError
(wrong value, shape or device) whose message names the argument, before any kernel runs; every op
registered with `implements` is listed and sanity-run by `python -m mimkernels.info`."""
import inspect

import pytest
import torch

import mimkernels
from mimkernels import _dispatch

img = lambda *s, dtype=torch.float32: torch.rand(*s, dtype=dtype)  # noqa: E731

# op -> (valid positional args, valid kwargs)
VALID = {
    "patchify": lambda: ((img(2, 3, 8, 8), 4), {}),
    "unpatchify": lambda: ((img(2, 4, 48), 4), {}),
    "random_mask_indices": lambda: ((2, 16), {"seed": 0}),
    "random_masking": lambda: ((img(2, 16, 8),), {"seed": 0}),
    "gather_patches": lambda: ((img(2, 3, 8, 8), torch.zeros(2, 2, dtype=torch.int64), 4), {}),
    "unshuffle_tokens": lambda: ((img(2, 3, 8), torch.arange(4).repeat(2, 1), img(8)), {}),
    "patch_norm_target": lambda: ((img(2, 3, 8, 8), 4), {}),
    "masked_mse_loss": lambda: ((img(2, 4, 6), img(2, 4, 6), torch.ones(2, 4)), {}),
    "norm_pix_mse_loss": lambda: ((img(2, 4, 48), img(2, 3, 8, 8), torch.ones(2, 4), 4), {}),
    "masked_l1_loss": lambda: ((img(2, 3, 8, 8), img(2, 3, 8, 8), torch.ones(2, 2, 2)), {}),
    "hog": lambda: ((img(1, 3, 16, 16),), {"gaussian_window": 0}),
    "hog_map": lambda: ((img(1, 3, 16, 16),), {"gaussian_window": 0}),
    "simmim_mask": lambda: ((2, 32, 8, 4), {"seed": 0}),
    "block_mask": lambda: ((2, 6, 6, 10, 2), {"seed": 0}),
    "mask_avg_dist": lambda: ((torch.ones(2, 3, 3), 4), {}),
    "frequency_mask": lambda: ((8, 8, 2.0), {}),
    "circular_filter": lambda: ((img(2, 3, 8, 8), 2.0, False), {}),
    "mfm_corrupt": lambda: ((img(2, 3, 8, 8), 2.0), {"seed": 0}),
    "lowfreq_target": lambda: ((img(2, 3, 8, 8), 2.0), {}),
    "frequency_loss": lambda: ((img(2, 3, 8, 8), img(2, 3, 8, 8), torch.ones(2, 8, 8)), {}),
}

# (op, argument, bad value, expected exception). The argument is named in the message.
BAD = [
    *[(op, "backend", "cuda-ish", ValueError) for op in VALID],
    ("patchify", "imgs", [[1.0]], TypeError), ("patchify", "imgs", img(3, 8, 8), ValueError),
    ("patchify", "patch_size", 4.0, TypeError), ("patchify", "patch_size", 0, ValueError),
    ("patchify", "patch_size", 3, ValueError),
    ("unpatchify", "x", None, TypeError), ("unpatchify", "x", img(4, 48), ValueError),
    ("unpatchify", "patch_size", "4", TypeError), ("unpatchify", "channels", 0, ValueError),
    ("unpatchify", "grid_size", (3, 3), ValueError),
    ("random_mask_indices", "batch", 2.0, TypeError), ("random_mask_indices", "batch", -1, ValueError),
    ("random_mask_indices", "num_patches", 0, ValueError), ("random_mask_indices", "mask_ratio", "0.5", TypeError),
    ("random_mask_indices", "mask_ratio", 1.5, ValueError), ("random_mask_indices", "seed", 1.0, TypeError),
    ("random_mask_indices", "sample_offset", -1, ValueError), ("random_mask_indices", "generator", 3, TypeError),
    ("random_mask_indices", "noise", img(2, 15), ValueError), ("random_mask_indices", "noise", [0.5], TypeError),
    ("random_masking", "x", img(16, 8), ValueError), ("random_masking", "x", "x", TypeError),
    ("random_masking", "mask_ratio", -0.1, ValueError), ("random_masking", "seed", "1", TypeError),
    ("random_masking", "noise", img(2, 15), ValueError), ("random_masking", "sample_offset", 0.5, TypeError),
    ("gather_patches", "imgs", img(3, 8, 8), ValueError), ("gather_patches", "imgs", 1, TypeError),
    ("gather_patches", "ids_keep", torch.zeros(2, 2), TypeError),
    ("gather_patches", "ids_keep", torch.zeros(3, 2, dtype=torch.int64), ValueError),
    ("gather_patches", "patch_size", 3, ValueError),
    ("unshuffle_tokens", "x", img(3, 8), ValueError), ("unshuffle_tokens", "ids_restore", torch.zeros(2, 4), TypeError),
    ("unshuffle_tokens", "ids_restore", torch.zeros(3, 4, dtype=torch.int64), ValueError),
    ("unshuffle_tokens", "mask_token", img(7), ValueError), ("unshuffle_tokens", "mask_token", 0.0, TypeError),
    ("unshuffle_tokens", "num_prefix_tokens", -1, ValueError),
    ("unshuffle_tokens", "num_prefix_tokens", 4, ValueError), ("unshuffle_tokens", "num_prefix_tokens", 1.0, TypeError),
    ("gather_patches", "num_prefix_tokens", -1, ValueError), ("gather_patches", "num_prefix_tokens", True, TypeError),
    ("patch_norm_target", "imgs", img(3, 8, 8), ValueError), ("patch_norm_target", "patch_size", 5, ValueError),
    ("patch_norm_target", "eps", -1.0, ValueError),
    ("masked_mse_loss", "pred", img(2, 4), ValueError), ("masked_mse_loss", "target", img(2, 4, 5), ValueError),
    ("masked_mse_loss", "mask", torch.ones(2, 5), ValueError), ("masked_mse_loss", "mask", [1, 0], TypeError),
    ("norm_pix_mse_loss", "pred", img(2, 4, 47), ValueError), ("norm_pix_mse_loss", "imgs", img(2, 3, 8), ValueError),
    ("norm_pix_mse_loss", "mask", torch.ones(2, 3), ValueError), ("norm_pix_mse_loss", "norm_pix", 1, TypeError),
    ("norm_pix_mse_loss", "patch_size", 3, ValueError),
    ("masked_l1_loss", "x_rec", img(2, 3, 8), ValueError), ("masked_l1_loss", "imgs", img(2, 3, 8, 4), ValueError),
    ("masked_l1_loss", "mask", torch.ones(2, 3, 3), ValueError), ("masked_l1_loss", "in_chans", 0, ValueError),
    ("masked_l1_loss", "in_chans", 1.5, TypeError),
    ("hog", "imgs", img(3, 16, 16), ValueError), ("hog", "imgs", img(1, 3, 16, 16, dtype=torch.float64), TypeError),
    ("hog", "nbins", 0, ValueError), ("hog", "nbins", 9.0, TypeError), ("hog", "pool", 0, ValueError),
    ("hog", "gaussian_window", -1, ValueError), ("hog", "norm_out", 1, TypeError), ("hog", "patch_size", 12, ValueError),
    ("hog_map", "imgs", None, TypeError), ("hog_map", "pool", 32, ValueError),
    ("simmim_mask", "batch", -1, ValueError), ("simmim_mask", "input_size", 33, ValueError),
    ("simmim_mask", "mask_patch_size", "8", TypeError), ("simmim_mask", "model_patch_size", 3, ValueError),
    ("simmim_mask", "mask_ratio", 2.0, ValueError), ("simmim_mask", "seed", 0.0, TypeError),
    ("simmim_mask", "sample_offset", -3, ValueError),
    ("block_mask", "height", 0, ValueError), ("block_mask", "width", 1.0, TypeError),
    ("block_mask", "min_num_patches", -1, ValueError), ("block_mask", "min_aspect", 0.0, ValueError),
    ("block_mask", "max_aspect", "2", TypeError), ("block_mask", "variant", "beit", ValueError),
    ("block_mask", "seed", "0", TypeError),
    ("mask_avg_dist", "mask", torch.ones(3, 3), ValueError), ("mask_avg_dist", "mask", [[1]], TypeError),
    ("mask_avg_dist", "patch_size", 0, ValueError),
    ("frequency_mask", "height", 0, ValueError), ("frequency_mask", "radius", -1.0, ValueError),
    ("frequency_mask", "radius", "2", TypeError), ("frequency_mask", "center", "dc", ValueError),
    ("frequency_mask", "high_pass", 1, TypeError), ("frequency_mask", "outer_radius", 1.0, ValueError),
    ("circular_filter", "imgs", img(3, 8, 8), ValueError), ("circular_filter", "radius", None, TypeError),
    ("circular_filter", "high_pass", 1, TypeError), ("circular_filter", "high_pass", torch.ones(3, dtype=torch.bool),
                                                     ValueError),
    ("circular_filter", "clamp", (1.0,), ValueError), ("circular_filter", "mean", (0.5, 0.5), ValueError),
    ("mfm_corrupt", "imgs", img(2, 3, 8), ValueError), ("mfm_corrupt", "low_pass_prob", 1.5, ValueError),
    ("mfm_corrupt", "seed", 1.5, TypeError), ("mfm_corrupt", "sample_offset", -1, ValueError),
    ("lowfreq_target", "std", 0.2, TypeError),
    ("lowfreq_target", "imgs", img(2, 3, 8, dtype=torch.float32), ValueError),
    ("lowfreq_target", "exact", 1, TypeError), ("lowfreq_target", "mean", (0.5,), ValueError),
    ("frequency_loss", "pred", img(2, 3, 8), ValueError), ("frequency_loss", "target", img(2, 3, 8, 4), ValueError),
    ("frequency_loss", "freq_mask", torch.ones(3, 8, 8), ValueError), ("frequency_loss", "gamma", 0.0, ValueError),
    ("frequency_loss", "gamma", "1", TypeError),
    # a second device (meta: no data) where tensors must share one
    ("gather_patches", "ids_keep", torch.zeros(2, 2, dtype=torch.int64, device="meta"), ValueError),
    ("unshuffle_tokens", "mask_token", torch.zeros(8, device="meta"), ValueError),
    ("masked_mse_loss", "mask", torch.ones(2, 4, device="meta"), ValueError),
    ("norm_pix_mse_loss", "mask", torch.ones(2, 4, device="meta"), ValueError),
    ("masked_l1_loss", "mask", torch.ones(2, 2, 2, device="meta"), ValueError),
    ("random_masking", "noise", torch.rand(2, 16, device="meta"), ValueError),
    ("circular_filter", "high_pass", torch.ones(2, dtype=torch.bool, device="meta"), ValueError),
    ("frequency_loss", "freq_mask", torch.ones(2, 8, 8, device="meta"), ValueError),
]


def _call(op: str, **override):
    args, kwargs = VALID[op]()
    fn = getattr(mimkernels, op)
    bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    if "generator" in override or "noise" in override:
        bound.arguments.pop("seed", None)  # seed/generator/noise exclude each other
    bound.arguments.update(override)
    return fn(*bound.args, **bound.kwargs)


def test_every_exported_op_is_covered():
    ops = {name for name in mimkernels.__all__ if inspect.isfunction(getattr(mimkernels, name))}
    assert ops == set(VALID)
    assert {op for op, *_ in BAD} == ops
    assert set(_dispatch.IMPLEMENTED) >= ops


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
    for op, backends in _dispatch.IMPLEMENTED.items():
        for backend in backends:
            assert f"backend.{op}.{backend}" in lines
            if _dispatch.backend_unavailable_reason(backend, torch.device("cpu")) is None:
                assert lines[f"sanity.{op}.{backend}.cpu"] == "ok", (op, backend)


def _readme_blocks():
    import os
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(mimkernels.__file__)))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_readme_mask_and_frequency_examples_run():
    """The README's data-loader and MFM/PixMIM examples run as written, with tiny stand-ins for the
    user's data and model (the other examples need the upstream model classes: checked by hand)."""
    blocks = {name: next(b for b in _readme_blocks() if name in b) for name in ("MaskCollator(", "mk.mfm_corrupt(")}
    loader_code = blocks["MaskCollator("].replace("for images, masks in loader: ...",
                                                   "for images, masks in loader: seen.append(masks.shape)")
    seen = []
    namespace = {"DataLoader": torch.utils.data.DataLoader, "dataset": [torch.zeros(3)] * 4, "epochs": 2,
                 "seen": seen}
    exec(loader_code.replace("batch_size=256, num_workers=8", "batch_size=2, num_workers=0"), namespace)
    assert seen == [torch.Size([2, 14, 14])] * 4
    imgs01 = torch.rand(2, 3, 32, 32)
    namespace = {"imgs01": imgs01, "step_seed": 7, "model": lambda x: x * 0.5,
                 "normalize": lambda x: (x - torch.tensor(mimkernels.IMAGENET_MEAN)[:, None, None])
                 / torch.tensor(mimkernels.IMAGENET_STD)[:, None, None], "inputs": torch.randn(2, 3, 32, 32)}
    exec(blocks["mk.mfm_corrupt("], namespace)
    assert namespace["loss"].dim() == 0 and torch.isfinite(namespace["loss"])
    assert namespace["target"].shape == (2, 3, 32, 32)


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
