// Host-only stable radix sort of packed (key << 32 | low) uint64 values by their key, shared by the mask
// zoo's CPU bodies: the multi-block masks' shuffled lists (multiblock_mask.h) and the score-guided masks'
// ranking (csrc/mask_zoo/score_mask_cpu.cpp). No data-dependent branches: a comparison sort of random keys
// mispredicts about every other comparison.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

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

// Sorts n distinct packed values whose keys are uniform random words (the multi-block lists' Philox keys)
// ascending, into `out`: one counting pass on the key's top `bits` bits (about one value per bucket:
// bits = ceil(log2 n), 4..16), then an insertion sort of the nearly sorted result (only values sharing a
// bucket are out of order: O(n) expected, predictable branches). counts holds 2^bits entries (zeroed here).
inline void bucket_sort_uniform_keys(const uint64_t* values, uint64_t* out, int64_t n, std::vector<uint32_t>& counts) {
  int bits = 4;
  while (bits < 16 && (int64_t(1) << bits) < n) ++bits;
  const int shift = 64 - bits;
  counts.assign(size_t(1) << bits, 0u);
  for (int64_t j = 0; j < n; ++j) ++counts[values[j] >> shift];
  for (uint32_t b = 0, sum = 0; b < counts.size(); ++b) {
    const uint32_t c = counts[b];
    counts[b] = sum;
    sum += c;
  }
  for (int64_t j = 0; j < n; ++j) out[counts[values[j] >> shift]++] = values[j];
  for (int64_t j = 1; j < n; ++j) {
    const uint64_t v = out[j];
    int64_t i = j;
    for (; i > 0 && out[i - 1] > v; --i) out[i] = out[i - 1];
    out[i] = v;
  }
}

}  // namespace mimkernels
