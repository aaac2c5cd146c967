// DINOv2 / DINOv3 collate masks (dino_collate_masks, mask_zoo/SPEC.md §9), shared by the CPU (cpp) and
// CUDA builds: the slot plan (strata, shuffle keys, circular shifts) and the mask of one row.
//
// Draws (rng.md): the collate's own, shared by the batch, at counter (j, 0, kStreamDinoCollate, 1) for slot
// j (x0: shuffle key, x1: the stratum's uniform, x2 and x3: the circular shift); v3's completion keys at
// (t, b, kStreamDinoCollate, 0) for cell t of row b; the block mask of row b: block_mask.h at sample b.
#pragma once
#include <cstdint>

#include "mimkernels/block_mask.h"
#include "mimkernels/common.h"
#include "mimkernels/rng.h"

namespace mimkernels {
// float32 steps rounded as written (upstream computes the ratios with 0-d float32 tensors); nvcc would
// contract a * b + c into an FMA, the host build has -ffp-contract=off.
MK_HD float f32_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
MK_HD float f32_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

struct DinoSlot {
  uint64_t shuffle_key;  // (x0 << 32) | j: the slots in ascending order are the rows of the batch
  int64_t count, shift_rows, shift_cols;
};

// Slot j of the collate: stratum j when j < n_masked (probs: upstream's float32 linspace, n_masked + 1
// values): v2 asks for int(N * (p_j + (p_{j+1} - p_j) * u)), v3 for int(N * p_{j+1}); later slots for 0.
// v3 with circular_shift: the masked slots' shift (below(x2, H), below(x3, W)).
MK_HD DinoSlot dino_slot(const float* probs, int64_t j, int64_t n_masked, int64_t height, int64_t width, bool v3,
                         bool circular_shift, uint64_t seed) {
  const Philox4 r = philox4x32_10(static_cast<uint32_t>(j), 0u, kStreamDinoCollate, 1u, seed);
  DinoSlot slot{(static_cast<uint64_t>(r.x0) << 32) | static_cast<uint32_t>(j), 0, 0, 0};
  if (j >= n_masked) return slot;
  const float lo = probs[j], hi = probs[j + 1];
  const float ratio = v3 ? hi : f32_add(lo, f32_mul(f32_add(hi, -lo), unit_float(r.x1)));
  slot.count = static_cast<int64_t>(f32_mul(static_cast<float>(height * width), ratio));
  if (v3 && circular_shift) {
    slot.shift_rows = below(r.x2, static_cast<uint32_t>(height));
    slot.shift_cols = below(r.x3, static_cast<uint32_t>(width));
  }
  return slot;
}

// v3's completion key of cell t of row b: (x0 << 32) | t, distinct per cell; a free cell is added when fewer
// than `need` free cells have a smaller key (the `need` smallest: a uniformly random subset).
MK_HD uint64_t dino_completion_key(uint64_t seed, int64_t t, int64_t b) {
  const uint32_t x0 = draw(seed, static_cast<uint32_t>(t), static_cast<uint32_t>(b), kStreamDinoCollate).x0;
  return (static_cast<uint64_t>(x0) << 32) | static_cast<uint32_t>(t);
}

// Marks the free cells of `mask` (cells bytes) whose completion key is among the `need` smallest of the free
// cells' (need > 0), on a team; keys: cells uint64 of scratch. Each lane ranks its own free cells by counting
// the smaller keys (distinct keys: the cells a sort would pick) and marks them; the ranking reads only keys.
template <class Team>
MK_HD void dino_complete(const Team& team, uint8_t* mask, uint64_t* keys, int64_t cells, int64_t need, uint64_t seed,
                         int64_t b) {
  team.each(cells, [&](int64_t t) { keys[t] = mask[t] ? ~uint64_t(0) : dino_completion_key(seed, t, b); });
  team.sync();
  team.each(cells, [&](int64_t t) {
    if (keys[t] == ~uint64_t(0)) return;
    int64_t smaller = 0;
    for (int64_t u = 0; u < cells && smaller < need; ++u) smaller += keys[u] < keys[t] ? 1 : 0;
    if (smaller < need) mask[t] = 1;
  });
  team.sync();
}

// Row b of the batch on a team, after its block mask (block_mask.h with count = the slot's count, `masked`
// cells) was drawn into `mask` (cells bytes of scratch): v3's completion to exactly the count, then out = the
// mask rolled by the slot's shift (torch.roll(mask, (rows, cols), (0, 1))).
template <class Team>
MK_HD void dino_finish_row(const Team& team, uint8_t* out, uint8_t* mask, uint64_t* keys, int64_t height,
                           int64_t width, const DinoSlot& slot, int64_t masked, bool v3, uint64_t seed, int64_t b) {
  const int64_t H = height, W = width;
  if (v3 && masked < slot.count) dino_complete(team, mask, keys, H * W, slot.count - masked, seed, b);
  if (slot.shift_rows == 0 && slot.shift_cols == 0) {  // no shift (v2, and v3 by default): a plain copy
    team.each(H * W, [&](int64_t k) { out[k] = mask[k]; });
    return;
  }
  team.each_rect(H, W, [&](int64_t r, int64_t c) {
    const int64_t to_r = r + slot.shift_rows, to_c = c + slot.shift_cols;
    out[(to_r < H ? to_r : to_r - H) * W + (to_c < W ? to_c : to_c - W)] = mask[r * W + c];
  });
}
}  // namespace mimkernels
