import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The references run many small int64 ops, which are up to 40x slower with 2 intra-op threads
    on a busy 2-core machine; the cpp tests over 10k samples switch back to 2 threads (OpenMP)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
