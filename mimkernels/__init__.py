"""mimkernels: fused kernels for masked image modeling (MAE, SimMIM, MaskFeat, MFM, PixMIM).

Functional ops live in their families (`mimkernels.pixel`, `mimkernels.masking`, ...) and are
re-exported here; `mimkernels.nn` holds drop-in modules; `python -m mimkernels.info` says what
was built and what can run.
"""
from mimkernels import rng
from mimkernels.pixel import (masked_l1_loss, masked_mse_loss, norm_pix_mse_loss, patch_norm_target, patchify,
                               unpatchify)
from mimkernels.hog import hog, hog_map
from mimkernels.masking import (MaskCollator, block_mask, gather_patches, mask_avg_dist, random_mask_indices,
                                random_masking, simmim_mask, unshuffle_tokens)
from mimkernels.frequency import (IMAGENET_MEAN, IMAGENET_STD, circular_filter, frequency_loss, frequency_mask,
                                  lowfreq_target, mfm_corrupt)
from mimkernels import mask_zoo
from mimkernels.mask_zoo import *  # noqa: F401,F403  (the mask zoo's ops: mask_zoo.__all__)
from mimkernels import _library

_library.register_triton_kernels()  # after every family defined its ops

__version__ = "0.1.0"

__all__ = ["__version__", "rng", "patchify", "unpatchify", "random_mask_indices", "random_masking", "gather_patches",
           "unshuffle_tokens", "patch_norm_target", "masked_mse_loss", "norm_pix_mse_loss", "masked_l1_loss",
           "hog", "hog_map", "simmim_mask", "block_mask", "mask_avg_dist", "MaskCollator",
           "IMAGENET_MEAN", "IMAGENET_STD", "frequency_mask", "circular_filter", "mfm_corrupt", "lowfreq_target",
           "frequency_loss", *mask_zoo.__all__]
