// SimMIM simmim_mask (masking/SPEC.md §6, rng.md stream 2), one sample per call, shared
// by the CPU (cpp) and CUDA builds. Sort key of mask patch t: x0 of draw(seed, t, sample,
// kStreamSimmimMask); the mask_count smallest keys (ascending as uint32, ties by index, i.e. ascending
// packed (x0 << 32) | t) are masked, each cell expanded to a scale x scale block of the model's grid.
#pragma once
#include <cstdint>

#include "mimkernels/block_mask.h"
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

// The masked cells are the mask_count smallest packed keys, bounded to [0, tokens] (a count past the
// grid masks every cell, a negative one none: never a read past keys). Packed keys are distinct, so
// any exact selection gives the same cells: the cpp build sorts (simmim_mark_sorted), the GPU ranks
// (simmim_rank, one lane per cell) where the keys fit in shared memory.
MK_HD int64_t simmim_bounded_count(int64_t mask_count, int64_t tokens) {
  return mask_count < 0 ? 0 : (mask_count < tokens ? mask_count : tokens);
}

// Bit 31 of the index word (free: tokens < 2^31) marks a masked cell in place.
constexpr uint64_t kSimmimMarked = 1ull << 31;

// Sort keys[0, tokens) and mark the count smallest: afterwards bit 31 of keys[t] says whether cell t is
// masked, whatever key now sits at t.
MK_HD void simmim_mark_sorted(uint64_t* keys, int64_t tokens, int64_t count) {
  heap_sort_ascending(keys, tokens);
  for (int64_t k = 0; k < count; ++k) keys[keys[k] & (kSimmimMarked - 1)] |= kSimmimMarked;
}

// The sorted position of keys[t] among keys[0, tokens) (distinct keys): cell t is masked iff it is
// < count.
MK_HD int64_t simmim_rank(const uint64_t* keys, int64_t tokens, int64_t t) {
  const uint64_t mine = keys[t];
  int64_t rank = 0;
  for (int64_t j = 0; j < tokens; ++j) rank += keys[j] < mine ? 1 : 0;
  return rank;
}

// One sample: out (n x n bytes, n = rand_size * scale, 1 = masked), keys (rand_size^2 scratch).
MK_HD void simmim_mask_sample(uint8_t* out, uint64_t* keys, int64_t rand_size, int64_t scale, int64_t mask_count,
                              uint64_t seed, int64_t sample) {
  const int64_t tokens = rand_size * rand_size;
  const int64_t n = rand_size * scale;
  for (int64_t t = 0; t < tokens; ++t) keys[t] = simmim_packed_key(seed, t, sample);
  simmim_mark_sorted(keys, tokens, simmim_bounded_count(mask_count, tokens));
  for (int64_t y = 0; y < n; ++y) {
    uint8_t* row = out + y * n;
    if (y % scale) {  // repeat the row above (numpy's repeat along rows)
      for (int64_t x = 0; x < n; ++x) row[x] = row[x - n];
      continue;
    }
    const uint64_t* cells = keys + (y / scale) * rand_size;
    for (int64_t c = 0; c < rand_size; ++c) {
      const uint8_t value = (cells[c] & kSimmimMarked) ? 1 : 0;
      for (int64_t x = c * scale; x < (c + 1) * scale; ++x) row[x] = value;
    }
  }
}

// One sample on a team of lanes, the cells selected by rank (the GPU's path where the keys fit in
// shared memory; the host emulation test runs it on 32 threads): keys (tokens) and marks (tokens bytes)
// scratch, out (n x n bytes). The lanes draw the keys, rank their cells, then write the n x n mask
// (lane-strided: consecutive lanes, consecutive bytes).
template <class Team>
MK_HD void simmim_mask_sample_ranked(const Team& team, uint8_t* out, uint64_t* keys, uint8_t* marks,
                                     int64_t rand_size, int64_t scale, int64_t mask_count, uint64_t seed,
                                     int64_t sample) {
  const int64_t tokens = rand_size * rand_size;
  const int64_t n = rand_size * scale;
  const int64_t count = simmim_bounded_count(mask_count, tokens);
  team.each(tokens, [&](int64_t t) { keys[t] = simmim_packed_key(seed, t, sample); });
  team.sync();
  team.each(tokens, [&](int64_t t) { marks[t] = simmim_rank(keys, tokens, t) < count ? 1 : 0; });
  team.sync();
  team.each_rect(n, n, [&](int64_t y, int64_t x) { out[y * n + x] = marks[(y / scale) * rand_size + x / scale]; });
}
}  // namespace mimkernels
