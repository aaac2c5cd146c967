"""Every Triton kernel of the package, as a GPU would build it, checked without a GPU.

CI runs the kernels only under TRITON_INTERPRET=1, which never runs Triton's code generator. Each
family's python_tests/<family>/test_codegen.py says how to launch its kernels (on meta tensors:
nothing is computed or allocated) and what each writes; here one subprocess without
TRITON_INTERPRET (`python -m benchmarks.codegen`) runs, for every family, torch's analysis of each
kernel's stores, the tracing of each triton_op into kernel launches, the family's GPU_CHECKS, and
compiles every launch of its compile set to an sm_90 cubin with Triton's bundled ptxas. Run that
module by hand to see each kernel's shared memory and compile time.
"""
import os
import subprocess
import sys

import pytest

from benchmarks import codegen
from mimkernels import _backends

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")


def test_every_launched_kernel_belongs_to_a_family():
    """Each kernel some module launches is in a family's KERNEL_OUTPUTS (so it is compiled and analysed)."""
    launched = {name for module in codegen.triton_kernel_modules() for name in codegen.launched_kernel_names(module)}
    covered = {name for family in codegen.family_codegen_modules() for name in family.KERNEL_OUTPUTS}
    assert launched and launched == covered, (launched ^ covered)


def test_every_kernel_compiles_for_sm90(tmp_path):
    """Triton's code generator and ptxas on every family's compile set, with the GPU-side checks."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # compile for real, not from a cache
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "benchmarks.codegen"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    families = {family.__name__ for family in codegen.family_codegen_modules()}
    assert all(f"{name}: compiled" in done.stdout for name in families), done.stdout
