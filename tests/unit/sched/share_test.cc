// Guarantee, ceiling and weighted borrowing among tenants, checked against a
// weighted max-min reference written here (sim.h), and work conservation.
#include <cmath>
#include <cstdio>
#include <limits>

#include "tests/unit/sched/sim.h"

namespace shaper::sched::test {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Scenario {
  double link_mbps;
  std::vector<RefTenant> tenants;  // Mbit/s; demand kInf = greedy
};

// Runs the scenario in the simulator and returns each tenant's measured rate
// (Mbit/s) over `measure_ms` after a warm-up.
std::vector<double> Measure(const Scenario& s, double measure_ms, uint64_t seed = 1) {
  std::vector<TenantParams> params;
  for (const RefTenant& t : s.tenants)
    params.push_back(Tenant(t.floor, t.cap, static_cast<uint32_t>(t.weight), 20'000));
  Sim sim({static_cast<uint64_t>(s.link_mbps * 1e6), kOverhead, 0}, {Bulk()}, params, 0, 1 << 17,
          seed);
  for (uint32_t i = 0; i < s.tenants.size(); ++i) {
    if (std::isinf(s.tenants[i].demand)) {
      sim.AddGreedy(i);
    } else {
      sim.AddRate(i, 0, s.tenants[i].demand * 1e6);
    }
  }
  const uint64_t step = NsToTsc(2000);
  sim.Run(MsToTsc(50), step);
  std::vector<uint64_t> start(s.tenants.size());
  for (uint32_t i = 0; i < s.tenants.size(); ++i) start[i] = sim.tenant_tx_bytes(i);
  const uint64_t t0 = sim.now();
  sim.Run(MsToTsc(measure_ms), step);
  std::vector<double> rates;
  for (uint32_t i = 0; i < s.tenants.size(); ++i)
    rates.push_back(RateBps(sim.tenant_tx_bytes(i) - start[i], sim.now() - t0) / 1e6);
  return rates;
}

// Measured within 1% of the reference (and 0.2% of the link for tiny shares).
void ExpectShares(const Scenario& s, const std::vector<double>& expected, double measure_ms,
                  const char* name, uint64_t seed = 1) {
  const std::vector<double> got = Measure(s, measure_ms, seed);
  double worst = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double error = got[i] / expected[i] - 1;
    worst = std::max(worst, std::fabs(error));
    if (expected.size() <= 8)
      std::printf("%s: tenant %zu expected %.2f Mbit/s, measured %.2f (%+.3f%%)\n", name, i,
                  expected[i], got[i], error * 100);
    EXPECT_NEAR(got[i], expected[i], 0.01 * expected[i] + 0.002 * s.link_mbps)
        << name << ": tenant " << i;
  }
  std::printf("%s: worst relative error %.3f%% over %zu tenants\n", name, worst * 100,
              expected.size());
}

// DESIGN.md's worked example: 950 Mbit/s; A 100/1000/w1, B 300/400/w1,
// C 100/1000/w3, all greedy -> 190, 390, 370.
TEST(Shares, DesignWorkedExample) {
  const Scenario s{950, {{100, 1000, 1, kInf}, {300, 400, 1, kInf}, {100, 1000, 3, kInf}}};
  const std::vector<double> ref = WeightedMaxMin(s.link_mbps, s.tenants);
  ASSERT_NEAR(ref[0], 190, 1e-6);  // the reference agrees with the document
  ASSERT_NEAR(ref[1], 390, 1e-6);
  ASSERT_NEAR(ref[2], 370, 1e-6);
  ExpectShares(s, ref, 1000, "design example");
}

// Same with B's ceiling at 350: B gets 350 and its 40 go to A and C 1:3.
TEST(Shares, DesignWorkedExampleCappedTenant) {
  const Scenario s{950, {{100, 1000, 1, kInf}, {300, 350, 1, kInf}, {100, 1000, 3, kInf}}};
  const std::vector<double> ref = WeightedMaxMin(s.link_mbps, s.tenants);
  ASSERT_NEAR(ref[0], 200, 1e-6);
  ASSERT_NEAR(ref[1], 350, 1e-6);
  ASSERT_NEAR(ref[2], 400, 1e-6);
  ExpectShares(s, ref, 1000, "design example, B capped");
}

// Undersubscribed: the link has room for all; everyone gets its demand, and
// greedy tenants are limited only by their ceilings.
TEST(Shares, UndersubscribedEveryoneGetsDemandOrCeiling) {
  const Scenario s{1000,
                   {{50, 300, 1, 120}, {0, 200, 1, kInf}, {100, 400, 2, 60}, {0, 100, 5, kInf}}};
  const std::vector<double> ref = WeightedMaxMin(s.link_mbps, s.tenants);
  ASSERT_NEAR(ref[0], 120, 1e-6);
  ASSERT_NEAR(ref[1], 200, 1e-6);
  ASSERT_NEAR(ref[2], 60, 1e-6);
  ASSERT_NEAR(ref[3], 100, 1e-6);
  ExpectShares(s, ref, 500, "undersubscribed");
}

// A tenant offering exactly its guarantee gets it however hard the others push.
TEST(Shares, GuaranteeHoldsAgainstGreedyHeavyweights) {
  const Scenario s{500, {{200, 500, 1, 200}, {0, 500, 100, kInf}, {100, 500, 50, kInf}}};
  const std::vector<double> ref = WeightedMaxMin(s.link_mbps, s.tenants);
  ASSERT_NEAR(ref[0], 200, 1e-6);
  ExpectShares(s, ref, 500, "guarantee");
}

// Fifty tenants each offering exactly their 10 Mbit/s guarantee keep it
// next to greedy borrowers of very different weights; the round robin among
// guaranteed tenants stays inside every tenant's bucket depth.
TEST(Shares, ManyGuaranteesHoldTogether) {
  Scenario s{600, {}};
  for (int i = 0; i < 50; ++i) s.tenants.push_back({10, 600, 1, 10});
  s.tenants.push_back({0, 600, 1, kInf});
  s.tenants.push_back({50, 600, 100, kInf});
  const std::vector<double> ref = WeightedMaxMin(s.link_mbps, s.tenants);
  // The reference works in whole bit/s: 1e-6 Mbit is one bit/s.
  ASSERT_NEAR(ref[0], 10, 1e-6);
  ASSERT_NEAR(ref[50], 50.0 / 101, 1e-6);
  ASSERT_NEAR(ref[51], 50 + 5000.0 / 101, 1e-6);
  ExpectShares(s, ref, 500, "many guarantees");
}

// Oversubscribed, seeded random mixes of floors, caps, weights and demands.
TEST(Shares, RandomOversubscribedMixesMatchReference) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    Scenario s{1000, {}};
    double floors = 0;
    for (int i = 0; i < 6; ++i) {
      RefTenant t;
      t.floor = std::round(u(rng) * 120);
      floors += t.floor;
      t.cap = std::round(t.floor + 50 + u(rng) * 600);
      t.weight = 1 + std::floor(u(rng) * 4);
      t.demand = u(rng) < 0.6 ? kInf : std::round(20 + u(rng) * 300);
      s.tenants.push_back(t);
    }
    ASSERT_LE(floors, s.link_mbps);
    const std::vector<double> ref = WeightedMaxMin(s.link_mbps, s.tenants);
    double total = 0;
    for (double r : ref) total += r;
    std::printf("random mix %llu: reference uses %.1f of %.0f Mbit/s\n",
                static_cast<unsigned long long>(seed), total, s.link_mbps);
    const std::string name = "random mix " + std::to_string(seed);
    ExpectShares(s, ref, 500, name.c_str(), seed);
  }
}

