"""Issue 20: a cpp op called in a child after a raw os.fork() hung forever when the parent had opened an
OpenMP team (GNU OpenMP's thread pool does not survive fork: the child waits for threads it does not have).
mimkernels._native runs the cpp ops of a forked child on one thread, with no parallel region
(os.register_at_fork), and one item of work (SERIAL_ITEMS) never opens a team."""
import os
import subprocess
import sys
import textwrap

import pytest

from mimkernels import _native

pytestmark = pytest.mark.skipif(not _native.available() or not hasattr(os, "fork"),
                                reason="needs mimkernels._C (cpp backend) and os.fork")

# Parent: every cpp op on enough work for a team of 2 threads; then a raw fork, and the child calls each op
# again (it used to hang in the first one) and sends its results' bytes back through a pipe.
CHILD_SCRIPT = textwrap.dedent(r"""
    import os, pickle, sys, torch
    import mimkernels as mk
    torch.set_num_threads(2)
    imgs = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    def calls():
        return [
            mk.hog_map(imgs, backend="cpp"),
            mk.hog(imgs, backend="cpp"),
            mk.block_mask(8, seed=1, backend="cpp"),
            mk.simmim_mask(8, seed=2, backend="cpp"),
            *mk.random_mask_indices(8, 196, seed=3, backend="cpp"),
            mk.mask_avg_dist(mk.simmim_mask(8, seed=2, backend="cpp"), 4, backend="cpp"),
        ]
    parent = [t.numpy().tobytes() for t in calls()]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        child = [t.numpy().tobytes() for t in calls()]
        os.write(write, pickle.dumps(child))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        child = pickle.loads(f.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert child == parent, "the forked child's results differ from the parent's"
    print("same bits")
""")


def test_cpp_ops_in_a_forked_child_do_not_hang():
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    env.pop("TRITON_INTERPRET", None)
    try:
        done = subprocess.run([sys.executable, "-c", CHILD_SCRIPT], capture_output=True, text=True, timeout=120,
                              env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("a cpp op hung in a child forked after the parent opened an OpenMP team")
    assert done.returncode == 0 and "same bits" in done.stdout, done.stderr[-3000:]


def test_tiny_work_runs_on_one_thread():
    assert _native.cpu_threads(_native.SERIAL_ITEMS) == 1
    assert _native.cpu_threads(0) == 1
    if os.cpu_count() and os.cpu_count() > 1 and _native.torch.get_num_threads() > 1:
        assert _native.cpu_threads(2) == 2  # not forked: a team for 2 items (the race tests need it)


def test_forked_child_runs_on_one_thread():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, str(_native.cpu_threads(10**6)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        threads = f.read()
    os.waitpid(pid, 0)
    assert threads == "1"
