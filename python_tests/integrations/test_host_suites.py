"""The hosts' own test files against the patched classes (`-p mimkernels.integrations.host_tests`).

The installed wheels of transformers, timm, lightly and mmpretrain ship no tests, and nothing may be
fetched at test time, so CI runs the host test files it is given: `MIMKERNELS_HOST_TESTS` lists
paths (os.pathsep-separated) to the hosts' test files or folders, e.g. from checkouts of the
installed versions (README, "The hosts' own test suites"); without it that test skips, saying so.
What always runs here: the plugin patches every instance a test file builds, checked on a test file
written like the hosts' own (classes imported at module level, built inside the tests).
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

import mimkernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(mimkernels.__file__)))

HOST_STYLE_TESTS = textwrap.dedent('''
    import torch
    from lightly.models import utils
    from mmpretrain.models import MAEViT
    from mmpretrain.registry import MODELS
    from transformers import ViTConfig, ViTForMaskedImageModeling, ViTMAEConfig, ViTMAEForPreTraining

    from mimkernels.integrations import is_patched, lightly as mkl


    def test_transformers_models_are_patched():
        mae = ViTMAEForPreTraining(ViTMAEConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=32, decoder_hidden_size=8,
                                                decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                                                decoder_intermediate_size=16))
        simmim = ViTForMaskedImageModeling(ViTConfig(image_size=16, patch_size=4, encoder_stride=4, hidden_size=16,
                                                     num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
        assert is_patched(mae) and is_patched(simmim) and "random_masking" in mae.vit.embeddings.__dict__
        assert mae(torch.rand(2, 3, 16, 16)).loss.isfinite()


    def test_lightly_and_mmpretrain_are_patched():
        assert utils.random_token_mask is mkl.random_token_mask
        assert MAEViT.__name__ == "MIMKMAEViT" and MODELS.get("MAEViT") is MAEViT


    def test_upstream_subclasses_keep_their_super_calls():
        from mmpretrain.models.selfsup.milan import MILANViT  # super(MAEViT, self) names upstream's MAEViT
        assert MILANViT(arch="b", img_size=32, patch_size=16).patch_embed is not None
''')


def _run_pytest(paths, cwd):
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                           "mimkernels.integrations.host_tests", *paths], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=3600)


def test_plugin_patches_every_instance_a_host_style_test_builds(tmp_path):
    for host in ("transformers", "lightly", "mmpretrain"):
        pytest.importorskip(host)
    (tmp_path / "test_host_style.py").write_text(HOST_STYLE_TESTS)
    run = _run_pytest([str(tmp_path / "test_host_style.py")], tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout and "mimkernels host tests: transformers" in run.stdout


def test_hosts_own_test_files():
    """Runs the host test files named by MIMKERNELS_HOST_TESTS with the plugin (the CI job sets it)."""
    shipped = [name for name in ("transformers", "timm", "lightly", "mmpretrain")
               if importlib.util.find_spec(name) is not None
               and os.path.isdir(os.path.join(os.path.dirname(importlib.util.find_spec(name).origin), "tests"))]
    paths = [p for p in os.environ.get("MIMKERNELS_HOST_TESTS", "").split(os.pathsep) if p]
    if not paths:
        pytest.skip(f"MIMKERNELS_HOST_TESTS is not set; installed packages shipping tests: {shipped or 'none'} "
                    "(wheels do not): README, 'The hosts' own test suites', gives the command")
    missing = [p for p in paths if not os.path.exists(p)]
    assert not missing, f"MIMKERNELS_HOST_TESTS names paths that do not exist: {missing}"
    folders = [os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p)) for p in paths]
    run = _run_pytest([os.path.abspath(p) for p in paths], os.path.commonpath(folders))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
