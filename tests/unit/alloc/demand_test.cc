// The demand estimator on synthetic counter streams: steady traffic, a
// tenant starting, stopping, being throttled (backlog, drops), and counter
// edge cases. Rates are chosen so that the expected values are exact.
#include "control/alloc/demand.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace shaper::control::alloc {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kTick_ns = 100'000'000;  // 100 ms
constexpr uint64_t kMbit = 1'000'000;
// Bytes in one 100 ms tick at `mbit` Mbit/s.
constexpr uint64_t BytesPerTick(uint64_t mbit) {
  return mbit * kMbit / 8 / 10;
}

// One tenant's cumulative counters, advanced tick by tick.
struct Stream {
  DemandCounters counters;
  void Tick(uint64_t arrival_bytes, uint64_t tx_bytes, uint64_t queued_bytes = 0,
            uint64_t drop_bytes = 0, uint64_t drop_packets = 0) {
    counters.arrival_bytes += arrival_bytes;
    counters.tx_bytes += tx_bytes;
    counters.drop_bytes += drop_bytes;
    counters.drop_packets += drop_packets;
    counters.queued_bytes = queued_bytes;
  }
};

DemandEstimator MakeEstimator(DemandConfig config = {}) {
  auto e = DemandEstimator::Create(config);
  EXPECT_TRUE(e.has_value()) << e.error();
  return std::move(*e);
}

void Feed(DemandEstimator& e, const Stream& s, uint64_t interval_ns = kTick_ns) {
  e.Update(std::span<const DemandCounters>(&s.counters, 1), interval_ns);
}

TEST(DemandEstimator, RejectsUnusableConfiguration) {
  DemandConfig c;
  c.decay_time_constant_ns = 0;
  auto e = DemandEstimator::Create(c);
  ASSERT_FALSE(e.has_value());
  EXPECT_THAT(e.error(), HasSubstr("decay_time_constant_ns: 0"));
  c = {};
  c.backlog_drain_ns = 0;
  e = DemandEstimator::Create(c);
  ASSERT_FALSE(e.has_value());
  EXPECT_THAT(e.error(), HasSubstr("backlog_drain_ns: 0"));
  c = {};
  c.probe_ppm = 2'000'000;
  e = DemandEstimator::Create(c);
  ASSERT_FALSE(e.has_value());
  EXPECT_THAT(e.error(), HasSubstr("probe_ppm: 2000000"));
}

TEST(DemandEstimator, FirstSampleOnlySetsTheBaseline) {
  DemandEstimator e = MakeEstimator();
  Stream s;
  s.Tick(1'000'000'000, 1'000'000'000);  // counters already large: control restarted
  Feed(e, s);
  EXPECT_EQ(e.demand_bps(0), 0u);
  s.Tick(BytesPerTick(80), BytesPerTick(80));
  Feed(e, s);
  EXPECT_EQ(e.demand_bps(0), 80 * kMbit);
}

