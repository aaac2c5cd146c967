// I-JEPA and V-JEPA multi-block masks (mask_zoo/SPEC.md §2, §3: facebookresearch/ijepa
// src/masks/multiblock.py, facebookresearch/jepa src/masks/multiblock3d.py), one sample per call, shared
// by the CPU (cpp) and CUDA builds and equal to mask_zoo/reference.py bit for bit.
//
// Draws (rng.md): the block sizes of a batch from one Philox call at counter (0, 0, stream, 1), computed
// on the host (multiblock_sizes / multiblock_3d_size); a sample's draws are its Philox calls at
// (i, sample, stream, 0), i counting the placements it made (x0 -> top, x1 -> left, and x2 -> start
// frame in 3-D; a V-JEPA redraw r uses the calls r * num_blocks + k); a shuffled list of the fixed variant
// (multiblock_shuffle) reads the words of family j, the WordStream at (., sample, stream, 2 + j).
//
// Outputs of one sample: blocks (nblocks, cells) bytes, 1 = the cell is in the block; ids (nblocks,
// cells) int64, the block's cells first (ascending; shuffled where the SPEC says), then 0; counts
// (nblocks) int64. 2-D: the num_pred targets, then the num_enc context blocks. 3-D: the target, then the
// context.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "mimkernels/block_mask.h"  // uniform_between
#include "mimkernels/common.h"
#include "mimkernels/rng.h"

