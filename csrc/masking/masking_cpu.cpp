#include "masking.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "mimkernels/mae_masking.h"

namespace mimkernels {
namespace {
// keep_counts: nullptr (every sample keeps K) or the (batch,) kept counts of per-sample ratios. seed_step:
// nullptr or the seed tensor's (seed, step), its key resolved once here, before the loop over samples.
void mae_mask_indices(int64_t* keep, int64_t* restore, float* m, const int64_t* keep_counts, int64_t batch,
                      int64_t L, int64_t K, uint64_t seed, const int64_t* seed_step, int64_t sample_offset,
                      int num_threads) {
  const uint64_t key = resolve_key(seed, seed_step);
  auto sample = [&](std::vector<uint64_t>& keys, int64_t b) {
    for (int64_t l = 0; l < L; ++l) keys[l] = mae_packed_key(mae_key(key, l, sample_offset + b), l);
    std::sort(keys.begin(), keys.end());
    const int64_t kept = mae_kept_count(keep_counts, b, K);
    for (int64_t pos = 0; pos < L; ++pos) {
      const int64_t l = static_cast<int64_t>(keys[pos] & 0xffffffffull);
      mae_write_position(keep + b * K, restore + b * L, m + b * L, l, pos, K, kept);
    }
  };
  if (num_threads <= 1 || batch <= 1) {  // no OpenMP team for one thread (a forked child, a DataLoader worker)
    std::vector<uint64_t> keys(static_cast<size_t>(L));
    for (int64_t b = 0; b < batch; ++b) sample(keys, b);
    return;
  }
  // Per-thread sort keys, allocated outside the parallel region (MemoryError, not a crash, when too big).
  std::vector<std::vector<uint64_t>> scratch(static_cast<size_t>(num_threads), std::vector<uint64_t>(L));
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) sample(scratch[omp_get_thread_num()], b);
}
}  // namespace

void mae_mask_indices_cpu(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, int64_t batch, int64_t L,
                          int64_t K, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads) {
  mae_mask_indices(reinterpret_cast<int64_t*>(ids_keep), reinterpret_cast<int64_t*>(ids_restore),
                   reinterpret_cast<float*>(mask), nullptr, batch, L, K, seed,
                   reinterpret_cast<const int64_t*>(seed_step), sample_offset, num_threads);
}

void mae_mask_indices_counts_cpu(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, uintptr_t keep_counts,
                                 int64_t batch, int64_t L, int64_t K, uint64_t seed, uintptr_t seed_step,
                                 int64_t sample_offset, int num_threads) {
  mae_mask_indices(reinterpret_cast<int64_t*>(ids_keep), reinterpret_cast<int64_t*>(ids_restore),
                   reinterpret_cast<float*>(mask), reinterpret_cast<const int64_t*>(keep_counts), batch, L, K, seed,
                   reinterpret_cast<const int64_t*>(seed_step), sample_offset, num_threads);
}
}  // namespace mimkernels
