"""Today's failing fuzz cells, (op, backend, category) -> what happens, found by
`python -m python_tests.fuzz.run` (seed 0, MIMKERNELS_FUZZ_CASES=1000, MIMKERNELS_FUZZ_TRITON=48).
python_tests/fuzz/test_fuzz.py marks each one strict xfail: when a kernel fix makes a cell pass, its test
fails until the entry is removed here. The issue 20 table's rows are the first entries.
"""

KNOWN_FAILURES: dict[tuple[str, str, str], str] = {
}

# The same on CUDA tensors (python_tests/fuzz/test_gpu_memcheck.py), (op, backend) -> what is expected; not
# strict (no GPU run has seen them yet): the Triton kernels of the ids ops load with unbounded ids there too.
KNOWN_FAILURES_GPU: dict[tuple[str, str], str] = {
    ("gather_patches", "triton"): "issue 20 table: out-of-range ids read outside imgs (interpreter: segfault)",
    ("unshuffle_tokens", "triton"): "issue 20 table: out-of-range ids read outside x",
}
