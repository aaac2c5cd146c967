"""rng.md: Philox4x32-10 in torch, C++ (cpp, cuda) and Triton against Random123's known answers,
an independent numpy uint64 implementation, and each other over 100 000+ counters."""
import os

import numpy as np
import pytest
import torch

from mimkernels import _backends, _native, rng

KNOWN_ANSWERS = [  # (counter, key (k0, k1), output) — Random123 kat_vectors, philox4x32_10
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def numpy_philox(c0, c1, c2, c3, seed):
    """Independent oracle: numpy uint64 arithmetic, written from the rng.md text."""
    m = np.uint64(0xFFFFFFFF)
    c = [np.asarray(v, dtype=np.uint64) & m for v in (c0, c1, c2, c3)]
    c = np.broadcast_arrays(*c)
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & m, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & m]
        k0, k1 = (k0 + np.uint64(0x9E3779B9)) & m, (k1 + np.uint64(0xBB67AE85)) & m
    return np.stack(c, -1)


def native_fill(device, n, c0_start, c1, c2, c3, seed):
    out = torch.zeros((n, 4), dtype=torch.int32, device=device)
    args = (_native.ptr(out, torch.int32), n, c0_start, c1, c2, c3, seed)
    if out.device.type == "cpu":
        _native.lib.philox_fill_cpu(*args, _native.cpu_threads(n))
    else:
        _native.cuda_call("philox_fill_cuda", out.device, *args)
    return out.cpu().to(torch.int64) & 0xFFFFFFFF


if _backends.HAS_TRITON:
    import triton
    import triton.language as tl

    from mimkernels._triton_lib import philox_draw

    @triton.jit
    def _fill_kernel(out_ptr, n, c0_start, c1, c2, c3, seed, BLOCK: tl.constexpr):
        k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        c0 = (k + c0_start).to(tl.uint32)  # wraps mod 2^32
        z = c0 * 0
        x0, x1, x2, x3 = tl.philox(seed, c0, z + c1.to(tl.uint32), z + c2.to(tl.uint32), z + c3.to(tl.uint32))
        live = k < n
        tl.store(out_ptr + 4 * k, x0.to(tl.int64), mask=live)
        tl.store(out_ptr + 4 * k + 1, x1.to(tl.int64), mask=live)
        tl.store(out_ptr + 4 * k + 2, x2.to(tl.int64), mask=live)
        tl.store(out_ptr + 4 * k + 3, x3.to(tl.int64), mask=live)

    @triton.jit
    def _draw_kernel(out_ptr, n, c0_start, sample, seed, STREAM: tl.constexpr, BLOCK: tl.constexpr):
        """The helper the kernels use: philox_draw (c2 = stream, c3 = 0)."""
        k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        x0, x1, x2, x3 = philox_draw(seed, k + c0_start, sample, STREAM)
        live = k < n
        tl.store(out_ptr + 4 * k, x0.to(tl.int64), mask=live)
        tl.store(out_ptr + 4 * k + 1, x1.to(tl.int64), mask=live)
        tl.store(out_ptr + 4 * k + 2, x2.to(tl.int64), mask=live)
        tl.store(out_ptr + 4 * k + 3, x3.to(tl.int64), mask=live)


def triton_fill(device, n, c0_start, c1, c2, c3, seed):
    out = torch.zeros((n, 4), dtype=torch.int64, device=device)
    _fill_kernel[(triton.cdiv(n, 4096),)](out, n, c0_start, c1, c2, c3, rng.seed_to_i64(seed), BLOCK=4096)
    return out.cpu()


def torch_fill(device, n, c0_start, c1, c2, c3, seed):
    c0 = (torch.arange(n, device=device) + c0_start) & 0xFFFFFFFF
    return torch.stack(rng.philox4x32_10(c0, c1, c2, c3, seed), -1).cpu()


def _helper_draw_fill(device, n, c0_start, sample, stream, seed):
    out = torch.zeros((n, 4), dtype=torch.int64, device=device)
    _draw_kernel[(triton.cdiv(n, 4096),)](out, n, c0_start, sample, rng.seed_to_i64(seed), STREAM=stream, BLOCK=4096)
    return out.cpu()


