// BEiT / MaskFeat block-wise mask (block_mask, masking/SPEC.md §7: unilm beit/masking_generator.py, SlowFast
// MaskingGenerator), one sample per call, shared by the CPU (cpp) and CUDA builds.
//
// Draws (rng.md, stream 3): counter i = the running count of Philox calls of this sample, from 0.
// Each attempt makes one call `shape` at i (u_area from words x0, x1; u_aspect from x2, x3, both
// unit_double) and, only when the block fits (h < H and w < W), one more call `place` at i + 1
// (top = below(x0, H - h + 1), left = below(x1, W - w + 1): randint with both bounds inclusive).
// The algorithm is the official one step by step: 10 attempts per block, a block is accepted when it
// adds 0 < new <= cap cells (overlap allowed), the mask stops early when a block adds nothing
// (unilm; mmpretrain's variant below).
#pragma once
#include <cmath>
#include <cstdint>

#include "mimkernels/common.h"
#include "mimkernels/rng.h"

namespace mimkernels {
// a + (b - a) * u rounded after each operation as Python does. Both compilers would contract it into
// an FMA: nvcc always (hence the _rn intrinsics), the host compiler wherever the target has FMA
// (aarch64; x86-64 with -mfma), which setup.py's -ffp-contract=off forbids.
MK_HD double uniform_between(double a, double b, double u) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, __dmul_rn(__dsub_rn(b, a), u));
#else
  return a + (b - a) * u;
#endif
}

// mmpretrain's BEiTMaskGenerator (variant="mmpretrain") differs in two steps: randint(0, H - h) has an
// exclusive upper bound (the last row and column are never masked), and a block that adds nothing
// does not stop the mask: it retries until exactly num_masking_patches cells (the host checks that
// they fit). kMmpretrainMaxBlocks bounds the retries, where mmpretrain could loop forever.
constexpr int64_t kMmpretrainMaxBlocks = int64_t(1) << 16;

struct BlockMaskParams {
  int64_t height, width;
  int64_t num_masking_patches, min_num_patches, max_num_patches;
  double log_aspect_min, log_aspect_max;  // ln(min_aspect), ln(max_aspect), computed once on the host
  bool mmpretrain;
};

// The parameters of sample b: p itself, or with per-sample counts (block_mask with a count tensor, masking/SPEC.md
// §7a) num_masking_patches = counts[b], and max_num_patches too when max_is_count (the caller passed none).
MK_HD BlockMaskParams block_mask_sample_params(BlockMaskParams p, const int64_t* counts, int64_t b,
                                               bool max_is_count) {
  if (counts != nullptr) {
    p.num_masking_patches = counts[b];
    if (max_is_count) p.max_num_patches = counts[b];
  }
  return p;
}

// A team of lanes that makes one sample together: OneLane here (the cpp build), one warp on the GPU
// (WarpTeam, csrc/masking/mask_generators.cu). The sample's algorithm below is written once, for any
// team: every lane makes the same Philox calls in the same order (so the same draws and the same
// decisions, all of them functions of warp-uniform values), and only the per-cell work is split:
//   team.each(n, f)            f(k) for every k < n, once (zeroing, copying);
//   team.sum_rect(h, w, f)     sum of f(r, c) over r < h, c < w, returned on every lane (overlap count);
//   team.each_rect(h, w, f)    f(r, c) for every r < h, c < w, once (filling a block);
//   team.sync()                the team's mask writes are seen by every lane after it.
// Integer sums do not depend on how the cells are split: every team gives the cpp build's bits.
struct OneLane {
  template <class F>
  MK_HD void each(int64_t n, F f) const {
    for (int64_t k = 0; k < n; ++k) f(k);
  }
  template <class F>
  MK_HD int64_t sum_rect(int64_t h, int64_t w, F f) const {
    int64_t total = 0;
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < w; ++c) total += f(r, c);
    return total;
  }
  template <class F>
  MK_HD void each_rect(int64_t h, int64_t w, F f) const {
    for (int64_t r = 0; r < h; ++r)
      for (int64_t c = 0; c < w; ++c) f(r, c);
  }
  MK_HD void sync() const {}
};

