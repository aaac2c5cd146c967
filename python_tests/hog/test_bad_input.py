"""Bad arguments: each raises before any kernel runs, with a message that says what was expected."""
import pytest
import torch

import mimkernels as mk


def test_errors():
    x = torch.zeros(1, 3, 32, 32)
    bad = [
        (lambda: mk.hog(x[0]), ValueError, "4-D"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 1, 8), pool=1, gaussian_window=0), ValueError, ">= 2"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 8, 6), pool=8, gaussian_window=0), ValueError, "pool"),
        (lambda: mk.hog_map(x, nbins=0), ValueError, "nbins"),
        (lambda: mk.hog_map(x, nbins=4097, backend="cpp"), ValueError, "nbins must be <= 4096"),  # issue 20: 2^31 - 1
        (lambda: mk.hog(x, nbins=2**31 - 1, backend="torch"), ValueError, "nbins must be <= 4096"),  # hung the cpp body
        (lambda: mk.hog_map(x, pool=0), ValueError, "pool"),
        (lambda: mk.hog_map(x, gaussian_window=-1), ValueError, "gaussian_window"),
        (lambda: mk.hog_map(x, gaussian_window=1), ValueError, "gaussian_window"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 24, 24)), ValueError, "gaussian_window"),
        (lambda: mk.hog_map(torch.zeros(1, 3, 16, 24)), ValueError, "gaussian_window"),
        (lambda: mk.hog(x, pool=7, gaussian_window=0), ValueError, "multiple of pool"),
        (lambda: mk.hog(torch.zeros(1, 3, 32, 40), gaussian_window=8), ValueError, "divisible by patch_size"),
        (lambda: mk.hog(torch.zeros(1, 0, 32, 32)), ValueError, "C >= 1"),
        (lambda: mk.hog(x.double()), TypeError, "dtype"),
        (lambda: mk.hog(x, nbins=9.0), TypeError, "nbins"),
        (lambda: mk.hog(x, norm_out=1), TypeError, "norm_out"),
        (lambda: mk.hog(x, backend="nope"), ValueError, "backend"),
    ]
    for call, exc, words in bad:
        with pytest.raises(exc, match=words):
            call()
    assert mk.hog(torch.zeros(0, 3, 32, 32)).shape == (0, 4, 108)