TEST(DemandEstimator, SteadyRateIsItsArrivalRate) {
  DemandEstimator e = MakeEstimator();
  Stream s;
  Feed(e, s);
  for (int i = 0; i < 50; ++i) {
    s.Tick(BytesPerTick(100), BytesPerTick(100), 1'500);  // one packet queued: noise
    Feed(e, s);
    ASSERT_EQ(e.demand_bps(0), 100 * kMbit) << "tick " << i;
    EXPECT_EQ(e.tenant(0).arrival_bps, 100 * kMbit);
    EXPECT_FALSE(e.tenant(0).constrained);
  }
}

TEST(DemandEstimator, StartingTenantRisesAtOnce) {
  DemandEstimator e = MakeEstimator();
  Stream s;
  Feed(e, s);
  for (int i = 0; i < 5; ++i) {
    s.Tick(0, 0);
    Feed(e, s);
  }
  EXPECT_EQ(e.demand_bps(0), 0u);
  s.Tick(BytesPerTick(50), BytesPerTick(50));
  Feed(e, s);
  EXPECT_EQ(e.demand_bps(0), 50 * kMbit);
}

TEST(DemandEstimator, StoppingTenantDecaysWithTheTimeConstantThenReachesZero) {
  DemandConfig config;
  config.decay_time_constant_ns = 1'000'000'000;
  DemandEstimator e = MakeEstimator(config);
  Stream s;
  Feed(e, s);
  s.Tick(BytesPerTick(50), BytesPerTick(50));
  Feed(e, s);
  ASSERT_EQ(e.demand_bps(0), 50 * kMbit);

  uint64_t previous = e.demand_bps(0);
  for (int tick = 1; tick <= 10; ++tick) {
    s.Tick(0, 0);
    Feed(e, s);
    EXPECT_LT(e.demand_bps(0), previous) << "tick " << tick;
    previous = e.demand_bps(0);
    // 50 Mbit/s * exp(-t / tau); the rounded-up steps stay within a few bits/s.
    const double expected = 50e6 * std::exp(-0.1 * tick);
    EXPECT_NEAR(static_cast<double>(e.demand_bps(0)), expected, 2.0 * tick) << "tick " << tick;
  }
  int ticks = 10;
  while (e.demand_bps(0) > 0 && ticks < 1000) {
    s.Tick(0, 0);
    Feed(e, s);
    ++ticks;
  }
  EXPECT_EQ(e.demand_bps(0), 0u);
  EXPECT_LT(ticks, 400);  // ~ tau * ln(50e6) = 18 s = 180 ticks, plus rounding
}

TEST(DemandEstimator, DecayUsesTheMeasuredInterval) {
  DemandEstimator one = MakeEstimator();
  DemandEstimator late = MakeEstimator();
  Stream s;
  Feed(one, s);
  Feed(late, s);
  s.Tick(BytesPerTick(50), BytesPerTick(50));
  Feed(one, s);
  Feed(late, s);
  s.Tick(0, 0);
  Feed(one, s, kTick_ns);
  Feed(late, s, 3 * kTick_ns);  // the same silence, but 300 ms passed
  EXPECT_NEAR(static_cast<double>(one.demand_bps(0)), 50e6 * std::exp(-0.1), 2.0);
  EXPECT_NEAR(static_cast<double>(late.demand_bps(0)), 50e6 * std::exp(-0.3), 2.0);
}

TEST(DemandEstimator, GrowingBacklogAsksForMoreThanArrivals) {
  DemandEstimator e = MakeEstimator();  // probe 25%, drain 100 ms, slack 3000 B
  Stream s;
  Feed(e, s);
  // Offers 100 Mbit/s, gets 80: 250 kB more queued every tick.
  s.Tick(BytesPerTick(100), BytesPerTick(80), BytesPerTick(20));
  Feed(e, s);
  EXPECT_TRUE(e.tenant(0).constrained);
  EXPECT_EQ(e.tenant(0).arrival_bps, 100 * kMbit);
  // 100 (arrival) + 20 (drain 250 kB in 100 ms) + 25 (probe: 25% of 100).
  EXPECT_EQ(e.demand_bps(0), 145 * kMbit);
  s.Tick(BytesPerTick(100), BytesPerTick(80), BytesPerTick(40));
  Feed(e, s);
  EXPECT_EQ(e.demand_bps(0), 165 * kMbit);
  EXPECT_GT(e.demand_bps(0), e.tenant(0).arrival_bps);
}

TEST(DemandEstimator, DropsMarkATenantConstrained) {
  DemandEstimator e = MakeEstimator();
  Stream s;
  Feed(e, s);
  s.Tick(BytesPerTick(100), BytesPerTick(90), 0, BytesPerTick(10), 800);
  Feed(e, s);
  EXPECT_TRUE(e.tenant(0).constrained);
  EXPECT_EQ(e.demand_bps(0), 125 * kMbit);
  // Dropped packets alone (zero-length accounting quirks) count too.
  s.Tick(BytesPerTick(100), BytesPerTick(100), 0, 0, 1);
  Feed(e, s);
  EXPECT_TRUE(e.tenant(0).constrained);
}

TEST(DemandEstimator, TransmitAboveArrivalCountsAsDemand) {
  // Draining a backlog built before: it sent 60 while 20 arrived.
  DemandEstimator e = MakeEstimator();
  Stream s;
  Feed(e, s);
  s.Tick(BytesPerTick(20), BytesPerTick(60));
  Feed(e, s);
  EXPECT_EQ(e.demand_bps(0), 60 * kMbit);
  EXPECT_FALSE(e.tenant(0).constrained);
}

TEST(DemandEstimator, CounterResetHoldsTheEstimateAndRebaselines) {
  DemandEstimator e = MakeEstimator();
  Stream s;
  Feed(e, s);
  s.Tick(BytesPerTick(70), BytesPerTick(70));
  Feed(e, s);
  ASSERT_EQ(e.demand_bps(0), 70 * kMbit);
  Stream restarted;  // the dataplane restarted: counters from zero
  restarted.Tick(BytesPerTick(10), BytesPerTick(10));
  Feed(e, restarted);
  EXPECT_EQ(e.demand_bps(0), 70 * kMbit);
  restarted.Tick(BytesPerTick(90), BytesPerTick(90));
  Feed(e, restarted);
  EXPECT_EQ(e.demand_bps(0), 90 * kMbit);
}

TEST(DemandEstimator, ZeroIntervalChangesNothing) {
  DemandEstimator e = MakeEstimator();
  Stream s;
  Feed(e, s);
  s.Tick(BytesPerTick(30), BytesPerTick(30));
  Feed(e, s);
  s.Tick(BytesPerTick(30), BytesPerTick(30));
  Feed(e, s, 0);
  EXPECT_EQ(e.demand_bps(0), 30 * kMbit);
  // The next real tick sees both ticks' bytes over its interval.
  s.Tick(BytesPerTick(30), BytesPerTick(30));
  Feed(e, s, 2 * kTick_ns);
  EXPECT_EQ(e.demand_bps(0), 30 * kMbit);
}

TEST(DemandEstimator, HugeCountsUseWideArithmeticAndSaturate) {
  DemandEstimator e = MakeEstimator();
  Stream s;
  Feed(e, s);
  s.Tick(10'000'000'000, 10'000'000'000);  // 10 GB in 100 ms: past the 64-bit fast path
  Feed(e, s);
  EXPECT_EQ(e.demand_bps(0), 800'000'000'000u);
  s.Tick(UINT64_MAX / 4, UINT64_MAX / 4);
  Feed(e, s, 1);  // absurd, but must saturate rather than wrap
  EXPECT_EQ(e.demand_bps(0), UINT64_MAX);
}

TEST(DemandEstimator, ProbeIsConfigurable) {
  DemandConfig config;
  config.probe_ppm = 0;
  config.backlog_drain_ns = 200'000'000;
  DemandEstimator e = MakeEstimator(config);
  Stream s;
  Feed(e, s);
  // Constrained (drops), but no probe: arrival + backlog drained in 200 ms.
  s.Tick(BytesPerTick(100), BytesPerTick(80), BytesPerTick(20), 1'000, 1);
  Feed(e, s);
  EXPECT_TRUE(e.tenant(0).constrained);
  EXPECT_EQ(e.demand_bps(0), 110 * kMbit);
}

TEST(DemandEstimator, TenantsAreIndependentAndResettable) {
  DemandEstimator e = MakeEstimator();
  std::vector<DemandCounters> c(2);
  e.Update(c, kTick_ns);
  c[0].arrival_bytes += BytesPerTick(10);
  c[1].arrival_bytes += BytesPerTick(40);
  e.Update(c, kTick_ns);
  EXPECT_EQ(e.demand_bps(0), 10 * kMbit);
  EXPECT_EQ(e.demand_bps(1), 40 * kMbit);

  // A third tenant appears: it needs a baseline first.
  c.push_back(DemandCounters{.arrival_bytes = 5'000'000});
  e.Update(c, kTick_ns);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e.demand_bps(2), 0u);

  e.Reset(1);
  EXPECT_EQ(e.demand_bps(1), 0u);
  c[1].arrival_bytes += BytesPerTick(40);
  e.Update(c, kTick_ns);
  EXPECT_EQ(e.demand_bps(1), 0u);  // re-baselined, not 40 Mbit/s from a stale baseline
}

}  // namespace
}  // namespace shaper::control::alloc
