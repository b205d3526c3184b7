// Classes inside a tenant: latency preempts bulk up to max_share, bulk
// classes share by weight.
#include <cstdio>

#include "tests/unit/sched/sim.h"

namespace shaper::sched::test {
namespace {

// A latency packet of a tenant whose bulk class is deeply backlogged waits
// for at most about one frame at the tenant's rate, while bulk waits long.
TEST(Classes, LatencyPreemptsBacklog) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Latency(200'000), Bulk()}, {Tenant(2, 10)});
  sim.AddGreedy(0, 1, 1500, 1500);
  sim.AddRate(0, 0, 300e3, 100, 200);  // 3% of the tenant's 10 Mbit/s
  sim.Run(MsToTsc(2000), NsToTsc(5000));
  const auto& lat = sim.flow(0, 0);
  const auto& bulk = sim.flow(0, 1);
  const double frame_ms = 1524.0 * 8 / 10e6 * 1e3;  // one bulk frame at 10 Mbit/s
  const double lat_ms = static_cast<double>(lat.max_sojourn_tsc) / kTscHz * 1e3;
  const double bulk_ms = static_cast<double>(bulk.max_sojourn_tsc) / kTscHz * 1e3;
  std::printf(
      "latency class max sojourn %.3f ms (%llu packets), bulk %.3f ms; frame time %.3f ms\n",
      lat_ms, static_cast<unsigned long long>(lat.tx_packets), bulk_ms, frame_ms);
  EXPECT_GT(lat.tx_packets, 500u);
  EXPECT_LT(lat_ms, frame_ms + 0.1);
  EXPECT_GT(bulk_ms, 20 * frame_ms);  // bulk was backlogged all along
  EXPECT_EQ(lat.drops_queue_limit + bulk.drops_queue_limit, 0u);
}

// A latency flood takes max_share of the tenant's rate and no more while
// bulk is backlogged; bulk gets the rest. The tenant's total stays at its
// ceiling.
TEST(Classes, LatencyFloodLimitedToMaxShare) {
  for (uint32_t share_ppm : {200'000u, 500'000u}) {
    Sim sim({1'000'000'000, kOverhead, 0}, {Latency(share_ppm), Bulk()}, {Tenant(10, 100)});
    sim.AddGreedy(0, 0);
    sim.AddGreedy(0, 1);
    sim.Run(MsToTsc(50), NsToTsc(2000));
    const uint64_t l0 = sim.flow(0, 0).tx_bytes, b0 = sim.flow(0, 1).tx_bytes;
    const uint64_t t0 = sim.now();
    sim.Run(MsToTsc(500), NsToTsc(2000));
    const double lat = RateBps(sim.flow(0, 0).tx_bytes - l0, sim.now() - t0);
    const double bulk = RateBps(sim.flow(0, 1).tx_bytes - b0, sim.now() - t0);
    const double share = share_ppm / 1e6;
    std::printf("max_share %.0f%%: latency %.3f Mbit/s (%.3f%%), bulk %.3f Mbit/s\n", share * 100,
                lat / 1e6, lat / (lat + bulk) * 100, bulk / 1e6);
    EXPECT_NEAR(lat / (lat + bulk), share, 0.005);
    EXPECT_NEAR((lat + bulk) / 100e6, 1.0, 0.01);
  }
}

// Without bulk traffic the latency class may use the whole tenant rate:
// above its share it only yields to bulk (work conserving inside the tenant).
TEST(Classes, LatencyAloneUsesWholeTenantRate) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Latency(200'000), Bulk()}, {Tenant(0, 50)});
  sim.AddGreedy(0, 0);
  sim.Run(MsToTsc(20), NsToTsc(2000));
  const uint64_t b = sim.flow(0, 0).tx_bytes, t = sim.now();
  sim.Run(MsToTsc(300), NsToTsc(2000));
  EXPECT_NEAR(RateBps(sim.flow(0, 0).tx_bytes - b, sim.now() - t) / 50e6, 1.0, 0.01);
}

// Bulk classes share the tenant's rate by weight (1:3).
TEST(Classes, BulkClassesShareByWeight) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Latency(200'000), Bulk(1), Bulk(3)}, {Tenant(0, 80)});
  sim.AddGreedy(0, 1);
  sim.AddGreedy(0, 2);
  sim.Run(MsToTsc(20), NsToTsc(2000));
  const uint64_t b1 = sim.flow(0, 1).tx_bytes, b2 = sim.flow(0, 2).tx_bytes, t = sim.now();
  sim.Run(MsToTsc(500), NsToTsc(2000));
  const double r1 = RateBps(sim.flow(0, 1).tx_bytes - b1, sim.now() - t);
  const double r2 = RateBps(sim.flow(0, 2).tx_bytes - b2, sim.now() - t);
  std::printf("bulk weights 1:3 -> %.3f / %.3f Mbit/s\n", r1 / 1e6, r2 / 1e6);
  EXPECT_NEAR(r1 / (r1 + r2), 0.25, 0.005);
  EXPECT_NEAR((r1 + r2) / 80e6, 1.0, 0.01);
}

// One tenant's latency flood does not change what another tenant gets.
TEST(Classes, LatencyFloodStaysInsideItsTenant) {
  Sim sim({200'000'000, kOverhead, 0}, {Latency(300'000), Bulk()},
          {Tenant(50, 200), Tenant(50, 200)});
  sim.AddGreedy(0, 0);
  sim.AddGreedy(0, 1);
  sim.AddGreedy(1, 1);
  sim.Run(MsToTsc(20), NsToTsc(2000));
  const uint64_t a = sim.tenant_tx_bytes(0), b = sim.tenant_tx_bytes(1), t = sim.now();
  sim.Run(MsToTsc(500), NsToTsc(2000));
  EXPECT_NEAR(RateBps(sim.tenant_tx_bytes(0) - a, sim.now() - t) / 100e6, 1.0, 0.01);
  EXPECT_NEAR(RateBps(sim.tenant_tx_bytes(1) - b, sim.now() - t) / 100e6, 1.0, 0.01);
}

// Across tenants: latency traffic that fits in its tenant's guarantee is
// served in the assured phase, ahead of every tenant that is borrowing, so it
// waits about one frame at the link rate even with ten greedy neighbours.
TEST(Classes, LatencyWithinGuaranteeAheadOfBorrowers) {
  std::vector<TenantParams> tenants{Tenant(10, 100)};
  for (int i = 0; i < 10; ++i) tenants.push_back(Tenant(0, 100, 1 + i));
  Sim sim({100'000'000, kOverhead, 0}, {Latency(200'000), Bulk()}, tenants);
  sim.AddRate(0, 0, 1e6, 100, 200);
  for (uint32_t t = 1; t <= 10; ++t) sim.AddGreedy(t, 1);
  sim.Run(MsToTsc(1000), NsToTsc(2000));
  const double frame_ms = 1524.0 * 8 / 100e6 * 1e3;
  const double lat_ms = static_cast<double>(sim.flow(0, 0).max_sojourn_tsc) / kTscHz * 1e3;
  std::printf("latency within guarantee, 10 borrowers: max sojourn %.3f ms (frame %.3f ms)\n",
              lat_ms, frame_ms);
  EXPECT_GT(sim.flow(0, 0).tx_packets, 500u);
  EXPECT_LT(lat_ms, 2 * frame_ms + 0.01);
}

}  // namespace
}  // namespace shaper::sched::test
