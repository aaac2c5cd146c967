"""Backend resolution (mimkernels._backends), refusals with reasons, the public argument checks
(mimkernels.checks), the native build and `python -m mimkernels.info`."""
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from mimkernels import _backends, _native
from mimkernels.checks import check_float


def test_auto_picks_a_runnable_backend_and_refusals_say_why():
    assert _backends.resolve("patchify", "auto", torch.device("cpu")) in ("torch", "triton", "cpp")
    assert _backends.resolve("patchify", "torch", torch.device("cpu")) == "torch"
    reason = _backends.unavailable_reason("cuda", torch.device("cpu"))
    assert reason  # never runs on CPU tensors: the reason names why
    if not torch.cuda.is_available():
        assert "no CUDA device" in _backends.unavailable_reason("triton", torch.device("cuda"))
    with pytest.raises(ValueError, match="not implemented"):
        _backends.resolve("patchify", "cuda", torch.device("cpu"))


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI must build _C; elsewhere it may be a pure-Python install")
def test_native_extension_is_built_in_ci():
    assert _native.available(), _native.unavailable_reason()
    assert _native.cuda_built(), "CI builds the CUDA sources with nvcc (one arch)"


def test_unavailable_native_raises_a_diagnosis():
    stand_in = _native._Unavailable(_native._diagnosis(ImportError("no module named _C")))
    with pytest.raises(RuntimeError, match="(?s)philox_fill_cpu is unavailable.*python -m mimkernels.info"):
        stand_in.philox_fill_cpu(0, 1, 0, 0, 0, 0, 0)


def test_info_runs_and_reports_every_backend():
    from mimkernels import info

    out = subprocess.run([sys.executable, "-m", "mimkernels.info"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for op in info.public_ops():
        for backend in _backends.implemented(op):
            assert f"backend.{op}.{backend}" in out.stdout
    assert "SUCCESS" in out.stdout


def test_info_names_the_integration_hosts_without_importing_them():
    from mimkernels import info

    found = info.collect()
    for module in info.INTEGRATION_HOSTS:
        assert f"integrations.{module}" in found
    timm = importlib.util.find_spec("timm")
    assert found["integrations.timm"] == (f"timm {importlib.metadata.version('timm')}" if timm else "not installed")
    assert info._host_versions(("no-such-distribution",)) == "not installed"
    probe = "import sys; from mimkernels import info; info.collect(); print(sorted({'timm', 'lightly', " \
            "'mmpretrain', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.skipif(torch.cuda.is_available() or not _native.cuda_built(),
                    reason="needs a CUDA build of _C on a machine without a GPU")
def test_cuda_call_without_a_gpu_raises_naming_the_kernel():
    # The static cudart loads without a driver; a launch then fails cleanly, never a crash.
    with pytest.raises(RuntimeError, match="philox_fill_kernel"):
        _native.lib.philox_fill_cuda(0, 1, 0, 0, 0, 0, 0, 0)


def test_check_float_bounds_and_types():
    assert check_float(1, "x", minimum=0.0, maximum=1.0) == 1.0 and check_float(float("inf"), "x") == float("inf")
    for bad, kwargs in [(float("nan"), {}), (0.0, dict(minimum=0.0, strict_minimum=True)), (1.5, dict(maximum=1.0)),
                        (float("inf"), dict(finite=True)), (-1, dict(minimum=0.0))]:
        with pytest.raises(ValueError, match="x must be a"):
            check_float(bad, "x", **kwargs)
    for bad in (True, "0.5", None):
        with pytest.raises(TypeError, match="x must be a real number"):
            check_float(bad, "x")
