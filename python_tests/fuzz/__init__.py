"""The value fuzzer of issue 20: every public op, every CPU backend (cpp, torch, Triton under the
interpreter), adversarial values (ids out of range and negative, counts at and past the limits, NaN/Inf
pixels, zero-size batches, huge patch sizes, stride-0 and overlapping views, tensors inside a sentinel
buffer). Each case must give a clean error (TypeError/ValueError/RuntimeError with a message) or a
defined result (the reference's, or the documented one: zeros for an out-of-range id), and never a
crash, a hang, a sanitizer report or a read/write outside its tensors.

  cases.py      the seeded case generator (op, index) -> a call, its category and label, its oracle
  worker.py     runs cases in one process, one JSON line per (case, backend)
  run.py        the parent: worker subprocesses (a crash or hang fails its case, the worker restarts on
                the next one), `python -m python_tests.fuzz.run` prints the failing cases
  known.py      KNOWN_FAILURES: today's failing (op, backend, category), strict xfail in test_fuzz.py
  sanitize.py   the ASan + UBSan build of `_C` in a temporary copy of the package, and the cpp tests and
                the fuzzer's cpp cases under it (`python -m python_tests.fuzz.sanitize`, a CI step)
  test_gpu_memcheck.py  the same adversarial calls on CUDA tensors (gpu-marked, for compute-sanitizer)
"""
