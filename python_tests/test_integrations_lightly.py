"""lightly-compatible token masks and MAE targets (mimkernels.integrations.lightly).

lightly imports torchvision, whose PyPI wheels do not load beside torch 2.13's CPU build, so the
real package cannot be imported in CI: the oracles below re-derive lightly.models.utils (v1.6.0:
random_token_mask, get_at_index, patchify, normalize_mean_var) step by step from its documented
conventions (integration.md §3).
"""
import types

import pytest
import torch

from mimkernels.integrations import lightly as mkl


def lightly_random_token_mask(size, mask_ratio=0.6, mask_class_token=False, device=None, noise=None):
    batch_size, sequence_length = size
    mask_sequence_length = sequence_length - int(not mask_class_token)
    num_keep = int(mask_sequence_length * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(batch_size, sequence_length, device=device)
    if not mask_class_token and sequence_length > 0:
        noise[:, 0] = -1
        num_keep = max(1, num_keep + 1)
    indices = torch.argsort(noise, dim=1)
    return indices[:, :num_keep], indices[:, num_keep:]


def lightly_patchify(images, patch_size):
    n, c, h, w = images.shape
    assert h == w and h % patch_size == 0
    g = h // patch_size
    patches = images.reshape(n, c, g, patch_size, g, patch_size)
    patches = torch.einsum("nchpwq->nhwpqc", patches)
    return patches.reshape(n, g * g, patch_size ** 2 * c)


def lightly_get_at_index(tokens, index):
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def lightly_normalize_mean_var(x, dim=-1, eps=1.0e-6):
    mean = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


@pytest.mark.parametrize("size,ratio,mask_cls", [((3, 17), 0.75, False), ((2, 50), 0.6, False), ((4, 10), 0.9, False),
                                                 ((3, 17), 0.75, True), ((2, 1), 0.6, False), ((2, 5), 0.0, False)])
def test_random_token_mask_equals_lightly(size, ratio, mask_cls):
    noise = torch.rand(*size, generator=torch.Generator().manual_seed(sum(size)))
    assert all(row.unique().numel() == size[1] for row in noise)
    want = lightly_random_token_mask(size, ratio, mask_cls, noise=noise.clone())
    got = mkl.random_token_mask(size, ratio, mask_cls, noise=noise)
    for w, g in zip(want, got):
        assert torch.equal(w, g) and g.dtype == torch.int64
    if not mask_cls:
        assert (got[0][:, 0] == 0).all()
    torch.manual_seed(7)     # no noise: lightly's own torch.rand draw on the global stream
    want = lightly_random_token_mask(size, ratio, mask_cls)
    after_want = torch.rand(3)
    torch.manual_seed(7)
    got = mkl.random_token_mask(size, ratio, mask_cls)
    assert torch.equal(torch.rand(3), after_want)
    for w, g in zip(want, got):
        assert torch.equal(w, g)


def test_random_token_mask_counts_generator_and_errors():
    # 197 tokens at 0.75: 49 + cls kept since v1.5.10; one patch fewer with the old count
    assert mkl.random_token_mask((2, 197), 0.75)[0].shape == (2, 50)
    assert mkl.random_token_mask((2, 197), 0.75, legacy_count=True)[0].shape == (2, 49)
    a = mkl.random_token_mask((2, 197), generator=torch.Generator().manual_seed(1))
    b = mkl.random_token_mask((2, 197), generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    keep, masked = a
    assert torch.equal(torch.cat([keep, masked], 1).sort(1).values, torch.arange(197).expand(2, -1))
    with pytest.raises(ValueError, match="noise"):
        mkl.random_token_mask((2, 5), noise=torch.rand(2, 4))
    with pytest.raises(ValueError, match="mask_ratio"):
        mkl.random_token_mask((2, 5), 1.5)


@pytest.mark.parametrize("prefix", [1, 2])
@pytest.mark.parametrize("norm_pix", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_masked_patch_target_equals_lightly_pipeline(prefix, norm_pix, dtype):
    p, side = 4, 16
    images = torch.randn(3, 3, side, side, generator=torch.Generator().manual_seed(2)).to(dtype)
    tokens = (side // p) ** 2 + prefix
    noise = torch.rand(3, tokens, generator=torch.Generator().manual_seed(3))
    noise[:, :prefix] = -1   # prefix tokens are never masked
    _, idx_mask = lightly_random_token_mask((3, tokens), 0.75, noise=noise)
    want = lightly_get_at_index(lightly_patchify(images, p), idx_mask - prefix)
    if norm_pix:
        want = lightly_normalize_mean_var(want.float()).to(dtype)
    got = mkl.masked_patch_target(images, idx_mask, p, num_prefix_tokens=prefix, norm_pix=norm_pix)
    assert got.dtype == dtype
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(got, want, **tol)


def test_masked_patch_target_gradient_and_patchify():
    images = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([[1, 3], [4, 2]])
    torch.autograd.gradcheck(lambda x: mkl.masked_patch_target(x, idx, 4, norm_pix=True), (images,))
    assert torch.equal(mkl.patchify(images.detach(), 4), lightly_patchify(images.detach(), 4))


def test_patch_lightly_rebinds_and_restores():
    utils = types.ModuleType("lightly_models_utils_standin")
    utils.random_token_mask, utils.patchify = lightly_random_token_mask, lightly_patchify
    mkl.patch_lightly(utils)
    mkl.patch_lightly(utils)
    assert utils.random_token_mask is mkl.random_token_mask and utils.patchify is mkl.patchify
    mkl.unpatch_lightly()
    assert utils.random_token_mask is lightly_random_token_mask and utils.patchify is lightly_patchify
    mkl.unpatch_lightly()
    with pytest.raises(ValueError, match="not supported"):
        mkl.patch_lightly(types.ModuleType("empty"))
