#include "masking.h"

#include "mimkernels/cuda_check.h"
#include "mimkernels/mae_masking.h"

namespace mimkernels {
namespace {
// One block per sample. The uint32 keys go to the mask row (as scratch, bit patterns), then each
// thread ranks its patches by counting: pos[l] = #{m : packed(m) < packed(l)} (exact, no shared
// memory limit on L). Then the mask row is overwritten from ids_restore. seed_step: nullptr or a seed
// tensor's (seed, step), read here in the kernel (each thread resolves the key), so a graph replay reads it anew.
__global__ void mae_mask_indices_kernel(int64_t* ids_keep, int64_t* ids_restore, float* mask,
                                        const int64_t* keep_counts, int64_t L, int64_t K, uint64_t seed,
                                        const int64_t* seed_step, int64_t sample_offset) {
  const uint64_t key = resolve_key(seed, seed_step);
  const int64_t b = blockIdx.x;
  const int64_t kept = mae_kept_count(keep_counts, b, K);
  int64_t* keep_row = ids_keep + b * K;
  int64_t* restore_row = ids_restore + b * L;
  float* mask_row = mask + b * L;
  uint32_t* key_row = reinterpret_cast<uint32_t*>(mask_row);
  for (int64_t l = threadIdx.x; l < L; l += blockDim.x) key_row[l] = mae_key(key, l, sample_offset + b);
  __syncthreads();
  for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
    const uint64_t mine = mae_packed_key(key_row[l], l);
    int64_t pos = 0;
    for (int64_t j = 0; j < L; ++j) pos += mae_packed_key(key_row[j], j) < mine ? 1 : 0;
    restore_row[l] = pos;
    if (pos < K) keep_row[pos] = l;
  }
  __syncthreads();
  for (int64_t l = threadIdx.x; l < L; l += blockDim.x) mask_row[l] = restore_row[l] >= kept ? 1.0f : 0.0f;
}

void launch_mae_mask_indices(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, uintptr_t keep_counts,
                             int64_t batch, int64_t L, int64_t K, uint64_t seed, uintptr_t seed_step,
                             int64_t sample_offset, uintptr_t stream) {
  if (batch == 0 || L == 0) return;
  const int threads = 256;
  mae_mask_indices_kernel<<<grid_x(batch, "mae_mask_indices_kernel"), threads, 0, as_stream(stream)>>>(
      reinterpret_cast<int64_t*>(ids_keep), reinterpret_cast<int64_t*>(ids_restore), reinterpret_cast<float*>(mask),
      reinterpret_cast<const int64_t*>(keep_counts), L, K, seed, reinterpret_cast<const int64_t*>(seed_step),
      sample_offset);
  MK_CHECK_LAUNCH("mae_mask_indices_kernel");
}
}  // namespace

void mae_mask_indices_cuda(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, int64_t batch, int64_t L,
                           int64_t K, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, uintptr_t stream) {
  launch_mae_mask_indices(ids_keep, ids_restore, mask, 0, batch, L, K, seed, seed_step, sample_offset, stream);
}

void mae_mask_indices_counts_cuda(uintptr_t ids_keep, uintptr_t ids_restore, uintptr_t mask, uintptr_t keep_counts,
                                  int64_t batch, int64_t L, int64_t K, uint64_t seed, uintptr_t seed_step,
                                  int64_t sample_offset, uintptr_t stream) {
  launch_mae_mask_indices(ids_keep, ids_restore, mask, keep_counts, batch, L, K, seed, seed_step, sample_offset,
                          stream);
}
}  // namespace mimkernels
