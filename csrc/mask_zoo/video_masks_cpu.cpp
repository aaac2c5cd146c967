// CPU entry points of the tube, running-cell and uniform masks (video_masks.h). The draws and the
// bits are those of the shared bodies (mimkernels/video_masks.h); CPU-only is the layout of the work:
// frames copied with memcpy, the running cell's 4 phase frames computed once per call.
// One thread (a DataLoader transform, torch.set_num_threads(1), one sample) runs a plain loop, no
// OpenMP team (masking's mask_generators_cpu.cpp says why).
#include "video_masks.h"

#include <omp.h>

#include <cstring>
#include <vector>

#include "mimkernels/video_masks.h"

namespace mimkernels {
namespace {
template <class Body>
void for_each_sample(int64_t batch, int num_threads, const Body& body) {
  if (num_threads <= 1 || batch <= 1) {
    for (int64_t b = 0; b < batch; ++b) body(b);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < batch; ++b) body(b);
}
}  // namespace

void tube_mask_cpu(uintptr_t out, int64_t batch, int64_t frames, int64_t cells, int64_t masked, uint64_t seed,
                   uintptr_t seed_step, int64_t sample_offset, int num_threads) {
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  if (frames <= 0 || cells <= 0) return;
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  for_each_sample(batch, num_threads, [&](int64_t b) {
    uint8_t* sample = masks + b * frames * cells;
    tube_mask_first_frame(sample, cells, masked, key, sample_offset + b);
    for (int64_t t = 1; t < frames; ++t) std::memcpy(sample + t * cells, sample, static_cast<size_t>(cells));
  });
}

void running_cell_mask_cpu(uintptr_t out, int64_t batch, int64_t frames, int64_t height, int64_t width,
                           int64_t masked_slots, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                           int num_threads) {
  uint8_t* masks = reinterpret_cast<uint8_t*>(out);
  const int64_t cells = height * width;
  if (frames <= 0 || cells <= 0 || batch <= 0) return;
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  // Phase q: the frame whose pointer (map + t + 1) % 4 is q, i.e. running_cell_value(q + 3 mod 4, 0, ...),
  // each row alternating its two cells. A sample's frame t is phase (map + t + 1) % 4, copied.
  std::vector<uint8_t> phases(static_cast<size_t>(4 * cells));
  for (uint32_t q = 0; q < 4; ++q) {
    for (int64_t y = 0; y < height; ++y) {
      const uint8_t pair[2] = {running_cell_value((q + 3) % 4, 0, y, 0, masked_slots),
                               running_cell_value((q + 3) % 4, 0, y, 1, masked_slots)};
      uint8_t* row = phases.data() + q * cells + y * width;
      for (int64_t x = 0; x < width; ++x) row[x] = pair[x & 1];
    }
  }
  for_each_sample(batch, num_threads, [&](int64_t b) {
    const uint32_t map = running_cell_map(key, sample_offset + b);
    uint8_t* sample = masks + b * frames * cells;
    for (int64_t t = 0; t < frames; ++t)
      std::memcpy(sample + t * cells, phases.data() + ((map + t + 1) % 4) * cells, static_cast<size_t>(cells));
  });
}

void uniform_mask_cpu(uintptr_t mask, uintptr_t secondary, int64_t batch, int64_t height, int64_t width,
                      int64_t keep_final, uint64_t seed, uintptr_t seed_step, int64_t sample_offset,
                      int num_threads) {
  uint8_t* masks = reinterpret_cast<uint8_t*>(mask);
  uint8_t* seconds = reinterpret_cast<uint8_t*>(secondary);
  const int64_t cells = height * width;
  if (cells <= 0) return;
  const uint64_t key = resolve_key(seed, reinterpret_cast<const int64_t*>(seed_step));
  const int64_t rows = uniform_candidate_rows(cells);
  const int threads = (num_threads <= 1 || batch <= 1) ? 1 : num_threads;
  std::vector<uint8_t> scratch(static_cast<size_t>(threads * rows));
  for_each_sample(batch, threads, [&](int64_t b) {
    uint8_t* rows_of_thread = scratch.data() + (threads == 1 ? 0 : omp_get_thread_num()) * rows;
    uniform_mask_sample(masks + b * cells, seconds + b * cells, rows_of_thread, height, width, rows, keep_final,
                        key, sample_offset + b);
  });
}
}  // namespace mimkernels