def implementations():
    """(name, fill function, device) of every implementation runnable here; gpu ones need a GPU."""
    impls = [pytest.param("torch", torch_fill, "cpu", id="torch-cpu")]
    impls.append(pytest.param("cpp", native_fill, "cpu", id="cpp",
                              marks=pytest.mark.skipif(not _native.available(), reason="_C not built")))
    interp = pytest.mark.skipif(not _backends.HAS_TRITON or not _backends.TRITON_INTERPRET,
                                reason="triton interpreter not active")
    impls.append(pytest.param("triton", triton_fill, "cpu", id="triton-interpret", marks=interp))
    gpu = [pytest.mark.gpu]
    impls.append(pytest.param("torch", torch_fill, "cuda", id="torch-cuda", marks=gpu))
    impls.append(pytest.param("cuda", native_fill, "cuda", id="cuda", marks=gpu))
    impls.append(pytest.param("triton", triton_fill, "cuda", id="triton-gpu", marks=gpu))
    return impls


@pytest.mark.parametrize("name,fill,device", implementations())
@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_known_answers(name, fill, device, counter, key, expected):
    seed = key[0] | (key[1] << 32)
    got = fill(device, 1, counter[0], counter[1], counter[2], counter[3], seed)
    assert [hex(v) for v in got[0].tolist()] == [hex(v) for v in expected]


def test_numpy_oracle_known_answers():
    for counter, key, expected in KNOWN_ANSWERS:
        got = numpy_philox(*counter, key[0] | (key[1] << 32))
        assert tuple(int(v) for v in got) == expected


@pytest.mark.parametrize("name,fill,device", implementations())
def test_agrees_with_oracle_over_many_counters(name, fill, device):
    gen = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    n = 131_072
    for _ in range(2):
        c0_start = int(gen.integers(0, 2**32))  # crosses the 2^32 wrap sometimes
        c1, c2, c3 = (int(v) for v in gen.integers(0, 2**32, size=3))
        seed = int(gen.integers(0, 2**63)) * 2 + int(gen.integers(0, 2))
        expected = numpy_philox((np.arange(n, dtype=np.uint64) + np.uint64(c0_start)), c1, c2, c3, seed)
        got = fill(device, n, c0_start, c1, c2, c3, seed).numpy().astype(np.uint64)
        mismatches = np.argwhere(got != expected)
        assert mismatches.size == 0, f"{name}: {len(mismatches)} words differ, first at {mismatches[:3].tolist()}"


@pytest.mark.skipif(not _backends.HAS_TRITON or not _backends.TRITON_INTERPRET, reason="needs the interpreter")
def test_triton_draw_helper_matches_torch_draw():
    seed = (1 << 64) - 12345  # a seed with the top bit set goes to Triton as a negative int64
    got = _helper_draw_fill("cpu", 10_000, 77, 5, rng.STREAM_BLOCK_MASK, seed)
    expected = torch.stack(rng.draw(seed, torch.arange(10_000) + 77, 5, rng.STREAM_BLOCK_MASK), -1)
    assert torch.equal(got, expected)


def test_conversions_match_the_spec():
    x = torch.tensor([0, 1, 255, 256, 0xFFFFFFFF, 0x80000000, 123456789], dtype=torch.int64)
    u = rng.unit_float(x)
    assert u.dtype == torch.float32
    expected = [(v >> 8) / 2**24 for v in x.tolist()]
    assert u.tolist() == expected and u.max() < 1.0
    d = rng.unit_double(x, x.flip(0))
    expected = [((a >> 5) * 2**26 + (b >> 6)) / 2**53 for a, b in zip(x.tolist(), x.flip(0).tolist())]
    assert d.dtype == torch.float64 and d.tolist() == expected and d.max() < 1.0
    for n in (1, 2, 7, 196, 2**31 + 11, 2**32 - 1):
        assert rng.below(x, n).tolist() == [(v * n) >> 32 for v in x.tolist()]
    n = torch.tensor([1, 2, 3, 196, 2**31, 2**32 - 1, 5])
    assert rng.below(x, n).tolist() == [(a * b) >> 32 for a, b in zip(x.tolist(), n.tolist())]


