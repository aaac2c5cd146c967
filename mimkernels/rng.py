"""Counter-based random numbers, bit-identical in torch, Triton and C++ (docs/rng.md).

Philox4x32-10 with key = the 64-bit seed and counter = (i, sample, stream, 0). This module is the
torch implementation (exact uint32 arithmetic in int64 tensors, any device) and the one place
that turns `seed` / `generator` / `sample_offset` arguments into a seed. The same definition lives in
csrc/include/mimkernels/rng.h (CUDA and cpp backends) and mimkernels/_triton_lib.py (tl.philox).

    >>> from mimkernels import rng
    >>> s = rng.derive_seed(1234, rank, worker_id, step)   # distinct per rank / worker / step
"""
from __future__ import annotations

import torch

__all__ = [
    "STREAM_BLOCK_MASK",
    "STREAM_DATA2VEC_MASK",
    "STREAM_DINO_COLLATE",
    "STREAM_FREQUENCY_CHOICE",
    "STREAM_MAE_MASKING",
    "STREAM_MULTIBLOCK_2D",
    "STREAM_MULTIBLOCK_3D",
    "STREAM_RUNNING_CELL_MASK",
    "STREAM_SCORE_MASK",
    "STREAM_SIMMIM_MASK",
    "STREAM_TUBE_MASK",
    "STREAM_UNIFORM_MASK",
    "advance",
    "below",
    "check_sample_offset",
    "derive_seed",
    "draw",
    "philox4x32_10",
    "reference_key",
    "resolve_key",
    "resolve_seed",
    "seed_tensor",
    "seed_to_i64",
    "tensor_key",
    "unit_double",
    "unit_float",
    "words",
]

# Counter word 2 of each op that draws (rng.md). New ops take the next free number.
STREAM_MAE_MASKING = 1
STREAM_SIMMIM_MASK = 2
STREAM_BLOCK_MASK = 3
STREAM_FREQUENCY_CHOICE = 4
# the mask zoo (mimkernels/mask_zoo/SPEC.md)
STREAM_MULTIBLOCK_2D = 5        # I-JEPA multi-block
STREAM_MULTIBLOCK_3D = 6        # V-JEPA 3-D multi-block
STREAM_TUBE_MASK = 7            # VideoMAE tube
STREAM_RUNNING_CELL_MASK = 8    # VideoMAE v2 running cell
STREAM_UNIFORM_MASK = 9         # UM-MAE uniform sampling + secondary masking
STREAM_DINO_COLLATE = 10        # DINOv2 / v3 collate: which samples are masked, their ratios
STREAM_DATA2VEC_MASK = 11       # data2vec 2.0 block masks
STREAM_SCORE_MASK = 12          # score-guided masks' random share

_M32 = 0xFFFFFFFF
_PHILOX_M0, _PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
_PHILOX_W0, _PHILOX_W1 = 0x9E3779B9, 0xBB67AE85


def _mulhilo32(a: torch.Tensor, m) -> tuple[torch.Tensor, torch.Tensor]:
    """(hi, lo) of the 64-bit product a·m, a and m (int or int64 tensor) in [0, 2^32); for a tensor from
    16-bit halves so that no int64 product overflows."""
    if type(a) is int:
        product = a * m
        return product >> 32, product & _M32
    ah, al = a >> 16, a & 0xFFFF
    mh, ml = m >> 16, m & 0xFFFF
    mid = ah * ml + al * mh                  # < 2^33
    t = al * ml + ((mid & 0xFFFF) << 16)      # < 2^33
    return ah * mh + (mid >> 16) + (t >> 32), t & _M32


def philox4x32_10(c0, c1, c2, c3, seed: int, device=None):
    """Philox4x32-10 of counters (c0..c3: ints or int64 tensors of uint32 values, broadcast) under
    key (seed mod 2^32, seed >> 32). Returns four int64 tensors holding uint32 words."""
    if device is None:
        device = next((c.device for c in (c0, c1, c2, c3) if isinstance(c, torch.Tensor)), torch.device("cpu"))
    # an int counter by torch.full (a fill on the device): torch.as_tensor of an int copies from the host, which a
    # CUDA graph capture refuses (rng.md "Seeds in a tensor")
    c0, c1, c2, c3 = ((torch.as_tensor(c, dtype=torch.int64, device=device) if isinstance(c, torch.Tensor)
                       else torch.full((), c, dtype=torch.int64, device=device)) & _M32 for c in (c0, c1, c2, c3))
    # % and // by 2^32 rather than & and >>: under torch.compile a varying seed is a symbolic int, and these
    # keep every expression of it that reaches generated code within int64 (see _reduce_seed).
    if isinstance(seed, torch.Tensor):  # an int64 key tensor (tensor_key): its bits, read on the device
        k0, k1 = seed & _M32, (seed >> 32) & _M32
    else:
        seed = _reduce_seed(seed)
        k0, k1 = seed % (1 << 32), seed // (1 << 32)
    return _philox_rounds(c0, c1, c2, c3, k0, k1)