// A team of Group::kLanes lanes splitting the work by stride: lane i takes k = i, i + kLanes, ... The
// GPU's WarpTeam is StridedTeam<WarpGroup> (mask_generators.cu: shuffles and __syncwarp); the host
// emulation test (python_tests/masking/warp_emulation.cpp) runs the same code on 32 threads with a
// barrier. Group: lane(), sum(v) (the total over the lanes, on every lane), barrier().
template <class Group>
struct StridedTeam {
  Group group;
  template <class F>
  MK_HD void each(int64_t n, F f) const {
    for (int64_t k = group.lane(); k < n; k += Group::kLanes) f(k);
  }
  template <class F>
  MK_HD int64_t sum_rect(int64_t h, int64_t w, F f) const {
    int64_t total = 0;
    rect(h, w, [&](int64_t r, int64_t c) { total += f(r, c); });
    return group.sum(total);
  }
  template <class F>
  MK_HD void each_rect(int64_t h, int64_t w, F f) const {
    rect(h, w, f);
  }
  MK_HD void sync() const { group.barrier(); }

 private:
  // Cell k of the h x w rectangle, row-major; 32-bit division where h·w < 2^32 (h, w >= 0).
  template <class F>
  MK_HD void rect(int64_t h, int64_t w, F f) const {
    const int64_t n = h * w;
    if (n <= 0) return;
    if (n < (int64_t(1) << 32)) {
      const uint32_t n32 = static_cast<uint32_t>(n), w32 = static_cast<uint32_t>(w);
      for (uint32_t k = group.lane(); k < n32; k += static_cast<uint32_t>(Group::kLanes))
        f(int64_t(k / w32), int64_t(k % w32));
    } else {
      for (int64_t k = group.lane(); k < n; k += Group::kLanes) f(k / w, k % w);
    }
  }
};

// The aspect ratio of a shape call: exp(uniform(ln min_aspect, ln max_aspect)) from its words x2, x3.
MK_HD double block_aspect(const BlockMaskParams& p, const Philox4& shape) {
  return exp(uniform_between(p.log_aspect_min, p.log_aspect_max, unit_double(shape.x2, shape.x3)));
}

// A shape call: its words and its aspect ratio (block_aspect of the words).
struct BlockShape {
  Philox4 words;
  double aspect;
};

// The Philox calls of one sample in order (a Draws type): the i-th is draw(seed, i, sample,
// kStreamBlockMask), asked for as next_shape(p) (with its aspect ratio) or next_place(p). The cpp build's
// CPU path (mask_generators_cpu.cpp) passes another source of the same calls, computed ahead.
struct BlockMaskDraws {
  uint64_t seed;
  uint32_t sample;
  uint32_t counter;
  MK_HD Philox4 next() { return draw(seed, counter++, sample, kStreamBlockMask); }
  MK_HD BlockShape next_shape(const BlockMaskParams& p) {
    const Philox4 words = next();
    return {words, block_aspect(p, words)};
  }
  MK_HD Philox4 next_place(const BlockMaskParams&) { return next(); }
};

// The sample's H x W mask as the algorithm below sees it (a Cells type):
//   cells.clear()                     every cell unmasked;
//   cells.masked(top, left, h, w)     the masked cells of the h x w block at (top, left), on every lane;
//   cells.fill(top, left, h, w)       masks the block (seen by every lane after it).
// TeamCells: H x W bytes (1 = masked), the per-cell work split by a team (the GPU, the emulation test,
// the cpp build's fallback); the cpp build's usual grids: RowBits (mask_generators_cpu.cpp), a word per row.
template <class Team>
struct TeamCells {
  const Team& team;
  uint8_t* mask;
  int64_t height, width;
  MK_HD void clear() const {
    team.each(height * width, [&](int64_t k) { mask[k] = 0; });
    team.sync();
  }
  MK_HD int64_t masked(int64_t top, int64_t left, int64_t h, int64_t w) const {
    const uint8_t* corner = mask + top * width + left;
    return team.sum_rect(h, w, [&](int64_t r, int64_t c) { return int64_t(corner[r * width + c]); });
  }
  MK_HD void fill(int64_t top, int64_t left, int64_t h, int64_t w) const {
    uint8_t* corner = mask + top * width + left;
    team.each_rect(h, w, [&](int64_t r, int64_t c) { corner[r * width + c] = 1; });
    team.sync();
  }
};

