// Host emulation of the GPU's warp kernels of the block mask and the SimMIM mask (test_native.py
// compiles and runs it; no GPU needed). Each sample runs on 32 std::threads, one per lane, through the
// code the CUDA kernels run: StridedTeam (block_mask.h) over a group whose sum and barrier are a shared
// array and a std::barrier where the GPU has shuffles and __syncwarp. The masks must equal the cpp
// build's (block_mask_sample / simmim_mask_sample, one lane): the lane split, the per-lane draws and
// the team's ordering of the mask writes are what this proves. Prints one line per config, "ok" or
// the first mismatch; exit status 1 on any mismatch.
#include <barrier>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include "mimkernels/block_mask.h"
#include "mimkernels/simmim_mask.h"

using namespace mimkernels;

constexpr int kLanes = 32;

struct Shared {
  std::barrier<> bar{kLanes};
  int64_t partial[kLanes];
};

struct EmulatedWarp {
  static constexpr int64_t kLanes = ::kLanes;
  unsigned lane_;
  Shared* shared;
  unsigned lane() const { return lane_; }
  int64_t sum(int64_t v) const {
    shared->partial[lane_] = v;
    shared->bar.arrive_and_wait();
    int64_t total = 0;
    for (int i = 0; i < kLanes; ++i) total += shared->partial[i];
    shared->bar.arrive_and_wait();  // nobody overwrites partial before every lane has read it
    return total;
  }
  void barrier() const { shared->bar.arrive_and_wait(); }
};

template <class Body>
void run_warp(Body body) {
  Shared shared;
  std::vector<std::thread> lanes;
  for (unsigned lane = 0; lane < kLanes; ++lane)
    lanes.emplace_back([&, lane] { body(StridedTeam<EmulatedWarp>{EmulatedWarp{lane, &shared}}); });
  for (auto& t : lanes) t.join();
}

int failures = 0;

void check_block(const char* name, const BlockMaskParams& p, int samples, uint64_t seed) {
  const int64_t cells = p.height * p.width;
  std::vector<uint8_t> one(cells), warp(cells, 0xAB);
  for (int64_t b = 0; b < samples; ++b) {
    const int64_t want = block_mask_sample(one.data(), p, seed, b);
    int64_t got[kLanes];
    run_warp([&](const StridedTeam<EmulatedWarp>& team) {
      got[team.group.lane()] = block_mask_sample_team(team, warp.data(), p, seed, b);
    });
    for (int i = 0; i < kLanes; ++i)
      if (got[i] != want) {
        std::printf("%s: sample %lld lane %d counted %lld, one lane %lld\n", name, (long long)b, i,
                    (long long)got[i], (long long)want);
        ++failures;
        return;
      }
    if (one != warp) {
      std::printf("%s: sample %lld differs\n", name, (long long)b);
      ++failures;
      return;
    }
  }
  std::printf("%s: ok\n", name);
}

void check_simmim(const char* name, int64_t rand_size, int64_t scale, int64_t count, int samples, uint64_t seed) {
  const int64_t tokens = rand_size * rand_size, n = rand_size * scale;
  std::vector<uint64_t> keys(tokens), warp_keys(tokens);
  std::vector<uint8_t> marks(tokens), one(n * n), warp(n * n, 0xAB);
  for (int64_t b = 0; b < samples; ++b) {
    simmim_mask_sample(one.data(), keys.data(), rand_size, scale, count, seed, b);
    run_warp([&](const StridedTeam<EmulatedWarp>& team) {
      simmim_mask_sample_ranked(team, warp.data(), warp_keys.data(), marks.data(), rand_size, scale, count, seed, b);
    });
    if (one != warp) {
      std::printf("%s: sample %lld differs\n", name, (long long)b);
      ++failures;
      return;
    }
  }
  std::printf("%s: ok\n", name);
}

int main() {
  const double lo = std::log(0.3), hi = -std::log(0.3);
  check_block("block 14x14 78/15", {14, 14, 78, 15, 78, lo, hi, false}, 32, 12345);
  check_block("block 14x14 75/16 max 75", {14, 14, 75, 16, 75, lo, hi, false}, 16, ~0ull);
  check_block("block 9x23 60/4 max 20", {9, 23, 60, 4, 20, lo, hi, false}, 16, 7);
  check_block("block 30x30 400/40 (blocks past 32 cells)", {30, 30, 400, 40, 400, lo, hi, false}, 8, 9);
  check_block("block mmpretrain 14x14 150", {14, 14, 150, 16, 150, lo, hi, true}, 8, 3);
  check_block("block past the grid", {14, 14, 1000000, 15, 1000000, lo, hi, false}, 4, 5);
  check_block("block 1x40", {1, 40, 20, 1, 20, lo, hi, false}, 4, 5);
  check_simmim("simmim 6x6 scale 8", 6, 8, 22, 16, 11);
  check_simmim("simmim 7x7 scale 2", 7, 2, 30, 16, ~0ull);
  check_simmim("simmim 33x33 scale 1", 33, 1, 654, 4, 2);
  check_simmim("simmim count past the grid", 5, 3, 1000, 4, 1);
  check_simmim("simmim negative count", 5, 3, -4, 4, 1);
  return failures ? 1 : 0;
}
