// SimMIM simmim_mask (masking/SPEC.md §6, rng.md stream 2), one sample per call, shared
// by the CPU (cpp) and CUDA builds. Sort key of mask patch t: x0 of draw(seed, t, sample,
// kStreamSimmimMask); the mask_count smallest keys (ascending as uint32, ties by index, i.e. ascending
// packed (x0 << 32) | t) are masked, each cell expanded to a scale x scale block of the model's grid.
#pragma once
#include <cstdint>

#include "mimkernels/common.h"
#include "mimkernels/rng.h"

namespace mimkernels {
MK_HD uint64_t simmim_packed_key(uint64_t seed, int64_t t, int64_t sample) {
  const uint32_t x0 = draw(seed, static_cast<uint32_t>(t), static_cast<uint32_t>(sample), kStreamSimmimMask).x0;
  return (static_cast<uint64_t>(x0) << 32) | static_cast<uint64_t>(static_cast<uint32_t>(t));
}

// Max-heap sift-down of keys[root] within keys[0, end).
MK_HD void heap_sift_down(uint64_t* keys, int64_t root, int64_t end) {
  for (int64_t child = 2 * root + 1; child < end; child = 2 * root + 1) {
    if (child + 1 < end && keys[child] < keys[child + 1]) ++child;
    if (keys[root] >= keys[child]) return;
    const uint64_t tmp = keys[root];
    keys[root] = keys[child];
    keys[child] = tmp;
    root = child;
  }
}

// In-place ascending heap sort: O(n log n), no allocation, the same code on host and device.
MK_HD void heap_sort_ascending(uint64_t* keys, int64_t n) {
  for (int64_t root = n / 2 - 1; root >= 0; --root) heap_sift_down(keys, root, n);
  for (int64_t end = n - 1; end > 0; --end) {
    const uint64_t top = keys[0];
    keys[0] = keys[end];
    keys[end] = top;
    heap_sift_down(keys, 0, end);
  }
}

// One sample: out (n x n bytes, n = rand_size * scale, 1 = masked), keys (rand_size^2 scratch).
// After the sort, bit 31 of the index word (free: tokens < 2^31) marks the masked cells in place:
// keys[t] holds the mark of cell t, whatever key now sits there.
MK_HD void simmim_mask_sample(uint8_t* out, uint64_t* keys, int64_t rand_size, int64_t scale, int64_t mask_count,
                              uint64_t seed, int64_t sample) {
  constexpr uint64_t kMarked = 1ull << 31;
  const int64_t tokens = rand_size * rand_size;
  const int64_t n = rand_size * scale;
  for (int64_t t = 0; t < tokens; ++t) keys[t] = simmim_packed_key(seed, t, sample);
  heap_sort_ascending(keys, tokens);
  for (int64_t k = 0; k < mask_count; ++k) keys[keys[k] & (kMarked - 1)] |= kMarked;
  for (int64_t y = 0; y < n; ++y) {
    uint8_t* row = out + y * n;
    if (y % scale) {  // repeat the row above (numpy's repeat along rows)
      for (int64_t x = 0; x < n; ++x) row[x] = row[x - n];
      continue;
    }
    const uint64_t* cells = keys + (y / scale) * rand_size;
    for (int64_t c = 0; c < rand_size; ++c) {
      const uint8_t value = (cells[c] & kMarked) ? 1 : 0;
      for (int64_t x = c * scale; x < (c + 1) * scale; ++x) row[x] = value;
    }
  }
}
}  // namespace mimkernels
