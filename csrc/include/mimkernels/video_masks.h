// VideoMAE's tube mask, VideoMAE v2's running-cell mask and UM-MAE's uniform mask (mask_zoo/SPEC.md
// §4-6): one body per sample, shared by the cpp and CUDA builds, bit-identical to mask_zoo/reference.py.
//
// Draws (docs/rng.md): draw k of a sample is word k % 4 of Philox at counter (k / 4, sample, stream, 0)
// (rng.h WordStream, read in order). Integers in [0, n) are (word * n) >> 32 (rng.h below). Masks are
// bytes, 1 = masked.
#pragma once
#include <cstdint>

#include "mimkernels/common.h"
#include "mimkernels/rng.h"

namespace mimkernels {

// Floyd's sampling of `count` distinct items of [0, n) (0 <= count <= n < 2^31), one draw each:
// for j = n - count .. n - 1, t = below(draw, j + 1), and j itself when t was picked already. `cell(t)`
// is item t's byte, which holds `picked` once it is chosen (and must not before).
template <class Cell>
MK_HD void floyd_pick(int64_t n, int64_t count, uint8_t picked, WordStream& words, const Cell& cell) {
  for (int64_t j = n - count; j < n; ++j) {
    int64_t t = below(words.next(), static_cast<uint32_t>(j + 1));
    if (cell(t) == picked) t = j;
    cell(t) = picked;
  }
}

// A uniformly random subset of `masked` of the n bytes of row (1 = in the subset): Floyd picks the
// smaller of the subset and its complement.
MK_HD void random_subset_row(uint8_t* row, int64_t n, int64_t masked, WordStream& words) {
  const bool pick_masked = masked <= n - masked;
  const uint8_t picked = pick_masked ? 1 : 0;
  for (int64_t t = 0; t < n; ++t) row[t] = 1 - picked;
  floyd_pick(n, pick_masked ? masked : n - masked, picked, words, [&](int64_t t) -> uint8_t& { return row[t]; });
}

// ---- tube (§4): frame 0 drawn, frames 1 .. frames - 1 its copies ------------------------------------
MK_HD void tube_mask_first_frame(uint8_t* out, int64_t cells, int64_t masked, uint64_t seed, int64_t sample) {
  WordStream words(seed, 0u, static_cast<uint32_t>(sample), kStreamTubeMask);
  random_subset_row(out, cells, masked, words);
}

MK_HD void tube_mask_sample(uint8_t* out, int64_t frames, int64_t cells, int64_t masked, uint64_t seed,
                            int64_t sample) {
  tube_mask_first_frame(out, cells, masked, seed, sample);
  for (int64_t t = 1; t < frames; ++t)
    for (int64_t c = 0; c < cells; ++c) out[t * cells + c] = out[c];
}

// ---- running cell (§5) ------------------------------------------------------------------------------
// Which of the 4 maps (np.random.randint(4)): draw 0 of the sample.
MK_HD uint32_t running_cell_map(uint64_t seed, int64_t sample) {
  WordStream words(seed, 0u, static_cast<uint32_t>(sample), kStreamRunningCellMask);
  return below(words.next(), 4u);
}

// Cell (t, y, x) of map p: slot s = 2 (y % 2) + x % 2 of the 2 x 2 cell reads the queue (masked_slots
// ones, then zeros) at (s + p + t + 1) % 4: the pointer starts at p and advances before every frame.
MK_HD uint8_t running_cell_value(uint32_t map, int64_t t, int64_t y, int64_t x, int64_t masked_slots) {
  const int64_t slot = 2 * (y & 1) + (x & 1);
  return static_cast<uint8_t>((slot + map + t + 1) % 4 < masked_slots);
}

MK_HD void running_cell_mask_sample(uint8_t* out, int64_t frames, int64_t height, int64_t width, int64_t masked_slots,
                                    uint64_t seed, int64_t sample) {
  const uint32_t map = running_cell_map(seed, sample);
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x)
        out[(t * height + y) * width + x] = running_cell_value(map, t, y, x, masked_slots);
}

// ---- UM-MAE uniform (§6) ----------------------------------------------------------------------------
// UM-MAE's candidate list: 4 rows (row r keeps slot r % 4 of its 2 x 2 block) per round, until
// rows * 4 >= 2 * cells: the least positive multiple of 4 that is >= cells / 2.
MK_HD int64_t uniform_candidate_rows(int64_t cells) {
  const int64_t rounds = (cells + 7) / 8;
  return 4 * (rounds > 1 ? rounds : 1);
}

// One sample: mask and secondary (H*W bytes each, H and W even), scratch (candidate_rows bytes).
// 1. np.random.shuffle of the candidate rows, its first blocks = (H/2)(W/2) kept: a partial Fisher-Yates,
//    step k swapping row k with row k + below(draw, rows - k); block k (row-major) keeps slot
//    scratch[k] = 2 p1 + p2, all its other tokens masked.
// 2. Secondary: blocks - keep_final of the visible tokens (one per block), a uniform subset (Floyd over
//    the blocks, on the secondary row at each block's visible token), draws continuing after step 1's.
MK_HD void uniform_mask_sample(uint8_t* mask, uint8_t* secondary, uint8_t* scratch, int64_t height, int64_t width,
                               int64_t rows, int64_t keep_final, uint64_t seed, int64_t sample) {
  WordStream words(seed, 0u, static_cast<uint32_t>(sample), kStreamUniformMask);
  const int64_t half_w = width / 2;
  const int64_t blocks = (height / 2) * half_w;
  for (int64_t r = 0; r < rows; ++r) scratch[r] = static_cast<uint8_t>(r & 3);
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t j = k + below(words.next(), static_cast<uint32_t>(rows - k));
    const uint8_t row = scratch[j];
    scratch[j] = scratch[k];
    scratch[k] = row;
  }
  const auto visible = [&](int64_t k) -> int64_t {
    return (2 * (k / half_w) + (scratch[k] >> 1)) * width + 2 * (k % half_w) + (scratch[k] & 1);
  };
  for (int64_t c = 0; c < height * width; ++c) {
    mask[c] = 1;
    secondary[c] = 0;
  }
  const int64_t hidden = blocks - keep_final;  // secondary-masked visible tokens
  const bool pick_hidden = hidden <= keep_final;
  for (int64_t k = 0; k < blocks; ++k) {
    mask[visible(k)] = 0;
    secondary[visible(k)] = pick_hidden ? 0 : 1;
  }
  floyd_pick(blocks, pick_hidden ? hidden : keep_final, pick_hidden ? 1 : 0, words,
             [&](int64_t k) -> uint8_t& { return secondary[visible(k)]; });
}

}  // namespace mimkernels
