"""Triton helpers every family's kernels share: the launch wrapper, the rng.md draw and launch
settings. Imported only where triton is installed (family triton.py modules import it).
"""
import triton
import triton.language as tl

from mimkernels._backends import TRITON_INTERPRET


def triton_launch(kernel, *, traceable: bool = True):
    """`triton_launch(kernel)[grid](...)` inside the forward of a define_op(triton=True) op.

    traceable=False in the body of an opaque op (define_op(triton=False)): the kernel itself. Outside
    a triton_op, wrap_triton dispatches a higher-order op per launch and keeps each launch's constant
    arguments in torch's global kernel side table, which then grows with every call.
    """
    if TRITON_INTERPRET or not traceable:
        return kernel
    from torch.library import wrap_triton

    return wrap_triton(kernel)


@triton.jit
def philox_draw(seed, i, sample, STREAM: tl.constexpr):
    """rng.md draw: Philox4x32-10 at counter (i, sample, STREAM, 0), key = seed (int64 scalar).
    i, sample: integer tensors/scalars (taken mod 2^32). Returns four uint32 tensors."""
    c0 = i.to(tl.uint32)
    c1 = (c0 * 0 + sample.to(tl.uint32)).to(tl.uint32)
    c2 = c0 * 0 + STREAM
    c3 = c0 * 0
    return tl.philox(seed, c0, c1, c2.to(tl.uint32), c3.to(tl.uint32))


@triton.jit
def load_key(seed, seed_step_ptr, SEED_IN_TENSOR: tl.constexpr):
    """The Philox key of a launch (rng.md "Seeds in a tensor"): `seed` (int64 scalar) as given, or, with
    SEED_IN_TENSOR, derive_seed(seed, step mod 2^32) of the int64 pair at seed_step_ptr, read on the device.
    A kernel whose store addresses depend on the key loads the pair itself and calls pair_key: torch's store
    analysis takes a pointer passed to a helper as written when a store address depends on the helper's result."""
    if SEED_IN_TENSOR:
        return pair_key(tl.load(seed_step_ptr), tl.load(seed_step_ptr + 1 + tl.arange(0, 1)))
    else:
        return seed


@triton.jit
def pair_key(seed, step):
    """derive_seed(seed, step mod 2^32) as an int64 scalar: seed an int64 scalar, step a (1,) int64 tensor."""
    x0, x1, _, _ = tl.philox(seed, step.to(tl.uint32), step.to(tl.uint32) * 0,
                             step.to(tl.uint32) * 0, step.to(tl.uint32) * 0)
    return tl.sum((x0.to(tl.uint64) | (x1.to(tl.uint64) << 32)).to(tl.int64), axis=0)


def block_settings(n: int, max_block: int = 4096) -> tuple[int, int]:
    """(BLOCK, num_warps) for a row of n elements: BLOCK = next power of two (capped), warps by size."""
    block = min(triton.next_power_of_2(max(int(n), 1)), max_block)
    num_warps = 8 if block >= 2048 else 4 if block >= 512 else 2 if block >= 128 else 1
    return block, num_warps
