"""Test harness: Triton kernels run under the interpreter on machines without a GPU.

TRITON_INTERPRET must be set before triton decorates any kernel, i.e. before mimkernels is
imported; this file is loaded first. Tests marked `gpu` are skipped, visibly, without a GPU.
"""
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import mimkernels  # noqa: E402  (after the environment is set)
from mimkernels.testing import make_torchvision_importable  # noqa: E402

TORCHVISION_STATE = make_torchvision_importable()  # before timm/lightly/mmpretrain import it


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run benchmarks/run_gpu.sh on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    from mimkernels import _backends, _native

    return (f"mimkernels {mimkernels.__version__}: _C {'loaded' if _native.available() else 'NOT loaded'}, "
            f"cuda build {_native.cuda_built()}, TRITON_INTERPRET={int(_backends.TRITON_INTERPRET)}, "
            f"GPU {torch.cuda.is_available()}; {TORCHVISION_STATE}")
