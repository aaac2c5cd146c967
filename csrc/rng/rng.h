// Host entry points of the RNG family (bindings.cpp binds them). out: (n, 4) uint32, row k =
// philox4x32_10(c0_start + k (mod 2^32), c1, c2, c3; seed). Used to cross-check the backends. The cpu
// entry runs on num_threads OpenMP threads (>= 1).
#pragma once
#include <cstdint>

namespace mimkernels {
void philox_fill_cpu(uintptr_t out, int64_t n, uint32_t c0_start, uint32_t c1, uint32_t c2, uint32_t c3,
                     uint64_t seed, int num_threads);
// resolve_key (mimkernels/rng.h) of the (seed, step) int64 pair at seed_step: the host build's key, checked
// against rng.tensor_key and the Triton load_key.
uint64_t resolve_key_cpu(uintptr_t seed_step);
#ifdef MIMKERNELS_WITH_CUDA
void philox_fill_cuda(uintptr_t out, int64_t n, uint32_t c0_start, uint32_t c1, uint32_t c2, uint32_t c3,
                      uint64_t seed, uintptr_t stream);
#endif
}  // namespace mimkernels
