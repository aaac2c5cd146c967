"""Drop-in nn.Modules over the functional ops, re-exported from the families (`mimkernels.<family>.nn`)."""
from mimkernels.frequency.nn import FrequencyLoss, LowFreqTarget, MFMCorruption
from mimkernels.hog.nn import HOG
from mimkernels.masking.nn import BlockMaskGenerator, RandomMasking, SimMIMMaskGenerator, UnshuffleTokens, VisiblePatches
from mimkernels.pixel.nn import MaskedL1Loss, NormPixLoss, Patchify, Unpatchify

__all__ = ["Patchify", "Unpatchify", "NormPixLoss", "MaskedL1Loss", "RandomMasking", "VisiblePatches",
           "UnshuffleTokens", "SimMIMMaskGenerator", "BlockMaskGenerator", "HOG", "MFMCorruption", "LowFreqTarget",
           "FrequencyLoss"]