// Work conservation: when a tenant goes idle its share goes to the others at
// once; the link stays full in every 1 ms window.
TEST(Shares, IdleShareGoesToOthersImmediately) {
  Sim sim({500'000'000, kOverhead, 0}, {Bulk()},
          {Tenant(100, 500, 1), Tenant(0, 500, 1), Tenant(0, 500, 2)});
  for (uint32_t t = 0; t < 3; ++t) sim.AddGreedy(t);
  const uint64_t step = NsToTsc(2000);
  sim.Run(MsToTsc(20), step);
  std::vector<std::vector<double>> windows;
  for (int w = 0; w < 40; ++w) {
    if (w == 20) sim.sources()[0].active = false;  // tenant 0 stops offering
    std::vector<uint64_t> b(3);
    for (uint32_t t = 0; t < 3; ++t) b[t] = sim.tenant_tx_bytes(t);
    const uint64_t t0 = sim.now();
    sim.Run(MsToTsc(1), step);
    std::vector<double> r(3);
    for (uint32_t t = 0; t < 3; ++t) r[t] = RateBps(sim.tenant_tx_bytes(t) - b[t], sim.now() - t0);
    windows.push_back(r);
    EXPECT_GT(r[0] + r[1] + r[2], 0.98 * 500e6) << "link not full in window " << w;
  }
  // Before: 100 + 400 spare shared 1:1:2 -> 200, 100, 200. Once tenant 0 has
  // sent its 48 KB backlog (about 2 ms): 500 shared 1:2 -> 166.7, 333.3.
  // Shares are compared over several windows: a DRR round (4.6 KB here) makes
  // a single 1 ms window uneven by up to a quantum.
  auto mean = [&](int from, int to, uint32_t t) {
    double sum = 0;
    for (int w = from; w < to; ++w) sum += windows[w][t];
    return sum / (to - from) / 1e6;
  };
  EXPECT_NEAR(mean(5, 20, 0), 200, 2);
  EXPECT_NEAR(mean(5, 20, 1), 100, 2);
  EXPECT_NEAR(mean(5, 20, 2), 200, 2);
  for (int w = 23; w < 40; ++w) EXPECT_EQ(windows[w][0], 0) << w;
  EXPECT_NEAR(mean(23, 40, 1), 500.0 / 3, 2);
  EXPECT_NEAR(mean(23, 40, 2), 1000.0 / 3, 2);
}

}  // namespace
}  // namespace shaper::sched::test
