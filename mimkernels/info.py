"""`python -m mimkernels.info`: what was built, what can run here, and a sanity run of each backend.

Prints aligned `key: value` lines: versions, the native build (`_C` loaded or why not, compiled
archs, build switches), the GPU, then `backend.<op>.<backend>: available | unavailable (reason)`
for every op, then runs the RNG and patchify on a tiny input with every available backend.
Exits 1 if a sanity run fails; include the whole output in an issue.
"""
from __future__ import annotations

import platform
import sys

import torch

import mimkernels
from mimkernels import _dispatch, _native, rng


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:
        return "not installed"


def collect() -> dict[str, str]:
    info = {
        "mimkernels.version": mimkernels.__version__,
        "python.version": sys.version.split()[0],
        "platform": platform.platform(),
        "torch.version": torch.__version__,
        "torch.cuda": str(torch.version.cuda),
        "triton.version": _version("triton"),
        "triton.interpret": str(_dispatch.TRITON_INTERPRET),
        "native._C": "loaded" if _native.available() else f"not loaded ({_native.unavailable_reason()})",
    }
    build = _native.build_info()
    info["native.with_cuda"] = str(_native.cuda_built())
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
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for op, backends in sorted(_dispatch.IMPLEMENTED.items()):
        for backend in backends:
            reasons = [_dispatch.backend_unavailable_reason(backend, d) for d in devices]
            ok = [d.type for d, r in zip(devices, reasons) if r is None]
            info[f"backend.{op}.{backend}"] = (f"available ({', '.join(ok)})" if ok
                                               else f"unavailable ({reasons[-1]})")
    return info


def sanity() -> dict[str, str]:
    """Run the RNG and patchify on every available backend; 'ok' or the error."""
    results = {}
    expected = rng.philox4x32_10(0, 0, 0, 0, 0)
    expected = torch.stack(expected).to(torch.int64)
    for name, device in (("cpp", "cpu"), ("cuda", "cuda")):
        reason = _dispatch.backend_unavailable_reason(name, torch.device(device))
        if reason is not None:
            continue
        try:
            out = torch.zeros(4, dtype=torch.int32, device=device)
            args = (_native.ptr(out, torch.int32), 1, 0, 0, 0, 0, 0)
            if device == "cpu":
                _native.lib.philox_fill_cpu(*args, _native.cpu_threads())
            else:
                _native.cuda_call("philox_fill_cuda", out.device, *args)
            got = out.cpu().to(torch.int64) & 0xFFFFFFFF
            results[f"sanity.rng.{name}"] = "ok" if torch.equal(got, expected) else f"WRONG {got.tolist()}"
        except Exception as exc:  # report, don't stop
            results[f"sanity.rng.{name}"] = f"FAILED: {exc}"
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        imgs = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32, device=device).reshape(2, 3, 8, 8)
        ref = mimkernels.pixel.reference.patchify(imgs, 4)
        for backend in _dispatch.IMPLEMENTED["patchify"]:
            if _dispatch.backend_unavailable_reason(backend, imgs.device) is not None:
                continue
            try:
                ok = torch.equal(mimkernels.patchify(imgs, 4, backend=backend), ref)
                results[f"sanity.patchify.{backend}.{device}"] = "ok" if ok else "WRONG"
            except Exception as exc:
                results[f"sanity.patchify.{backend}.{device}"] = f"FAILED: {exc}"
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
