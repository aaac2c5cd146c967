"""Build of mimkernels: a torch-free pybind11 extension, `mimkernels._C`, compiled by ninja.

Environment switches (the only ones; README "Building" repeats them):

  MIMKERNELS_NO_NATIVE=1        pure-Python install: no `_C` (torch and triton backends only)
  MIMKERNELS_SKIP_CUDA=1        build `_C` from the CPU sources only, even when nvcc is found
  MIMKERNELS_CUDA_ARCH_LIST     "8.0 8.6 8.9 9.0 10.0 12.0+PTX" by default; ";" or " " separated
  MIMKERNELS_DEBUG_BUILD=1      -O0 -g (host) and -G (device)
  MIMKERNELS_STRICT_BUILD=1     a failed native build fails the install (CI) instead of warning
  MIMKERNELS_SANITIZE=1         AddressSanitizer + UndefinedBehaviorSanitizer build of `_C`'s host code
                                (gcc; SANITIZE_FLAGS below); CUDA sources are skipped, ninja state in
                                build/native-sanitize. Importing it needs the ASan runtime first:
                                  LD_PRELOAD="$(gcc -print-file-name=libasan.so) \
                                    $(gcc -print-file-name=libstdc++.so)" \
                                  ASAN_OPTIONS=detect_leaks=0 python ...
                                (detect_leaks=0: CPython leaks by design; libstdc++: ASan's
                                __cxa_throw interceptor needs it loaded.) python_tests/fuzz/sanitize.py
                                builds one into a temporary copy of the package and runs the cpp tests
                                and the value fuzzer under it (python -m python_tests.fuzz.sanitize).
  CUDA_HOME / nvcc on PATH      where nvcc is looked for

Sources are globbed: csrc/**/*.cpp with the host compiler, csrc/**/*.cu with nvcc (when CUDA is
built; -DMIMKERNELS_WITH_CUDA marks that build), linked into one module with cudart static.
The build writes mimkernels/_build_info.json (compilers, archs, switches, git hash) for
`python -m mimkernels.info`. Builds are incremental: ninja keeps its state in build/native.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCHS = "8.0 8.6 8.9 9.0 10.0 12.0+PTX"
# MIMKERNELS_SANITIZE=1: compile and link flags of the ASan + UBSan build (gcc). -O1 keeps the reports'
# stacks readable at a tolerable speed; -fno-sanitize-recover makes every UBSan finding fatal (a report is
# a failed test, not a line in a log). python_tests/fuzz/test_sanitize.py compiles a planted bug with
# these same flags to show that they catch it.
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
                  "-O1", "-g"]


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def find_nvcc():
    """nvcc from CUDA_HOME, else PATH; None when absent (a wrapper script on PATH is fine)."""
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
        return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def parse_archs(text):
    """'8.0 9.0+PTX' -> nvcc -gencode flags and the list of archs, for _build_info.json."""
    flags, archs = [], []
    for item in re.split(r"[;\s,]+", text.strip()):
        if not item:
            continue
        ptx = item.endswith("+PTX")
        num = item.replace("+PTX", "").replace(".", "")
        if not num.isdigit():
            raise ValueError(f"MIMKERNELS_CUDA_ARCH_LIST: cannot read arch {item!r}")
        flags += ["-gencode", f"arch=compute_{num},code=sm_{num}"]
        if ptx:
            flags += ["-gencode", f"arch=compute_{num},code=compute_{num}"]
        archs.append(item)
    return flags, archs


def git_hash():
    try:
        return _run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    except Exception:
        return None


class NinjaBuildExt(build_ext):
    """Writes build/native/build.ninja and runs ninja; never imports torch."""

    def run(self):
        if _flag("MIMKERNELS_NO_NATIVE"):
            print("mimkernels: MIMKERNELS_NO_NATIVE=1, installing pure Python (no _C)")
            return
        try:
            super().run()
        except Exception as exc:  # no compiler, no pybind11, ...: install pure Python
            if _flag("MIMKERNELS_STRICT_BUILD"):
                raise
            warnings.warn(
                f"mimkernels: the native extension _C was not built ({exc}); installing pure Python. "
                "The torch and triton backends work; cpp/cuda backends are unavailable. "
                "Run `python -m mimkernels.info` for details.",
                stacklevel=1,
            )

    def build_extension(self, ext):
        import pybind11

        out_path = os.path.abspath(self.get_ext_fullpath(ext.name))
        sanitize = _flag("MIMKERNELS_SANITIZE")
        build_dir = os.path.join(ROOT, "build", "native-sanitize" if sanitize else "native")
        os.makedirs(build_dir, exist_ok=True)
        cxx = os.environ.get("CXX", "c++")
        # The sanitizer build is host code only: nvcc objects are not instrumented, and ASan's shadow
        # memory does not cover device memory (compute-sanitizer does: benchmarks/run_gpu.sh).
        nvcc = None if _flag("MIMKERNELS_SKIP_CUDA") or sanitize else find_nvcc()
        debug = _flag("MIMKERNELS_DEBUG_BUILD")
        opt = SANITIZE_FLAGS if sanitize else ["-O0", "-g"] if debug else ["-O3"]
        includes = [
            f"-I{os.path.join(ROOT, 'csrc', 'include')}",
            f"-I{pybind11.get_include()}",
            f"-I{sysconfig.get_paths()['include']}",
        ]
        defines = ["-DMIMKERNELS_WITH_CUDA"] if nvcc else []
        # -ffp-contract=off: the shared MK_HD bodies must round as written on the host. g++ contracts
        # a * b + c into an FMA in C++ wherever the target has one (aarch64 hosts, hog_cpu.cpp's
        # x86-64-v3 clone), which would break their bit-identity with the torch reference and the GPU.
        # -fno-math-errno: no kernel reads errno, and with it sqrtf is the instruction (vectorized in hog_cpu.cpp)
        # instead of a call guarded against negative arguments; the results are the same (IEEE sqrt).
        cxx_flags = ["-std=c++17", "-fPIC", "-fvisibility=hidden", "-fopenmp", "-ffp-contract=off", "-fno-math-errno",
                     "-Wall", *opt,
                     *defines, *includes]
        cpp_sources = sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.cpp"), recursive=True))
        cu_sources = sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.cu"), recursive=True)) if nvcc else []
        arch_flags, archs = parse_archs(os.environ.get("MIMKERNELS_CUDA_ARCH_LIST", DEFAULT_ARCHS)) if nvcc else ([], [])
        nvcc_flags = ["-std=c++17", "-Xcompiler", "-fPIC,-fvisibility=hidden,-ffp-contract=off",
                      "--expt-relaxed-constexpr",
                      *(["-G", "-O0"] if debug else ["-O3", "-lineinfo"]), *arch_flags, *defines, *includes]

        def obj(src):
            rel = os.path.relpath(src, ROOT).replace(os.sep, "_")
            return os.path.join(build_dir, rel + ".o")

        q = " ".join
        lines = [
            "ninja_required_version = 1.3",
            f"cxx = {cxx}",
            f"cxx_flags = {q(cxx_flags)}",
            "rule cxx",
            "  command = $cxx -MMD -MF $out.d $cxx_flags -c $in -o $out",
            "  depfile = $out.d",
            "  deps = gcc",
            "  description = CXX $in",
        ]
        if nvcc:
            lines += [
                f"nvcc = {nvcc}",
                f"nvcc_flags = {q(nvcc_flags)}",
                "rule nvcc",
                "  command = $nvcc -MD -MF $out.d $nvcc_flags -c $in -o $out",
                "  depfile = $out.d",
                "  deps = gcc",
                "  description = NVCC $in",
            ]
        objs = []
        for src in cpp_sources:
            lines.append(f"build {obj(src)}: cxx {src}")
            objs.append(obj(src))
        for src in cu_sources:
            lines.append(f"build {obj(src)}: nvcc {src}")
            objs.append(obj(src))
        # nvcc links the CUDA build (it knows its own toolkit, so a wrapper script on PATH works) with
        # cudart static; the host compiler links the CPU-only build.
        if nvcc:
            link = f"{nvcc} -shared -cudart static {q(arch_flags)} -Xcompiler -fopenmp -o $out $in -lgomp"
        else:
            link = f"{cxx} -shared -fopenmp {q(SANITIZE_FLAGS) if sanitize else ''} -o $out $in"
        lines += ["rule link", f"  command = {link}", "  description = LINK $out",
                  f"build {out_path}: link {q(objs)}", ""]
        ninja_file = os.path.join(build_dir, "build.ninja")
        text = "\n".join(lines)
        if not os.path.exists(ninja_file) or open(ninja_file).read() != text:
            with open(ninja_file, "w") as f:
                f.write(text)
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
        jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 2))
        subprocess.run(["ninja", "-C", build_dir, "-j", jobs], check=True)
        self._write_build_info(out_path, cxx, nvcc, archs)

    def _write_build_info(self, out_path, cxx, nvcc, archs):
        def version(cmd):
            try:
                return _run(cmd).strip().splitlines()[-1 if "nvcc" in cmd[0] else 0]
            except Exception:
                return None

        import pybind11

        info = {
            "cxx": version([cxx, "--version"]),
            "nvcc": version([nvcc, "--version"]) if nvcc else None,
            "cuda_archs": archs,
            "with_cuda": bool(nvcc),
            "pybind11": pybind11.__version__,
            "python": sys.version.split()[0],
            "git": git_hash(),
            "env": {k: v for k, v in os.environ.items() if k.startswith("MIMKERNELS_") or k == "CUDA_HOME"},
        }
        targets = {os.path.join(os.path.dirname(out_path), "_build_info.json")}
        if not info["env"].get("MIMKERNELS_SANITIZE"):  # a sanitizer build elsewhere leaves the source tree's alone
            targets.add(os.path.join(ROOT, "mimkernels", "_build_info.json"))
        for target in targets:
            with open(target, "w") as f:
                json.dump(info, f, indent=1)


setup(
    ext_modules=[Extension("mimkernels._C", sources=sorted(glob.glob("csrc/**/*.cpp", recursive=True)))],
    cmdclass={"build_ext": NinjaBuildExt},
)
