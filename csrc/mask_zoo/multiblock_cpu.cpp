// CPU entry points of the multi-block masks (multiblock.h): multiblock_mask.h's per-sample bodies in an
// OpenMP loop over samples; one thread runs a plain loop (no OpenMP team: see masking's
// mask_generators_cpu.cpp, issue 20).
#include "multiblock.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "mimkernels/multiblock_mask.h"

namespace mimkernels {
namespace {
template <class Params, class Body>
void each_sample(uint8_t* blocks, int64_t* ids, int64_t* counts, int64_t batch, int64_t nblocks, int64_t cells,
                 const Params& p, uint64_t seed, int64_t sample_offset, int num_threads, Body body) {
  const int64_t per_sample = nblocks * cells;
  if (num_threads <= 1 || batch <= 1) {
    for (int64_t b = 0; b < batch; ++b)
      body(blocks + b * per_sample, ids + b * per_sample, counts + b * nblocks, p, seed, sample_offset + b);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b)
    body(blocks + b * per_sample, ids + b * per_sample, counts + b * nblocks, p, seed, sample_offset + b);
}
}  // namespace

void multiblock_mask_cpu(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t height,
                         int64_t width, double enc_scale_min, double enc_scale_max, double pred_scale_min,
                         double pred_scale_max, double aspect_min, double aspect_max, int64_t num_enc,
                         int64_t num_pred, int64_t min_keep, bool allow_overlap, bool official, uint64_t seed,
                         uintptr_t seed_step, int64_t sample_offset, bool pad_lists, int num_threads) {
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  MultiblockParams p = multiblock_params(height, width, enc_scale_min, enc_scale_max, pred_scale_min,
                                               pred_scale_max, aspect_min, aspect_max, num_enc, num_pred, min_keep,
                                               allow_overlap, official, key);
  p.pad_lists = pad_lists;
  each_sample(reinterpret_cast<uint8_t*>(blocks), reinterpret_cast<int64_t*>(ids), reinterpret_cast<int64_t*>(counts),
              batch, num_enc + num_pred, height * width, p, key, sample_offset, num_threads, multiblock_sample);
}

void multiblock_mask_3d_cpu(uintptr_t blocks, uintptr_t ids, uintptr_t counts, int64_t batch, int64_t frames,
                            int64_t height, int64_t width, double temporal_min, double temporal_max,
                            double spatial_min, double spatial_max, double aspect_min, double aspect_max,
                            int64_t num_blocks, double max_temporal_keep, bool official, uint64_t seed,
                            uintptr_t seed_step, int64_t sample_offset, bool pad_lists, int num_threads) {
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  Multiblock3dParams p = multiblock_3d_params(frames, height, width, temporal_min, temporal_max, spatial_min,
                                                    spatial_max, aspect_min, aspect_max, num_blocks,
                                                    max_temporal_keep, official, key);
  p.pad_lists = pad_lists;
  each_sample(reinterpret_cast<uint8_t*>(blocks), reinterpret_cast<int64_t*>(ids), reinterpret_cast<int64_t*>(counts),
              batch, 2, frames * height * width, p, key, sample_offset, num_threads, multiblock_3d_sample);
}

std::pair<int64_t, int64_t> multiblock_list_widths_cpu(uintptr_t counts, int64_t batch, int64_t nblocks,
                                                        int64_t num_pred) {
  const int64_t* c = reinterpret_cast<const int64_t*>(counts);
  int64_t pred = std::numeric_limits<int64_t>::max(), enc = pred;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t k = 0; k < nblocks; ++k) {
      int64_t& keep = k < num_pred ? pred : enc;
      keep = std::min(keep, c[b * nblocks + k]);
    }
  const bool any = batch > 0;
  return {any && num_pred > 0 ? pred : 0, any && nblocks > num_pred ? enc : 0};
}

void multiblock_cut_lists_cpu(uintptr_t ids, int64_t batch, int64_t nblocks, int64_t cells, int64_t num_pred,
                              int64_t keep_pred, int64_t keep_enc, uintptr_t pred, uintptr_t enc) {
  const int64_t* src = reinterpret_cast<const int64_t*>(ids);
  int64_t* out[2] = {reinterpret_cast<int64_t*>(pred), reinterpret_cast<int64_t*>(enc)};
  for (int64_t k = 0; k < nblocks; ++k) {
    const bool context = k >= num_pred;
    const int64_t keep = context ? keep_enc : keep_pred;
    int64_t* dst = out[context] + (context ? k - num_pred : k) * batch * keep;
    for (int64_t b = 0; b < batch; ++b)
      std::memcpy(dst + b * keep, src + (b * nblocks + k) * cells, static_cast<size_t>(keep) * sizeof(int64_t));
  }
}
}  // namespace mimkernels
