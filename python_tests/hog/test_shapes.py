"""Issue 20 for HOG: sizes are metadata, checked where every op body starts (the front door and the
torch.ops entries alike); for every accepted shape no kernel reads outside imgs / cot / window or writes
outside its output. Adversarial accepted shapes (odd sides, pool not dividing, tiny images, a pool as large
as the image, one channel, many bins, strided and expanded views) equal the reference; the Triton kernel reads
its input through its strides, so it runs on views into NaN-guarded storage: one read outside the view would
put a NaN into the result. Bad metadata given to the ops directly raises instead of indexing."""
import pytest
import torch

import mimkernels as mk
from mimkernels.hog import reference
from mimkernels.hog.ops import tables
from mimkernels.testing import backends_on
from python_tests.hog.oracles import integer_images

KERNELS = backends_on("hog", exclude=("torch",))

MAP_SHAPES = [  # (shape, nbins, pool, gaussian_window)
    ((1, 1, 2, 2), 9, 2, 0),        # the smallest image: one cell, every neighbour reflected
    ((1, 2, 3, 2), 9, 2, 0),        # odd side, one cell, the last row only a neighbour
    ((2, 1, 27, 13), 4, 13, 0),     # pool = the width, not dividing the height: one column of cells
    ((1, 1, 13, 13), 9, 13, 0),     # pool = the whole image: one cell
    ((1, 3, 33, 35), 9, 5, 0),      # pool not dividing, partial tiles
    ((1, 1, 40, 24), 2, 3, 0),      # two bins, odd pool, several tiles
    ((1, 1, 9, 9), 31, 4, 0),       # many bins, pool not dividing
    ((2, 5, 12, 20), 1, 4, 4),      # one bin (every vote in bin 0), a window, five channels
    ((1, 1, 64, 8), 9, 1, 0),       # pool 1: every pixel a cell
]
PATCH_SHAPES = [  # (shape, nbins, pool, gaussian_window, patch_size)
    ((1, 1, 8, 8), 9, 8, 0, 8),
    ((1, 2, 24, 48), 9, 4, 8, 24),  # 6 cells a patch side: not a power of two
    ((2, 1, 30, 10), 3, 5, 0, 10),
]


def _guarded(imgs: torch.Tensor) -> torch.Tensor:
    """A view of `imgs` inside NaN storage (a NaN border of 3 on every side of H and W, a NaN image before
    and after): strided, not contiguous."""
    b, c, h, w = imgs.shape
    store = torch.full((b + 2, c, h + 6, w + 6), float("nan"), dtype=torch.float32)
    view = store[1:b + 1, :, 3:3 + h, 3:3 + w]
    view.copy_(imgs)
    return view


@pytest.mark.parametrize("backend", KERNELS)
@pytest.mark.parametrize("shape,nbins,pool,gw", MAP_SHAPES)
def test_adversarial_map_shapes_equal_reference(backend, shape, nbins, pool, gw):
    imgs = integer_images(shape, seed=11)
    expected = reference.hog_map(imgs, nbins, pool, gw)
    got = mk.hog_map(_guarded(imgs), nbins=nbins, pool=pool, gaussian_window=gw, backend=backend)
    assert got.shape == expected.shape and not got.isnan().any()
    if nbins % 2:  # even nbins: exact ties, see test_backends.py
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", KERNELS)
@pytest.mark.parametrize("shape,nbins,pool,gw,patch", PATCH_SHAPES)
def test_adversarial_patch_shapes_equal_reference(backend, shape, nbins, pool, gw, patch):
    imgs = integer_images(shape, seed=12)
    got = mk.hog(_guarded(imgs), nbins=nbins, pool=pool, gaussian_window=gw, patch_size=patch, backend=backend)
    assert not got.isnan().any()
    torch.testing.assert_close(got, reference.hog(imgs, nbins, pool, gw, True, patch), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", KERNELS)
def test_expanded_and_one_pixel_strides(backend):
    """Stride-0 batch and channel (an expanded view) and a channels-last layout read the same pixels."""
    one = integer_images((1, 1, 16, 24), seed=13)
    expanded = one.expand(3, 2, 16, 24)
    got = mk.hog_map(expanded, pool=4, gaussian_window=8, backend=backend)
    want = mk.hog_map(one, pool=4, gaussian_window=8, backend=backend)
    assert torch.equal(got, want.expand_as(got))
    nhwc = integer_images((2, 3, 16, 16), seed=14).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(mk.hog(nhwc, backend=backend), reference.hog(nhwc), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", KERNELS)
def test_op_reached_directly_with_patches_not_dividing(backend):
    """The catalogue entry without the front door: a patch that does not divide H and W. Only the whole
    patches have rows (reference.to_patches drops the rest as unfold does); the cells past them are not
    stored anywhere — no write past the output."""
    imgs = integer_images((2, 2, 40, 24), seed=15)
    cot, window = tables(9, 8, imgs.device)
    got = getattr(torch.ops.mimkernels.hog, backend)(imgs, cot, window, 9, 4, 8, 16, True)
    expected = reference.to_patches(reference.hog_map(imgs, 9, 4, 8), 4)
    assert got.shape == expected.shape == (2, 2, 2 * 9 * 16)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", KERNELS)
def test_op_reached_directly_rejects_bad_metadata(backend):
    imgs = torch.zeros(1, 1, 16, 16)
    cot, window = tables(9, 8, imgs.device)
    op, op_map = getattr(torch.ops.mimkernels.hog, backend), getattr(torch.ops.mimkernels.hog_map, backend)
    bad = [
        lambda: op_map(torch.zeros(1, 1, 1, 16), cot, window, 9, 1, 8, True),    # H < 2: reflect would read row 1
        lambda: op_map(imgs, cot, window, 9, 32, 0, True),                         # pool past the image
        lambda: op_map(imgs, cot[:4], window, 9, 4, 8, True),                      # cot shorter than nbins - 1
        lambda: op_map(imgs, cot, window[:4, :4], 9, 4, 8, True),                  # window smaller than gw
        lambda: op_map(imgs, cot, window, 9, 0, 8, True),                          # pool 0
        lambda: op(imgs, cot, window, 9, 4, 8, 6, True),                           # patch not a multiple of pool
    ]
    for call in bad:
        with pytest.raises((ValueError, RuntimeError), match="hog"):
            call()
