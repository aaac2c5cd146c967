"""Per-sample ratios (random_mask_indices / random_masking with a (B,) ratio tensor, SPEC.md §2a) and
per-sample block-mask counts (block_mask with a (B,) count tensor, §7a): every backend equals the torch
reference bit for bit; row b equals the scalar op called for that sample alone (its ratio or count,
sample_offset = b), so the scalar bits are the oracle; the padded layout's invariants; no host sync."""
import pytest
import torch

from mimkernels import _backends, _native
from mimkernels.masking import block_mask, random_mask_indices, random_masking

needs_native = pytest.mark.skipif(not _native.available(), reason="mimkernels._C not built")
needs_triton = pytest.mark.skipif(not _backends.HAS_TRITON or not _backends.TRITON_INTERPRET,
                                  reason="Triton interpreter not set up")

# edge ratios: 0, 1, a truncation to K = 0 (L = 10 at 0.9 keeps int(10 · 0.1) = 0 in float64), NaN and
# out-of-contract values (clamped, SPEC.md §2a), float32 values that are not float64 round numbers
RATIOS = [0.75, 0.0, 1.0, 0.9, 0.5, float("nan"), -0.25, 1.5, 0.6, 0.1]


def _ratios(batch: int, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor([RATIOS[b % len(RATIOS)] for b in range(batch)], dtype=dtype)


def _equal(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _backends_here(op: str) -> list[str]:
    return [be for be in _backends.implemented(op) if be != "torch"
            and _backends.unavailable_reason(be, torch.device("cpu")) is None]


@pytest.mark.parametrize("length,max_keep", [(1, None), (10, 0), (10, None), (49, 7), (49, None)])
def test_mask_indices_every_backend_equals_torch(length, max_keep):
    batch = 12
    max_keep = None if max_keep is None else min(max_keep, length)
    ratio = _ratios(batch)
    expected = random_mask_indices(batch, length, ratio, seed=5, max_keep=max_keep, backend="torch")
    for be in _backends_here("random_mask_indices"):
        _equal(random_mask_indices(batch, length, ratio, seed=5, max_keep=max_keep, backend=be), expected)


def test_row_b_is_the_scalar_op_for_that_sample():
    """kept[b] = int(L · (1 − r_b)) in float64 (MAE's K) and the row's bits are the scalar call's with
    sample_offset = b: the per-sample path adds no new randomness and changes no scalar bit."""
    length, batch = 49, 10
    ratio = _ratios(batch, torch.float64).clamp(0, 1).nan_to_num(1.0)
    ids_keep, ids_restore, mask, kept = random_mask_indices(batch, length, ratio, seed=9)
    for b in range(batch):
        r = float(ratio[b])
        one = random_mask_indices(1, length, r, seed=9, sample_offset=b)
        assert int(kept[b]) == int(length * (1 - r)) == one[0].shape[1]
        assert torch.equal(ids_keep[b, :int(kept[b])], one[0][0])
        assert torch.equal(ids_restore[b], one[1][0]) and torch.equal(mask[b], one[2][0])


def test_uniform_tensor_equals_the_float_ratio():
    """A ratio tensor of one value gives MAE's layout's bits in its first K columns (K_max = L by default)."""
    a = random_mask_indices(6, 196, 0.75, seed=3)
    b = random_mask_indices(6, 196, torch.full((6,), 0.75), seed=3)
    assert torch.equal(b[0][:, :49], a[0]) and torch.equal(b[1], a[1]) and torch.equal(b[2], a[2])
    assert b[0].shape == (6, 196) and torch.equal(b[3], torch.full((6,), 49))


def test_padded_layout_invariants():
    length, batch = 50, 40
    ratio = torch.rand(batch, generator=torch.Generator().manual_seed(0))
    ids_keep, ids_restore, mask, kept = random_mask_indices(batch, length, ratio, seed=1, max_keep=30)
    assert ids_keep.shape == (batch, 30) and kept.dtype == torch.int64
    assert torch.equal(kept, (length * (1 - ratio.double())).clamp(0, 30).long())
    assert torch.equal(mask.sum(1), (length - kept).float())
    # ids_keep is the sorted order's prefix: ids_restore maps it back to positions 0..29
    assert torch.equal(ids_restore.gather(1, ids_keep), torch.arange(30).expand(batch, 30))
    valid = torch.arange(30) < kept.unsqueeze(1)
    assert (mask.gather(1, ids_keep)[valid] == 0).all() and (mask.gather(1, ids_keep)[~valid] == 1).all()


def test_noise_with_ratio_tensor_is_a_pure_function_of_it():
    noise = torch.rand(5, 16, generator=torch.Generator().manual_seed(2))
    ratio = torch.tensor([0.25, 0.5, 0.75, 1.0, 0.0])
    ids_keep, ids_restore, mask, kept = random_mask_indices(5, 16, ratio, noise=noise)
    order = torch.argsort(noise, dim=1, stable=True)
    assert torch.equal(ids_keep, order) and torch.equal(kept, torch.tensor([12, 8, 4, 0, 16]))
    for b in range(5):
        one = random_mask_indices(1, 16, float(ratio[b]), noise=noise[b:b + 1])
        assert torch.equal(mask[b], one[2][0]) and torch.equal(ids_restore[b], one[1][0])


@pytest.mark.parametrize("backend", ["torch", "auto", *(["triton"] if _backends.TRITON_INTERPRET else [])])
def test_random_masking_per_sample(backend):
    x = torch.randn(7, 20, 6, requires_grad=True)
    ratio = _ratios(7)
    got = random_masking(x, ratio, seed=4, max_keep=15, backend=backend)
    ids_keep, ids_restore, mask, kept = random_mask_indices(7, 20, ratio, seed=4, max_keep=15, backend="torch")
    x_visible = got[0]
    assert x_visible.shape == (7, 15, 6)
    _equal(got[1:], (mask, ids_restore, kept))
    valid = (torch.arange(15) < kept.unsqueeze(1)).unsqueeze(-1)
    rows = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, 6))
    assert torch.equal(x_visible, torch.where(valid, rows, torch.zeros(())))
    x_visible.sum().backward()  # masked tokens and padding get exactly zero gradient
    assert torch.equal(x.grad, (1 - mask).unsqueeze(-1).expand_as(x))


