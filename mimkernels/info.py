"""`python -m mimkernels.info`: what was built, what can run here, and a sanity run of each backend.

Prints aligned `key: value` lines: versions, the native build (`_C` loaded or why not, compiled
archs, build switches), the GPU, the installed hosts of `mimkernels.integrations` (read from package
metadata: nothing is imported), then per op `auto.<op>`: the backend `backend="auto"` takes here on
each device, and `backend.<op>.<backend>: available | unavailable (reason.N)` with each reason
printed once as `reason.N`, then runs the RNG and one tiny call of every op on every available backend, each
compared with the torch backend (`sanity.<op>.<backend>.<device>: ok`).
Exits 1 if a sanity run fails; include the whole output in an issue.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import platform
import sys

import torch

import mimkernels
from mimkernels import _backends, _native, rng


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:
        return "not installed"


# mimkernels.integrations.<module> -> the distributions it adapts (MAE is a repository, not a package)
INTEGRATION_HOSTS = {"hf": ("transformers",), "timm": ("timm",), "lightly": ("lightly",),
                     "mmpretrain": ("mmpretrain", "mmengine", "mmcv", "mmcv-lite")}


def _host_versions(distributions: tuple[str, ...]) -> str:
    found = []
    for name in distributions:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found) if found else "not installed"


def collect() -> dict[str, str]:
    info = {
        "mimkernels.version": mimkernels.__version__,
        "python.version": sys.version.split()[0],
        "platform": platform.platform(),
        "torch.version": torch.__version__,
        "torch.cuda": str(torch.version.cuda),
        "triton.version": _version("triton"),
        "triton.interpret": str(_backends.TRITON_INTERPRET),
        "native._C": "loaded" if _native.available() else f"not loaded ({_native.unavailable_reason()})",
    }
    build = _native.build_info()
    info["native.with_cuda"] = str(_native.cuda_built())
    if _native.available():  # the host's AVX2 paths (MIMKERNELS_NO_AVX2=1: the scalar ones)
        info["native.host_avx2"] = str(_native.lib.host_avx2())
    info["build.cuda_archs"] = " ".join(build.get("cuda_archs", [])) or "none"
    for key in ("nvcc", "cxx", "pybind11", "python", "git"):
        info[f"build.{key}"] = str(build.get(key))
    for key, value in build.get("env", {}).items():
        info[f"build.env.{key}"] = value
    if torch.cuda.is_available():
        info["gpu.name"] = torch.cuda.get_device_name()
        info["gpu.compute_capability"] = "%d.%d" % torch.cuda.get_device_capability()
    else:
        info["gpu.name"] = "none (torch.cuda.is_available() is False)"
    info["integrations.mae"] = "patch_mae: a model shaped like MAE's models_mae.py (no package needed)"
    for module, distributions in INTEGRATION_HOSTS.items():
        info[f"integrations.{module}"] = _host_versions(distributions)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    reasons: dict[str, str] = {}  # reason -> its label, each long reason printed once

    def label(reason: str) -> str:
        return reasons.setdefault(reason, f"reason.{len(reasons) + 1}")

    for op in public_ops():
        info[f"auto.{op}"] = ", ".join(f"{_backends.resolve(op, 'auto', d)} ({d.type})" for d in devices)
        for backend in _backends.implemented(op):
            why = [_backends.unavailable_reason(backend, d) for d in devices]
            ok = [d.type for d, r in zip(devices, why) if r is None]
            info[f"backend.{op}.{backend}"] = (f"available ({', '.join(ok)})" if ok
                                               else f"unavailable ({label(why[-1])})")
    info.update({name: reason for reason, name in reasons.items()})
    return info


def public_ops() -> list[str]:
    """The functional ops of `mimkernels.__all__` (each has `torch.ops.mimkernels.<op>`)."""
    return sorted(name for name in mimkernels.__all__ if inspect.isfunction(getattr(mimkernels, name)))


def family_examples(op: str):
    """The `examples` module of the family that defines `op` (its table of valid and invalid calls)."""
    family = ".".join(getattr(mimkernels, op).__module__.split(".")[:2])
    return importlib.import_module(f"{family}.examples")


def tiny_calls(device: torch.device) -> dict[str, tuple[tuple, dict]]:
    """op -> (args, kwargs) of one tiny call of every public op, from its family's `examples.valid_calls`."""
    calls = {}
    for module in {family_examples(op) for op in public_ops()}:
        calls.update(module.valid_calls(device))
    return calls


def _same(got, expected) -> bool:
    """Outputs equal: integer and bool ones exactly, floating ones to fp32 rounding."""
    if isinstance(expected, tuple):
        return len(got) == len(expected) and all(_same(g, e) for g, e in zip(got, expected))
    if expected.is_floating_point():
        return got.shape == expected.shape and torch.allclose(got.float(), expected.float(), rtol=1e-4, atol=1e-5,
                                                              equal_nan=True)
    return torch.equal(got, expected)


def sanity() -> dict[str, str]:
    """Run the RNG and every op on every available backend; 'ok' or the error."""
    results = {}
    expected = rng.philox4x32_10(0, 0, 0, 0, 0)
    expected = torch.stack(expected).to(torch.int64)
    for name, device in (("cpp", "cpu"), ("cuda", "cuda")):
        reason = _backends.unavailable_reason(name, torch.device(device))
        if reason is not None:
            continue
        try:
            out = torch.zeros(4, dtype=torch.int32, device=device)
            args = (_native.ptr(out, torch.int32), 1, 0, 0, 0, 0, 0)
            if device == "cpu":
                _native.lib.philox_fill_cpu(*args, _native.cpu_threads(1))
            else:
                _native.cuda_call("philox_fill_cuda", out.device, *args)
            got = out.cpu().to(torch.int64) & 0xFFFFFFFF
            results[f"sanity.rng.{name}"] = "ok" if torch.equal(got, expected) else f"WRONG {got.tolist()}"
        except Exception as exc:  # report, don't stop
            results[f"sanity.rng.{name}"] = f"FAILED: {exc}"
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for op, (args, kwargs) in tiny_calls(torch.device(device)).items():
            fn = getattr(mimkernels, op)
            expected = None
            for backend in _backends.implemented(op):  # "torch" first: the reference of the others
                if _backends.unavailable_reason(backend, torch.device(device)):
                    continue
                try:
                    got = fn(*args, **kwargs, backend=backend)
                    expected = got if backend == "torch" else expected
                    ok = _same(got, expected)
                    results[f"sanity.{op}.{backend}.{device}"] = "ok" if ok else "WRONG"
                except Exception as exc:  # report, don't stop
                    results[f"sanity.{op}.{backend}.{device}"] = f"FAILED: {exc}"
    return results


def main() -> int:
    info = collect()
    checks = sanity()
    for key, value in {**info, **checks}.items():
        print(f"{key:<48} {value}")
    if any(v != "ok" for v in checks.values()):
        print("\nA sanity run failed: include this output in an issue.")
        return 1
    print("\nSUCCESS: every available backend passed its sanity run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
