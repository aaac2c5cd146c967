#include "rng.h"

#include "mimkernels/rng.h"

namespace mimkernels {
void philox_fill_cpu(uintptr_t out, int64_t n, uint32_t c0_start, uint32_t c1, uint32_t c2, uint32_t c3,
                     uint64_t seed, int num_threads) {
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
  auto fill = [&](int64_t k) {
    const Philox4 r = philox4x32_10(c0_start + static_cast<uint32_t>(k), c1, c2, c3, seed);
    o[4 * k] = r.x0; o[4 * k + 1] = r.x1; o[4 * k + 2] = r.x2; o[4 * k + 3] = r.x3;
  };
  if (num_threads <= 1) {  // no OpenMP team for one thread (a forked child, tiny work: issue 20)
    for (int64_t k = 0; k < n; ++k) fill(k);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t k = 0; k < n; ++k) fill(k);
}

uint64_t resolve_key_cpu(uintptr_t seed_step) {
  return resolve_key(0u, reinterpret_cast<const int64_t*>(seed_step));
}
}  // namespace mimkernels
