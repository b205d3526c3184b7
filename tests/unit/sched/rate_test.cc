// Rate accuracy, burst, rate changes and the O(1) claim of the scheduler.
#include <cmath>
#include <cstdio>

#include "tests/unit/sched/sim.h"

namespace shaper::sched::test {
namespace {

constexpr double kMeanWireBits = (64.0 + 1500.0) / 2 * 8 + kOverhead * 8;

struct RateCase {
  double mbps;
  bool by_link;  // true: the link is the limit; false: the tenant's ceiling
};

class RateAccuracy : public ::testing::TestWithParam<RateCase> {};

// One greedy tenant with random frame sizes 64..1500; after a warm-up (which
// includes the initial burst) 1M packets are timed and their wire rate is
// compared with the configured rate.
TEST_P(RateAccuracy, OneMillionPacketsWithinHalfPercent) {
  const RateCase rc = GetParam();
  const double rate_bps = rc.mbps * 1e6;
  const uint64_t link_bps = static_cast<uint64_t>(rc.by_link ? rate_bps : 4 * rate_bps);
  const double ceiling_mbps = rc.by_link ? 4 * rc.mbps : rc.mbps;
  Sim sim({link_bps, kOverhead, 0}, {Bulk()}, {Tenant(0, ceiling_mbps, 1, 3000)}, 0, 1 << 12);
  sim.AddGreedy(0);
  const double packet_tsc = kMeanWireBits / rate_bps * kTscHz;
  const uint64_t step_tsc = std::max<uint64_t>(200, static_cast<uint64_t>(packet_tsc / 2));
  sim.Run(static_cast<uint64_t>(packet_tsc * 20'000), step_tsc);

  const uint64_t start_tsc = sim.now();
  const uint64_t start_bytes = sim.total_tx_bytes();
  const uint64_t start_packets = sim.transmitted();
  while (sim.transmitted() - start_packets < 1'000'000) sim.Run(step_tsc * 64, step_tsc);
  const double measured = RateBps(sim.total_tx_bytes() - start_bytes, sim.now() - start_tsc);
  const double error = measured / rate_bps - 1.0;
  std::printf("rate %s %.0f Mbit/s: measured %.6f Mbit/s over %llu packets, error %+.4f%%\n",
              rc.by_link ? "link" : "ceiling", rc.mbps, measured / 1e6,
              static_cast<unsigned long long>(sim.transmitted() - start_packets), error * 100);
  EXPECT_LT(std::fabs(error), 0.005) << "measured " << measured << " bit/s for " << rate_bps;
  EXPECT_EQ(sim.flow(0, 0).reorders, 0u);
}

INSTANTIATE_TEST_SUITE_P(Rates, RateAccuracy,
                         ::testing::Values(RateCase{1, false}, RateCase{10, false},
                                           RateCase{100, false}, RateCase{1000, false},
                                           RateCase{10000, false}, RateCase{1, true},
                                           RateCase{10, true}, RateCase{100, true},
                                           RateCase{1000, true}, RateCase{10000, true}),
                         [](const ::testing::TestParamInfo<RateCase>& case_info) {
                           return std::string(case_info.param.by_link ? "Link" : "Ceiling") +
                                  std::to_string(static_cast<int>(case_info.param.mbps)) + "Mbps";
                         });

// Rates so slow that one frame takes longer than the wheel's horizon
// (16384 slots of 8192 cycles = 67 ms): the tenant is parked in the farthest
// slot and re-parked from there, and its rate is still exact.
TEST(SlowRates, BeyondTheWheelHorizon) {
  for (double kbps : {50.0, 128.0}) {
    Sim sim({10'000'000, kOverhead, 0}, {Bulk()}, {Tenant(0, kbps / 1e3)}, 0, 1 << 10);
    sim.AddGreedy(0, 0, 1500, 1500);
    const double frame_ms = 1524.0 * 8 / (kbps * 1e3) * 1e3;
    sim.Run(MsToTsc(frame_ms * 10), MsToTsc(1));
    const uint64_t b = sim.total_tx_bytes(), t = sim.now();
    sim.Run(MsToTsc(frame_ms * 200), MsToTsc(1));
    const double rate = RateBps(sim.total_tx_bytes() - b, sim.now() - t);
    std::printf("slow rate %.0f kbit/s (frame %.0f ms): measured %.4f kbit/s, %llu re-parks\n",
                kbps, frame_ms, rate / 1e3,
                static_cast<unsigned long long>(sim.sched().counters().parks - sim.transmitted()));
    // 200 frames: the window edges cost up to one frame.
    EXPECT_NEAR(rate / (kbps * 1e3), 1.0, 0.006);
  }
}

// An idle tenant may send burst_bytes at line rate, then its ceiling; at no
// instant does it exceed burst + ceiling * t (+ one frame, GCRA's debt).
TEST(Burst, IdleTenantSendsBurstAtLineRateThenCeiling) {
  constexpr uint64_t kBurst = 100'000;
  constexpr double kCeilingBps = 10e6;
  constexpr double kLinkBps = 1e9;
  Sim sim({static_cast<uint64_t>(kLinkBps), kOverhead, 0}, {Bulk()},
          {Tenant(0, kCeilingBps / 1e6, 1, kBurst)});
  sim.Run(MsToTsc(100), NsToTsc(1000));  // idle: the bucket fills
  const uint64_t t0 = sim.now();
  uint64_t sent = 0;
  double worst_excess_bytes = -1e18;
  sim.set_on_transmit([&](const TestPacket& p) {
    sent += p.len + kOverhead;
    const double allowed = kBurst + kCeilingBps / 8 * static_cast<double>(sim.now() - t0) / kTscHz;
    worst_excess_bytes = std::max(worst_excess_bytes, static_cast<double>(sent) - allowed);
  });
  for (int i = 0; i < 400; ++i) ASSERT_EQ(sim.Offer(0, 0, 1000), Verdict::kQueued);

  // 0.5 ms at line rate is 62.5 KB, plus the link's own depth (an idle link
  // may send kLinkToleranceNs ahead, 125 KB here): more than the burst, so
  // the whole burst goes out at once, plus the ceiling's 0.5 ms.
  sim.Run(MsToTsc(0.5), NsToTsc(1000));
  const double line_bytes = kLinkBps / 8 * (0.5e-3 + Profile::kLinkToleranceNs * 1e-9);
  const double expected = std::min(line_bytes, kBurst + kCeilingBps / 8 * 0.5e-3);
  std::printf("burst: %llu bytes in the first 0.5 ms (line rate would allow %.0f, burst + ceiling %.0f)\n",
              static_cast<unsigned long long>(sent), line_bytes, expected);
  EXPECT_NEAR(static_cast<double>(sent), expected, 2 * 1024);

  sim.Run(MsToTsc(9.5), NsToTsc(1000));  // by 10 ms: burst + 10 ms at the ceiling
  const double expected_10ms = kBurst + kCeilingBps / 8 * 10e-3;
  EXPECT_NEAR(static_cast<double>(sent), expected_10ms, 2 * 1024);

  const uint64_t t1 = sim.now();
  const uint64_t b1 = sent;
  sim.Run(MsToTsc(200), NsToTsc(1000));
  const double rate = RateBps(sent - b1, sim.now() - t1);
  EXPECT_NEAR(rate / kCeilingBps, 1.0, 0.01) << rate;
  EXPECT_LE(worst_excess_bytes, 1024 + 1) << "sent more than burst + ceiling * t";
}

// SetProfile mid-stream: the new rate holds afterwards, queued packets
// survive (nothing lost), and each (tenant, class) stays in FIFO order.
TEST(RateChange, NewRateHoldsQueuedPacketsSurviveNoReordering) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Latency(200'000), Bulk()},
          {Tenant(5, 20), Tenant(0, 300)});
  sim.AddGreedy(0, 1);
  sim.AddRate(0, 0, 1e6, 100, 300);
  sim.AddGreedy(1, 1);
  auto measure = [&](uint32_t tenant, double ms) {
    const uint64_t t = sim.now();
    const uint64_t b = sim.tenant_tx_bytes(tenant);
    sim.Run(MsToTsc(ms), NsToTsc(2000));
    return RateBps(sim.tenant_tx_bytes(tenant) - b, sim.now() - t);
  };
  sim.Run(MsToTsc(50), NsToTsc(2000));
  EXPECT_NEAR(measure(0, 500) / 20e6, 1.0, 0.01);

  sim.SetTenants({Tenant(5, 80), Tenant(0, 300)});  // faster
  sim.Run(MsToTsc(20), NsToTsc(2000));
  const double up = measure(0, 500);
  sim.SetTenants({Tenant(2, 4), Tenant(0, 300)});  // much slower
  sim.Run(MsToTsc(20), NsToTsc(2000));
  const double down = measure(0, 1000);
  std::printf("rate change: 20 -> 80 Mbit/s measured %.3f, -> 4 Mbit/s measured %.3f\n", up / 1e6,
              down / 1e6);
  EXPECT_NEAR(up / 80e6, 1.0, 0.01);
  EXPECT_NEAR(down / 4e6, 1.0, 0.01);
  EXPECT_NEAR(measure(1, 200) / 300e6, 1.0, 0.01);

  for (uint32_t t = 0; t < 2; ++t)
    for (uint32_t c = 0; c < 2; ++c) EXPECT_EQ(sim.flow(t, c).reorders, 0u) << t << "/" << c;
  const uint64_t queued = sim.enqueued() - sim.transmitted() - sim.dropped();
  EXPECT_GT(queued, 0u);
  EXPECT_EQ(sim.DrainAll(), queued);
  EXPECT_EQ(sim.sched().queued_bytes(), 0u);
}

// O(1): the work Dequeue does for one busy tenant is the same whether the
// scheduler has 1 tenant or 1M idle ones beside it; counted, not timed.
TEST(Complexity, IdleTenantsAreNeverTouched) {
  auto run = [](uint32_t num_tenants) {
    std::vector<TenantParams> tenants(num_tenants, Tenant(0, 100));
    tenants.back() = Tenant(10, 100);
    Sim sim({1'000'000'000, kOverhead, 0}, {Bulk()}, tenants, 0, 1 << 12);
    sim.AddGreedy(num_tenants - 1);
    sim.Run(MsToTsc(200), NsToTsc(5000));
    return std::pair(sim.sched().counters(), sim.transmitted());
  };
  const auto [small, small_packets] = run(1);
  const auto [large, large_packets] = run(1 << 20);
  std::printf("O(1): %llu packets; steps %llu, tenant visits %llu, wheel slots %llu, parks %llu\n",
              static_cast<unsigned long long>(large_packets),
              static_cast<unsigned long long>(large.steps),
              static_cast<unsigned long long>(large.tenant_visits),
              static_cast<unsigned long long>(large.wheel_slots_visited),
              static_cast<unsigned long long>(large.parks));
  EXPECT_GT(large_packets, 1000u);
  EXPECT_EQ(small_packets, large_packets);
  EXPECT_EQ(small.steps, large.steps);
  EXPECT_EQ(small.tenant_visits, large.tenant_visits);
  EXPECT_EQ(small.wheel_slots_visited, large.wheel_slots_visited);
  EXPECT_EQ(small.wheel_wakeups, large.wheel_wakeups);
  EXPECT_EQ(small.parks, large.parks);
  // Per packet: its send, the park after it, the wake, a DRR rotation.
  EXPECT_LE(large.tenant_visits, 5 * large_packets);
  // The wheel cursor's cost is proportional to elapsed time (one check per
  // 8192-cycle slot while something is parked), not to the tenant count.
  EXPECT_LE(large.wheel_slots_visited, MsToTsc(200) / 8192 + 1);
}

// With many busy tenants the work per packet stays constant too.
TEST(Complexity, WorkPerPacketBoundedWithManyBusyTenants) {
  for (uint32_t busy : {10u, 1000u}) {
    std::vector<TenantParams> tenants(busy, Tenant(0.5, 20, 1));
    Sim sim({1'000'000'000, kOverhead, 0}, {Bulk()}, tenants, 0, 1 << 19);
    for (uint32_t t = 0; t < busy; ++t) sim.AddGreedy(t, 0, 64, 256);
    sim.Run(MsToTsc(100), NsToTsc(5000));
    const auto& c = sim.sched().counters();
    const double visits = static_cast<double>(c.tenant_visits) / sim.transmitted();
    const double steps = static_cast<double>(c.steps) / sim.transmitted();
    std::printf("%u busy tenants: %.3f tenant visits, %.3f steps per packet\n", busy, visits,
                steps);
    EXPECT_LT(visits, 5.0);
    EXPECT_LT(steps, 5.0);
  }
}

TEST(Footprint, PerTenantStateIsCompact) {
  std::printf("per-tenant state: %zu bytes with 2 classes, %zu with 8\n",
              TestScheduler::TenantStateBytes(2), TestScheduler::TenantStateBytes(8));
  EXPECT_LE(TestScheduler::TenantStateBytes(kMaxClasses), 256u);
}

}  // namespace
}  // namespace shaper::sched::test
