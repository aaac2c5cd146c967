// I-JEPA and V-JEPA multi-block masks (mask_zoo/SPEC.md §2, §3: facebookresearch/ijepa
// src/masks/multiblock.py, facebookresearch/jepa src/masks/multiblock3d.py), one sample per call, shared
// by the CPU (cpp) and CUDA builds and equal to mask_zoo/reference.py bit for bit.
//
// Draws (rng.md): the block sizes of a batch from one Philox call at counter (0, 0, stream, 1), computed
// on the host (multiblock_sizes / multiblock_3d_size); a sample's draws are its Philox calls at
// (i, sample, stream, 0), i counting the placements it made (x0 -> top, x1 -> left, and x2 -> start
// frame in 3-D; a V-JEPA redraw r uses the calls r * num_blocks + k); the shuffled lists of the fixed
// variant are in the order of per-cell keys at (cell / 4, sample, stream, 2 + j) (multiblock_key_order).
//
// Outputs of one sample: blocks (nblocks, cells) bytes, 1 = the cell is in the block; ids (nblocks,
// cells) int64, the block's cells first (ascending; shuffled where the SPEC says), then 0; counts
// (nblocks) int64. 2-D: the num_pred targets, then the num_enc context blocks. 3-D: the target, then the
// context.
#pragma once
#include <cmath>
#include <cstdint>
#if !defined(__CUDA_ARCH__)
#include <algorithm>
#include <vector>

#include "mimkernels/radix_sort.h"
#endif

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

#if !defined(__CUDA_ARCH__)
// Ascending sort of n distinct packed (key << 32 | cell) values, keys uniform random words, on the host:
// std::sort for very short lists, else bucket_sort_uniform_keys. Every correct sort gives the same order.
inline void multiblock_sort_host(uint64_t* packed, int64_t n) {
  if (n < 32) {
    std::sort(packed, packed + n);
    return;
  }
  thread_local std::vector<uint64_t> scratch;
  thread_local std::vector<uint32_t> counts;
  if (static_cast<int64_t>(scratch.size()) < n) scratch.resize(static_cast<size_t>(n));
  std::copy(packed, packed + n, scratch.data());
  bucket_sort_uniform_keys(scratch.data(), packed, n, counts);
}
#endif

// The cells of a shuffled list in key order: the key of cell c in key family j is word c mod 4 of Philox
// at (c / 4, sample, stream, 2 + j), ties by cell. ids[0, n) holds the cells, ascending (so the Philox
// call of a group of 4 cells is made once); sorted in place as packed (key << 32 | cell), distinct values:
// multiblock_sort_host on the host, a heap sort (in place, no recursion) on a GPU thread, the same order.
// (key << 32) | cell, the key of cell c being word c of `keys` (its Philox call per group of 4 cells cached).
MK_HD uint64_t multiblock_packed_key(WordStream& keys, int64_t cell) {
  return (static_cast<uint64_t>(keys.word(cell)) << 32) | static_cast<uint64_t>(cell);
}

// packed[0, n) (distinct values) ascending, then each replaced by its cell (the low word).
MK_HD void multiblock_sort_packed(uint64_t* packed, int64_t n) {
#if defined(__CUDA_ARCH__)
  const auto sift_down = [packed](int64_t root, int64_t end) {
    while (2 * root + 1 < end) {
      int64_t child = 2 * root + 1;
      if (child + 1 < end && packed[child] < packed[child + 1]) ++child;
      if (!(packed[root] < packed[child])) return;
      const uint64_t tmp = packed[root];
      packed[root] = packed[child];
      packed[child] = tmp;
      root = child;
    }
  };
  for (int64_t start = n / 2 - 1; start >= 0; --start) sift_down(start, n);
  for (int64_t end = n - 1; end > 0; --end) {
    const uint64_t tmp = packed[0];
    packed[0] = packed[end];
    packed[end] = tmp;
    sift_down(0, end);
  }
#else
  multiblock_sort_host(packed, n);
#endif
  for (int64_t j = 0; j < n; ++j) packed[j] &= 0xffffffffull;
}

MK_HD void multiblock_key_order(int64_t* ids, int64_t n, uint32_t family, uint64_t seed, uint32_t sample,
                                uint32_t stream) {
  uint64_t* packed = reinterpret_cast<uint64_t*>(ids);
  WordStream keys(seed, 0u, sample, stream, 2u + family);
  for (int64_t j = 0; j < n; ++j) packed[j] = multiblock_packed_key(keys, ids[j]);
  multiblock_sort_packed(packed, n);
}

// ids[count, cells) = 0 (the padding after a list of count cells).
MK_HD void multiblock_pad(int64_t* ids, int64_t count, int64_t cells) {
  for (int64_t c = count; c < cells; ++c) ids[c] = 0;
}

// ids[0, count) = the cells of `block` in ascending order, ids[count, cells) = 0; returns count.
MK_HD int64_t multiblock_list(const uint8_t* block, int64_t* ids, int64_t cells) {
  int64_t count = 0;
  for (int64_t c = 0; c < cells; ++c) {  // branch-free: every cell is written, kept ones advance
    ids[count] = c;
    count += block[c] != 0;
  }
  multiblock_pad(ids, count, cells);
  return count;
}

