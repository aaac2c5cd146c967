"""The family's nn.Modules (mimkernels.masking.nn, re-exported by mimkernels.nn): each equals its
functional op, trains its parameters, prints its arguments."""
import torch

import mimkernels as mk
from mimkernels.masking import nn as mknn


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


def test_nn_generators_and_repr():
    sim = mknn.SimMIMMaskGenerator(224, 32, 16, 0.6)
    block = mknn.BlockMaskGenerator(num_masking_patches=75, min_num_patches=16)
    assert torch.equal(sim(5, seed=3), mk.simmim_mask(5, 224, 32, 16, 0.6, seed=3))
    assert torch.equal(block(5, seed=3, sample_offset=2),
                       mk.block_mask(5, num_masking_patches=75, min_num_patches=16, seed=3, sample_offset=2))
    assert "mask_ratio=0.6" in repr(sim) and "num_masking_patches=75" in repr(block)

