// CPU entry points of the SimMIM mask, the block mask and AvgDist (mask_generators.h).
//
// The draws and the result are those of the shared bodies (mimkernels/simmim_mask.h, block_mask.h,
// avg_dist.h), bit for bit; what is CPU-only here is how the work is laid out:
// - one thread (a DataLoader transform, torch.set_num_threads(1), or a single sample) runs a plain
//   loop: no OpenMP team, which costs more than a sample and hangs a child forked after the parent
//   opened one (issue 20);
// - SimMIM: the stream-2 keys of a sample are computed 16 counters at a time (rng.h philox16_host: AVX2 where the
//   CPU has it), the masked cells are the mask_count smallest packed keys found by
//   rank counting (<= 64 cells) or std::nth_element (more) instead of a heap sort of every key, and
//   the rows are written with memset / memcpy;
// - block mask: block_mask.h's algorithm step for step (block_mask_sample_cpu), its Philox calls, which
//   come in counter order, computed 16 at a time ahead of use (BlockDraws), the cells as one word per row
//   (RowBits) where the grid has <= 64 rows and columns.
// Every count and size comes from the front door (masking/__init__.py); what the catalogue op can be
// handed directly (mask_count outside [0, cells]) is clamped here, never an access outside the output.
#include "mask_generators.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "mimkernels/avg_dist.h"
#include "mimkernels/block_mask.h"
#include "mimkernels/simmim_mask.h"