def test_resolve_seed():
    assert rng.resolve_seed(5) == 5
    assert rng.resolve_seed(-1) == 2**64 - 1
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = rng.resolve_seed(generator=g1), rng.resolve_seed(generator=g1)
    assert a != b, "a generator advances by one draw per call"
    assert rng.resolve_seed(generator=g2) == a
    torch.manual_seed(11)
    s1 = rng.resolve_seed()
    torch.manual_seed(11)
    assert rng.resolve_seed() == s1
    with pytest.raises(ValueError, match="seed or generator"):
        rng.resolve_seed(1, torch.Generator())
    with pytest.raises(TypeError, match="seed"):
        rng.resolve_seed(1.5)
    with pytest.raises(TypeError, match="generator"):
        rng.resolve_seed(generator=3)


def test_derive_seed_is_reproducible_and_distinct():
    seeds = {rng.derive_seed(42, rank, worker, step) for rank in range(4) for worker in range(4) for step in range(8)}
    assert len(seeds) == 128
    assert rng.derive_seed(42, 1, 2, 3) == rng.derive_seed(42, 1, 2, 3)
    assert rng.derive_seed(42, 1) != rng.derive_seed(43, 1)
    x0, x1, _, _ = numpy_philox(1, 2, 3, 0, 42)
    assert rng.derive_seed(42, 1, 2, 3) == int(x0) | (int(x1) << 32)
    with pytest.raises(ValueError, match="at most 4"):
        rng.derive_seed(1, 1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="keys"):
        rng.derive_seed(1, -1)


@pytest.mark.parametrize("seed", [0, 42, 2**63 + 7, 2**64 - 1])
def test_derive_seed_equals_the_oracle(seed):
    """derive_seed's host path (Python ints) against numpy_philox, keys at their bounds included."""
    for keys in [(), (5,), (2**32 - 1, 3), (1, 2, 3, 4), (2**32 - 1,) * 4]:
        x0, x1, _, _ = numpy_philox(*keys, *(0,) * (4 - len(keys)), seed)
        assert rng.derive_seed(seed, *keys) == int(x0) | (int(x1) << 32)


def test_sample_offset_checks():
    assert rng.check_sample_offset(3, 10) == 3
    with pytest.raises(ValueError, match="sample_offset"):
        rng.check_sample_offset(-1, 2)
    with pytest.raises(TypeError, match="sample_offset"):
        rng.check_sample_offset(1.0, 2)