def _philox_rounds(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10's ten rounds on counters c0..c3 and key words k0, k1: ints, or int64 tensors, holding
    uint32 values (ints: derive_seed's host path, ~100x faster than one-element tensors)."""
    for _ in range(10):
        hi0, lo0 = _mulhilo32(c0, _PHILOX_M0)
        hi1, lo1 = _mulhilo32(c2, _PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _PHILOX_W0) % (1 << 32), (k1 + _PHILOX_W1) % (1 << 32)
    return c0, c1, c2, c3


def _reduce_seed(seed) -> int:
    """seed mod 2^64. A seed already in [0, 2^63) is returned as is, so that under torch.compile (where a
    seed that changes between calls becomes a symbolic int) this is a guard, not a 2^64 constant in the
    generated code, which Inductor cannot hold in int64."""
    return seed if 0 <= seed < (1 << 63) else int(seed) % (1 << 64)


def draw(seed: int, i, sample, stream: int, device=None):
    """The draw of mimkernels: Philox at counter (i, sample, stream, 0)."""
    return philox4x32_10(i, sample, stream, 0, seed, device=device)


def words(seed: int, sample, stream: int, count: int, first_call=0, word3=0, device=None) -> torch.Tensor:
    """A sample's first `count` uint32 words in counter order (rng.h WordStream): word q is word q % 4 of
    Philox at (first_call + q // 4, sample, stream, word3). sample, first_call, word3: ints or int64 tensors
    that broadcast together; returns (*their shape, count) int64."""
    if device is None:
        device = next((v.device for v in (sample, first_call, word3) if isinstance(v, torch.Tensor)),
                      torch.device("cpu"))
    calls = torch.arange(-(-count // 4), dtype=torch.int64, device=device)
    sample, first_call, word3 = (torch.as_tensor(v, dtype=torch.int64, device=device).unsqueeze(-1)
                                 for v in (sample, first_call, word3))
    out = torch.broadcast_tensors(*philox4x32_10(first_call + calls, sample, stream, word3, seed, device=device))
    return torch.stack(out, dim=-1).flatten(-2)[..., :count]


def unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint32 word -> float32 in [0, 1): (x >> 8)·2^-24, exact, never 1.0."""
    return (x >> 8).to(torch.float32) * (2.0 ** -24)


def unit_double(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """uint32 pair -> float64 in [0, 1): ((x0 >> 5)·2^26 + (x1 >> 6))·2^-53."""
    return (((x0 >> 5) << 26) + (x1 >> 6)).to(torch.float64) * (2.0 ** -53)


def below(x: torch.Tensor, n) -> torch.Tensor:
    """uint32 word -> uniform integer in [0, n), n < 2^32 (int or int64 tensor): (x·n) >> 32."""
    return _mulhilo32(x, n)[0]


def seed_to_i64(seed: int) -> int:
    """A seed in [0, 2^64) as the signed int64 with the same bits (torch.library int arguments)."""
    return seed - (1 << 64) if seed >= (1 << 63) else seed


def resolve_seed(seed: int | None = None, generator: torch.Generator | None = None) -> int:
    """The 64-bit Philox key, in [0, 2^64), of a random op call.

    seed: used as is (mod 2^64). generator: one int64 is drawn from it (it advances by one draw).
    Neither: one int64 is drawn from torch's default CPU generator, so torch.manual_seed controls it.
    Generators must live on the CPU: a draw from a CUDA generator would synchronize the host.
    """
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        return _reduce_seed(seed)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU torch.Generator (a draw from a {generator.device} generator "
                             "would synchronize the host); pass seed= instead")
    value = torch.randint(-(1 << 63), (1 << 63) - 1, (), dtype=torch.int64, generator=generator)
    return int(value) % (1 << 64)


def derive_seed(seed: int, *keys: int) -> int:
    """A new 64-bit seed from `seed` and up to four non-negative ints (rank, worker, step, ...):
    one Philox call with counter = keys (zero-padded) and key = seed; output x0 + 2^32·x1."""
    if len(keys) > 4:
        raise ValueError(f"derive_seed takes at most 4 keys, got {len(keys)}")
    for k in keys:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < (1 << 32):
            raise ValueError(f"derive_seed keys must be ints in [0, 2^32), got {k!r}")
    key = resolve_seed(seed)
    x0, x1, _, _ = _philox_rounds(*keys, *(0,) * (4 - len(keys)), key & _M32, key >> 32)
    return x0 | (x1 << 32)


# ---- seeds in a tensor (docs/rng.md "Seeds in a tensor": CUDA graphs, torch.compile) ---------------------

def seed_tensor(seed: int, step: int = 0, device=None) -> torch.Tensor:
    """The (2,) int64 tensor (seed, step) that every random op takes as `seed=`: the op then draws with
    derive_seed(seed, step % 2^32), read on the device inside the kernel, so a captured CUDA graph or a
    compiled function draws a new mask after `advance(t)` without a host sync or a recompile."""
    key = resolve_seed(seed)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return torch.tensor([seed_to_i64(key), step % (1 << 32)], dtype=torch.int64, device=device)


def advance(seed_step: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """Step a seed_tensor in place (one device op, capturable in a CUDA graph); returns it."""
    return seed_step[1:].add_(steps)


def tensor_key(seed_step: torch.Tensor) -> torch.Tensor:
    """derive_seed(seed, step mod 2^32) of a (2,) int64 (seed, step) tensor, as a 0-d int64 tensor holding the
    key's bits, computed on its device without a host sync (rng.h resolve_key, _triton_lib.load_key)."""
    x0, x1, _, _ = philox4x32_10(seed_step[1] & _M32, 0, 0, 0, seed_step[0])
    high = torch.where(x1 >= (1 << 31), x1 - (1 << 32), x1) * (1 << 32)  # x1 << 32 as int64, no overflow
    return high + x0


def resolve_key(seed, generator: torch.Generator | None, device: torch.device) -> tuple[int, torch.Tensor | None]:
    """A random op's key arguments: (key as a signed int64, None) for an int seed or a generator, or
    (0, the (2,) seed tensor) for a seed_tensor on the op's device (its key is derived in the kernel)."""
    if not isinstance(seed, torch.Tensor):
        return seed_to_i64(resolve_seed(seed, generator)), None
    if generator is not None:
        raise ValueError("pass seed or generator, not both")
    if seed.dtype != torch.int64 or seed.shape != (2,):
        raise ValueError(f"seed as a tensor must be int64 of shape (2,) holding (seed, step) (rng.seed_tensor), "
                         f"got {seed.dtype} of shape {tuple(seed.shape)}")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda": the current device, where the op's outputs go
        device = torch.device("cuda", torch.cuda.current_device())
    if seed.device != device:
        raise ValueError(f"seed tensor must be on the op's device {device}, got {seed.device}")
    if seed.requires_grad:
        raise ValueError("seed tensor must not require grad")
    return 0, seed.contiguous()


def reference_key(key: int, seed_step: torch.Tensor | None, on_host: bool = False):
    """The Philox key a torch backend draws with, from resolve_key's pair: the int key, or the seed tensor's
    (tensor_key, a 0-d tensor on its device); on_host: read back as an int, for the references that draw
    step by step in Python anyway (their SPEC.md says so)."""
    if seed_step is None:
        return key
    key = tensor_key(seed_step)
    return int(key) if on_host else key


def check_sample_offset(sample_offset: int, batch: int) -> int:
    """sample_offset: index of this batch's first sample in the whole run's numbering (counter word 1)."""
    if isinstance(sample_offset, bool) or not isinstance(sample_offset, int):
        raise TypeError(f"sample_offset must be an int, got {type(sample_offset).__name__}")
    if sample_offset < 0 or sample_offset + batch > (1 << 32):
        raise ValueError(f"sample_offset must be in [0, 2^32 - batch], got {sample_offset} (batch {batch})")
    return sample_offset
