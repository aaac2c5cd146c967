// Host-only stable radix sort and selection of packed (key << 32 | low) uint64 values by their key: the
// score-guided masks' ranking (csrc/mask_zoo/score_mask_cpu.cpp). No data-dependent branches: a comparison
// sort of random keys mispredicts about every other comparison.
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

// Writes to out[0, count) the `count` first values of values[0, n) in the stable order by key (those
// radix_sort_by_key puts first), in no particular order; count <= n. An MSD radix selection on the key's
// bytes: each pass keeps the values of the byte holding the count-th (in their given order, in scratch) and
// writes out those of smaller bytes, branch-free; once only equal keys are left, the first ones are taken.
// values and scratch (n values each) are overwritten.
inline void radix_select_first(uint64_t* out, uint64_t* values, uint64_t* scratch, int64_t n, int64_t count) {
  int64_t written = 0, left = n, need = count;
  uint64_t* src = values;
  uint64_t* dst = scratch;
  for (int d = 3; d >= 0 && need > 0 && need < left; --d) {
    const int shift = 32 + 8 * d;
    uint32_t histogram[256] = {};
    for (int64_t j = 0; j < left; ++j) ++histogram[(src[j] >> shift) & 0xFF];
    uint32_t pivot = 0;
    int64_t before = 0;
    while (before + histogram[pivot] < need) before += histogram[pivot++];
    int64_t kept = 0;
    for (int64_t j = 0; j < left; ++j) {
      const uint64_t v = src[j];
      const uint32_t byte = (v >> shift) & 0xFF;
      out[written] = v;
      written += byte < pivot;
      dst[kept] = v;
      kept += byte == pivot;
    }
    need -= before;
    left = kept;
    std::swap(src, dst);
  }
  for (int64_t j = 0; j < need; ++j) out[written + j] = src[j];
}

}  // namespace mimkernels