def test_words_are_the_philox_words_in_counter_order():
    """rng.words (rng.h WordStream): word q of a sample is word q % 4 of Philox at (first_call + q // 4, sample,
    stream, word3), for ints and broadcast tensors alike."""
    from mimkernels import rng
    seed, stream = 2**63 + 12345, 9
    got = rng.words(seed, torch.tensor([[3], [70000]]), stream, 10, first_call=5, word3=torch.tensor([0, 2]))
    assert got.shape == (2, 2, 10)
    for a, sample in enumerate((3, 70000)):
        for b, word3 in enumerate((0, 2)):
            expected = [int(rng.philox4x32_10(5 + q // 4, sample, stream, word3, seed)[q % 4]) for q in range(10)]
            assert got[a, b].tolist() == expected
    assert torch.equal(rng.words(seed, 7, stream, 6), rng.words(seed, torch.tensor(7), stream, 6))


if _backends.HAS_TRITON:
    import triton
    import triton.language as tl

    from mimkernels._triton_lib import load_key

    @triton.jit
    def _key_kernel(out, seed, seed_step, SEED_IN_TENSOR: tl.constexpr):
        tl.store(out + tl.arange(0, 1), load_key(seed, seed_step, SEED_IN_TENSOR) + tl.zeros((1,), tl.int64))


SEED_STEPS = [(0, 0), (1, 5), (2**64 - 1, 2**32 - 1), (2**63, 7), (123456789012345, 2**40 + 3)]


@pytest.mark.parametrize("seed, step", SEED_STEPS)
def test_seed_tensor_key_is_derive_seed_on_every_backend(seed, step):
    """rng.md "Seeds in a tensor": the key of a (seed, step) tensor is derive_seed(seed, step mod 2^32) in torch
    (tensor_key, no host read), C++ (rng.h resolve_key) and Triton (load_key); the numpy oracle agrees."""
    t = rng.seed_tensor(seed, step)
    want = rng.derive_seed(seed, step % 2**32)
    x0, x1, _, _ = numpy_philox(step % 2**32, 0, 0, 0, seed)
    assert want == int(x0) | (int(x1) << 32)
    assert int(rng.tensor_key(t)) % 2**64 == want
    assert _native.lib.resolve_key_cpu(_native.ptr(t, torch.int64)) == want
    if _backends.HAS_TRITON:
        out = torch.zeros(2, dtype=torch.int64)
        _key_kernel[(1,)](out, 0, t, True)
        _key_kernel[(1,)](out[1:], rng.seed_to_i64(want), t, False)
        assert [v % 2**64 for v in out.tolist()] == [want, want]


def test_seed_tensor_checks_and_advance():
    t = rng.seed_tensor(7, step=3)
    assert t.tolist() == [7, 3] and t.dtype == torch.int64
    assert rng.advance(t).data_ptr() == t[1:].data_ptr() and t.tolist() == [7, 4], "advance steps in place"
    assert rng.resolve_key(5, None, torch.device("cpu")) == (5, None)
    assert rng.resolve_key(2**64 - 1, None, torch.device("cpu")) == (-1, None)
    assert rng.resolve_key(t, None, "cpu")[1] is t
    for bad, match in ((torch.tensor([1, 2], dtype=torch.int32), "int64 of shape"),
                       (torch.tensor(3), "int64 of shape"),
                       (torch.zeros(2, 1, dtype=torch.int64), "int64 of shape"),
                       (torch.zeros(2, dtype=torch.int64, device="meta"), "device")):
        with pytest.raises(ValueError, match=match):
            rng.resolve_key(bad, None, torch.device("cpu"))
    with pytest.raises(ValueError, match="seed or generator"):
        rng.resolve_key(t, torch.Generator(), torch.device("cpu"))
    with pytest.raises(ValueError, match="step"):
        rng.seed_tensor(1, -1)


# The host's scalar paths (MIMKERNELS_NO_AVX2=1): what a CPU without AVX2 runs, in a child process (read at load).
_HOST_PATH_MASKS = """
import sys, torch, mimkernels as mk
from mimkernels import _native
scores = torch.rand(5, 196, generator=torch.Generator().manual_seed(0))
masks = {"avx2": _native.lib.host_avx2(),
         "block": mk.block_mask(9, seed=3), "simmim": mk.simmim_mask(9, seed=3),
         "multiblock": tuple(mk.multiblock_mask(9, seed=3)), "multiblock_3d": tuple(mk.multiblock_mask_3d(5, seed=3)),
         "tube": mk.tube_mask(9, seed=3), "uniform": mk.uniform_mask(9, seed=3),
         "data2vec": mk.data2vec_block_mask(3, seed=3), "dino": tuple(mk.dino_collate_masks(8, seed=3)),
         "score": mk.score_mask(scores, 0.75, score_share=0.3, seed=3)}
torch.save(masks, sys.argv[1])
"""


@pytest.mark.skipif(not _native.available(), reason="_C not built")
def test_host_scalar_paths_equal_the_avx2_paths(tmp_path):
    """MIMKERNELS_NO_AVX2=1 switches the host's Philox blocks and SimMIM's ranking to their scalar paths (seen
    in host_avx2()); every mask drawn through them equals the one this process draws (AVX2 where the CPU has
    it), which the other tests hold to the torch reference."""
    import subprocess
    import sys
    paths = {}
    for name, flag in (("scalar", "1"), ("default", "0")):
        paths[name] = tmp_path / f"{name}.pt"
        subprocess.run([sys.executable, "-c", _HOST_PATH_MASKS, str(paths[name])], check=True,
                       env={**os.environ, "MIMKERNELS_NO_AVX2": flag})
    scalar, default = (torch.load(paths[name], weights_only=False) for name in ("scalar", "default"))
    assert scalar.pop("avx2") is False and default.pop("avx2") == _native.lib.host_avx2()
    for name, want in default.items():
        got = scalar[name]
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert torch.equal(a, b), name
