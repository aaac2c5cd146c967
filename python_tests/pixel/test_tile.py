"""The patch tile of pixel/triton.py (the patch-layout kernels: C and p compile-time, groups of VEC pixels
permuted between channel tiles and (p, q, c) rows in registers) on the shapes that exercise its corners,
and the bounds of gather_patches (issue 20): ids out of range, negative, huge and duplicated, never an
access outside the tensors, run in a subprocess where a crash was possible (the interpreter segfaulted).

Each kernel is checked against the reference: copies bit-exact, the target and the losses within
SPEC.md §9."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mimkernels import _backends
from mimkernels.pixel import reference

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

ROOT = Path(__file__).resolve().parents[2]

# (B, C, H, W, p): p a power of two (VEC up to 16 bytes), p = 14 and 6 (p·p not a power of two: padded
# groups, 64-bit vectors), p = 1 and 2 (one group a row), odd channel counts.
SHAPES = [(2, 3, 32, 48, 16), (1, 1, 8, 8, 4), (2, 3, 28, 14, 14), (1, 2, 12, 6, 6), (3, 5, 4, 6, 2),
          (2, 4, 3, 5, 1), (1, 3, 64, 32, 32)]
COPY_DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64, torch.uint8, torch.int64, torch.bool]


def _kernels():
    from mimkernels.pixel import triton as kernels

    return kernels


def _images(shape, dtype):
    x = torch.randn(*shape[:4]) * 50
    if dtype == torch.bool:
        return x > 0
    return x.to(dtype)


def _views(x):
    yield "contiguous", x
    yield "channels_last", x.contiguous(memory_format=torch.channels_last)
    yield "strided W", torch.stack([x, x], dim=-1)[..., 0]
    yield "batch-expanded", x[:1].expand(x.shape[0], *x.shape[1:])


@pytest.mark.parametrize("dtype", COPY_DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_copies_bit_exact(shape, dtype):
    """patchify, unpatchify, gather_patches: bit-exact on every dtype (bool and integer included), view
    and tile shape."""
    kernels = _kernels()
    b, c, h, w, p = shape
    length = (h // p) * (w // p)
    for name, x in _views(_images(shape, dtype)):
        expected = reference.patchify(x, p)
        rows = kernels.patchify(x, p)
        assert torch.equal(rows, expected), name
        assert torch.equal(kernels.unpatchify(rows.transpose(0, 1).contiguous().transpose(0, 1), p, c, h, w), x), name
        ids = torch.stack([torch.randperm(length)[: max(1, length // 2)] for _ in range(b)])
        assert torch.equal(kernels.gather_patches(x, ids, p), expected[torch.arange(b)[:, None], ids]), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("shape", SHAPES[:4], ids=str)
def test_target_and_losses_on_tile_corners(shape, dtype):
    """patch_norm_target and norm_pix_mse_loss (forward and both gradients) against the reference's
    autograd at p = 16, 4, 14, 6 on a channels_last image: SPEC.md §9 tolerances (fp32 statistics)."""
    b, c, h, w, p = shape
    length, d = (h // p) * (w // p), p * p * c
    tol = dict(rtol=1e-4, atol=1e-5) if dtype != torch.bfloat16 else dict(rtol=2e-2, atol=2e-2)
    imgs = torch.randn(b, c, h, w, dtype=torch.float64).to(dtype).contiguous(memory_format=torch.channels_last)
    pred = torch.randn(b, length, d, dtype=torch.float64).to(dtype)
    mask = torch.rand(b, length) < 0.6
    mask[:, 0] = True
    kernels = _kernels()
    torch.testing.assert_close(kernels.patch_norm_target(imgs, p, 1e-6).double(),
                               reference.patch_norm_target(imgs.double(), p, 1e-6), **tol)
    for norm in (True, False):
        x, y = imgs.double().clone().requires_grad_(), pred.double().clone().requires_grad_()
        expected = reference.norm_pix_mse_loss(y, x, mask, p, norm, 1e-6)
        expected.backward()
        got = kernels.norm_pix_mse_loss(pred, imgs, mask, p, norm, 1e-6)
        torch.testing.assert_close(got.double(), expected.detach(), rtol=1e-4 if dtype != torch.bfloat16 else 1e-2,
                                   atol=1e-6)
        g_pred, g_imgs = kernels.norm_pix_mse_loss_backward(torch.ones(()), pred, imgs, mask, p, norm, 1e-6,
                                                            [True, True])
        torch.testing.assert_close(g_pred.double(), y.grad, **tol)
        torch.testing.assert_close(g_imgs.double(), x.grad, **tol)
    # the target's own backward
    x = imgs.double().clone().requires_grad_()
    upstream = torch.randn(b, length, d, dtype=torch.float64)
    reference.patch_norm_target(x, p, 1e-6).backward(upstream)
    (g,) = kernels.patch_norm_target_backward(upstream.to(dtype), imgs, p, 1e-6, [True])
    torch.testing.assert_close(g.double(), x.grad, **tol)


@pytest.mark.parametrize("d", [768, 108, 7, 1024, 48 * 17])
def test_masked_mse_rows_chunks(d):
    """masked_mse_loss on rows: D cut into chunks of a power of two (768 = 3 × 256), one padded chunk
    when that would take more than 16 (108 = 27 × 4, 7, 816 = 51 × 16); strided pred, float mask."""
    kernels = _kernels()
    pred = torch.randn(3, 5, 2 * d)[..., ::2]
    target = torch.randn(3, 5, d)
    mask = (torch.rand(3, 5) < 0.5).float()
    mask[0, 0] = 1
    p64, t64 = pred.double().clone().requires_grad_(), target.double().clone().requires_grad_()
    expected = reference.masked_mse_loss(p64, t64, mask)
    expected.backward()
    torch.testing.assert_close(kernels.masked_mse_loss(pred, target, mask).double(), expected.detach(), rtol=1e-5,
                               atol=0)
    g_pred, g_target = kernels.masked_mse_loss_backward(torch.ones(()), pred, target, mask, [True, True])
    torch.testing.assert_close(g_pred.double(), p64.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(g_target.double(), t64.grad, rtol=1e-5, atol=1e-7)


def test_int64_index_path(monkeypatch):
    """The kernels with IDX = int64 (what the launchers pick when an in-sample offset or the row count
    reaches 2^31) give the same results as the int32 path."""
    import triton.language as tl

    kernels = _kernels()
    b, c, h, w, p = 2, 3, 16, 24, 8
    imgs = torch.randn(b, c, h, w)
    ids = torch.tensor([[0, 5, 5, 9], [3, 1, -2, 7]])
    pred = torch.randn(b, 6, p * p * c)
    mask = torch.rand(b, 6) < 0.5
    mask[:, 0] = True

    def run():
        rows = kernels.patchify(imgs, p)
        return (rows, kernels.unpatchify(rows, p, c, h, w), kernels.gather_patches(imgs, ids, p, 1),
                kernels.gather_patches_backward(pred[:, :4], imgs, ids, p, 1, [True])[0],
                kernels.patch_norm_target(imgs, p, 1e-6),
                kernels.norm_pix_mse_loss(pred, imgs, mask, p, True, 1e-6),
                *kernels.norm_pix_mse_loss_backward(torch.ones(()), pred, imgs, mask, p, True, 1e-6, [True, True]))

    narrow = run()
    assert kernels._index_type(b * 6, imgs.numel()) == tl.int32
    assert kernels._index_type(b * 6, 2 ** 31) == tl.int64 and kernels._index_type(2 ** 31, 0) == tl.int64
    monkeypatch.setattr(kernels, "_index_type", lambda *_: tl.int64)
    for got, want in zip(run(), narrow):
        assert torch.equal(got, want)


# ---- bounds (issue 20): gather_patches and its backward, whatever the ids ------------------------------

def _run_isolated(body: str) -> str:
    """Run `body` in a fresh interpreter process (a bad access there segfaulted the interpreter);
    returns its stdout, failing on any non-zero exit (a crash is a failure, not a skip)."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    env.pop("MIMKERNELS_DEBUG", None)
    script = "import torch\nimport mimkernels as mk\nfrom mimkernels.pixel import triton as kernels, reference\n" + \
        textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_out_of_range_ids_give_zeros_and_are_dropped():
    """Issue 20's table, on the Triton backend without MIMKERNELS_DEBUG: 2×3×8×8 images, patch 4 (L = 4).
    An id outside [P, P + L) — L, 1000000, −1, −100000, ±2^62, and id 0 with one prefix token — gives a
    row of zeros (never another sample's pixels), and the backward drops that row's gradient."""
    out = _run_isolated("""
        imgs = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
        patches = reference.patchify(imgs, 4)
        for prefix, bad in ((0, 4), (0, 1000000), (0, -1), (0, -100000), (0, 2 ** 62), (0, -2 ** 62), (1, 0),
                            (1, 5), (3, 2 ** 63 - 1)):
            ids = torch.tensor([[prefix + 0, bad], [prefix + 2, prefix + 1]])
            for rows in (kernels.gather_patches(imgs, ids, 4, prefix),
                         mk.gather_patches(imgs, ids, 4, num_prefix_tokens=prefix, backend="triton")):
                assert torch.equal(rows[0, 0], patches[0, 0]), (prefix, bad)
                assert torch.equal(rows[0, 1], torch.zeros(48)), (prefix, bad, rows[0, 1, :4])
                assert torch.equal(rows[1], patches[1, [2, 1]]), (prefix, bad)
            grad = torch.randn(2, 2, 48)
            (g,) = kernels.gather_patches_backward(grad, imgs, ids, 4, prefix, [True])
            kept = torch.zeros(2, 4, 48)
            kept[0, 0], kept[1, 2], kept[1, 1] = grad[0, 0], grad[1, 0], grad[1, 1]
            assert torch.equal(g, reference.unpatchify(kept, 4, 3, (2, 2))), (prefix, bad)
            x = imgs.clone().requires_grad_()
            mk.gather_patches(x, ids, 4, num_prefix_tokens=prefix, backend="triton").backward(grad)
            assert torch.equal(x.grad, g), (prefix, bad)
        print("bounded")
    """)
    assert "bounded" in out


