"""Pixel family benchmarks at MAE's canonical batch (B=256, 3x224x224, patch 16): patchify, the
eager reference vs its torch.compile vs the Triton kernel. A copy: bytes = one read + one write."""
import pytest
import torch

import mimkernels as mk
from mimkernels.pixel import reference

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")


@pytest.mark.parametrize("batch", [8, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("provider", ["eager", "compile", "triton"])
def test_patchify(timed, batch, dtype, provider):
    imgs = torch.randn(batch, 3, 224, 224, device="cuda", dtype=dtype)
    fns = {
        "eager": lambda t: reference.patchify(t, 16).contiguous(),
        "compile": torch.compile(lambda t: reference.patchify(t, 16).contiguous()),
        "triton": lambda t: mk.patchify(t, 16, backend="triton"),
    }
    timed(fns[provider], imgs, bytes_moved=2 * imgs.numel() * imgs.element_size(),
          kernel="patchify", provider=provider, batch=batch, dtype=str(dtype))
