// Selection sampling (Knuth's Algorithm S), the uniform subset of an exact size that data2vec_mask.h and
// score_mask.h draw, from a sample's words (rng.h WordStream). mask_zoo/reference.py select_uniform is the
// same definition in torch.
#pragma once
#include "mimkernels/rng.h"

namespace mimkernels {

// Takes `count` of the `candidates` positions p < n with is_candidate(p), a uniform subset: candidate p
// is taken when below(word(word0 + p), left) < to_take (left: candidates at positions >= p, to_take:
// still to take), so exactly `count` are taken (count <= candidates). take(p, taken) is called for every
// position visited, taken false for the others (no branch on a random outcome: callers write
// branch-free, e.g. out[p] |= taken); it may change what is_candidate says of positions < p + 1 only.
template <class IsCandidate, class Take>
MK_HD void select_uniform(int64_t n, int64_t candidates, int64_t count, WordStream& words, int64_t word0,
                          IsCandidate is_candidate, Take take) {
  int64_t left = candidates, to_take = count;
  for (int64_t p = 0; p < n && to_take > 0; ++p) {
    const bool candidate = is_candidate(p);
    const int64_t draw = below(words.word(word0 + p), static_cast<uint32_t>(left));
    const bool taken = candidate & (draw < to_take);
    take(p, taken);
    to_take -= taken;
    left -= candidate;
  }
}

}  // namespace mimkernels
