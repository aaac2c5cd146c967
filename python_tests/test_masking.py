"""MAE random masking and unshuffle_tokens (spec/masking.md §2, §3; spec/rng.md stream 1):
reference against a numpy oracle and MAE's own code; K truncation; seeds, sample_offset; autograd;
bad input."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mimkernels as mk
from mimkernels import rng
from mimkernels.masking import reference
from mimkernels.testing import backends_on


# ---- MAE's models_mae.py random_masking and decoder unshuffle, restated with noise passed in: its
# unstable argsorts, the (B, K, D) repeated index and the mask built by a gather --------------------

def mae_random_masking(x, mask_ratio, noise):
    n, length, d = x.shape
    kept = int(length * (1 - mask_ratio))
    order = torch.argsort(noise, dim=1)
    restore = torch.argsort(order, dim=1)
    x_kept = torch.gather(x, 1, order[:, :kept].unsqueeze(-1).repeat(1, 1, d))
    removed = torch.ones(n, length, device=x.device)
    removed[:, :kept] = 0
    return x_kept, torch.gather(removed, 1, restore), restore


def mae_decoder_unshuffle(x, ids_restore, mask_token):
    fill = mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
    tokens = torch.cat([x[:, 1:], fill], dim=1)
    tokens = torch.gather(tokens, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    return torch.cat([x[:, :1], tokens], dim=1)


# ---- numpy oracle, written from the spec --------------------------------------------------------

def oracle(noise: np.ndarray, mask_ratio: float):
    b, length = noise.shape
    k = int(length * (1 - mask_ratio))
    order = np.argsort(noise, axis=1, kind="stable")              # patch at each sorted position
    ids_restore = np.empty((b, length), dtype=np.int64)
    np.put_along_axis(ids_restore, order, np.arange(length, dtype=np.int64)[None].repeat(b, 0), axis=1)
    return order[:, :k].astype(np.int64), ids_restore, (ids_restore >= k).astype(np.float32)


def tie_free_noise(b, length, gen):
    """torch.rand rows redrawn until tie-free, so MAE's unstable argsort is well defined."""
    while True:
        noise = torch.rand(b, length, generator=gen)
        if all(torch.unique(row).numel() == length for row in noise):
            return noise


@pytest.mark.parametrize("b,length,ratio", [(3, 49, 0.75), (2, 17, 0.5), (4, 196, 0.75), (1, 1, 0.0),
                                             (2, 13, 0.3), (2, 10, 0.9), (3, 7, 1.0), (2, 8, 0.0)])
def test_reference_matches_oracle(b, length, ratio):
    gen = torch.Generator().manual_seed(b * 1000 + length)
    noise = torch.rand(b, length, generator=gen)
    got = mk.random_mask_indices(b, length, ratio, noise=noise)
    want = oracle(noise.numpy(), ratio)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)
    assert got[0].dtype == torch.int64 and got[1].dtype == torch.int64 and got[2].dtype == torch.float32


@pytest.mark.parametrize("length", [9, 49, 196])
def test_ties_break_by_index(length):
    gen = torch.Generator().manual_seed(length)
    noise = torch.randint(0, 4, (5, length), generator=gen).to(torch.float32)   # heavy ties
    for ratio in (0.25, 0.5, 0.75):
        got = mk.random_mask_indices(5, length, ratio, noise=noise)
        want = oracle(noise.numpy(), ratio)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    # integer noise (e.g. Philox words) follows the same rule
    got_int = mk.random_mask_indices(5, length, 0.5, noise=noise.to(torch.int64))
    for g, w in zip(got_int, oracle(noise.numpy(), 0.5)):
        np.testing.assert_array_equal(g.numpy(), w)


