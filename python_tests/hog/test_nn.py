"""mimkernels.nn.HOG: the module equals the functional op."""
import torch

from mimkernels.hog import reference
from mimkernels.nn import HOG
from python_tests.hog.oracles import integer_images


def test_nn_module():
    module = HOG()
    imgs = integer_images((1, 3, 32, 32))
    torch.testing.assert_close(module(imgs), reference.hog(imgs), rtol=0, atol=1e-6)
    assert "gaussian_window=16" in repr(module)
    maskfeat = HOG(gaussian_window=0, output="map")
    torch.testing.assert_close(maskfeat(imgs), reference.hog_map(imgs, gaussian_window_size=0), rtol=0, atol=1e-6)
