// Philox4x32-10 and the conversions of docs/rng.md, as __host__ __device__ functions: the same
// integer code runs in the CUDA kernels and in the CPU (cpp) backend, bit for bit. rng.py (torch)
// and mimkernels/_triton_rng.py (tl.philox) implement the same definition; tests cross-check all.
#pragma once
#include "mimkernels/common.h"

namespace mimkernels {

// Counter word 2 ("stream") of each op that draws random numbers (rng.md).
enum RngStream : uint32_t {
  kStreamMaeMasking = 1,
  kStreamSimmimMask = 2,
  kStreamBlockMask = 3,
  kStreamFrequencyChoice = 4,
  // the mask zoo (mimkernels/mask_zoo/SPEC.md)
  kStreamMultiblock2d = 5,
  kStreamMultiblock3d = 6,
  kStreamTubeMask = 7,
  kStreamRunningCellMask = 8,
  kStreamUniformMask = 9,
  kStreamDinoCollate = 10,
  kStreamData2vecMask = 11,
  kStreamScoreMask = 12,
};

struct Philox4 {
  uint32_t x0, x1, x2, x3;
};

MK_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint64_t seed) {
  uint32_t k0 = static_cast<uint32_t>(seed);
  uint32_t k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{c0, c1, c2, c3};
}

// The draw of mimkernels: counter (i, sample, stream, 0), key = seed.
MK_HD Philox4 draw(uint64_t seed, uint32_t i, uint32_t sample, uint32_t stream) {
  return philox4x32_10(i, sample, stream, 0u, seed);
}

// The key of a call whose seed lives in memory as the int64 pair (seed, step) (rng.md "Seeds in a tensor"):
// derive_seed(seed, step mod 2^32), one Philox call at counter (step, 0, 0, 0) under key seed. Without the
// pointer, the seed argument itself. Read inside the kernel, so a captured CUDA graph draws anew on replay.
MK_HD uint64_t resolve_key(uint64_t seed, const int64_t* seed_step) {
  if (seed_step == nullptr) return seed;
  const Philox4 r = philox4x32_10(static_cast<uint32_t>(seed_step[1]), 0u, 0u, 0u, static_cast<uint64_t>(seed_step[0]));
  return static_cast<uint64_t>(r.x0) | (static_cast<uint64_t>(r.x1) << 32);
}

#if !defined(__CUDA_ARCH__)
// Philox calls in blocks of 16 on the host (csrc/rng/philox_host.cpp: AVX2, 8 counters per lane group, where
// the CPU has it, else philox4x32_10): w[j][k] = word j of philox4x32_10(first_call + k, c1, c2, c3, seed),
// counters mod 2^32. The same integers as philox4x32_10.
constexpr int kHostPhiloxCalls = 16;
// Whether the host's AVX2 paths run (philox16_host, masking's mark_by_rank): the CPU has AVX2 and
// MIMKERNELS_NO_AVX2 is unset or "0" (set: the scalar paths, as on a CPU without AVX2; the tests run both).
// Read once, at load.
bool host_avx2();
void philox16_host(uint32_t (*w)[kHostPhiloxCalls], uint32_t first_call, uint32_t c1, uint32_t c2, uint32_t c3,
                   uint64_t seed);
#endif

// A sample's uint32 words in counter order: word q is word q % 4 of Philox at (first_call + q / 4, sample,
// stream, word3) (rng.py words is the same definition in torch). The mask zoo draws through it, in order
// (next()) or by position (word(q): the word of cell or position q). On a GPU thread the last call is
// cached; on the host the first call alone, then windows of kHostPhiloxCalls calls from the call asked for
// (philox16_host), so a scan in counter order costs one block per 16 calls.
struct WordStream {
  uint64_t seed;
  uint32_t first_call, sample, stream, word3;
  int64_t cached_call = -1, next_word = 0;
#if defined(__CUDA_ARCH__)
  Philox4 words{0u, 0u, 0u, 0u};
#else
  int64_t window_calls = 0;  // calls in the window: 0 before the first word, 1 after it, then 16
  alignas(32) uint32_t window[4][kHostPhiloxCalls];
#endif

  MK_HD WordStream(uint64_t seed_, uint32_t first_call_, uint32_t sample_, uint32_t stream_, uint32_t word3_ = 0u)
      : seed(seed_), first_call(first_call_), sample(sample_), stream(stream_), word3(word3_) {}

  MK_HD uint32_t word(int64_t q) {
    const int64_t call = q >> 2;
#if defined(__CUDA_ARCH__)
    if (call != cached_call) {
      words = philox4x32_10(first_call + static_cast<uint32_t>(call), sample, stream, word3, seed);
      cached_call = call;
    }
    switch (q & 3) {
      case 0: return words.x0;
      case 1: return words.x1;
      case 2: return words.x2;
      default: return words.x3;
    }
#else
    if (call < cached_call || call >= cached_call + window_calls) {
      const uint32_t counter = first_call + static_cast<uint32_t>(call);
      if (window_calls == 0) {  // the first call alone: a sample drawing a word or two pays no block of 16
        const Philox4 d = philox4x32_10(counter, sample, stream, word3, seed);
        window[0][0] = d.x0;
        window[1][0] = d.x1;
        window[2][0] = d.x2;
        window[3][0] = d.x3;
        window_calls = 1;
      } else {
        philox16_host(window, counter, sample, stream, word3, seed);
        window_calls = kHostPhiloxCalls;
      }
      cached_call = call;
    }
    return window[q & 3][call - cached_call];
#endif
  }
  MK_HD uint32_t next() { return word(next_word++); }
};

// uint32 -> float32 in [0, 1): (x >> 8) * 2^-24, exact, never 1.0.
MK_HD float unit_float(uint32_t x) { return static_cast<float>(x >> 8) * 5.9604644775390625e-08f; }

// uint32 pair -> float64 in [0, 1): ((x0 >> 5) * 2^26 + (x1 >> 6)) * 2^-53.
MK_HD double unit_double(uint32_t x0, uint32_t x1) {
  const uint64_t m = (static_cast<uint64_t>(x0 >> 5) << 26) + (x1 >> 6);
  return static_cast<double>(m) * 1.1102230246251565e-16;
}

// Uniform integer in [0, n), n < 2^32: (x * n) >> 32 in 64-bit arithmetic.
MK_HD uint32_t below(uint32_t x, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(x) * n) >> 32);
}

}  // namespace mimkernels
