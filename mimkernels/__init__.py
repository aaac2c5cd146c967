"""mimkernels: fused kernels for masked image modeling (MAE, SimMIM, MaskFeat, MFM, PixMIM).

Functional ops live in their families (`mimkernels.pixel`, `mimkernels.masking`, ...) and are
re-exported here; `mimkernels.nn` holds drop-in modules; `python -m mimkernels.info` says what
was built and what can run.
"""
from mimkernels import rng
from mimkernels.pixel import patchify, unpatchify
from mimkernels.masking import gather_patches, random_mask_indices, random_masking, unshuffle_tokens
from mimkernels.frequency import (IMAGENET_MEAN, IMAGENET_STD, circular_filter, frequency_loss, frequency_mask,
                                  lowfreq_target, mfm_corrupt)

__version__ = "0.1.0"

__all__ = ["__version__", "rng", "patchify", "unpatchify", "random_mask_indices", "random_masking", "gather_patches",
           "unshuffle_tokens", "IMAGENET_MEAN", "IMAGENET_STD", "frequency_mask", "circular_filter", "mfm_corrupt",
           "lowfreq_target", "frequency_loss"]