// One I-JEPA sample (the reference's loop): targets placed once each; each context block placed until
// it keeps more than `keep` cells outside the first `regions - tries` targets, tries growing every
// kMultiblockTimeout failures, accepted at once when no target constrains it. Writes every element of
// the sample's blocks, ids and counts. Blocks are rectangles: their lists are read off the rectangle
// (row-major is ascending), not off the grid.
MK_HD void multiblock_sample(uint8_t* blocks, int64_t* ids, int64_t* counts, const MultiblockParams& p,
                             uint64_t seed, int64_t sample) {
  const int64_t H = p.height, W = p.width, cells = H * W;
  const int64_t inclusive = p.official ? 0 : 1;
  MultiblockDraws draws{seed, static_cast<uint32_t>(sample), kStreamMultiblock2d};
  for (int64_t k = 0; k < p.num_pred; ++k) {
    uint8_t* block = blocks + k * cells;
    int64_t* list = ids + k * cells;
    const Philox4 d = draws.call();
    const int64_t top = below(d.x0, static_cast<uint32_t>(H - p.pred.h + inclusive));
    const int64_t left = below(d.x1, static_cast<uint32_t>(W - p.pred.w + inclusive));
    for (int64_t c = 0; c < cells; ++c) block[c] = 0;
    int64_t count = 0;
    for (int64_t r = top; r < top + p.pred.h; ++r)
      for (int64_t c = r * W + left; c < r * W + left + p.pred.w; ++c) {
        block[c] = 1;
        list[count++] = c;
      }
    multiblock_pad(list, count, cells);
    counts[k] = count;
  }
  const int64_t regions = p.allow_overlap ? 0 : p.num_pred;
  const int64_t enc_cells = p.enc.h * p.enc.w;
  const int64_t keep = p.official || p.min_keep < enc_cells - 1 ? p.min_keep : enc_cells - 1;
  if (p.num_enc == 0) return;
  // first_target[c]: the first target holding cell c (regions if none): c is outside the first n targets
  // iff first_target[c] >= n. Scratch: the last context block's list, written after the last use.
  int64_t* first_target = ids + (p.num_pred + p.num_enc - 1) * cells;
  for (int64_t c = 0; c < cells; ++c) first_target[c] = regions;
  for (int64_t q = regions - 1; q >= 0; --q)
    for (int64_t j = 0; j < counts[q]; ++j) first_target[ids[q * cells + j]] = q;
  for (int64_t e = 0; e < p.num_enc; ++e) {
    const int64_t k = p.num_pred + e;
    uint8_t* block = blocks + k * cells;
    int64_t tries = 0, top = 0, left = 0, constraining = 0;
    for (int timeout = kMultiblockTimeout;;) {
      const Philox4 d = draws.call();
      top = below(d.x0, static_cast<uint32_t>(H - p.enc.h + inclusive));
      left = below(d.x1, static_cast<uint32_t>(W - p.enc.w + inclusive));
      constraining = regions - tries > 0 ? regions - tries : 0;
      int64_t count = 0;
      for (int64_t r = top; r < top + p.enc.h; ++r)
        for (int64_t c = r * W + left; c < r * W + left + p.enc.w; ++c) count += first_target[c] >= constraining;
      if (count > keep || constraining == 0) break;
      if (--timeout == 0) {
        ++tries;
        timeout = kMultiblockTimeout;
      }
    }
    for (int64_t c = 0; c < cells; ++c) block[c] = 0;
    for (int64_t r = top; r < top + p.enc.h; ++r)
      for (int64_t c = r * W + left; c < r * W + left + p.enc.w; ++c) block[c] = first_target[c] >= constraining;
    int64_t* list = ids + k * cells;
    int64_t count = 0;
    for (int64_t r = top; r < top + p.enc.h; ++r)
      for (int64_t c = r * W + left; c < r * W + left + p.enc.w; ++c) {  // branch-free: kept cells advance
        list[count] = c;
        count += block[c];
      }
    multiblock_pad(list, count, cells);
    counts[k] = count;
    if (!p.official) multiblock_key_order(list, count, static_cast<uint32_t>(e), seed, draws.sample, draws.stream);
  }
}

struct Multiblock3dParams {
  int64_t frames, height, width, num_blocks, context_frames;
  BlockSize size;
  bool official;
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
  if (p.official) {
    counts[0] = multiblock_list(target, ids, cells);
    counts[1] = multiblock_list(context, ids + cells, cells);
    return;
  }
  // target and context hold disjoint cells: one key family for both, one pass over the cells. Two named
  // lists, not an array indexed by the context byte (which nvcc keeps in local memory: benchmarks/model.py).
  uint64_t* const target_list = reinterpret_cast<uint64_t*>(ids);
  uint64_t* const context_list = reinterpret_cast<uint64_t*>(ids + cells);
  int64_t n_target = 0, n_context = 0;
  WordStream keys(seed, 0u, draws.sample, draws.stream, 2u);
  for (int64_t c = 0; c < cells; ++c) {  // branch-free: written to both lists, one advances
    const uint64_t key = multiblock_packed_key(keys, c);
    const int64_t in_context = context[c];
    context_list[n_context] = key;
    target_list[n_target] = key;
    n_context += in_context;
    n_target += 1 - in_context;
  }
  multiblock_sort_packed(target_list, n_target);
  multiblock_pad(ids, n_target, cells);
  multiblock_sort_packed(context_list, n_context);
  multiblock_pad(ids + cells, n_context, cells);
  counts[0] = n_target;
  counts[1] = n_context;
}

}  // namespace mimkernels
