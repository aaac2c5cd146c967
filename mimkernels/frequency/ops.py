"""The frequency family in the torch.library catalogue (SPEC.md §8): one declaration per (op, backend).

    torch.ops.mimkernels.frequency_mask.torch      reference.frequency_mask   (no kernel)
    torch.ops.mimkernels.frequency_loss.torch      reference.frequency_loss   (no kernel)
    torch.ops.mimkernels.circular_filter.triton    triton.circular_filter     + backward
    torch.ops.mimkernels.mfm_corrupt.triton        triton.mfm_corrupt         + backward
    torch.ops.mimkernels.lowfreq_target.triton     triton.lowfreq_target      (not differentiable)

The Triton ops are opaque custom ops (triton=False) on every device, not triton_ops: their twiddle
plans are built on the host from the geometry and cached, which functional tracing cannot do, and
their bodies launch with `triton_launch(..., traceable=False)`. torch.compile calls them as they are.
"""
from __future__ import annotations

import torch

from mimkernels._backends import HAS_TRITON
from mimkernels._library import define_op, define_reference
from mimkernels.frequency import reference

define_reference("frequency_mask", reference.frequency_mask)
define_reference("frequency_loss", reference.frequency_loss)

if HAS_TRITON:
    from mimkernels.frequency import triton

    def _image_fake(imgs, *args):
        """Each op returns a contiguous tensor shaped like imgs, in its dtype."""
        return torch.empty_like(imgs, memory_format=torch.contiguous_format)

    # the backward filters the gradient with the forward's mask; it re-reads imgs for the clamp test
    define_op("circular_filter.triton", triton.circular_filter, fake=_image_fake, triton=False,
              backward=triton.circular_filter_backward, differentiable=("imgs",), reads=("imgs", "high_pass"))
    define_op("mfm_corrupt.triton", triton.mfm_corrupt, fake=_image_fake, triton=False,
              backward=triton.mfm_corrupt_backward, differentiable=("imgs",), reads=("imgs", "high_pass"))
    define_op("lowfreq_target.triton", triton.lowfreq_target, fake=_image_fake, triton=False)