// One call of the official `_mask(mask, max_mask_patches)`: up to 10 attempts, stop at the first
// that adds cells. Returns the number of cells added (0: every attempt failed). `draws` advances.
// Bounds (whatever the counts): a block is tried only when h < H and w < W (compared as doubles, so
// NaN, negative or huge areas are skipped), top in [0, H - h] and left in [0, W - w] (`below` is
// < its bound), so every cell touched lies inside the H x W mask; cap <= 0 accepts no block.
template <class Cells, class Draws>
MK_HD int64_t block_mask_add_block(Cells& cells, const BlockMaskParams& p, int64_t cap, Draws& draws) {
  const int64_t H = p.height, W = p.width;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const BlockShape shape = draws.next_shape(p);
    const double target_area = uniform_between(static_cast<double>(p.min_num_patches), static_cast<double>(cap),
                                               unit_double(shape.words.x0, shape.words.x1));
    const double aspect = shape.aspect;
    // Python's round is half to even, as rint in the default rounding mode. Compared as doubles
    // before the integer conversion, so a huge block is rejected without overflow.
    const double h_real = rint(sqrt(target_area * aspect));
    const double w_real = rint(sqrt(target_area / aspect));
    if (!(w_real < static_cast<double>(W) && h_real < static_cast<double>(H))) continue;
    const int64_t h = static_cast<int64_t>(h_real), w = static_cast<int64_t>(w_real);
    const Philox4 place = draws.next_place(p);
    const int64_t inclusive = p.mmpretrain ? 0 : 1;
    const int64_t top = below(place.x0, static_cast<uint32_t>(H - h + inclusive));
    const int64_t left = below(place.x1, static_cast<uint32_t>(W - w + inclusive));
    const int64_t added = h * w - cells.masked(top, left, h, w);
    if (0 < added && added <= cap) {
      cells.fill(top, left, h, w);
      return added;
    }
  }
  return 0;
}

// One sample with the sample's draws: cells cleared, then filled. Returns the number of masked cells.
template <class Cells, class Draws>
MK_HD int64_t block_mask_fill(Cells& cells, const BlockMaskParams& p, Draws& draws) {
  cells.clear();
  int64_t count = 0;
  for (int64_t blocks = 1; count < p.num_masking_patches; ++blocks) {
    const int64_t remaining = p.num_masking_patches - count;
    const int64_t cap = remaining < p.max_num_patches ? remaining : p.max_num_patches;
    const int64_t added = block_mask_add_block(cells, p, cap, draws);
    if (added == 0 && (!p.mmpretrain || blocks == kMmpretrainMaxBlocks)) break;
    count += added;
  }
  return count;
}

// One sample on a team: mask (H x W bytes, zeroed here, 1 = masked), block_mask_fill with the sample's
// draws in order. Returns the number of masked cells.
template <class Team>
MK_HD int64_t block_mask_sample_team(const Team& team, uint8_t* mask, const BlockMaskParams& p, uint64_t seed,
                                     int64_t sample) {
  TeamCells<Team> cells{team, mask, p.height, p.width};
  BlockMaskDraws draws{seed, static_cast<uint32_t>(sample), 0u};
  return block_mask_fill(cells, p, draws);
}

// One sample, one thread: the body above with a team of one lane.
MK_HD int64_t block_mask_sample(uint8_t* mask, const BlockMaskParams& p, uint64_t seed, int64_t sample) {
  return block_mask_sample_team(OneLane{}, mask, p, seed, sample);
}
}  // namespace mimkernels
