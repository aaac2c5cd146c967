"""The GPU side of the pixel family's Triton kernels, checked without a GPU.

CI runs the kernels only under TRITON_INTERPRET=1, which never runs Triton's code generator. Here the
real launchers of mimkernels/pixel/triton.py run on meta tensors inside `record_triton_launches`
(nothing is computed or allocated), and what they would launch is
  - checked against CUDA's grid limits at the canonical shapes and at B = 2048;
  - compiled to sm_90 cubins with Triton's bundled ptxas, one launch per kernel and specialization the
    launchers use: every flag value, fp32/fp16/bf16 (and uint8/float64 where a launcher passes them),
    by python_tests/test_codegen.py in one process for every family (`python -m benchmarks.codegen`),
    with torch's store analysis, the triton_op tracing and GPU_CHECKS.
"""
import sys

import pytest
import torch

from benchmarks import codegen
from mimkernels import _backends
from mimkernels.pixel import triton as P

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

META = torch.device("meta")
FLOATS = (torch.float32, torch.bfloat16, torch.float16)
OPS = ("patchify", "unpatchify", "patch_norm_target", "masked_mse_loss", "norm_pix_mse_loss", "masked_l1_loss")


def launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """Call every launcher of the family on meta tensors of `batch` images of size² pixels (MAE patch
    16, SimMIM mask cells of 32 px). variants: also the flag values and dtypes the launchers take,
    each kernel in a few launches rather than the product of all."""
    def empty(*shape, dtype=torch.float32):
        return torch.empty(shape, dtype=dtype, device=META)

    p, c = 16, 3
    grid = size // p
    length, d_pix, keep = grid * grid, p * p * c, (grid * grid) // 4
    dtypes = FLOATS if variants else FLOATS[:1]
    ids = empty(batch, keep, dtype=torch.int64)

    # patch copies (both directions, with and without ids), the normalized target and its backward
    for dt in dtypes:
        imgs = empty(batch, c, size, size, dtype=dt)
        patches = P.patchify(imgs, p)
        P.unpatchify(patches, p, c, size, size)
        P.gather_patches_backward(P.gather_patches(imgs, ids, p), imgs, ids, p, 0, [True])
        target = P.patch_norm_target(imgs, p, 1e-6)
        P.patch_norm_target_backward(target, imgs, p, 1e-6, [True])
    if variants:  # ids counting a prefix token first (gather_patches' num_prefix_tokens, lightly's indices)
        P.gather_patches_backward(P.gather_patches(imgs, ids, p, 1), imgs, ids, p, 1, [True])
    # the masked losses and their backwards
    mask = empty(batch, length, dtype=torch.bool)
    cells = empty(batch, size // 32, size // 32, dtype=torch.bool)
    imgs, pred = empty(batch, c, size, size), empty(batch, length, d_pix)
    grad = empty()
    P.norm_pix_mse_loss(pred, imgs, mask, p, True, 1e-6)  # MAE norm_pix_loss
    P.norm_pix_mse_loss_backward(grad, pred, imgs, mask, p, True, 1e-6, [True, False])
    P.masked_l1_loss(imgs, imgs, cells, c)
    P.masked_l1_loss_backward(grad, imgs, imgs, cells, c, [True, False])
    if variants:
        half = empty(batch, c, size, size, dtype=torch.bfloat16)
        rows_half = empty(batch, length, d_pix, dtype=torch.float16)
        P.masked_mse_loss(rows_half, rows_half, mask.float())
        P.norm_pix_mse_loss(pred.bfloat16(), half, mask, p, False, 0.0)
        P.masked_mse_loss_backward(grad, rows_half, rows_half, mask.float(), [True, True])
        P.norm_pix_mse_loss_backward(grad, pred.half(), half, mask, p, False, 0.0, [True, True])
        P.norm_pix_mse_loss_backward(grad, pred.double(), imgs.double(), mask, p, True, 1e-6, [False, True])
        P.masked_l1_loss(half, half, cells.to(torch.uint8), c)
        P.masked_l1_loss_backward(grad, half, imgs.half(), cells, c, [False, True])
        P.masked_l1_loss_backward(grad, imgs.double(), imgs.double(), cells.float(), c, [True, True])
        wide = empty(batch, c, 128, 128, dtype=torch.bfloat16)  # p = 64: the largest patch row in one program
        P.norm_pix_mse_loss_backward(grad, empty(batch, 4, 64 * 64 * c), wide, mask[:, :4], 64, True, 1e-6,
                                     [True, True])


# The tensors each kernel writes (either direction of the copy kernel): the launchers' outputs.
KERNEL_OUTPUTS = {
    "_patch_copy_kernel": {"img_ptr", "patch_ptr"},
    "_patch_norm_target_kernel": {"out_ptr"},
    "_patch_norm_target_bwd_kernel": {"grad_img_ptr"},
    "_masked_mse_fwd_kernel": {"part_ptr"},
    "_masked_mse_bwd_kernel": {"grad_pred_ptr", "grad_tgt_ptr"},
    "_masked_l1_fwd_kernel": {"part_ptr"},
    "_masked_l1_bwd_kernel": {"grad_xr_ptr", "grad_img_ptr"},
}


def test_every_kernel_is_recorded_with_every_flag_value():
    """The compile set covers every launched kernel, and each bool constexpr with both values."""
    launches = codegen.compile_set(sys.modules[__name__])
    assert {launch.name for launch in launches} == codegen.launched_kernel_names(P) == set(KERNEL_OUTPUTS)
    flags: dict[tuple[str, str], set] = {}
    for launch in launches:
        _, constexprs = launch.signature()
        for name, value in constexprs.items():
            if isinstance(value, bool):
                flags.setdefault((launch.name, name), set()).add(value)
    one_sided = {key: values for key, values in flags.items() if values != {False, True}}
    assert not one_sided, one_sided
    dtypes = {(launch.name, ty) for launch in launches for ty in launch.signature()[0].values()}
    for kernel in ("_patch_copy_kernel", "_masked_mse_fwd_kernel", "_masked_l1_bwd_kernel"):
        for ty in ("*fp32", "*bf16", "*fp16"):
            assert (kernel, ty) in dtypes, (kernel, ty)


@pytest.mark.parametrize("batch", [256, 2048])
def test_grids_within_cuda_limits(batch):
    """Every launch at 224 px (B = 256 and 2048) and at a 1024 px image fits CUDA's grid limits, and no
    kernel gets a torch.bool tensor (Triton makes it an int1 pointer; the launchers pass masks as uint8)."""
    launches = codegen.check_grids(sys.modules[__name__], batch)
    assert {launch.name for launch in launches} == codegen.launched_kernel_names(P)


def test_masked_l1_grid_on_tall_images():
    """SimMIM's L1 tiles a (b, c) plane along the grid's axes 1 and 2 (≤ 65535 each): a 1 × 2^17 and a
    2^17 × 8 image still fit."""
    for h, w in ((8, 2 ** 17), (2 ** 17, 8)):
        imgs = torch.empty(1, 1, h, w, device=META)
        with codegen.record_triton_launches() as recorder:
            P.masked_l1_loss(imgs, imgs, torch.empty(1, h // 8, w // 8, dtype=torch.bool, device=META), 1)
        (launch,) = recorder.launches
        assert all(n <= limit for n, limit in zip(launch.grid, codegen.MAX_GRID)), launch.grid


def triton_op_calls():
    """catalogue entry -> the arguments of a call on small CPU tensors, for every triton_op of the family."""
    imgs, rows, grad = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 768), torch.ones(())
    mask, cells = torch.rand(2, 4) < 0.5, torch.rand(2, 2, 2) < 0.5
    return {
        "patchify.triton": (imgs, 16),
        "patchify.triton_backward": (rows, imgs, 16, [True]),
        "unpatchify.triton": (rows, 16, 3, 32, 32),
        "unpatchify.triton_backward": (imgs, rows, 16, 3, 32, 32, [True]),
        "patch_norm_target.triton": (imgs, 16, 1e-6),
        "patch_norm_target.triton_backward": (rows, imgs, 16, 1e-6, [True]),
        "masked_mse_loss.triton": (rows, rows, mask),
        "masked_mse_loss.triton_backward": (grad, rows, rows, mask, [True, True]),
        "norm_pix_mse_loss.triton": (rows, imgs, mask, 16, True, 1e-6),
        "norm_pix_mse_loss.triton_backward": (grad, rows, imgs, mask, 16, True, 1e-6, [True, True]),
        "masked_l1_loss.triton": (imgs, imgs, cells, 3),
        "masked_l1_loss.triton_backward": (grad, imgs, imgs, cells, 3, [True, True]),
    }


def check_helpers_are_hashed() -> None:
    """torch.compile's cache key of a kernel covers the helpers it calls (SimMIM's L1 backward and _l1_diff)."""
    from torch._inductor.codegen.wrapper import user_defined_triton_kernel_transitive_closure_source_code
    from torch._library.triton import triton_ops_to_kernels

    kernels = triton_ops_to_kernels["mimkernels::masked_l1_loss.triton_backward"]
    l1_backward = next(k for k in kernels if k.fn.__name__ == "_masked_l1_bwd_kernel")
    assert "def _l1_diff" in user_defined_triton_kernel_transitive_closure_source_code(l1_backward)


GPU_CHECKS = (check_helpers_are_hashed,)
