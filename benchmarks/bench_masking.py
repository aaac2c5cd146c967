"""MAE masking benchmarks at the canonical batch (B=256, 3x224x224, patch 16, ratio 0.75, D=768,
decoder 512): index generation, gather of visible patches, unshuffle with mask tokens — MAE's eager
code, its torch.compile, and each mimkernels backend. Bytes: the minimum each op must move."""
import pytest
import torch

import mimkernels as mk
from mimkernels.masking import reference
from mimkernels.testing import backends_on

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")

B, L, P, RATIO = 256, 196, 16, 0.75
K = int(L * (1 - RATIO))


def mae_indices(noise):
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(B, L, device=noise.device)
    mask[:, :K] = 0
    return ids_shuffle[:, :K], ids_restore, torch.gather(mask, 1, ids_restore)


@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("random_mask_indices", "cuda"))
def test_index_generation(timed, provider):
    noise = torch.rand(B, L, device="cuda")
    fns = {"eager": lambda: mae_indices(noise), "compile": torch.compile(lambda: mae_indices(noise))}
    fn = fns.get(provider) or (lambda: mk.random_mask_indices(B, L, RATIO, seed=1, device="cuda", backend=provider))
    timed(fn, bytes_moved=B * (K + 2 * L) * 8, kernel="random_mask_indices", provider=provider)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("gather_patches", "cuda"))
def test_gather_patches(timed, dtype, provider):
    imgs = torch.randn(B, 3, 224, 224, device="cuda", dtype=dtype)
    ids_keep = torch.rand(B, L, device="cuda").argsort(1)[:, :K]
    fns = {"eager": lambda: reference.gather_patches(imgs, ids_keep, P),
           "compile": torch.compile(lambda: reference.gather_patches(imgs, ids_keep, P))}
    fn = fns.get(provider) or (lambda: mk.gather_patches(imgs, ids_keep, P, backend=provider))
    timed(fn, bytes_moved=2 * B * K * P * P * 3 * imgs.element_size(), kernel="gather_patches",
          provider=provider, dtype=str(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("unshuffle_tokens", "cuda"))
def test_unshuffle_tokens(timed, dtype, provider):
    x = torch.randn(B, 1 + K, 512, device="cuda", dtype=dtype)
    ids_restore = torch.rand(B, L, device="cuda").argsort(1).argsort(1)
    token = torch.randn(512, device="cuda", dtype=dtype)
    fns = {"eager": lambda: reference.unshuffle_tokens(x, ids_restore, token),
           "compile": torch.compile(lambda: reference.unshuffle_tokens(x, ids_restore, token))}
    fn = fns.get(provider) or (lambda: mk.unshuffle_tokens(x, ids_restore, token, backend=provider))
    timed(fn, bytes_moved=(x.numel() + B * (1 + L) * 512) * x.element_size(), kernel="unshuffle_tokens",
          provider=provider, dtype=str(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile"] + backends_on("random_masking", "cuda"))
def test_random_masking_forward_backward(timed, dtype, provider):
    """MAE's random_masking of the embedded tokens (B, L, 768) with the same noise, forward + backward."""
    x = torch.randn(B, L, 768, device="cuda", dtype=dtype, requires_grad=True)
    noise = torch.rand(B, L, device="cuda")
    grad = torch.randn(B, K, 768, device="cuda", dtype=dtype)
    fns = {"eager": lambda: reference.random_masking(x, RATIO, noise),
           "compile": torch.compile(lambda: reference.random_masking(x, RATIO, noise))}
    forward = fns.get(provider) or (lambda: mk.random_masking(x, RATIO, noise=noise, backend=provider))

    def step():
        x_visible = forward()[0]
        return torch.autograd.grad(x_visible, x, grad)

    # forward reads and writes K rows; backward writes the L-row gradient and reads the K-row one
    timed(step, bytes_moved=(2 * K + L + K) * B * 768 * x.element_size(), kernel="random_masking_fwd_bwd",
          provider=provider, dtype=str(dtype))
