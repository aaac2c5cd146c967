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
raise ValueError. The second stop removed 22 of the 23 cells left after it: radii capped at H + W
(1e308 was an OverflowError: it is the all-pass disc), complex tensors a TypeError at patchify / unpatchify /
gather_patches (KeyError on Triton), unpatchify's grid_size two ints (inf was an OverflowError), hog's nbins
<= 4096 (2^31 - 1 hung the cpp body; the 65536-bin cases were the boundary votes SPEC.md §5 documents), block
grids < 2^31 cells and the reference's output allocated first (MemoryError / hang), an empty batch of
random_mask_indices drawing nothing (std::bad_alloc), lowfreq_target on an image with no pixels on Triton
(ZeroDivisionError).

Still open: patch_norm_target on an expanded constant image (Triton against the reference): the rounding of
the mean Σt/D, amplified by 1/√eps to ~5e-4 on a zero-variance patch; a corrected mean made both exactly 0
but moved the reference off MAE's formula (the Hugging Face parity test's mask-token gradient then differed
past 1e-5), so the reference keeps MAE's formula and the cell stays (pixel/SPEC.md §2). And unshuffle_tokens on Triton with a kept id twice in one row of ids_restore (not a permutation):
the forward is right, the backward's scatter keeps one of the two gradient rows, which one unspecified
(never memory outside grad_x), as masking/SPEC.md §5 documents; MIMKERNELS_DEBUG=1 refuses such ids. Summing
them instead needs a search over the row's L ids in every grad_x tile (as gather_patches' backward does), work
on every call for an input the op's contract excludes, and no GPU was at hand to show that it costs nothing.
"""

KNOWN_FAILURES: dict[tuple[str, str, str], str] = {
    ('patch_norm_target', 'triton', 'stride0'):
        "1/2 failed: 1x 384 of 384 elements differ from the reference  (e.g. case 23: imgs one element expanded; imgs strides [0, 0, 0, 0]): a constant patch's zero variance lets 1/sqrt(eps) amplify the rounding of the reference's mean (MAE's formula, kept for parity) to ~5e-4",
    ('unshuffle_tokens', 'triton', 'ids_duplicate'):
        "1/1 failed: 1x 8 of 48 elements differ from the reference  (e.g. case 17: ids_restore[7] = ids_restore[1] = 2; num_prefix_tokens=0)",
}

# The same on CUDA tensors (python_tests/fuzz/test_gpu_memcheck.py), (op, backend) -> what is expected; not
# strict (no GPU run has seen them yet): the Triton kernels of the ids ops load with unbounded ids there too.
KNOWN_FAILURES_GPU: dict[tuple[str, str], str] = {
    ("gather_patches", "triton"): "issue 20 table: out-of-range ids read outside imgs (interpreter: segfault)",
    ("unshuffle_tokens", "triton"): "issue 20 table: out-of-range ids read outside x",
}
