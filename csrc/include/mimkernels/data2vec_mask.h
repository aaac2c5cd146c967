// data2vec 2.0's block mask (fairseq compute_block_mask_2d), one mask row (image b, clone k) at a time:
// the body of the cpp and cuda backends (csrc/mask_zoo/data2vec_mask*), equal to
// mask_zoo/reference.py data2vec_block_mask bit for bit (mask_zoo/SPEC.md §7).
#pragma once
#include "mimkernels/select_uniform.h"

namespace mimkernels {

struct Data2vecMaskParams {
  int64_t side;             // the grid is side x side, L = side^2 cells
  int64_t mask_length;      // block side
  int64_t clone_batch;      // K masks per image
  int64_t centres;          // centres drawn (non_overlapping: tiles chosen)
  int64_t target;           // block cells per row after the count fix
  int64_t calls_per_clone;  // Philox calls each clone owns
  bool inverse_mask, require_same_masks, non_overlapping;
};

// out: the row's side^2 bytes, 1 = masked. row = b * clone_batch + k.
MK_HD void data2vec_mask_row(uint8_t* out, const Data2vecMaskParams& p, uint64_t seed, int64_t row,
                             int64_t sample_offset) {
  const int64_t side = p.side, cells = side * side, m = p.mask_length;
  const int64_t k = row % p.clone_batch;
  WordStream words(seed, static_cast<uint32_t>(k * p.calls_per_clone),
                   static_cast<uint32_t>(sample_offset + row / p.clone_batch), kStreamData2vecMask);
  for (int64_t c = 0; c < cells; ++c) out[c] = 0;
  int64_t draws;
  if (p.non_overlapping) {
    // a uniform subset of the tiles (multinomial without replacement), each an m x m tile cut at the edge
    const int64_t tiles_side = (side + m - 1) / m, tiles = tiles_side * tiles_side;
    draws = tiles;
    select_uniform(tiles, tiles, p.centres, words, 0, [](int64_t) { return true; }, [&](int64_t t, bool taken) {
      if (!taken) return;
      const int64_t top = t / tiles_side * m, left = t % tiles_side * m;
      for (int64_t i = top; i < top + m && i < side; ++i)
        for (int64_t j = left; j < left + m && j < side; ++j) out[i * side + j] = 1;
    });
  } else {
    // randint(0, L) centres, each grown into the m x m block around it (offset m / 2), clamped to the grid
    draws = p.centres;
    const int64_t offset = m / 2;
    for (int64_t j = 0; j < p.centres; ++j) {
      const int64_t centre = below(words.word(j), static_cast<uint32_t>(cells));
      const int64_t r = centre / side, c = centre % side;
      const int64_t r0 = r - offset > 0 ? r - offset : 0, c0 = c - offset > 0 ? c - offset : 0;
      const int64_t r1 = r - offset + m - 1 < side ? r - offset + m - 1 : side - 1;
      const int64_t c1 = c - offset + m - 1 < side ? c - offset + m - 1 : side - 1;
      for (int64_t i = r0; i <= r1; ++i)
        for (int64_t jj = c0; jj <= c1; ++jj) out[i * side + jj] = 1;
    }
  }
  if (p.require_same_masks) {
    // every row to `target` block cells: unmask n - target of the block cells or mask target - n others
    int64_t n = 0;
    for (int64_t c = 0; c < cells; ++c) n += out[c];
    const uint8_t from = n > p.target ? 1 : 0;
    select_uniform(cells, from ? n : cells - n, from ? n - p.target : p.target - n, words, (draws + 3) / 4 * 4,
                   [&](int64_t c) { return out[c] == from; }, [&](int64_t c, bool taken) { out[c] ^= taken; });
  }
  if (p.inverse_mask)
    for (int64_t c = 0; c < cells; ++c) out[c] ^= 1;
}

}  // namespace mimkernels
