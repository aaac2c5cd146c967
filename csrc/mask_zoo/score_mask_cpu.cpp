// CPU entry of the score-guided mask: per sample, the first max(G, P) tokens of the masking order (the order
// of score_before, a strict total order, as score_sort's heap sort): float scores by a radix selection of
// those tokens, then a radix sort of them only where their order is read (hints: P > 0); double scores by
// nth_element + sort. Then score_mask_sample (mimkernels/score_mask.h). A plain loop on one thread, OpenMP
// over samples otherwise; counts the catalogue op can be handed directly are clamped to [0, N].
#include "score_mask.h"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "mimkernels/radix_sort.h"
#include "mimkernels/score_mask.h"

namespace mimkernels {
namespace {

// A thread's working memory for one sample's ranking, kept between calls (a call per sample in a loader).
struct RankScratch {
  std::vector<uint64_t> keys, swap, first;
  void reserve(int64_t n) {
    if (static_cast<int64_t>(keys.size()) >= n) return;
    keys.resize(static_cast<size_t>(n));
    swap.resize(static_cast<size_t>(n));
    first.resize(static_cast<size_t>(n));
  }
};

// The first `ranked` tokens of the masking order into order[0, ranked), in that order when `ordered`, else
// as a set. float: (key << 32 | index) in index order, score_key inverted when largest: the stable order by
// key is the order of score_before; radix_select_first, then radix_sort_by_key of the selected.
// double: (key, index) pairs, nth_element, then sort.
void rank_tokens(int32_t* order, const float* s, int64_t n, int64_t ranked, bool largest, bool ordered,
                 RankScratch& scratch) {
  uint64_t* keys = scratch.keys.data();
  for (int64_t t = 0; t < n; ++t) {
    const uint32_t key = largest ? ~score_key(s[t]) : score_key(s[t]);
    keys[t] = static_cast<uint64_t>(key) << 32 | static_cast<uint32_t>(t);
  }
  uint64_t* first = keys;
  uint64_t* spare = scratch.swap.data();
  if (ranked < n) {
    radix_select_first(scratch.first.data(), keys, spare, n, ranked);
    first = scratch.first.data();
    spare = keys;
  }
  if (ordered) first = radix_sort_by_key(first, spare, ranked);
  for (int64_t r = 0; r < ranked; ++r) order[r] = static_cast<int32_t>(first[r] & 0xFFFFFFFFu);
}

void rank_tokens(int32_t* order, const double* s, int64_t n, int64_t ranked, bool largest, bool ordered,
                 RankScratch& scratch) {
  uint64_t* keys = scratch.keys.data();
  for (int64_t t = 0; t < n; ++t) keys[t] = largest ? ~score_key(s[t]) : score_key(s[t]);
  std::iota(order, order + n, 0);
  const auto before = [&](int32_t a, int32_t b) { return keys[a] < keys[b] || (keys[a] == keys[b] && a < b); };
  std::nth_element(order, order + ranked, order + n, before);
  if (ordered) std::sort(order, order + ranked, before);
}

template <class T>
void score_mask_rows(uint8_t* out, const T* scores, int64_t begin, int64_t end, const ScoreMaskParams& p,
                     uint64_t seed, int64_t sample_offset) {
  const int64_t n = p.tokens, ranked = std::max(p.num_guided, p.hint_pool);
  thread_local RankScratch scratch;
  thread_local std::vector<int32_t> order;
  scratch.reserve(n);
  if (static_cast<int64_t>(order.size()) < n) order.resize(static_cast<size_t>(n));
  for (int64_t b = begin; b < end; ++b) {
    if (ranked > 0) rank_tokens(order.data(), scores + b * n, n, ranked, p.largest, p.hint_pool > 0, scratch);
    score_mask_sample(out + b * n, order.data(), p, seed, sample_offset + b);
  }
}

template <class T>
void score_mask_batch(uint8_t* out, const T* scores, int64_t batch, const ScoreMaskParams& p, uint64_t seed,
                      int64_t sample_offset, int num_threads) {
  if (num_threads <= 1 || batch <= 1) {
    score_mask_rows(out, scores, 0, batch, p, seed, sample_offset);
    return;
  }
#pragma omp parallel num_threads(num_threads)
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    score_mask_rows(out, scores, batch * t / threads, batch * (t + 1) / threads, p, seed, sample_offset);
  }
}

}  // namespace

void score_mask_cpu(uintptr_t out, uintptr_t scores, bool double_scores, int64_t batch, int64_t tokens,
                    int64_t num_masked, int64_t num_guided, int64_t hint_pool, int64_t num_hints, bool largest,
                    uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads) {
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  const int64_t masked = std::clamp<int64_t>(num_masked, 0, tokens);
  const int64_t pool = std::clamp<int64_t>(hint_pool, 0, tokens);
  const ScoreMaskParams p{tokens, masked, std::clamp<int64_t>(num_guided, 0, masked), pool,
                          std::clamp<int64_t>(num_hints, 0, pool), largest};
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  if (double_scores)
    score_mask_batch(masks, reinterpret_cast<const double*>(scores), batch, p, key, sample_offset, num_threads);
  else
    score_mask_batch(masks, reinterpret_cast<const float*>(scores), batch, p, key, sample_offset, num_threads);
}

}  // namespace mimkernels
