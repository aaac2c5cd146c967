"""examples/ runs as written, and the README shows exactly that code.

Each example script runs in a fresh Python process, as `python examples/<name>.py` from the repository
root (the script's folder first on sys.path, so `import models_mae` finds examples/models_mae.py), with
the environment a user has: no TRITON_INTERPRET (which conftest.py sets for this process), no
torchvision fix-up from conftest.py. Every ```python block of README.md is one example file, byte for
byte (its first line names the file), so every README block runs as shown.
"""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HELPERS = {"models_mae.py"}                 # imported by an example, not run
NOT_IN_README = {"loss_precision.py"}       # long measurement: the README prints its table and names the command
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in HELPERS)
HOSTS = {"dropin_hf_vitmae.py": "transformers", "dropin_hf_simmim.py": "transformers", "dropin_timm.py": "timm",
         "dropin_lightly.py": "lightly", "dropin_mmpretrain.py": "mmpretrain", "dropin_mae.py": "timm"}


def _readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def _user_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def test_examples_are_found():
    assert len(SCRIPTS) >= 10 and all((EXAMPLES / h).exists() for h in HELPERS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_as_written(name):
    if name in HOSTS:
        pytest.importorskip(HOSTS[name])
    run = subprocess.run([sys.executable, f"examples/{name}"], cwd=ROOT, env=_user_env(), capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, f"python examples/{name} failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    assert run.stdout.strip(), "each example prints what it computed"


def test_every_readme_python_block_is_an_example_file():
    blocks = _readme_blocks()
    assert len(blocks) >= 10
    shown = []
    for block in blocks:
        first = block.splitlines()[0]
        match = re.fullmatch(r"# examples/(\w+\.py)(:.*)?", first)
        assert match, f"a README python block must start with '# examples/<name>.py': {first!r}"
        name = match.group(1)
        assert (EXAMPLES / name).read_text(encoding="utf-8") == block, f"README's block differs from examples/{name}"
        shown.append(name)
    assert len(shown) == len(set(shown)), "an example is shown twice"
    assert set(shown) == set(SCRIPTS) - NOT_IN_README, "every example is shown in the README"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"examples/{name}" in readme for name in NOT_IN_README | HELPERS)


def test_every_example_file_starts_with_its_own_name():
    for name in SCRIPTS:
        first = (EXAMPLES / name).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith(f"# examples/{name}"), name
