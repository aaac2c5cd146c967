// Score-guided masks (AttMask, HPM), one sample at a time: the body of the cpp and cuda backends
// (csrc/mask_zoo/score_mask*), equal to mask_zoo/reference.py score_mask bit for bit (mask_zoo/SPEC.md §8).
#pragma once
#include <cstring>

#include "mimkernels/select_uniform.h"

namespace mimkernels {

struct ScoreMaskParams {
  int64_t tokens;       // N
  int64_t num_masked;   // M
  int64_t num_guided;   // G <= M: the first G tokens of the masking order
  int64_t hint_pool;    // P: hints come from the first P tokens of the order
  int64_t num_hints;    // H <= P revealed
  bool largest;
};

// Sortable keys: ascending key = ascending value, -0.0 as +0.0, every NaN as one NaN above +inf
// (IEEE bits, sign-flipped for positives and inverted for negatives). float -> 32 bits, double -> 64.
template <class T, class Bits>
MK_HD Bits sortable_bits(T v, Bits quiet_nan) {
  Bits u = quiet_nan;
  if (v == v) {
    const T w = v == T(0) ? T(0) : v;
    memcpy(&u, &w, sizeof u);
  }
  const Bits sign = Bits(1) << (8 * sizeof(Bits) - 1);
  return (u & sign) ? ~u : (u | sign);
}

MK_HD uint32_t score_key(float v) { return sortable_bits<float, uint32_t>(v, 0x7FC00000u); }
MK_HD uint64_t score_key(double v) { return sortable_bits<double, uint64_t>(v, 0x7FF8000000000000ull); }

// Masking order (a strict total order: every sort gives the same order): token a before token b: ascending key (inverted when largest), equal keys by lower index.
template <class T>
MK_HD bool score_before(const T* s, int64_t a, int64_t b, bool largest) {
  const auto ka = largest ? ~score_key(s[a]) : score_key(s[a]);
  const auto kb = largest ? ~score_key(s[b]) : score_key(s[b]);
  return ka < kb || (ka == kb && a < b);
}

// order[0, n) = 0..n-1 sorted by score_before (heap sort: no allocation, for the CUDA threads).
template <class T>
MK_HD void score_sort(int32_t* order, const T* s, int64_t n, bool largest) {
  for (int64_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
  auto sift = [&](int64_t root, int64_t end) {
    while (2 * root + 1 < end) {
      int64_t child = 2 * root + 1;
      if (child + 1 < end && score_before(s, order[child], order[child + 1], largest)) ++child;
      if (!score_before(s, order[root], order[child], largest)) return;
      const int32_t t = order[root]; order[root] = order[child]; order[child] = t;
      root = child;
    }
  };
  for (int64_t i = n / 2 - 1; i >= 0; --i) sift(i, n);
  for (int64_t end = n - 1; end > 0; --end) {
    const int32_t t = order[0]; order[0] = order[end]; order[end] = t;
    sift(0, end);
  }
}

// out: the sample's N bytes, 1 = masked; order: the first max(G, P) tokens of the masking order (score_sort,
// or any sort by score_before), in that order where P > 0 (the hints read ranks < P), else in any order (the
// G guided tokens are read as a set). Writes G guided, M - G random (uniform over the other
// tokens, index order, words q = token), then reveals H of the first P in order (rank order, words
// q = 4 ceil(N / 4) + rank).
MK_HD void score_mask_sample(uint8_t* out, const int32_t* order, const ScoreMaskParams& p, uint64_t seed,
                             int64_t sample) {
  WordStream words(seed, 0u, static_cast<uint32_t>(sample), kStreamScoreMask);
  const int64_t n = p.tokens;
  for (int64_t t = 0; t < n; ++t) out[t] = 0;
  for (int64_t r = 0; r < p.num_guided; ++r) out[order[r]] = 1;
  select_uniform(n, n - p.num_guided, p.num_masked - p.num_guided, words, 0,
                 [&](int64_t t) { return out[t] == 0; }, [&](int64_t t, bool taken) { out[t] |= taken; });
  select_uniform(p.hint_pool, p.hint_pool, p.num_hints, words, (n + 3) / 4 * 4, [](int64_t) { return true; },
                 [&](int64_t r, bool taken) { out[order[r]] &= static_cast<uint8_t>(!taken); });
}

}  // namespace mimkernels
