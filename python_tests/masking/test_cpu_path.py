"""The CPU per-sample path (issue 17 item 3) and the argument fixes of issues 19 and 20: the front doors'
direct `_C` call equals the catalogue op and the reference, torch.compile still goes through the
catalogue, random_masking on the CPU uses the cpp indices, impossible block-mask settings raise,
numpy seeds, CUDA on a CPU-only machine, AvgDist's bounds and memory."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import mimkernels as mk
from mimkernels import masking
from mimkernels.masking import reference

from .oracles import native


@native
@pytest.mark.parametrize("batch", [0, 1, 3, 40])
def test_fast_path_equals_catalogue_and_reference(batch):
    for seed in (0, 5, 2**63 - 1):
        for call in (lambda **k: mk.simmim_mask(batch, **k), lambda **k: mk.simmim_mask(batch, 224, 32, 16, 0.5, **k),
                     lambda **k: mk.block_mask(batch, **k), lambda **k: mk.block_mask(batch, 7, 9, 20, 3, **k),
                     lambda **k: mk.block_mask(batch, variant="mmpretrain", **k)):
            first = call(seed=seed, sample_offset=2)   # validates and caches the setting
            again = call(seed=seed, sample_offset=2)   # the direct _C call
            assert torch.equal(first, again)
            assert torch.equal(again, call(seed=seed, sample_offset=2, backend="torch"))
    assert masking._SIMMIM_SETTINGS and masking._BLOCK_SETTINGS


@native
def test_fast_path_still_validates():
    mk.block_mask(1, seed=0)
    for kw, exc in [(dict(seed=-1), None), (dict(seed=2**64), None), (dict(seed=1.0), TypeError),
                    (dict(seed=0, sample_offset=2**32), ValueError), (dict(seed=0, sample_offset=-1), ValueError)]:
        if exc is None:  # seeds outside [0, 2^63) take the full path: reduced mod 2^64 as everywhere
            assert torch.equal(mk.block_mask(1, **kw), mk.block_mask(1, backend="torch", **kw))
        else:
            with pytest.raises(exc):
                mk.block_mask(1, **kw)
    with pytest.raises(ValueError, match="batch"):
        mk.simmim_mask(-1, seed=0)
    with pytest.raises(TypeError, match="input_size"):
        mk.simmim_mask(1, True, 1, 1, seed=0)   # a bool is not the cached int 1
    mk.simmim_mask(1, 1, 1, 1, seed=0)
    with pytest.raises(TypeError, match="input_size"):
        mk.simmim_mask(1, True, 1, 1, seed=0)


@native
def test_compile_goes_through_the_catalogue():
    fn = torch.compile(lambda: (mk.block_mask(3, seed=4), mk.simmim_mask(2, seed=1)), fullgraph=True,
                       backend="aot_eager")
    got = fn()
    assert torch.equal(got[0], mk.block_mask(3, seed=4, backend="torch"))
    assert torch.equal(got[1], mk.simmim_mask(2, seed=1, backend="torch"))


@native
def test_random_masking_cpu_uses_the_cpp_indices(monkeypatch):
    x = torch.randn(3, 50, 8, requires_grad=True)
    got = mk.random_masking(x, 0.6, seed=4, sample_offset=1)
    ref = mk.random_masking(x, 0.6, seed=4, sample_offset=1, backend="torch")
    assert all(torch.equal(a, b) for a, b in zip(got, ref))
    got[0].sum().backward()
    assert x.grad.sum(-1).ne(0).sum() == 3 * 20
    seen = []
    original = masking._mask_indices
    monkeypatch.setattr(masking, "_mask_indices", lambda *a, **k: seen.append(a[-1]) or original(*a, **k))
    mk.random_masking(x, 0.6, seed=4)
    assert seen == ["cpp"]


def test_auto_falls_back_past_the_triton_sort(monkeypatch):
    """backend="auto" where Triton is first (CUDA) and L > 2^14: the next backend, not an error."""
    pytest.importorskip("triton")
    from mimkernels.masking.triton import MAX_PATCHES
    monkeypatch.setattr(masking._backends, "unavailable_reason", lambda be, dev: None if be != "cuda" else "no")
    out = masking._mask_indices(2, MAX_PATCHES + 1, 0.75, None, 3, None, 0, torch.device("cpu"), "triton", auto=True)
    ref = mk.random_mask_indices(2, MAX_PATCHES + 1, 0.75, seed=3, backend="torch")
    assert all(torch.equal(a, b) for a, b in zip(out, ref))
    with pytest.raises(ValueError, match="triton backend takes"):
        masking._mask_indices(2, MAX_PATCHES + 1, 0.75, None, 3, None, 0, torch.device("cpu"), "triton")


@pytest.mark.parametrize("kw,name", [
    (dict(num_masking_patches=-1), "num_masking_patches"), (dict(num_masking_patches=300), "num_masking_patches"),
    (dict(min_num_patches=100), "min_num_patches"), (dict(max_num_patches=0), "max_num_patches"),
    (dict(height=1, num_masking_patches=3, min_num_patches=1), "height"),
])
def test_block_mask_refuses_impossible_settings(kw, name):
    with pytest.raises(ValueError, match=name):
        mk.block_mask(2, seed=0, **kw)
    official = mk.block_mask(6, seed=0, variant="official", **kw)  # upstream behaviour, as before
    assert torch.equal(official, mk.block_mask(6, seed=0, variant="official", backend="torch", **kw))
    if kw.get("num_masking_patches", 78) <= 0:
        assert not official.any()


def test_block_mask_official_equals_unilm_where_possible():
    assert torch.equal(mk.block_mask(9, seed=2, variant="official"), mk.block_mask(9, seed=2))
    counts = mk.block_mask(6, seed=0, min_num_patches=100, variant="official").flatten(1).sum(1)
    assert counts.max() <= 78   # the issue's [78, 0, 0, 0, 0, 0]: one block or none, as upstream


def test_mmpretrain_warns_when_the_count_cannot_be_reached():
    with pytest.warns(RuntimeWarning, match="fewer than num_masking_patches"):
        mk.block_mask(2, 4, 4, 8, 9, min_aspect=1.0, variant="mmpretrain", seed=0)  # 3x3 blocks: 9 > 8 never fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mk.block_mask(4, seed=0, variant="mmpretrain")


def test_numpy_integer_seeds():
    for seed in (np.int64(7), np.uint32(7), np.int8(7)):
        assert torch.equal(mk.block_mask(2, seed=seed), mk.block_mask(2, seed=7))
        assert torch.equal(mk.simmim_mask(2, seed=seed), mk.simmim_mask(2, seed=7))
        assert all(torch.equal(a, b) for a, b in zip(mk.random_mask_indices(2, 9, seed=seed),
                                                     mk.random_mask_indices(2, 9, seed=7)))
        x = torch.randn(2, 9, 3)
        assert torch.equal(mk.random_masking(x, seed=seed)[0], mk.random_masking(x, seed=7)[0])
    with pytest.raises(TypeError, match="seed"):
        mk.block_mask(2, seed=np.float64(7))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_cuda_device_without_cuda_says_so():
    for call in (lambda: mk.random_mask_indices(2, 10, device="cuda"), lambda: mk.simmim_mask(2, device="cuda"),
                 lambda: mk.block_mask(2, device="cuda")):
        with pytest.raises(ValueError, match="device='cuda'.*torch.cuda.is_available"):
            call()


def test_avg_dist_refuses_huge_patches():
    for patch in (2**29, 2**15):
        with pytest.raises(ValueError, match="2\\^"):
            mk.mask_avg_dist(torch.ones(1, 1, 1, dtype=torch.bool), patch)
    m = torch.zeros(1, 2, 2, dtype=torch.bool)
    m[0, 0, 0] = True
    assert mk.mask_avg_dist(m, 2**13).isfinite().all()


@native
def test_avg_dist_bool_mask_peak_memory():
    """A bool mask goes to the kernel as it is: peak RSS grows by about the mask, not ~9x it (issue 20)."""
    code = """
import resource, torch, mimkernels as mk
torch.set_num_threads(1)
m = torch.rand(64, 1024, 1024) < 0.5          # 64 MiB of bool
mk.mask_avg_dist(m[:1], 1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mk.mask_avg_dist(m, 1, backend="cpp")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout.split()[-1]) < 64 * 1.5, out.stdout


def test_reference_untouched_for_bool():
    m = torch.rand(3, 5, 6) < 0.5
    assert torch.allclose(reference.mask_avg_dist(m, 2), reference.mask_avg_dist(m.to(torch.uint8), 2))
