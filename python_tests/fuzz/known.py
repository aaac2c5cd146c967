"""Today's failing fuzz cells, (op, backend, category) -> what happens, found by
`python -m python_tests.fuzz.run` (seed 0, MIMKERNELS_FUZZ_CASES=1000, MIMKERNELS_FUZZ_TRITON=48; regenerate
the entries with `python -m python_tests.fuzz.run --json r.json` then `--from-json r.json --known`).
python_tests/fuzz/test_fuzz.py marks each one strict xfail: when a kernel fix makes a cell pass, its test
fails until the entry is removed here. python_tests/fuzz/sanitize.py holds the cpp entries to the same rule
under ASan + UBSan.

The issue 20 table, as the fuzzer found it at the start of stop 15 (MIMKERNELS_DEBUG unset): gather_patches on
Triton segfaulted or returned other samples' pixels for ids past the end or negative; unshuffle_tokens read x
outside its rows for huge ids and lost gradient for duplicates; mask_avg_dist and simmim_mask hung on huge
sizes. The kernel and front-door fixes of that stop turned those cells green (removed from this list): an id
out of range now gives zeros and no gradient; duplicate ids in gather_patches' backward are summed; huge sizes
raise ValueError. Still open below: unshuffle_tokens' duplicate kept ids (unspecified which gradient is kept
without MIMKERNELS_DEBUG=1, masking/SPEC.md §5), huge nbins hanging hog's cpp body, unclean errors (MemoryError,
OverflowError, KeyError for complex dtypes), patch_norm_target on a fully expanded input.
"""

KNOWN_FAILURES: dict[tuple[str, str, str], str] = {
    ('unshuffle_tokens', 'triton', 'ids_duplicate'):
        "1/1 failed: 1x 8 of 48 elements differ from the reference  (e.g. case 17: ids_restore[7] = ids_restore[1] = 2; num_prefix_tokens=0)",
}

# The same on CUDA tensors (python_tests/fuzz/test_gpu_memcheck.py), (op, backend) -> what is expected; not
# strict (no GPU run has seen them yet): the Triton kernels of the ids ops load with unbounded ids there too.
KNOWN_FAILURES_GPU: dict[tuple[str, str], str] = {
    ("gather_patches", "triton"): "issue 20 table: out-of-range ids read outside imgs (interpreter: segfault)",
    ("unshuffle_tokens", "triton"): "issue 20 table: out-of-range ids read outside x",
}