@pytest.mark.parametrize("b,length,d,ratio", [(4, 49, 8, 0.75), (2, 196, 3, 0.75), (3, 16, 5, 0.6),
                                               (2, 10, 4, 0.9), (2, 11, 2, 1.0), (2, 9, 2, 0.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mae_parity(b, length, d, ratio, dtype):
    gen = torch.Generator().manual_seed(7 + length)
    noise = tie_free_noise(b, length, gen)
    x = torch.randn(b, length, d, generator=gen).to(dtype)
    got = mk.random_masking(x, ratio, noise=noise)
    want = mae_random_masking(x, ratio, noise)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert torch.equal(g, w)
    assert got[1].dtype == torch.float32
    # ids_keep of random_mask_indices is what random_masking gathered with
    ids_keep, ids_restore, mask = mk.random_mask_indices(b, length, ratio, noise=noise)
    assert torch.equal(ids_restore, want[2]) and torch.equal(mask, want[1])
    assert torch.equal(torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d)), want[0])


@pytest.mark.parametrize("length,ratio", [(10, 0.9), (5, 0.8), (20, 0.9), (10, 0.3)])
def test_k_truncation_trap(length, ratio):
    """K = int(L·(1−r)) in float64 as MAE, even where exact arithmetic says otherwise; K == 0 allowed."""
    k = int(length * (1 - ratio))
    assert reference.len_keep(length, ratio) == k
    noise = torch.rand(2, length, generator=torch.Generator().manual_seed(length))
    ids_keep, ids_restore, mask = mk.random_mask_indices(2, length, ratio, noise=noise)
    assert ids_keep.shape == (2, k)
    assert torch.equal(mask.sum(1), torch.full((2,), float(length - k)))
    x = torch.randn(2, length, 3)
    xv, m, _ = mk.random_masking(x, ratio, noise=noise)
    assert xv.shape == (2, k, 3) and torch.equal(m, mask)


def test_k_truncation_known_values():
    assert int(10 * (1 - 0.9)) == 0 and reference.len_keep(10, 0.9) == 0
    assert reference.len_keep(5, 0.8) == 0
    assert reference.len_keep(196, 0.75) == 49 and reference.len_keep(49, 0.75) == 12
    assert reference.len_keep(7, 1.0) == 0 and reference.len_keep(7, 0.0) == 7


def test_seed_reproducible_and_philox_keys():
    a = mk.random_mask_indices(3, 49, 0.75, seed=1234)
    b = mk.random_mask_indices(3, 49, 0.75, seed=1234)
    c = mk.random_mask_indices(3, 49, 0.75, seed=1235)
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert not torch.equal(a[2], c[2])
    # keys are x0 of Philox at (l, b, stream 1, 0), sorted as uint32 ascending
    keys = torch.stack([rng.draw(1234, torch.arange(49), s, rng.STREAM_MAE_MASKING)[0] for s in range(3)])
    assert int(keys.min()) >= 0 and int(keys.max()) < (1 << 32)
    for u, v in zip(a, oracle(keys.numpy(), 0.75)):
        np.testing.assert_array_equal(u.numpy(), v)
    # random_masking draws the same keys
    x = torch.randn(3, 49, 4)
    _, mask, ids_restore = mk.random_masking(x, 0.75, seed=1234)
    assert torch.equal(mask, a[2]) and torch.equal(ids_restore, a[1])


def test_generator_and_global_seed():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = mk.random_mask_indices(2, 16, 0.5, generator=g1)
    b = mk.random_mask_indices(2, 16, 0.5, generator=g2)
    assert torch.equal(a[1], b[1])
    torch.manual_seed(99)
    c = mk.random_mask_indices(2, 16, 0.5)
    torch.manual_seed(99)
    d = mk.random_mask_indices(2, 16, 0.5)
    assert torch.equal(c[1], d[1])


def test_sample_offset_batch_split():
    whole = mk.random_mask_indices(8, 196, 0.75, seed=42)
    first = mk.random_mask_indices(4, 196, 0.75, seed=42, sample_offset=0)
    second = mk.random_mask_indices(4, 196, 0.75, seed=42, sample_offset=4)
    for w, f, s in zip(whole, first, second):
        assert torch.equal(w, torch.cat([f, s]))
    x = torch.randn(8, 196, 2)
    xw, mw, rw = mk.random_masking(x, 0.75, seed=42)
    x1, m1, r1 = mk.random_masking(x[:4], 0.75, seed=42)
    x2, m2, r2 = mk.random_masking(x[4:], 0.75, seed=42, sample_offset=4)
    assert torch.equal(mw, torch.cat([m1, m2])) and torch.equal(xw, torch.cat([x1, x2]))
    assert torch.equal(mw, whole[2])


def test_distribution_invariants():
    ids_keep, ids_restore, mask = mk.random_mask_indices(64, 49, 0.75, seed=3)
    k = 12
    assert torch.equal(mask.sum(1), torch.full((64,), 37.0))
    ar = torch.arange(k).expand(64, k)
    assert torch.equal(torch.gather(ids_restore, 1, ids_keep), ar)      # ids_restore[ids_keep[k]] = k
    assert torch.equal(torch.sort(ids_restore, 1).values, torch.arange(49).expand(64, 49))
    frac = mask.mean(0)                                                  # P(masked) = 37/49 per position
    assert float((frac - 37 / 49).abs().max()) < 0.3


# ---- unshuffle_tokens -----------------------------------------------------------------------------

@pytest.mark.parametrize("b,length,d,ratio", [(2, 16, 4, 0.75), (3, 49, 8, 0.5), (2, 10, 3, 0.9), (2, 7, 2, 0.0)])
@pytest.mark.parametrize("token_shape", ["flat", "mae"])
def test_unshuffle_matches_mae(b, length, d, ratio, token_shape):
    gen = torch.Generator().manual_seed(length)
    _, _, ids_restore = mk.random_masking(torch.zeros(b, length, 1), ratio, seed=length)
    k = reference.len_keep(length, ratio)
    x = torch.randn(b, 1 + k, d, generator=gen)
    token = torch.randn(1, 1, d, generator=gen)
    given = token.reshape(d) if token_shape == "flat" else token
    got = mk.unshuffle_tokens(x, ids_restore, given)
    want = mae_decoder_unshuffle(x, ids_restore, token)
    assert got.shape == (b, 1 + length, d) and torch.equal(got, want)


def test_unshuffle_roundtrip_with_random_masking():
    x = torch.randn(3, 25, 6)
    xv, mask, ids_restore = mk.random_masking(x, 0.6, seed=11)
    cls = torch.randn(3, 1, 6)
    token = torch.full((6,), 7.5)
    out = mk.unshuffle_tokens(torch.cat([cls, xv], 1), ids_restore, token)
    assert torch.equal(out[:, 0], cls[:, 0])
    keep = mask == 0
    assert torch.equal(out[:, 1:][keep], x[keep])
    assert bool((out[:, 1:][~keep] == 7.5).all())


def test_unshuffle_gradcheck():
    _, _, ids_restore = mk.random_masking(torch.zeros(2, 6, 1), 0.5, seed=1)
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    token = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, t: mk.unshuffle_tokens(a, ids_restore, t), (x, token))
    # grad of mask_token = sum of the upstream grad over the masked positions
    g = torch.randn(2, 7, 3, dtype=torch.float64)
    mk.unshuffle_tokens(x, ids_restore, token).backward(g)
    masked = ids_restore >= 3
    assert torch.allclose(token.grad, g[:, 1:][masked].sum(0))


