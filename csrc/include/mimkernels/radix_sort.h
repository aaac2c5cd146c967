// Host-only stable radix sort of packed (key << 32 | low) uint64 values by their key: the score-guided
// masks' ranking (csrc/mask_zoo/score_mask_cpu.cpp). No data-dependent branches: a comparison sort of random keys
// mispredicts about every other comparison.
#pragma once
#include <cstdint>
#include <utility>

namespace mimkernels {

// Sorts values[0, n) by key, equal keys in their given order (an LSD radix sort of the key's 4 bytes:
// one counting pass for the 4 histograms; a byte equal in every value skipped); scratch holds n values.
// Returns where the sorted values are: `values` or `scratch`. n < 2^32.
inline uint64_t* radix_sort_by_key(uint64_t* values, uint64_t* scratch, int64_t n) {
  uint32_t histogram[4][256] = {};
  for (int64_t j = 0; j < n; ++j)
    for (int d = 0; d < 4; ++d) ++histogram[d][(values[j] >> (32 + 8 * d)) & 0xFF];
  uint64_t* src = values;
  uint64_t* dst = scratch;
  for (int d = 0; d < 4; ++d) {
    const int shift = 32 + 8 * d;
    if (n == 0 || histogram[d][(src[0] >> shift) & 0xFF] == n) continue;
    uint32_t start[256];
    for (uint32_t b = 0, sum = 0; b < 256; ++b) {
      start[b] = sum;
      sum += histogram[d][b];
    }
    for (int64_t j = 0; j < n; ++j) dst[start[(src[j] >> shift) & 0xFF]++] = src[j];
    std::swap(src, dst);
  }
  return src;
}

}  // namespace mimkernels
