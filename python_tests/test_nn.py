"""mimkernels.nn: each module equals its functional op, trains its parameters, prints its arguments."""
import torch

import mimkernels as mk
from mimkernels import nn as mknn


def test_patchify_modules_round_trip():
    imgs = torch.randn(2, 3, 8, 12)
    x = mknn.Patchify(4)(imgs)
    assert torch.equal(x, mk.patchify(imgs, 4))
    assert torch.equal(mknn.Unpatchify(4, 3, grid_size=(2, 3))(x), imgs)
    assert "patch_size=4" in repr(mknn.Patchify(4))


def test_mae_modules_compose_like_the_functional_ops():
    x = torch.randn(2, 16, 8)
    masking = mknn.RandomMasking(0.75)
    visible, mask, ids_restore = masking(x, seed=3)
    expected = mk.random_masking(x, 0.75, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((visible, mask, ids_restore), expected))
    ids_keep, _, _ = mk.random_mask_indices(2, 16, 0.75, seed=3)
    imgs = torch.randn(2, 3, 16, 16)
    assert torch.equal(mknn.VisiblePatches(4)(imgs, ids_keep), mk.gather_patches(imgs, ids_keep, 4))
    unshuffle = mknn.UnshuffleTokens(8)
    tokens = torch.cat([torch.randn(2, 1, 8), visible], 1)
    out = unshuffle(tokens, ids_restore)
    assert out.shape == (2, 17, 8)
    out.sum().backward()
    assert unshuffle.mask_token.grad.flatten().tolist() == [2.0 * 12] * 8  # B·(L−K) masked rows
    registers = mknn.UnshuffleTokens(8, num_prefix_tokens=5)   # timm: cls + 4 register tokens
    prefixed = torch.cat([torch.randn(2, 5, 8), visible], 1)
    assert torch.equal(registers(prefixed, ids_restore),
                       mk.unshuffle_tokens(prefixed, ids_restore, registers.mask_token, num_prefix_tokens=5))
    assert "num_prefix_tokens=5" in repr(registers)
    assert "mask_ratio=0.75" in repr(masking)
