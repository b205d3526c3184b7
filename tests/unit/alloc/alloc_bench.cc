// Micro-benchmark of one allocation tick and one demand update at control-
// plane scale (100k and 1M tenants). Not a test: timings depend on the
// machine. Run: BUILD/tests/unit/alloc/alloc_bench
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "control/alloc/allocator.h"
#include "control/alloc/demand.h"

namespace shaper::control::alloc {
namespace {

constexpr uint64_t kMbit = 1'000'000;

// Tenants with mixed guarantees, ceilings, weights and demands; `groups`
// groups in two levels (sqrt(groups) sites, each with subgroups), tenants
// spread over them. capacity_ratio < 1 makes the link congested, so every
// node sorts; > 1 is the uncongested fast path.
struct Setup {
  std::vector<GroupSpec> groups;
  std::vector<TenantSpec> tenants;
  uint64_t capacity_bps = 0;
};

Setup MakeSetup(size_t tenants, uint32_t groups, double capacity_ratio) {
  std::mt19937_64 rng(42);
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  Setup s;
  const uint32_t sites =
      groups == 0 ? 0 : std::max<uint32_t>(1, static_cast<uint32_t>(std::sqrt(groups)));
  for (uint32_t g = 0; g < groups; ++g) {
    GroupSpec x;
    x.parent = g < sites ? kNoGroup : static_cast<uint32_t>(g % sites);
    x.ceiling_bps = uniform(1'000, 100'000) * kMbit;
    x.weight = static_cast<uint32_t>(uniform(1, 10));
    s.groups.push_back(x);
  }
  uint64_t want_sum = 0;
  s.tenants.resize(tenants);
  for (TenantSpec& t : s.tenants) {
    t.group = groups == 0 ? kNoGroup : static_cast<uint32_t>(uniform(0, groups - 1));
    t.guaranteed_bps = uniform(0, 10) * kMbit;
    t.ceiling_bps = uniform(10, 1000) * kMbit;
    t.weight = static_cast<uint32_t>(uniform(1, 8));
    t.demand_bps = uniform(0, 3) == 0 ? 0 : uniform(0, 2000) * kMbit;
    want_sum += std::min(t.demand_bps, t.ceiling_bps);
  }
  s.capacity_bps = static_cast<uint64_t>(static_cast<double>(want_sum) * capacity_ratio);
  return s;
}

void Allocate(benchmark::State& state, uint32_t groups, double capacity_ratio) {
  const Setup s = MakeSetup(static_cast<size_t>(state.range(0)), groups, capacity_ratio);
  const Problem problem{s.capacity_bps, s.groups, s.tenants};
  Allocator allocator;
  Allocation out;
  for (auto _ : state) {
    auto done = allocator.Allocate(problem, out);
    if (!done) state.SkipWithError(done.error().c_str());
    benchmark::DoNotOptimize(out.rate_bps.data());
  }
  state.counters["tenants"] = static_cast<double>(state.range(0));
}

void BM_AllocateFlatCongested(benchmark::State& state) {
  Allocate(state, 0, 0.5);
}
void BM_AllocateGroupedCongested(benchmark::State& state) {
  Allocate(state, 1000, 0.5);
}
void BM_AllocateFlatUncongested(benchmark::State& state) {
  Allocate(state, 0, 2.0);
}

void BM_DemandUpdate(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  auto estimator = DemandEstimator::Create({});
  std::vector<DemandCounters> counters(n);
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    state.PauseTiming();
    for (DemandCounters& c : counters) {
      const uint64_t bytes = rng() % 2'000'000;
      c.arrival_bytes += bytes;
      c.tx_bytes += bytes - bytes / 8;
      c.queued_bytes = bytes / 8;
    }
    state.ResumeTiming();
    estimator->Update(counters, 100'000'000);
    benchmark::DoNotOptimize(estimator->demand_bps(0));
  }
}

BENCHMARK(BM_AllocateFlatCongested)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AllocateGroupedCongested)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AllocateFlatUncongested)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DemandUpdate)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace shaper::control::alloc

BENCHMARK_MAIN();