def test_random_masking_grad_flows_to_x():
    x = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    noise = torch.rand(2, 9, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: mk.random_masking(a, 0.5, noise=noise)[0], (x,))


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [-0.1, 1.01, float("nan"), 2])
def test_bad_ratio(ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        mk.random_mask_indices(2, 10, ratio, seed=0)
    with pytest.raises(ValueError, match="mask_ratio"):
        mk.random_masking(torch.zeros(2, 10, 3), ratio, seed=0)


def test_bad_inputs():
    with pytest.raises(TypeError, match="mask_ratio"):
        mk.random_mask_indices(2, 10, "0.5", seed=0)
    with pytest.raises(ValueError, match="num_patches"):
        mk.random_mask_indices(2, 0, 0.5, seed=0)
    with pytest.raises(TypeError, match="batch"):
        mk.random_mask_indices(2.0, 10, 0.5, seed=0)
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 11))
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 10, 1))
    with pytest.raises(TypeError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 10), seed=1)
    with pytest.raises(ValueError, match="noise"):
        mk.random_mask_indices(2, 10, 0.5, noise=torch.rand(2, 10), device="meta")
    with pytest.raises(ValueError, match="seed or generator"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="sample_offset"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, sample_offset=-1)
    with pytest.raises(ValueError, match="backend"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, backend="nope")
    with pytest.raises(ValueError, match="not implemented"):
        mk.random_masking(torch.zeros(2, 10, 3), 0.5, seed=1, backend="cuda")
    with pytest.raises(RuntimeError, match="cannot run here"):
        mk.random_mask_indices(2, 10, 0.5, seed=1, backend="cuda")  # CPU device
    with pytest.raises(ValueError, match="x must be 3-D"):
        mk.random_masking(torch.zeros(2, 10), 0.5, seed=0)
    with pytest.raises(ValueError, match="L >= 1"):
        mk.random_masking(torch.zeros(2, 0, 3), 0.5, seed=0)
    with pytest.raises(ValueError, match="noise"):
        mk.random_masking(torch.zeros(2, 10, 3), 0.5, noise=torch.rand(3, 10))


