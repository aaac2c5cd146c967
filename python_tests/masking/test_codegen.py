"""The GPU side of the masking family's Triton kernels, checked without a GPU.

CI runs the kernels only under TRITON_INTERPRET=1, which never runs Triton's code generator. Here the
real launchers of mimkernels/masking/triton.py (one per op and backward) run on meta tensors inside
`record_triton_launches` (nothing is computed or allocated), and what they would launch is
  - checked against CUDA's grid limits at the canonical shapes and at B = 2048;
  - compiled to sm_90 cubins with Triton's bundled ptxas, one launch per kernel and specialization the
    launchers use: every flag value, fp32/fp16/bf16 (and float64 where a launcher passes it), by
    python_tests/test_codegen.py in one process for every family (`python -m benchmarks.codegen`),
    with torch's store analysis, the triton_op tracing of `triton_op_calls` and GPU_CHECKS.
gather_patches runs the pixel family's launchers (its patch copy through ids): python_tests/pixel/
test_codegen.py compiles them; GPU_CHECKS traces the gather_patches ops here.
"""
import sys

import pytest
import torch

from benchmarks import codegen
from mimkernels import _backends
from mimkernels.masking import triton as M

pytestmark = pytest.mark.skipif(not _backends.HAS_TRITON, reason="needs triton")

META = torch.device("meta")
FLOATS = (torch.float32, torch.bfloat16, torch.float16)
# The pointers each kernel writes (either direction of the row copy): the launchers' outputs.
KERNEL_OUTPUTS = {
    "_mae_mask_kernel": {"ids_keep_ptr", "ids_restore_ptr", "mask_ptr"},
    "_row_copy_kernel": {"rows_ptr", "x_ptr"},
    "_unshuffle_kernel": {"out_ptr"},
    "_unshuffle_backward_kernel": {"gx_ptr", "part_ptr"},
}


