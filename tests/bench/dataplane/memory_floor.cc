#include "tests/bench/dataplane/memory_floor.h"

#include <rte_cycles.h>

#include <algorithm>
#include <random>
#include <vector>

#include "dataplane/sched/profile.h"

namespace shaper::bench {

RandomLineCost MeasureRandomLineCost(uint64_t buffer_bytes, uint64_t loads, uint64_t tsc_hz) {
  constexpr uint64_t kWordsPerLine = 64 / sizeof(uint64_t);
  const uint64_t lines = std::max<uint64_t>(buffer_bytes / 64, 1);
  // Written once, so every page is backed (huge pages where THP allows).
  sched::HugePageVector<uint64_t> buffer(lines * kWordsPerLine, 1);
  std::vector<uint32_t> index(loads);
  std::mt19937_64 rng(7);
  for (uint32_t& i : index) i = static_cast<uint32_t>(rng() % lines);
  // Timed in chunks of about a millisecond and the fastest chunk kept: the
  // core is shared, and a chunk that lost the CPU to another process would
  // make a line look dearer than it is (the floor must not be too low).
  constexpr uint64_t kChunk = 1u << 16;
  uint64_t best_cycles = UINT64_MAX;
  uint64_t sum = 0;
  for (int pass = 0; pass < 3; ++pass) {
    for (uint64_t first = 0; first + kChunk <= index.size(); first += kChunk) {
      const uint64_t start = rte_rdtsc();
      // The loads do not depend on each other: the core runs as many at
      // once as it can, and the index array streams in order.
      for (uint64_t k = first; k < first + kChunk; ++k)
        sum += buffer[uint64_t{index[k]} * kWordsPerLine];
      best_cycles = std::min(best_cycles, rte_rdtsc() - start);
    }
  }
  asm volatile("" : : "r"(sum));
  const double ns = static_cast<double>(best_cycles) * 1e9 / static_cast<double>(tsc_hz) /
                    static_cast<double>(kChunk);
  return {ns, lines * 64};
}

}  // namespace shaper::bench
