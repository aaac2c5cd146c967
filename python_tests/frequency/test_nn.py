"""The family's nn.Modules equal their functional ops and print their arguments."""
import torch

import mimkernels as mk
from mimkernels.frequency import IMAGENET_MEAN, IMAGENET_STD
from mimkernels.frequency import nn as mknn


def test_modules():
    x = torch.rand(4, 3, 16, 16)
    corrupt = mknn.MFMCorruption(4, 0.5)
    out, freq_mask, is_low = corrupt(x, seed=11)
    expected = mk.mfm_corrupt(x, 4, 0.5, seed=11, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert torch.equal(out, expected[0]) and torch.equal(freq_mask, expected[1]) and torch.equal(is_low, expected[2])
    assert "radius=4" in repr(corrupt)
    z = torch.randn(2, 3, 16, 16)
    assert torch.equal(mknn.LowFreqTarget(5)(z), mk.lowfreq_target(z, 5))
    pred = torch.randn(4, 3, 16, 16)
    assert torch.equal(mknn.FrequencyLoss()(pred, out, freq_mask), mk.frequency_loss(pred, out, freq_mask))
