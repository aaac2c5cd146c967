"""The roofline's own row: torch's copy of an MAE image batch (B x 3 x 224 x 224) into a buffer of the
same size. Every image-to-image op (patchify, filters, targets) reads and writes at least these bytes,
so this row's % of copy is the most any such op can reach at that size: near 100% at B=256, less at
B=8 where launch overhead shows. It also runs the harness end to end: on the CPU (B=8, in CI) and on
the GPU (B=8 and 256, fp32 and bf16), with input rotation."""
import pytest
import torch


def copy_case(timed, batch, dtype, device):
    def make_inputs():
        src = torch.randn(batch, 3, 224, 224, device=device).to(dtype)
        return src, torch.empty_like(src)

    src, _ = make_inputs()
    timed(lambda s, d: d.copy_(s), inputs=make_inputs, bytes_moved=2 * src.numel() * src.element_size(),
          kernel="copy", provider="eager", batch=batch, dtype=str(dtype))


def test_copy_cpu(timed):
    copy_case(timed, 8, torch.float32, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU benchmark")
@pytest.mark.parametrize("batch", [8, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_copy_cuda(timed, batch, dtype):
    copy_case(timed, batch, dtype, "cuda")