def launch_every_kernel(batch: int, size: int, *, variants: bool) -> None:
    """Call every launcher of the family on meta tensors for `batch` images of size² pixels (MAE patch
    16, D = 1024 tokens). variants: also the flag values and dtypes the launchers take."""
    def empty(*shape, dtype=torch.float32):
        return torch.empty(shape, dtype=dtype, device=META)

    grid = size // 16
    length, keep, d_tok = grid * grid, (grid * grid) // 4, 1024
    ids = empty(batch, keep, dtype=torch.int64)
    ids_restore = empty(batch, length, dtype=torch.int64)
    token = empty(1, 1, d_tok)

    M.random_mask_indices(batch, length, keep, 2 ** 40 + 7, None, 3, META)
    M.random_mask_indices_per_sample(empty(batch, dtype=torch.int64), length, length // 2, 2 ** 40 + 7, None, 3)
    if variants:  # the key read from a seed tensor (SEED_IN_TENSOR, rng.md "Seeds in a tensor")
        M.random_mask_indices(batch, length, keep, 0, empty(2, dtype=torch.int64), 3, META)
    else:  # the largest sort: recorded, not compiled (a minute of ptxas for 16384 int64 keys)
        M.random_mask_indices(batch, M.MAX_PATCHES, 1, 1, None, 0, META)
    for dt in FLOATS if variants else FLOATS[:1]:
        M.random_mask_indices_from_noise(empty(batch, length, dtype=dt), keep)
        tokens = empty(batch, length, d_tok, dtype=dt)
        M.random_masking_backward(M.random_masking(tokens, ids), tokens, ids, [True])
        x = empty(batch, 1 + keep, d_tok, dtype=dt)
        M.unshuffle_tokens(x, ids_restore, token)
        M.unshuffle_tokens_backward(empty(batch, 1 + length, d_tok, dtype=dt), x, ids_restore, token, 1, [True, True])
    if variants:
        wide = empty(batch, 1 + keep, 64, dtype=torch.float64)
        M.unshuffle_tokens_backward(empty(batch, 1 + length, 64, dtype=torch.float64), wide, ids_restore,
                                    empty(64, dtype=torch.float64), 1, [True, True])
        for prefix in (0, 5):  # no prefix token; timm's cls + 4 registers (1 is the default above)
            x = empty(batch, prefix + keep, d_tok)
            M.unshuffle_tokens(x, ids_restore, token, prefix)
            M.unshuffle_tokens_backward(empty(batch, prefix + length, d_tok), x, ids_restore, token, prefix,
                                        [True, True])


def _calls():
    ids, ids_restore = torch.tensor([[0, 2], [3, 1]]), torch.tensor([[0, 2, 3, 1], [1, 0, 2, 3]])
    tokens, token = torch.randn(2, 4, 8), torch.zeros(1, 1, 8)
    imgs, rows = torch.randn(2, 3, 32, 32), torch.randn(2, 2, 768)
    return ids, ids_restore, tokens, token, imgs, rows


def triton_op_calls():
    """catalogue entry -> the arguments of a call on small CPU tensors, for the triton_ops whose launchers
    are this family's (masking/triton.py)."""
    ids, ids_restore, tokens, token, _, _ = _calls()
    return {
        "random_mask_indices.triton": (2, 4, 1, 7, None, 0, torch.device("cpu")),
        "random_mask_indices.triton_from_noise": (torch.rand(2, 4), 1),
        "random_mask_indices.triton_per_sample": (torch.tensor([3, 1]), 4, 3, 0, torch.tensor([7, 2]), 0),
        "random_masking.triton": (tokens, ids),
        "random_masking.triton_backward": (tokens[:, :2], tokens, ids, [True]),
        "unshuffle_tokens.triton": (tokens[:, :3], ids_restore, token),
        "unshuffle_tokens.triton_backward": (torch.randn(2, 5, 8), tokens[:, :3], ids_restore, token, 1, [True, True]),
    }


def check_gather_patches_ops() -> None:
    """gather_patches.triton and its backward, whose launchers are the pixel family's: traced into
    kernel launches, and listing the patch-copy kernel for torch.compile's cache key."""
    ids, _, _, _, imgs, rows = _calls()
    calls = {"gather_patches.triton": (imgs, ids, 16),
             "gather_patches.triton_backward": (rows, imgs, ids, 16, 0, [True])}
    codegen.check_triton_ops_list_their_kernels(calls, {"_patch_copy_kernel"})
    codegen.check_triton_ops_trace_into_kernels(calls)


GPU_CHECKS = (check_gather_patches_ops,)


def test_every_kernel_is_recorded_with_every_flag_value():
    """The compile set covers every launched kernel, each bool constexpr with both values, each dtype."""
    launches = codegen.compile_set(sys.modules[__name__])
    assert {launch.name for launch in launches} == codegen.launched_kernel_names(M) == set(KERNEL_OUTPUTS)
    flags = codegen.bool_flag_values(launches)
    assert flags and all(values == {False, True} for values in flags.values()), flags
    dtypes = {(launch.name, ty) for launch in launches for ty in launch.signature()[0].values()}
    for kernel in ("_row_copy_kernel", "_unshuffle_kernel", "_mae_mask_kernel"):
        for ty in ("*fp32", "*bf16", "*fp16"):
            assert (kernel, ty) in dtypes, (kernel, ty)


def test_every_triton_op_of_the_family_is_traced():
    """triton_op_calls and GPU_CHECKS together cover every Triton overload the family registers."""
    overloads = {f"{op}.{overload}" for op in ("random_mask_indices", "random_masking", "gather_patches",
                                               "unshuffle_tokens")
                 for overload in getattr(torch.ops.mimkernels, op).overloads() if overload.startswith("triton")}
    assert overloads == set(triton_op_calls()) | {"gather_patches.triton", "gather_patches.triton_backward"}


@pytest.mark.parametrize("batch", [256, 2048])
def test_grids_within_cuda_limits(batch):
    """Every launch at 224 px (B = 256 and 2048) and at a 1024 px image fits CUDA's grid limits, and no
    kernel gets a torch.bool tensor (Triton makes it an int1 pointer)."""
    launches = codegen.check_grids(sys.modules[__name__], batch)
    assert {launch.name for launch in launches} == codegen.launched_kernel_names(M)