@needs_native
@pytest.mark.parametrize("variant", ["unilm", "official", "mmpretrain"])
def test_block_mask_counts_every_backend_equals_torch(variant):
    counts = torch.tensor([0, 1, 4, 16, 30, 50, 75, 90, 10, 37, 64, 3])
    if variant == "mmpretrain":  # exactly the count, which must fit outside the last row and column
        counts = counts.clamp(max=60)
    max_num = None if variant != "official" else 20
    args = (12, 10, 10, counts, 4, max_num)
    expected = block_mask(*args, seed=7, variant=variant, backend="torch")
    for be in _backends_here("block_mask"):
        assert torch.equal(block_mask(*args, seed=7, variant=variant, backend=be), expected)
    for b in range(12):  # row b = the scalar generator for sample b with its count
        one = block_mask(1, 10, 10, int(counts[b]), 4, max_num, seed=7, sample_offset=b,
                         variant="mmpretrain" if variant == "mmpretrain" else "official")
        assert torch.equal(expected[b], one[0])


@needs_native
def test_block_mask_counts_past_the_contract_are_defined():
    """Without MIMKERNELS_DEBUG the count values are not read on the host: negative -> empty, past the grid
    -> as many as fit (a short mask), int32 accepted; the same on every backend."""
    counts = torch.tensor([-5, 0, 2**31 - 1, 100, 12], dtype=torch.int32)
    expected = block_mask(5, 6, 6, counts, 15, seed=1, backend="torch")
    assert torch.equal(block_mask(5, 6, 6, counts, 15, seed=1, backend="cpp"), expected)
    sums = expected.flatten(1).sum(1)
    assert sums[0] == 0 and sums[1] == 0 and (sums <= 36).all()


def test_debug_mode_checks_values(monkeypatch):
    monkeypatch.setenv("MIMKERNELS_DEBUG", "1")
    with pytest.raises(ValueError, match="mask_ratio"):
        random_mask_indices(2, 10, torch.tensor([0.5, 1.5]), seed=0)
    with pytest.raises(ValueError, match="num_masking_patches"):
        block_mask(2, 6, 6, torch.tensor([5, 37]), 2, seed=0)


@needs_native
def test_block_mask_counts_and_cuda_device_tensor_stays_on_device():
    counts = torch.tensor([5, 9])
    out = block_mask(2, 6, 6, counts, 2, seed=0, backend="cpp")
    assert out.shape == (2, 6, 6) and out.dtype == torch.bool
    with pytest.raises(ValueError, match="num_masking_patches"):
        block_mask(2, 6, 6, counts.to("meta"), 2, seed=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not _native.cuda_built(), reason="needs a CUDA build + GPU")
def test_gpu_per_sample_equals_cpp_and_is_capturable():
    """cuda (and triton) per-sample kernels give the cpp bits; the ratios and counts stay on the device, so
    the calls capture into a CUDA graph (no host sync, no host-to-device copy)."""
    ratio, counts = _ratios(300), torch.arange(300) % 120
    expected = random_mask_indices(300, 196, ratio, seed=2, max_keep=150, backend="cpp")
    expected_blocks = block_mask(300, 14, 14, counts, 16, seed=2, variant="official", backend="cpp")
    for be in ("cuda", "triton"):
        got = random_mask_indices(300, 196, ratio.cuda(), seed=2, max_keep=150, device="cuda", backend=be)
        _equal(tuple(t.cpu() for t in got), expected)
    assert torch.equal(block_mask(300, 14, 14, counts.cuda(), 16, seed=2, variant="official", device="cuda",
                                  backend="cuda").cpu(), expected_blocks)
    ratio_gpu, counts_gpu = ratio.cuda(), counts.cuda()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = random_mask_indices(300, 196, ratio_gpu, seed=2, max_keep=150, device="cuda", backend="cuda")
        captured_blocks = block_mask(300, 14, 14, counts_gpu, 16, seed=2, variant="official", device="cuda",
                                     backend="cuda")
    graph.replay()
    torch.cuda.synchronize()
    _equal(tuple(t.cpu() for t in captured), expected)
    assert torch.equal(captured_blocks.cpu(), expected_blocks)