def test_unshuffle_bad_inputs():
    ids = torch.arange(6).expand(2, 6).contiguous()
    x = torch.zeros(2, 4, 3)
    tok = torch.zeros(3)
    with pytest.raises(ValueError, match="x must be 3-D"):
        mk.unshuffle_tokens(torch.zeros(2, 4), ids, tok)
    with pytest.raises(TypeError, match="ids_restore"):
        mk.unshuffle_tokens(x, ids.to(torch.int32), tok)
    with pytest.raises(ValueError, match="ids_restore"):
        mk.unshuffle_tokens(x, ids[:, :2], tok)
    with pytest.raises(ValueError, match="ids_restore"):
        mk.unshuffle_tokens(x, ids[:1], tok)
    with pytest.raises(ValueError, match="mask_token"):
        mk.unshuffle_tokens(x, ids, torch.zeros(4))
    with pytest.raises(TypeError, match="mask_token"):
        mk.unshuffle_tokens(x, ids, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="device"):
        mk.unshuffle_tokens(x, ids, torch.zeros(3, device="meta"))


# ---- backends -------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", backends_on("random_mask_indices", "cpu"))
@pytest.mark.parametrize("b,length,ratio,offset", [(3, 49, 0.75, 0), (2, 196, 0.75, 5), (2, 10, 0.9, 0),
                                                    (1, 7, 1.0, 0), (2, 8, 0.0, 0), (3, 1, 0.0, 0),
                                                    (4, 17, 0.5, 2 ** 32 - 4), (0, 5, 0.5, 0)])
@pytest.mark.parametrize("seed", [0, 1234, 2 ** 64 - 1, 2 ** 63 + 5])
def test_backends_bit_identical(backend, b, length, ratio, offset, seed):
    want = mk.random_mask_indices(b, length, ratio, seed=seed, sample_offset=offset, backend="torch")
    got = mk.random_mask_indices(b, length, ratio, seed=seed, sample_offset=offset, backend=backend)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape and torch.equal(g, w)


@pytest.mark.skipif("triton" not in backends_on("random_mask_indices", "cpu"), reason="triton not runnable here")
def test_triton_op_registration():
    from torch.library import opcheck

    opcheck(torch.ops.mimkernels.mae_random_mask_indices.default, (2, 16, 4, 77, 3, torch.device("cpu")))
    with pytest.raises(ValueError, match="num_patches"):
        mk.random_mask_indices(1, (1 << 14) + 1, 0.5, seed=0, backend="triton")
    # caller-given noise: sorted by the kernel, equal to the oracle
    noise = torch.rand(2, 9)
    a = mk.random_mask_indices(2, 9, 0.5, noise=noise, backend="triton")
    for u, v in zip(a, oracle(noise.numpy(), 0.5)):
        np.testing.assert_array_equal(u.numpy(), v)


# ---- properties (hypothesis, 200 cases per op): every backend against the numpy oracle -------------