def test_duplicate_ids_accumulate():
    """Duplicate ids: the Triton backward sums every row's gradient (issue 20: it kept one, grad sum 96
    against torch's 144), in ascending k, the same as the torch backend's autograd; strided ids too."""
    out = _run_isolated("""
        imgs = torch.randn(2, 3, 8, 8)
        wide = torch.tensor([[1, 9, 1, 9, 3, 9], [0, 9, 0, 9, 0, 9]])
        ids = wide[:, ::2]  # [[1, 1, 3], [0, 0, 0]], stride 2
        for backend in ("torch", "triton"):
            x = imgs.clone().requires_grad_()
            mk.gather_patches(x, ids, 4, backend=backend).sum().backward()
            print(backend, float(x.grad.sum()))
            if backend == "torch":
                expected = x.grad
        torch.testing.assert_close(x.grad, expected, rtol=0, atol=1e-6)
        grad = torch.randn(2, 3, 48, dtype=torch.float64)
        (g,) = kernels.gather_patches_backward(grad, imgs.double(), ids, 4, 0, [True])
        rows = torch.zeros(2, 4, 48, dtype=torch.float64)
        rows[0, 1] = grad[0, 0] + grad[0, 1]
        rows[0, 3] = grad[0, 2]
        rows[1, 0] = (grad[1, 0] + grad[1, 1]) + grad[1, 2]
        assert torch.equal(g, reference.unpatchify(rows, 4, 3, (2, 2)))
        print("summed")
    """)
    assert "summed" in out
    sums = dict(line.split() for line in out.splitlines() if line.startswith(("torch", "triton")))
    assert float(sums["triton"]) == pytest.approx(float(sums["torch"])) == 288.0  # every row counted: 2 × 3 × 48
