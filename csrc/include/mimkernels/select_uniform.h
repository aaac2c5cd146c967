// The draws shared by data2vec_mask.h and score_mask.h: a sample's uint32 words in order (word q is
// word q % 4 of the Philox call first_call + q / 4) and selection sampling (Knuth's Algorithm S), the
// uniform subset of an exact size both generators draw. mask_zoo/reference.py (_words, select_uniform)
// is the same definition in torch.
#pragma once
#include "mimkernels/rng.h"

namespace mimkernels {

struct WordStream {
  uint64_t seed;
  uint32_t first_call, sample, stream;
  int64_t cached_call = -1;
  Philox4 words{0u, 0u, 0u, 0u};

  MK_HD WordStream(uint64_t seed_, uint32_t first_call_, uint32_t sample_, uint32_t stream_)
      : seed(seed_), first_call(first_call_), sample(sample_), stream(stream_) {}

  MK_HD uint32_t word(int64_t q) {
    const int64_t call = q >> 2;
    if (call != cached_call) {
      words = draw(seed, first_call + static_cast<uint32_t>(call), sample, stream);
      cached_call = call;
    }
    switch (q & 3) {
      case 0: return words.x0;
      case 1: return words.x1;
      case 2: return words.x2;
      default: return words.x3;
    }
  }
};

// Takes `count` of the `candidates` positions p < n with is_candidate(p), a uniform subset: candidate p
// is taken when below(word(word0 + p), left) < to_take (left: candidates at positions >= p, to_take:
// still to take), so exactly `count` are taken (count <= candidates). take(p) may change what
// is_candidate says of positions < p + 1 only.
template <class IsCandidate, class Take>
MK_HD void select_uniform(int64_t n, int64_t candidates, int64_t count, WordStream& words, int64_t word0,
                          IsCandidate is_candidate, Take take) {
  int64_t left = candidates, to_take = count;
  for (int64_t p = 0; p < n && to_take > 0; ++p) {
    if (!is_candidate(p)) continue;
    if (static_cast<int64_t>(below(words.word(word0 + p), static_cast<uint32_t>(left))) < to_take) {
      take(p);
      --to_take;
    }
    --left;
  }
}

}  // namespace mimkernels