namespace mimkernels {
namespace {

constexpr int kLanes = 8;
constexpr int64_t kRankCountMaxCells = 64;  // SimMIM grids up to 8 x 8 mask patches: rank counting

// Rank counting: cell t is masked iff fewer than mask_count packed keys (x0 << 32 | t) are smaller
// than its own, i.e. it is among the mask_count smallest, as after simmim_mask_sample's ascending sort:
// rank(t) = #{s : x0[s] < x0[t]} + #{s < t : x0[s] == x0[t]}. O(cells^2): for small grids only.
void mark_by_rank_scalar(uint8_t* cell_mask, const uint32_t* x0, int64_t tokens, int64_t mask_count) {
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t rank = 0;
    for (int64_t s = 0; s < tokens; ++s) rank += (x0[s] < x0[t]) | ((x0[s] == x0[t]) & (s < t));
    cell_mask[t] = rank < mask_count;
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MK_HAVE_AVX2_PATH 1

// mark_by_rank_scalar, 8 cells t at a time against every s: rank(t) = #{s : x0[s] < x0[t]} by signed
// compares of the words with the sign bit flipped (the uint32 order). Without ties these ranks are a
// permutation of [0, cells); a repeated rank reveals a tie of x0 words (rare: ~cells^2 / 2^33), and
// then the exact scalar count decides.
__attribute__((target("avx2"))) void mark_by_rank_avx2(uint8_t* cell_mask, const uint32_t* x0, int64_t tokens,
                                                      int64_t mask_count) {
  alignas(32) int32_t flipped[kRankCountMaxCells + kLanes];
  for (int64_t s = 0; s < tokens; ++s) flipped[s] = static_cast<int32_t>(x0[s] ^ 0x80000000u);
  for (int64_t s = tokens; s < tokens + kLanes; ++s) flipped[s] = 0;  // lanes past the end: not stored
  uint64_t seen = 0;  // bit r: some cell has rank r (tokens <= 64)
  for (int64_t base = 0; base < tokens; base += kLanes) {
    const __m256i key = _mm256_load_si256(reinterpret_cast<const __m256i*>(flipped + base));
    __m256i less0 = _mm256_setzero_si256(), less1 = _mm256_setzero_si256();
    int64_t s = 0;
    for (; s + 2 <= tokens; s += 2) {
      less0 = _mm256_sub_epi32(less0, _mm256_cmpgt_epi32(key, _mm256_set1_epi32(flipped[s])));
      less1 = _mm256_sub_epi32(less1, _mm256_cmpgt_epi32(key, _mm256_set1_epi32(flipped[s + 1])));
    }
    if (s < tokens) less0 = _mm256_sub_epi32(less0, _mm256_cmpgt_epi32(key, _mm256_set1_epi32(flipped[s])));
    alignas(32) int32_t rank[kLanes];
    _mm256_store_si256(reinterpret_cast<__m256i*>(rank), _mm256_add_epi32(less0, less1));
    const int64_t lanes = std::min<int64_t>(kLanes, tokens - base);
    for (int64_t k = 0; k < lanes; ++k) {
      seen |= uint64_t(1) << rank[k];
      cell_mask[base + k] = rank[k] < mask_count;
    }
  }
  const uint64_t all = tokens == 64 ? ~uint64_t(0) : (uint64_t(1) << tokens) - 1;
  if (seen != all) mark_by_rank_scalar(cell_mask, x0, tokens, mask_count);  // a tie
}
#endif

// x0 of draw(seed, i0 + k, sample, stream) for k < n (philox16_host: AVX2 where the CPU has it).
void philox_x0(uint32_t* out, uint32_t i0, int64_t n, uint32_t sample, uint32_t stream, uint64_t seed) {
  alignas(32) uint32_t w[4][kHostPhiloxCalls];
  for (int64_t base = 0; base < n; base += kHostPhiloxCalls) {
    philox16_host(w, i0 + static_cast<uint32_t>(base), sample, stream, 0u, seed);
    std::copy(w[0], w[0] + std::min<int64_t>(kHostPhiloxCalls, n - base), out + base);
  }
}

void mark_by_rank(uint8_t* cell_mask, const uint32_t* x0, int64_t tokens, int64_t mask_count) {
#if defined(MK_HAVE_AVX2_PATH)
  if (host_avx2()) return mark_by_rank_avx2(cell_mask, x0, tokens, mask_count);
#endif
  mark_by_rank_scalar(cell_mask, x0, tokens, mask_count);
}

// One SimMIM sample, equal to simmim_mask_sample (simmim_mask.h). Scratch: keys (tokens words), x0
// (tokens rounded up to kLanes), cell_mask (tokens bytes).
void simmim_mask_sample_cpu(uint8_t* out, uint64_t* keys, uint32_t* x0, uint8_t* cell_mask, int64_t rand_size,
                            int64_t scale, int64_t mask_count, uint64_t seed, int64_t sample) {
  const int64_t tokens = rand_size * rand_size;
  const int64_t n = rand_size * scale;
  mask_count = std::max<int64_t>(0, std::min(mask_count, tokens));
  philox_x0(x0, 0u, tokens, static_cast<uint32_t>(sample), kStreamSimmimMask, seed);
  if (tokens <= kRankCountMaxCells) {
    mark_by_rank(cell_mask, x0, tokens, mask_count);
  } else {
    for (int64_t t = 0; t < tokens; ++t) keys[t] = (static_cast<uint64_t>(x0[t]) << 32) | static_cast<uint64_t>(t);
    std::memset(cell_mask, 0, static_cast<size_t>(tokens));
    if (mask_count < tokens) std::nth_element(keys, keys + mask_count, keys + tokens);
    for (int64_t k = 0; k < mask_count; ++k) cell_mask[keys[k] & 0xffffffffull] = 1;
  }
  for (int64_t r = 0; r < rand_size; ++r) {
    uint8_t* row = out + r * scale * n;
    const uint8_t* cells = cell_mask + r * rand_size;
    for (int64_t c = 0; c < rand_size; ++c) {
      // the cell's value in `scale` bytes, 8 at a time
      uint8_t* dst = row + c * scale;
      const uint64_t splat = cells[c] ? 0x0101010101010101ull : 0ull;
      int64_t x = 0;
      for (; x + 8 <= scale; x += 8) std::memcpy(dst + x, &splat, 8);
      for (; x < scale; ++x) dst[x] = cells[c];
    }
    // numpy's repeat along rows: copy the rows written so far, doubling, until the block has scale rows
    for (int64_t done = 1; done < scale;) {
      const int64_t copy = std::min(done, scale - done);
      std::memcpy(row + done * n, row, static_cast<size_t>(copy * n));
      done += copy;
    }
  }
}

struct SimmimScratch {
  std::vector<uint64_t> words;  // packed keys (tokens) of the nth_element path
  std::vector<uint32_t> x0;     // tokens rounded up to kLanes
  std::vector<uint8_t> cells;   // tokens
  explicit SimmimScratch(int64_t tokens)
      : words(static_cast<size_t>(tokens)),
        x0(static_cast<size_t>((tokens + kLanes - 1) / kLanes * kLanes)),
        cells(static_cast<size_t>(tokens)) {}
  void run(uint8_t* out, int64_t rand_size, int64_t scale, int64_t mask_count, uint64_t seed, int64_t sample) {
    simmim_mask_sample_cpu(out, words.data(), x0.data(), cells.data(), rand_size, scale, mask_count, seed, sample);
  }
};

// ---- block mask: the algorithm of block_mask.h, its Philox calls computed ahead, its cells as row words ---

// The Philox calls of one sample in counter order (block_mask.h's Draws: the i-th call of a sample is
// draw(seed, i, sample, kStreamBlockMask), i counting every call made), the same calls in the same order,
// computed ahead of use:
// - the words kDrawsAhead calls at a time (AVX2 where the CPU has it). 16: a sample makes ~21 calls
//   (MaskFeat 78/15 on 14 x 14), and 16 take little more time than 8 (two independent chains);
// - the aspect ratio of a shape call when the place call before it is made: a place call is always
//   followed by a shape call (the next attempt's or the next block's) or by none, so its exp runs
//   before the attempt's accept test, a branch the CPU cannot predict, instead of after it.
constexpr int kDrawsAhead = kHostPhiloxCalls;

struct BlockDraws {
  uint64_t seed;
  uint32_t sample, base = 0;
  int pos = kDrawsAhead;
  bool aspect_ready = false;  // `aspect` is block_aspect of the call at pos
  double aspect = 0.0;
  alignas(32) uint32_t w[4][kDrawsAhead];

  BlockDraws(uint64_t seed_, uint32_t sample_) : seed(seed_), sample(sample_) {}
  void refill();
  Philox4 next() {
    if (pos == kDrawsAhead) refill();
    const Philox4 r{w[0][pos], w[1][pos], w[2][pos], w[3][pos]};
    ++pos;
    return r;
  }
  BlockShape next_shape(const BlockMaskParams& p) {
    const bool ready = aspect_ready;
    aspect_ready = false;
    const Philox4 words = next();
    return {words, ready ? aspect : block_aspect(p, words)};
  }
  Philox4 next_place(const BlockMaskParams& p) {
    const Philox4 words = next();
    aspect_ready = pos < kDrawsAhead;
    if (aspect_ready) aspect = block_aspect(p, Philox4{w[0][pos], w[1][pos], w[2][pos], w[3][pos]});
    return words;
  }
};

void BlockDraws::refill() {
  philox16_host(w, base, sample, kStreamBlockMask, 0u, seed);
  base += kDrawsAhead;  // uint32: wraps as block_mask.h's counter does
  pos = 0;
}

// The block mask's cells as one 64-bit word per row, bit c = column c (block_mask.h's Cells): grids up to
// kBitRowsMax x kBitColumnsMax. A block's masked cells are h popcounts, filling it h ORs; write() spreads
// the words to the H x W output bytes once, at the end.
constexpr int64_t kBitRowsMax = 64;
constexpr int64_t kBitColumnsMax = 64;

// kSpreadByte[v]: byte k = bit k of v (0 or 1), k < 8.
struct SpreadTable {
  uint64_t word[256];
  constexpr SpreadTable() : word() {
    for (int v = 0; v < 256; ++v)
      for (int k = 0; k < 8; ++k) word[v] |= static_cast<uint64_t>((v >> k) & 1) << (8 * k);
  }
  constexpr const uint64_t& operator[](uint64_t v) const { return word[v]; }
};
constexpr SpreadTable kSpreadByte;

struct RowBits {
  int64_t height;
  uint64_t rows[kBitRowsMax];

  // Bits [left, left + w): w < width <= kBitColumnsMax, left + w <= width (left = width, up to 64, only when w = 0).
  static uint64_t columns(int64_t left, int64_t w) { return w == 0 ? 0 : ((uint64_t(1) << w) - 1) << left; }
  void clear() {
    for (int64_t r = 0; r < height; ++r) rows[r] = 0;
  }
  int64_t masked(int64_t top, int64_t left, int64_t h, int64_t w) const {
    const uint64_t span = columns(left, w);
    int64_t total = 0;
    for (int64_t r = 0; r < h; ++r) total += __builtin_popcountll(rows[top + r] & span);
    return total;
  }
  void fill(int64_t top, int64_t left, int64_t h, int64_t w) {
    const uint64_t span = columns(left, w);
    for (int64_t r = 0; r < h; ++r) rows[top + r] |= span;
  }
  // The height x width mask as bytes (1 = masked), 16 cells a step (two 8-byte stores of kSpreadByte). A
  // step may store past its row's end into the next row, which is written after it; the steps that
  // would store past the mask's end store their cells one at a time.
  void write(uint8_t* out, int64_t width) const {
    const int64_t cells = height * width;
    for (int64_t r = 0; r < height; ++r) {
      for (int64_t c = 0; c < width; c += 16) {
        const uint64_t chunk = rows[r] >> c;
        uint8_t* dst = out + r * width + c;
        if (r * width + c + 16 <= cells) {
          std::memcpy(dst, &kSpreadByte[chunk & 0xff], 8);
          std::memcpy(dst + 8, &kSpreadByte[(chunk >> 8) & 0xff], 8);
        } else {
          for (int64_t k = 0; k < std::min<int64_t>(16, width - c); ++k) dst[k] = (chunk >> k) & 1;
        }
      }
    }
  }
};

// block_mask_fill on RowBits with the draws computed ahead, then the bytes. x86-64: an x86-64-v2 clone
// (popcnt for __builtin_popcountll, else a libgcc call; SSE4.1 roundsd for rint), picked at load time
// where the CPU has it.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("arch=x86-64-v2", "default")))
#endif
int64_t block_mask_sample_bits(uint8_t* mask, const BlockMaskParams& p, uint64_t seed, int64_t sample) {
  RowBits cells;
  cells.height = p.height;
  BlockDraws draws(seed, static_cast<uint32_t>(sample));
  const int64_t count = block_mask_fill(cells, p, draws);
  cells.write(mask, p.width);
  return count;
}

}  // namespace

// block_mask_sample (block_mask.h) on the CPU: the same algorithm and draws (computed ahead), the cells
// as row words where the grid fits them, else as bytes.
int64_t block_mask_sample_cpu(uint8_t* mask, const BlockMaskParams& p, uint64_t seed, int64_t sample) {
  if (p.width <= kBitColumnsMax && p.height <= kBitRowsMax) return block_mask_sample_bits(mask, p, seed, sample);
  const OneLane team;
  TeamCells<OneLane> cells{team, mask, p.height, p.width};
  BlockDraws draws(seed, static_cast<uint32_t>(sample));
  return block_mask_fill(cells, p, draws);
}

void simmim_mask_cpu(uintptr_t out, int64_t batch, int64_t rand_size, int64_t scale, int64_t mask_count,
                     uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads) {
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  const int64_t n = rand_size * scale;
  const int64_t tokens = rand_size * rand_size;
  if (num_threads <= 1 || batch <= 1) {
    SimmimScratch scratch(tokens);
    for (int64_t b = 0; b < batch; ++b) scratch.run(masks + b * n * n, rand_size, scale, mask_count, key,
                                                    sample_offset + b);
    return;
  }
  // Per-thread scratch, allocated outside the parallel region (MemoryError, not a crash, when too big).
  std::vector<SimmimScratch> scratch(static_cast<size_t>(num_threads), SimmimScratch(tokens));
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b)
    scratch[omp_get_thread_num()].run(masks + b * n * n, rand_size, scale, mask_count, key, sample_offset + b);
}

namespace {
// counts: nullptr (p for every sample) or the (batch,) per-sample counts (block_mask_sample_params).
void block_masks_cpu(uint8_t* masks, int64_t batch, const BlockMaskParams& p, const int64_t* counts,
                     bool max_is_count, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads) {
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  const int64_t cells = p.height * p.width;
  auto sample = [&](int64_t b) {
    block_mask_sample_cpu(masks + b * cells, block_mask_sample_params(p, counts, b, max_is_count), key,
                          sample_offset + b);
  };
  if (num_threads <= 1 || batch <= 1) {
    for (int64_t b = 0; b < batch; ++b) sample(b);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) sample(b);
}
}  // namespace

void block_mask_cpu(uintptr_t out, int64_t batch, int64_t height, int64_t width, int64_t num_masking_patches,
                    int64_t min_num_patches, int64_t max_num_patches, double log_aspect_min, double log_aspect_max,
                    bool mmpretrain, uint64_t seed, uintptr_t seed_step, int64_t sample_offset, int num_threads) {
  const BlockMaskParams p{height, width, num_masking_patches, min_num_patches, max_num_patches,
                          log_aspect_min, log_aspect_max, mmpretrain};
  block_masks_cpu(reinterpret_cast<uint8_t*>(out), batch, p, nullptr, false, seed, seed_step, sample_offset,
                  num_threads);
}

void block_mask_counts_cpu(uintptr_t out, uintptr_t counts, int64_t batch, int64_t height, int64_t width,
                           int64_t min_num_patches, int64_t max_num_patches, bool max_is_count, double log_aspect_min,
                           double log_aspect_max, bool mmpretrain, uint64_t seed, uintptr_t seed_step,
                           int64_t sample_offset, int num_threads) {
  const BlockMaskParams p{height, width, 0, min_num_patches, max_num_patches, log_aspect_min, log_aspect_max,
                          mmpretrain};
  block_masks_cpu(reinterpret_cast<uint8_t*>(out), batch, p, reinterpret_cast<const int64_t*>(counts), max_is_count,
                  seed, seed_step, sample_offset, num_threads);
}

namespace {
void avg_dist_sample(float* dist, const uint8_t* m, int32_t* above, int64_t* gu, int64_t h, int64_t w,
                     int64_t patch_size) {
  const int64_t H = h * patch_size, W = w * patch_size;
  int32_t* below = above + h * w;
  int32_t* s = below + h * w;
  for (int64_t j = 0; j < w; ++j) avg_dist_column(m, above, below, h, w, j);
  const AvgDistGrid grid{m, above, below, h, w, patch_size};
  double total = 0.0;
  for (int64_t y = 0; y < H; ++y) total += avg_dist_row_sum(grid, y, gu, s, s + W);
  *dist = avg_dist_finish(total, count_nonzero(m, h * w), h * w, patch_size);
}
}  // namespace

void mask_avg_dist_cpu(uintptr_t out, uintptr_t mask, int64_t batch, int64_t h, int64_t w, int64_t patch_size,
                       int num_threads) {
  float* dist = reinterpret_cast<float*>(out);
  const uint8_t* masks = reinterpret_cast<const uint8_t*>(mask);
  const int64_t W = w * patch_size;
  if (num_threads > batch) num_threads = static_cast<int>(std::max<int64_t>(batch, 1));
  // Per-thread scratch, outside the parallel region (MemoryError, not a crash, when too big):
  // above and below (h * w each), the envelope s and t (W each), gu (W).
  const int64_t ints = 2 * h * w + 2 * W;
  std::vector<int32_t> int_scratch(static_cast<size_t>(num_threads * ints));
  std::vector<int64_t> gu_scratch(static_cast<size_t>(num_threads * W));
  if (num_threads <= 1) {
    for (int64_t b = 0; b < batch; ++b)
      avg_dist_sample(dist + b, masks + b * h * w, int_scratch.data(), gu_scratch.data(), h, w, patch_size);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) {
    const int thread = omp_get_thread_num();
    avg_dist_sample(dist + b, masks + b * h * w, int_scratch.data() + thread * ints, gu_scratch.data() + thread * W,
                    h, w, patch_size);
  }
}
}  // namespace mimkernels