RATIOS = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0]) | st.floats(0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(0, 3), length=st.integers(1, 40), ratio=RATIOS, seed=st.integers(0, 2 ** 64 - 1),
       offset=st.integers(0, 2 ** 32 - 4), ties=st.booleans())
def test_property_indices_all_backends_equal_oracle(b, length, ratio, seed, offset, ties):
    i = torch.arange(length, dtype=torch.int64)[None]
    s = torch.arange(b, dtype=torch.int64)[:, None] + offset
    keys = rng.draw(seed, i, s, rng.STREAM_MAE_MASKING)[0].expand(b, length).numpy()
    want = oracle(keys, ratio)
    for backend in backends_on("random_mask_indices"):
        got = mk.random_mask_indices(b, length, ratio, seed=seed, sample_offset=offset, backend=backend)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    noise = torch.from_numpy(keys % 5 if ties else keys).to(torch.float32)   # exact in fp32; ties when asked
    want = oracle(noise.numpy(), ratio)
    for backend in backends_on("random_mask_indices"):
        got = mk.random_mask_indices(b, length, ratio, noise=noise, backend=backend)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(1, 3), length=st.integers(1, 30), d=st.integers(1, 9), ratio=RATIOS,
       seed=st.integers(0, 2 ** 63), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
def test_property_random_masking_all_backends_equal_oracle(b, length, d, ratio, seed, dtype):
    x = torch.randn(b, length, d, generator=torch.Generator().manual_seed(seed % 2 ** 32)).to(dtype)
    ids_keep, ids_restore, mask = mk.random_mask_indices(b, length, ratio, seed=seed, backend="torch")
    want_x = np.take_along_axis(x.float().numpy(), ids_keep.numpy()[..., None], axis=1)
    for backend in backends_on("random_masking"):
        x_vis, m, r = mk.random_masking(x, ratio, seed=seed, backend=backend)
        assert x_vis.dtype == dtype
        np.testing.assert_array_equal(x_vis.float().numpy(), want_x)
        assert torch.equal(m, mask) and torch.equal(r, ids_restore)


# ---- GPU (run by benchmarks/run_gpu.sh) ---------------------------------------------------------

def _prefix_tokens_triton_equals_torch(prefix, dtype, device):
    """unshuffle_tokens and gather_patches with P prefix tokens: the triton backend (eager, then under
    torch.compile, where it is a triton_op traced into the kernels) against the torch one."""
    b, length, kept, d, p = 4, 196, 49, 96, 16
    ids_restore = torch.argsort(torch.rand(b, length, device=device), dim=1)
    ids_keep = torch.argsort(ids_restore, dim=1)[:, :kept] + prefix
    x = torch.randn(b, prefix + kept, d, device=device).to(dtype).requires_grad_()
    token = torch.randn(d, device=device).to(dtype).requires_grad_()
    imgs = torch.randn(b, 3, 224, 224, device=device).to(dtype).requires_grad_()

    def step(backend, compiled=False):
        def fn(x, token, imgs):
            return (mk.unshuffle_tokens(x, ids_restore, token, num_prefix_tokens=prefix, backend=backend),
                    mk.gather_patches(imgs, ids_keep, p, num_prefix_tokens=prefix, backend=backend))
        tokens, patches = (torch.compile(fn, fullgraph=True) if compiled else fn)(x, token, imgs)
        grads = torch.autograd.grad((tokens.float().sin().sum() + patches.float().cos().sum()), (x, token, imgs))
        return tokens, patches, *grads

    want = step("torch")
    for compiled in (False, True):
        torch._dynamo.reset()
        tokens, patches, g_x, g_token, g_imgs = step("triton", compiled)
        assert torch.equal(tokens, want[0]) and torch.equal(patches, want[1])
        assert torch.equal(g_x, want[2]) and torch.equal(g_imgs, want[4])   # scatters: exact
        torch.testing.assert_close(g_token.float(), want[3].float(), rtol=1e-2, atol=1e-2)


@pytest.mark.gpu
@pytest.mark.parametrize("prefix", [0, 1, 5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_prefix_tokens_triton_equals_torch(prefix, dtype):
    _prefix_tokens_triton_equals_torch(prefix, dtype, "cuda")