namespace mimkernels {

// Placements per relaxation level of I-JEPA's rejection loop; redraws of a V-JEPA sample whose context is
// empty (reference.MULTIBLOCK_TIMEOUT, MULTIBLOCK_3D_REDRAWS).
constexpr int kMultiblockTimeout = 20;
constexpr int kMultiblock3dRedraws = 20;

// A sample's Philox calls in counter order (one per placement).
struct MultiblockDraws {
  uint64_t seed;
  uint32_t sample, stream, counter = 0;
  MK_HD Philox4 call() { return draw(seed, counter++, sample, stream); }
};

// min(round half to even (x), side) for x >= 0, possibly infinite: compared as doubles before converting.
MK_HD int64_t multiblock_rounded_side(double x, int64_t side) {
  return x >= static_cast<double>(side) ? side : static_cast<int64_t>(rint(x));
}

MK_HD double multiblock_unit(uint32_t word) { return static_cast<double>(unit_float(word)); }

struct BlockSize {
  int64_t t, h, w;
};

// I-JEPA's _sample_block_size from one uniform u (it sets scale and aspect). official: sides capped at
// height - 1, width - 1; else in [1, height] x [1, width].
MK_HD BlockSize multiblock_block_size(double u, double scale_min, double scale_max, double aspect_min,
                                      double aspect_max, int64_t height, int64_t width, bool official) {
  const double mask_scale = uniform_between(scale_min, scale_max, u);
  const double max_keep = static_cast<double>(static_cast<int64_t>(static_cast<double>(height * width) * mask_scale));
  const double ratio = uniform_between(aspect_min, aspect_max, u);
  int64_t h = multiblock_rounded_side(sqrt(max_keep * ratio), height);
  int64_t w = multiblock_rounded_side(sqrt(max_keep / ratio), width);
  if (official) {
    h = h < height - 1 ? h : height - 1;
    w = w < width - 1 ? w : width - 1;
  } else {
    h = h > 1 ? h : 1;
    w = w > 1 ? w : 1;
  }
  return BlockSize{1, h, w};
}

struct MultiblockParams {
  int64_t height, width, num_pred, num_enc, min_keep;
  BlockSize pred, enc;
  bool allow_overlap, official;
  bool pad_lists = true;  // false: ids past a list's count are left unwritten (a caller that reads counts only)
};

// The batch's block sizes (pred from x0, enc from x1 of the batch draw), min_keep as the front door gave it.
MK_HD MultiblockParams multiblock_params(int64_t height, int64_t width, double enc_scale_min, double enc_scale_max,
                                         double pred_scale_min, double pred_scale_max, double aspect_min,
                                         double aspect_max, int64_t num_enc, int64_t num_pred, int64_t min_keep,
                                         bool allow_overlap, bool official, uint64_t seed) {
  const Philox4 batch = philox4x32_10(0u, 0u, kStreamMultiblock2d, 1u, seed);
  MultiblockParams p;
  p.height = height;
  p.width = width;
  p.num_pred = num_pred;
  p.num_enc = num_enc;
  p.min_keep = min_keep;
  p.pred = multiblock_block_size(multiblock_unit(batch.x0), pred_scale_min, pred_scale_max, aspect_min, aspect_max,
                                 height, width, official);
  p.enc = multiblock_block_size(multiblock_unit(batch.x1), enc_scale_min, enc_scale_max, 1.0, 1.0, height, width,
                                official);
  p.allow_overlap = allow_overlap;
  p.official = official;
  return p;
}

// ids[0, n) in a uniformly random order, in place: for i = 1 .. n - 1, entry i swaps with entry
// j = below(word i, i + 1) (Fisher-Yates run forward: after step i the first i + 1 entries are in a uniformly
// random order). Word i of the WordStream at (., sample, stream, 2 + family). O(n), the same on a GPU thread.
MK_HD void multiblock_shuffle(int64_t* ids, int64_t n, uint32_t family, uint64_t seed, uint32_t sample,
                              uint32_t stream) {
  const auto step = [ids](int64_t i, uint32_t word) {  // entry i swaps with entry below(word, i + 1)
    const int64_t j = below(word, static_cast<uint32_t>(i + 1));
    const int64_t entry = ids[i];
    ids[i] = ids[j];
    ids[j] = entry;
  };
#if defined(__CUDA_ARCH__)
  WordStream words(seed, 0u, sample, stream, 2u + family);
  for (int64_t i = 1; i < n; ++i) step(i, words.word(i));
#else  // the same words, 64 at a time (16 Philox calls), each window's steps without WordStream's refill test
  constexpr int64_t kWindow = 4 * kHostPhiloxCalls;
  alignas(32) uint32_t w[4][kHostPhiloxCalls];
  for (int64_t base = 0; base < n; base += kWindow) {
    philox16_host(w, static_cast<uint32_t>(base / 4), sample, stream, 2u + family, seed);
    const int64_t stop = n < base + kWindow ? n : base + kWindow;
    for (int64_t i = base > 0 ? base : 1; i < stop; ++i) step(i, w[i & 3][(i - base) >> 2]);
  }
#endif
}

// ids[count, cells) = 0 (the padding after a list of count cells).
MK_HD void multiblock_pad(int64_t* ids, int64_t count, int64_t cells) {
  for (int64_t c = count; c < cells; ++c) ids[c] = 0;
}

#if !defined(__CUDA_ARCH__)
// The set bits of each byte value v, lowest first: at[v][k] = position of the k-th, count[v] of them (a
// table, not __builtin_popcount: without -mpopcnt that is a libgcc call).
struct SetBitTable {
  uint8_t at[256][8];
  uint8_t count[256];
  constexpr SetBitTable() : at{}, count{} {
    for (int v = 0; v < 256; ++v)
      for (int b = 0; b < 8; ++b)
        if (v >> b & 1) at[v][count[v]++] = static_cast<uint8_t>(b);
  }
};
inline constexpr SetBitTable kSetBits{};
#endif

// ids[0, count) = the cells of `block` (bytes 0 or 1) in ascending order, ids[count, cells) = 0 when
// `pad`; returns count. On the host 8 cells at a time: their bytes gathered into 8 bits (one multiply), 8
// entries written from kSetBits (those past the group's count overwritten by the next group or the padding).
MK_HD int64_t multiblock_list(const uint8_t* block, int64_t* ids, int64_t cells, bool pad) {
  int64_t count = 0, c = 0;
#if !defined(__CUDA_ARCH__)
  for (; c + 8 <= cells; c += 8) {
    uint64_t bytes;
    memcpy(&bytes, block + c, 8);
    const unsigned bits = static_cast<unsigned>((bytes * 0x0102040810204080ull) >> 56);
    for (int k = 0; k < 8; ++k) ids[count + k] = c + kSetBits.at[bits][k];  // count + 7 <= c + 7 < cells
    count += kSetBits.count[bits];
  }
#endif
  for (; c < cells; ++c) {  // branch-free: every cell is written, kept ones advance
    ids[count] = c;
    count += block[c] != 0;
  }
  if (pad) multiblock_pad(ids, count, cells);
  return count;
}

// One I-JEPA sample (the reference's loop): targets placed once each; each context block placed until
// it keeps more than `keep` cells outside the first `regions - tries` targets, tries growing every
// kMultiblockTimeout failures, accepted at once when no target constrains it. Writes every element of
// the sample's blocks, ids (those past the counts with p.pad_lists only) and counts. Blocks are rectangles:
// their lists are read off the rectangle (row-major is ascending), not off the grid.
MK_HD void multiblock_sample(uint8_t* blocks, int64_t* ids, int64_t* counts, const MultiblockParams& p,
                             uint64_t seed, int64_t sample) {
  // the sizes in locals: a store to a byte block may alias p, which would reload them in every inner loop
  const int64_t H = p.height, W = p.width, cells = H * W;
  const int64_t pred_h = p.pred.h, pred_w = p.pred.w, enc_h = p.enc.h, enc_w = p.enc.w;
  const int64_t inclusive = p.official ? 0 : 1;
  MultiblockDraws draws{seed, static_cast<uint32_t>(sample), kStreamMultiblock2d};
  for (int64_t k = 0; k < p.num_pred; ++k) {
    uint8_t* block = blocks + k * cells;
    int64_t* list = ids + k * cells;
    const Philox4 d = draws.call();
    const int64_t top = below(d.x0, static_cast<uint32_t>(H - pred_h + inclusive));
    const int64_t left = below(d.x1, static_cast<uint32_t>(W - pred_w + inclusive));
    for (int64_t c = 0; c < cells; ++c) block[c] = 0;
    int64_t count = 0;
    for (int64_t r = top; r < top + pred_h; ++r)
      for (int64_t c = r * W + left; c < r * W + left + pred_w; ++c) {
        block[c] = 1;
        list[count++] = c;
      }
    if (p.pad_lists) multiblock_pad(list, count, cells);
    counts[k] = count;
  }
  const int64_t regions = p.allow_overlap ? 0 : p.num_pred;
  const int64_t enc_cells = enc_h * enc_w;
  const int64_t keep = p.official || p.min_keep < enc_cells - 1 ? p.min_keep : enc_cells - 1;
  if (p.num_enc == 0) return;
  // first_target[c]: the first target holding cell c (regions if none): c is outside the first n targets
  // iff first_target[c] >= n. Scratch: the last context block's list, written after the last use.
  int64_t* first_target = ids + (p.num_pred + p.num_enc - 1) * cells;
  for (int64_t c = 0; c < cells; ++c) first_target[c] = regions;
  for (int64_t q = regions - 1; q >= 0; --q) {
    const int64_t count = counts[q];  // a local: the stores below may alias counts
    for (int64_t j = 0; j < count; ++j) first_target[ids[q * cells + j]] = q;
  }
  for (int64_t e = 0; e < p.num_enc; ++e) {
    const int64_t k = p.num_pred + e;
    uint8_t* block = blocks + k * cells;
    int64_t tries = 0, top = 0, left = 0, constraining = 0;
    for (int timeout = kMultiblockTimeout;;) {
      const Philox4 d = draws.call();
      top = below(d.x0, static_cast<uint32_t>(H - enc_h + inclusive));
      left = below(d.x1, static_cast<uint32_t>(W - enc_w + inclusive));
      constraining = regions - tries > 0 ? regions - tries : 0;
      int64_t count = 0;
      for (int64_t r = top; r < top + enc_h; ++r)
        for (int64_t c = r * W + left; c < r * W + left + enc_w; ++c) count += first_target[c] >= constraining;
      if (count > keep || constraining == 0) break;
      if (--timeout == 0) {
        ++tries;
        timeout = kMultiblockTimeout;
      }
    }
    for (int64_t c = 0; c < cells; ++c) block[c] = 0;
    for (int64_t r = top; r < top + enc_h; ++r)
      for (int64_t c = r * W + left; c < r * W + left + enc_w; ++c) block[c] = first_target[c] >= constraining;
    int64_t* list = ids + k * cells;
    int64_t count = 0;
    for (int64_t r = top; r < top + enc_h; ++r)
      for (int64_t c = r * W + left; c < r * W + left + enc_w; ++c) {  // branch-free: kept cells advance
        list[count] = c;
        count += block[c];
      }
    if (p.pad_lists) multiblock_pad(list, count, cells);
    counts[k] = count;
    if (!p.official) multiblock_shuffle(list, count, static_cast<uint32_t>(e), seed, draws.sample, draws.stream);
  }
}

struct Multiblock3dParams {
  int64_t frames, height, width, num_blocks, context_frames;
  BlockSize size;
  bool official;
  bool pad_lists = true;  // as MultiblockParams'
};

// V-JEPA's _sample_block_size from the batch draw: t from x0, spatial scale from x1, aspect from x2.
MK_HD Multiblock3dParams multiblock_3d_params(int64_t frames, int64_t height, int64_t width, double temporal_min,
                                              double temporal_max, double spatial_min, double spatial_max,
                                              double aspect_min, double aspect_max, int64_t num_blocks,
                                              double max_temporal_keep, bool official, uint64_t seed) {
  const Philox4 batch = philox4x32_10(0u, 0u, kStreamMultiblock3d, 1u, seed);
  const int64_t t = static_cast<int64_t>(static_cast<double>(frames) *
                                         uniform_between(temporal_min, temporal_max, multiblock_unit(batch.x0)));
  const double keep = static_cast<double>(static_cast<int64_t>(
      static_cast<double>(height * width) * uniform_between(spatial_min, spatial_max, multiblock_unit(batch.x1))));
  const double ratio = uniform_between(aspect_min, aspect_max, multiblock_unit(batch.x2));
  int64_t h = multiblock_rounded_side(sqrt(keep * ratio), height);
  int64_t w = multiblock_rounded_side(sqrt(keep / ratio), width);
  if (!official) {
    h = h > 1 ? h : 1;
    w = w > 1 ? w : 1;
  }
  const int64_t context_frames = static_cast<int64_t>(static_cast<double>(frames) * max_temporal_keep);
  return Multiblock3dParams{frames, height, width, num_blocks, context_frames > 1 ? context_frames : 1,
                            BlockSize{t > 1 ? t : 1, h, w}, official};
}

// One V-JEPA sample: num_blocks boxes cut from an all-ones context (frames past context_frames cut too),
// redrawn while the context is empty, at most kMultiblock3dRedraws times; the target is the rest.
MK_HD void multiblock_3d_sample(uint8_t* blocks, int64_t* ids, int64_t* counts, const Multiblock3dParams& p,
                                uint64_t seed, int64_t sample) {
  const int64_t T = p.frames, H = p.height, W = p.width, cells = T * H * W, plane = H * W;
  const BlockSize s = p.size;
  uint8_t* target = blocks;
  uint8_t* context = blocks + cells;
  MultiblockDraws draws{seed, static_cast<uint32_t>(sample), kStreamMultiblock3d};
  int64_t kept = 0;
  for (int redraw = 0; redraw < kMultiblock3dRedraws && kept == 0; ++redraw) {
    for (int64_t c = 0; c < cells; ++c) context[c] = 1;
    for (int64_t k = 0; k < p.num_blocks; ++k) {
      const Philox4 d = draws.call();
      const int64_t top = below(d.x0, static_cast<uint32_t>(H - s.h + 1));
      const int64_t left = below(d.x1, static_cast<uint32_t>(W - s.w + 1));
      const int64_t start = below(d.x2, static_cast<uint32_t>(T - s.t + 1));
      for (int64_t f = start; f < start + s.t; ++f)
        for (int64_t r = top; r < top + s.h; ++r)
          for (int64_t c = left; c < left + s.w; ++c) context[f * plane + r * W + c] = 0;
    }
    for (int64_t c = p.context_frames * plane; c < cells; ++c) context[c] = 0;
    kept = 0;
    for (int64_t c = 0; c < cells; ++c) kept += context[c];
  }
  for (int64_t c = 0; c < cells; ++c) target[c] = !context[c];
  counts[0] = multiblock_list(target, ids, cells, p.pad_lists);
  counts[1] = multiblock_list(context, ids + cells, cells, p.pad_lists);
  if (!p.official) {  // the target with word family 0, the context with family 1
    multiblock_shuffle(ids, counts[0], 0u, seed, draws.sample, draws.stream);
    multiblock_shuffle(ids + cells, counts[1], 1u, seed, draws.sample, draws.stream);
  }
}

}  // namespace mimkernels
