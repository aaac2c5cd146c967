"""The trainer's ViT and linear probe."""
import torch

from mimkernels.train import probe
from mimkernels.train.vit import Encoder, sincos_positions


def test_linear_patch_embedding_is_the_permuted_conv():
    """mimkernels/pixel/SPEC.md §1: a Linear on (p, q, c) patch rows equals timm's Conv2d patch embedding."""
    import mimkernels as mk

    p, c, e = 4, 3, 8
    conv = torch.nn.Conv2d(c, e, p, stride=p)
    imgs = torch.randn(2, c, 8, 12)
    rows = mk.patchify(imgs, p) @ conv.weight.permute(0, 2, 3, 1).reshape(e, p * p * c).T + conv.bias
    assert torch.allclose(rows, conv(imgs).flatten(2).transpose(1, 2), atol=1e-5)


def test_sincos_positions_are_distinct_with_a_zero_cls_row():
    pos = sincos_positions(16, (3, 5))
    assert pos.shape == (16, 16) and torch.equal(pos[0], torch.zeros(16))
    assert torch.cdist(pos[1:], pos[1:]).add(torch.eye(15)).min() > 0.1


def test_encoder_uses_visible_patch_positions():
    enc = Encoder((2, 2), 12, dim=8, depth=1, heads=2)
    rows = torch.randn(1, 4, 12)
    ids = torch.tensor([[2, 0]])
    visible = enc(rows[:, [2, 0]], ids=ids)
    full_order_changed = enc(rows[:, [0, 2]], ids=ids.flip(1))
    assert torch.allclose(visible[:, 0], full_order_changed[:, 0], atol=1e-5)  # attention is a set op


def test_linear_probe_separates_separable_features_and_not_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(3, (300,), generator=g)
    x = torch.nn.functional.one_hot(y, 3).double() * 3 + torch.randn(300, 3, dtype=torch.float64, generator=g) * 0.3
    x = torch.cat([x, torch.randn(300, 5, dtype=torch.float64, generator=g)], 1)
    assert probe.linear_probe(x[:200], y[:200], x[200:], y[200:], 3) > 0.95
    noise = torch.randn(300, 8, dtype=torch.float64, generator=g)
    assert probe.linear_probe(noise[:200], y[:200], noise[200:], y[200:], 3) < 0.6
