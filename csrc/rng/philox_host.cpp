// philox16_host (rng.h): 16 Philox4x32-10 calls at a time on the host, two independent 8-lane AVX2 chains
// side by side (a round's latency is the multiplies': two chains take about the time of one) where host_avx2()
// (the CPU has AVX2, checked once at load, and MIMKERNELS_NO_AVX2 is not set), else rng.h's scalar
// philox4x32_10. The host's WordStream, the block mask's draws and SimMIM's keys
// (csrc/masking/mask_generators_cpu.cpp) come from here.
#include <cstdlib>
#include <cstring>

#include "mimkernels/rng.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MK_HAVE_AVX2_PATH 1
#endif

namespace mimkernels {
namespace {

void philox16_scalar(uint32_t (*w)[kHostPhiloxCalls], uint32_t first_call, uint32_t c1, uint32_t c2, uint32_t c3,
                     uint64_t seed) {
  for (int k = 0; k < kHostPhiloxCalls; ++k) {
    const Philox4 d = philox4x32_10(first_call + static_cast<uint32_t>(k), c1, c2, c3, seed);
    w[0][k] = d.x0;
    w[1][k] = d.x1;
    w[2][k] = d.x2;
    w[3][k] = d.x3;
  }
}

#if defined(MK_HAVE_AVX2_PATH)
constexpr int kLanes = 8;
constexpr int kGroups = kHostPhiloxCalls / kLanes;

// hi and lo 32-bit words of the 8 products a[k] * m (unsigned 32 x 32 -> 64).
__attribute__((target("avx2"))) inline void mulhilo8(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, 4, 6 as 64-bit
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

__attribute__((target("avx2"))) void philox16_avx2(uint32_t (*w)[kHostPhiloxCalls], uint32_t first_call, uint32_t c1,
                                                  uint32_t c2, uint32_t c3, uint64_t seed) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  __m256i x0[kGroups], x1[kGroups], x2[kGroups], x3[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    x0[g] = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first_call + static_cast<uint32_t>(g * kLanes))),
                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    x1[g] = _mm256_set1_epi32(static_cast<int>(c1));
    x2[g] = _mm256_set1_epi32(static_cast<int>(c2));
    x3[g] = _mm256_set1_epi32(static_cast<int>(c3));
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int g = 0; g < kGroups; ++g) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo8(x0[g], m0, &hi0, &lo0);
      mulhilo8(x2[g], m1, &hi1, &lo1);
      x0[g] = _mm256_xor_si256(_mm256_xor_si256(hi1, x1[g]), _mm256_set1_epi32(static_cast<int>(k0)));
      x2[g] = _mm256_xor_si256(_mm256_xor_si256(hi0, x3[g]), _mm256_set1_epi32(static_cast<int>(k1)));
      x1[g] = lo1;
      x3[g] = lo0;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int g = 0; g < kGroups; ++g) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w[0] + g * kLanes), x0[g]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w[1] + g * kLanes), x1[g]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w[2] + g * kLanes), x2[g]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w[3] + g * kLanes), x3[g]);
  }
}

#endif

bool avx2_wanted() {
  const char* off = std::getenv("MIMKERNELS_NO_AVX2");
#if defined(MK_HAVE_AVX2_PATH)
  return (off == nullptr || std::strcmp(off, "0") == 0) && __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

const bool kUseAvx2 = avx2_wanted();

}  // namespace

bool host_avx2() { return kUseAvx2; }

void philox16_host(uint32_t (*w)[kHostPhiloxCalls], uint32_t first_call, uint32_t c1, uint32_t c2, uint32_t c3,
                   uint64_t seed) {
#if defined(MK_HAVE_AVX2_PATH)
  if (kUseAvx2) return philox16_avx2(w, first_call, c1, c2, c3, seed);
#endif
  philox16_scalar(w, first_call, c1, c2, c3, seed);
}

}  // namespace mimkernels
