"""`python -m mimkernels.info`: what was built, what can run here, and a sanity run of each backend.

Prints aligned `key: value` lines: versions, the native build (`_C` loaded or why not, compiled
archs, build switches), the GPU, the installed hosts of `mimkernels.integrations` (read from package
metadata: nothing is imported), then `backend.<op>.<backend>: available | unavailable (reason)`
for every op, then runs the RNG and one tiny call of every op on every available backend, each
compared with the torch backend (`sanity.<op>.<backend>.<device>: ok`).
Exits 1 if a sanity run fails; include the whole output in an issue.
"""
from __future__ import annotations

import importlib.metadata
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
    info["integrations.mae"] = "patch_mae: a model shaped like MAE's models_mae.py (no package needed)"
    for module, distributions in INTEGRATION_HOSTS.items():
        info[f"integrations.{module}"] = _host_versions(distributions)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for op, backends in sorted(_dispatch.IMPLEMENTED.items()):
        for backend in backends:
            reasons = [_dispatch.backend_unavailable_reason(backend, d) for d in devices]
            ok = [d.type for d, r in zip(devices, reasons) if r is None]
            info[f"backend.{op}.{backend}"] = (f"available ({', '.join(ok)})" if ok
                                               else f"unavailable ({reasons[-1]})")
    return info


def tiny_calls(device: torch.device) -> dict[str, tuple[tuple, dict]]:
    """op -> (args, kwargs) of one tiny call of every op registered with `implements` (integer-valued
    images, so that every backend agrees with torch to rounding)."""
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (2, 3, 16, 16), generator=gen).to(device=device, dtype=torch.float32) / 255
    tokens = torch.randn(2, 16, 8, generator=gen).to(device)
    ids_keep, ids_restore, mask = mimkernels.random_mask_indices(2, 16, 0.75, seed=1, device=device, backend="torch")
    mask2d = mask.reshape(2, 4, 4)
    pred = torch.randn(2, 16, 48, generator=gen).to(device)
    return {
        "patchify": ((imgs, 4), {}),
        "unpatchify": ((pred, 4), {}),
        "random_mask_indices": ((2, 16, 0.75), {"seed": 1, "device": device}),
        "random_masking": ((tokens, 0.75), {"seed": 1}),
        "gather_patches": ((imgs, ids_keep, 4), {}),
        "unshuffle_tokens": ((tokens[:, :1 + ids_keep.shape[1]], ids_restore, tokens[0, 0]), {}),
        "patch_norm_target": ((imgs, 4), {}),
        "masked_mse_loss": ((pred, pred.flip(0), mask), {}),
        "norm_pix_mse_loss": ((pred, imgs, mask, 4), {}),
        "masked_l1_loss": ((imgs.flip(0), imgs, mask2d), {}),
        "hog": ((imgs * 255,), {"patch_size": 8}),
        "hog_map": ((imgs * 255,), {"gaussian_window": 0}),
        "simmim_mask": ((2, 32, 8, 4), {"seed": 1, "device": device}),
        "block_mask": ((2, 6, 6, 10, 2), {"seed": 1, "device": device}),
        "mask_avg_dist": ((mask2d, 4), {}),
        "frequency_mask": ((8, 8, 2.0), {"device": device}),
        "circular_filter": ((imgs, 3.0, torch.tensor([False, True], device=device)), {}),
        "mfm_corrupt": ((imgs, 3.0), {"seed": 1}),
        "lowfreq_target": ((imgs, 3.0), {}),
        "frequency_loss": ((imgs, imgs.flip(0), mimkernels.frequency_mask(16, 16, 3.0, device=device)), {}),
    }


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
        reason = _dispatch.backend_unavailable_reason(name, torch.device(device))
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
            for backend in _dispatch.IMPLEMENTED[op]:  # "torch" first: the reference of the others
                if _dispatch.backend_unavailable_reason(backend, torch.device(device)):
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
