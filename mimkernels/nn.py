"""Drop-in nn.Modules over the functional ops, re-exported from the families (`mimkernels.<family>.nn`)."""
from mimkernels.frequency.nn import FrequencyLoss, LowFreqTarget, MFMCorruption
from mimkernels.hog.nn import HOG
from mimkernels.mask_zoo import nn as _mask_zoo_nn
from mimkernels.mask_zoo.nn import *  # noqa: F401,F403  (mask_zoo/nn.py's __all__)
from mimkernels.masking.nn import BlockMaskGenerator, RandomMasking, SimMIMMaskGenerator, UnshuffleTokens, VisiblePatches
from mimkernels.pixel.nn import MaskedL1Loss, NormPixLoss, Patchify, Unpatchify

__all__ = ["Patchify", "Unpatchify", "NormPixLoss", "MaskedL1Loss", "RandomMasking", "VisiblePatches",
           "UnshuffleTokens", "SimMIMMaskGenerator", "BlockMaskGenerator", "HOG", "MFMCorruption", "LowFreqTarget",
           "FrequencyLoss", *_mask_zoo_nn.__all__]
