// Queue bounds (sojourn, per tenant bytes, global watermark), verdicts,
// profile validation, removed tenants, and no packet lost (DrainAll) under a
// seeded random workload.
#include <cstdio>

#include "tests/unit/sched/sim.h"

namespace shaper::sched::test {
namespace {

// Packets older than the class's queue_limit are dropped at dequeue through
// the sink (kQueueLimit); no packet leaves older than the limit; the drops
// cost no tokens, so the tenant still sends at its ceiling.
TEST(Limits, SojournLimitDropsAtDequeue) {
  constexpr uint64_t kLimitNs = 10'000'000;  // 10 ms
  Sim sim({100'000'000, kOverhead, 0}, {Bulk(1, kLimitNs)}, {Tenant(0, 1)});
  sim.AddGreedy(0);  // 48 KB at 1 Mbit/s is ~390 ms of queue
  sim.Run(MsToTsc(100), NsToTsc(20'000));
  const uint64_t b = sim.flow(0, 0).tx_bytes, t = sim.now();
  sim.Run(MsToTsc(4000), NsToTsc(20'000));
  const auto& f = sim.flow(0, 0);
  std::printf("sojourn limit: %llu dropped, %llu sent, max sojourn %.3f ms\n",
              static_cast<unsigned long long>(f.drops_queue_limit),
              static_cast<unsigned long long>(f.tx_packets),
              static_cast<double>(f.max_sojourn_tsc) / kTscHz * 1e3);
  EXPECT_GT(f.drops_queue_limit, 100u);
  EXPECT_LE(f.max_sojourn_tsc, NsToTsc(kLimitNs));
  EXPECT_NEAR(RateBps(f.tx_bytes - b, sim.now() - t) / 1e6, 1.0, 0.01);
  EXPECT_EQ(f.reorders, 0u);
}

// A latency class keeps its own, shorter limit beside a bulk class.
TEST(Limits, SojournLimitIsPerClass) {
  Sim sim({100'000'000, kOverhead, 0}, {Latency(100'000, 2'000'000), Bulk(1, 0)}, {Tenant(0, 1)});
  sim.AddGreedy(0, 0);  // far more latency traffic than its share
  sim.AddGreedy(0, 1);
  sim.Run(MsToTsc(3000), NsToTsc(20'000));
  EXPECT_GT(sim.flow(0, 0).drops_queue_limit, 0u);
  EXPECT_EQ(sim.flow(0, 1).drops_queue_limit, 0u);  // no limit on bulk
  EXPECT_LE(sim.flow(0, 0).max_sojourn_tsc, NsToTsc(2'000'000));
}

// One Dequeue call does bounded work even when thousands of packets have
// expired at once: it drops a bounded bite and the next calls go on.
TEST(Limits, ExpiredBacklogIsDroppedInBoundedBites) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Bulk(1, 1'000'000)}, {Tenant(0, 100)});
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(sim.Offer(0, 0, 64), Verdict::kQueued);
  sim.set_now(sim.now() + MsToTsc(10));  // every packet is now 10 ms old
  TestPacket* out[32];
  uint32_t drops = 0, calls = 0;
  auto sink = [&](TestPacket*, uint32_t, uint32_t, DropReason why) {  // the pool owns packets
    EXPECT_EQ(why, DropReason::kQueueLimit);
    ++drops;
  };
  uint32_t first_call_drops = 0;
  while (sim.sched().queued_bytes() > 0 && calls < 1000) {
    EXPECT_EQ(sim.sched().Dequeue(sim.now(), out, 32, sink), 0u);
    if (++calls == 1) first_call_drops = drops;
  }
  EXPECT_EQ(drops, 5000u);
  EXPECT_LE(first_call_drops, 64u + 4 * 32);
  EXPECT_GE(calls, 5000u / (64 + 4 * 32));
}

TEST(Limits, PerTenantByteLimitRejectsWithQueueFull) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Bulk(), Bulk()},
          {Tenant(0, 10, 1, 0, 10'000), Tenant(0, 10)});
  for (int i = 0; i < 6; ++i) ASSERT_EQ(sim.Offer(0, 0, 1000), Verdict::kQueued);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(sim.Offer(0, 1, 1000), Verdict::kQueued);
  EXPECT_EQ(sim.Offer(0, 1, 1), Verdict::kDropQueueFull);  // 10'001 > 10'000
  EXPECT_EQ(sim.Offer(0, 0, 64), Verdict::kDropQueueFull);
  EXPECT_EQ(sim.sched().tenant_queued_bytes(0, 0), 6000u);
  EXPECT_EQ(sim.sched().tenant_queued_bytes(0, 1), 4000u);
  EXPECT_EQ(sim.Offer(1, 0, 1500), Verdict::kQueued);  // other tenants unaffected
  sim.Run(MsToTsc(2), NsToTsc(1000));                  // some leave...
  EXPECT_LT(sim.sched().tenant_queued_bytes(0, 0) + sim.sched().tenant_queued_bytes(0, 1), 10'000u);
  EXPECT_EQ(sim.Offer(0, 1, 1000), Verdict::kQueued);  // ...and room returns
}

TEST(Limits, GlobalWatermarkRejectsWithPoolLow) {
  Sim sim({1'000'000'000, kOverhead, 25'000}, {Bulk()},
          {Tenant(0, 10, 1, 0, 20'000), Tenant(0, 10, 1, 0, 20'000)});
  for (int i = 0; i < 15; ++i) ASSERT_EQ(sim.Offer(0, 0, 1000), Verdict::kQueued);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(sim.Offer(1, 0, 1000), Verdict::kQueued);
  EXPECT_EQ(sim.sched().queued_bytes(), 25'000u);
  EXPECT_EQ(sim.Offer(1, 0, 1), Verdict::kDropPoolLow);
  EXPECT_EQ(sim.Offer(0, 0, 1), Verdict::kDropPoolLow);
}

TEST(Limits, InvalidTenantOrClassIsRejected) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Bulk(), Bulk()}, {Tenant(0, 10)}, 4);
  EXPECT_EQ(sim.Offer(1, 0, 100), Verdict::kDropQueueFull);  // not in the profile
  EXPECT_EQ(sim.Offer(0, 2, 100), Verdict::kDropQueueFull);  // no such class
  TestPacket p;
  EXPECT_EQ(sim.sched().Enqueue(&p, 7, 0, 0), Verdict::kDropQueueFull);  // >= max_tenants
  EXPECT_EQ(sim.sched().queued_bytes(), 0u);
}

TEST(Profiles, InvalidParametersNameFieldAndValue) {
  const LinkParams link{1'000'000'000, 24, 0};
  const std::vector<ClassParams> classes{Bulk()};
  auto error_of = [&](const LinkParams& l, const std::vector<ClassParams>& c,
                      const std::vector<TenantParams>& t) {
    auto built = Profile::TryBuild(kTscHz, l, c, t);
    EXPECT_FALSE(built.has_value());
    EXPECT_EQ(Profile::Build(kTscHz, l, c, t), nullptr);
    return built.has_value() ? std::string() : built.error();
  };
  EXPECT_EQ(error_of(link, classes, {Tenant(0, 10), Tenant(0, 0)}),
            "tenants[1].ceiling_bps = 0: must be > 0");
  EXPECT_EQ(error_of(link, classes, {Tenant(0, 10, 0)}),
            "tenants[0].weight = 0: must be 1..1000000");
  EXPECT_EQ(error_of(link, {Bulk(1'000'001)}, {}),
            "classes[0].weight = 1000001: must be 1..1000000");
  EXPECT_EQ(error_of({0, 24, 0}, classes, {}), "link.rate_bps = 0: must be > 0");
  EXPECT_EQ(error_of(link, {}, {}), "classes: 0 classes, must be 1..8");
  EXPECT_EQ(error_of(link, {Latency(1'500'000)}, {}),
            "classes[0].max_share_ppm = 1500000: must be <= 1000000");
  EXPECT_NE(Profile::Build(kTscHz, link, classes, {}), nullptr);
  // The plan ABI's extremes build: weight 1'000'000, 1 bit/s, 10 Tbit/s.
  const std::vector<ClassParams> heavy_class{Bulk(1'000'000)};
  const std::vector<TenantParams> extreme{TenantParams{1, 1, 1'000'000, 1600, 1600},
                                          TenantParams{0, 10'000'000'000'000, 1, 1600, 1600}};
  EXPECT_NE(Profile::Build(kTscHz, {10'000'000'000'000, 24, 0}, heavy_class, extreme), nullptr);
}

// A guarantee above the ceiling cannot be kept: the ceiling wins.
TEST(Profiles, AssuredAboveCeilingIsCappedByTheCeiling) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Bulk()}, {Tenant(50, 20), Tenant(0, 1000)});
  sim.AddGreedy(0);
  sim.AddGreedy(1);
  sim.Run(MsToTsc(20), NsToTsc(2000));
  const uint64_t b = sim.tenant_tx_bytes(0), t = sim.now();
  sim.Run(MsToTsc(300), NsToTsc(2000));
  EXPECT_NEAR(RateBps(sim.tenant_tx_bytes(0) - b, sim.now() - t) / 20e6, 1.0, 0.01);
}

TEST(Profiles, ClassCountMismatchIsRefused) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Bulk(), Bulk()}, {Tenant(0, 10)});
  const std::vector<ClassParams> three{Bulk(), Bulk(), Bulk()};
  auto other = Profile::Build(kTscHz, {1'000'000'000, kOverhead, 0}, three, {});
  ASSERT_NE(other, nullptr);
  EXPECT_FALSE(sim.sched().SetProfile(other.get(), sim.now()));
  EXPECT_EQ(sim.Offer(0, 1, 100), Verdict::kQueued);  // the old profile is still in force
}

// Tenants that a new profile no longer has are drained as over-limit (the
// sink sees kQueueLimit), the others keep their queues.
TEST(Profiles, RemovedTenantsAreDrainedThroughTheSink) {
  Sim sim({1'000'000'000, kOverhead, 0}, {Bulk()}, {Tenant(0, 1), Tenant(0, 1), Tenant(0, 1)}, 3);
  for (uint32_t t = 0; t < 3; ++t)
    for (int i = 0; i < 20; ++i) ASSERT_EQ(sim.Offer(t, 0, 1000), Verdict::kQueued);
  sim.Run(MsToTsc(1), NsToTsc(10'000));
  sim.SetTenants({Tenant(0, 1)});
  sim.Run(MsToTsc(100), NsToTsc(10'000));
  EXPECT_EQ(sim.flow(1, 0).drops_queue_limit + sim.flow(1, 0).tx_packets, 20u);
  EXPECT_EQ(sim.flow(2, 0).drops_queue_limit + sim.flow(2, 0).tx_packets, 20u);
  EXPECT_GT(sim.flow(2, 0).drops_queue_limit, 10u);
  EXPECT_EQ(sim.flow(0, 0).drops_queue_limit, 0u);
  EXPECT_EQ(sim.sched().tenant_queued_bytes(1, 0) + sim.sched().tenant_queued_bytes(2, 0), 0u);
  EXPECT_GT(sim.sched().tenant_queued_bytes(0, 0), 0u);
  EXPECT_EQ(sim.DrainAll(), sim.enqueued() - sim.transmitted() - sim.dropped());
}

// Seeded random workload with profile swaps (rates, tenant count), bursts and
// irregular polling: every packet is accounted for (sent, dropped through the
// sink, or handed back by DrainAll), FIFO order holds, and afterwards the
// scheduler is empty and usable.
TEST(Drain, RandomWorkloadLosesNothing) {
  constexpr uint32_t kTenants = 300;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  auto random_tenants = [&](uint32_t n) {
    std::vector<TenantParams> t;
    for (uint32_t i = 0; i < n; ++i) {
      const double ceil = 0.1 + u(rng) * 50;
      t.push_back(Tenant(u(rng) < 0.5 ? 0 : ceil * u(rng) * 0.2, ceil,
                         1 + static_cast<uint32_t>(u(rng) * 5),
                         static_cast<uint64_t>(u(rng) * 20'000), 64 * 1024));
    }
    return t;
  };
  Sim sim({300'000'000, kOverhead, 3'000'000},
          {Latency(200'000, 5'000'000), Bulk(1, 50'000'000), Bulk(2, 0)}, random_tenants(kTenants),
          kTenants, 1 << 16, 7);
  uint64_t verdict_drops = 0;
  for (int round = 0; round < 2000; ++round) {
    const int burst = static_cast<int>(u(rng) * 60);
    for (int i = 0; i < burst; ++i) {
      const uint32_t t = static_cast<uint32_t>(u(rng) * kTenants);
      if (sim.Offer(t, static_cast<uint32_t>(u(rng) * 3),
                    64 + static_cast<uint32_t>(u(rng) * 1437)) != Verdict::kQueued)
        ++verdict_drops;
    }
    sim.set_now(sim.now() + static_cast<uint64_t>(u(rng) * u(rng) * MsToTsc(3)));
    sim.Poll();
    if (round % 400 == 399)  // new rates; sometimes fewer tenants
      sim.SetTenants(random_tenants(u(rng) < 0.5 ? kTenants : kTenants / 2));
  }
  const uint64_t queued = sim.enqueued() - sim.transmitted() - sim.dropped();
  std::printf(
      "random workload: %llu enqueued, %llu sent, %llu dropped at dequeue, %llu refused, "
      "%llu still queued\n",
      static_cast<unsigned long long>(sim.enqueued()),
      static_cast<unsigned long long>(sim.transmitted()),
      static_cast<unsigned long long>(sim.dropped()),
      static_cast<unsigned long long>(verdict_drops), static_cast<unsigned long long>(queued));
  EXPECT_GT(sim.transmitted(), 1000u);
  EXPECT_GT(queued, 0u);
  for (uint32_t t = 0; t < kTenants; ++t)
    for (uint32_t c = 0; c < 3; ++c) ASSERT_EQ(sim.flow(t, c).reorders, 0u) << t << "/" << c;
  EXPECT_EQ(sim.DrainAll(), queued);
  EXPECT_EQ(sim.sched().queued_bytes(), 0u);
  for (uint32_t t = 0; t < kTenants; ++t)
    for (uint32_t c = 0; c < 3; ++c) EXPECT_EQ(sim.sched().tenant_queued_bytes(t, c), 0u);
  TestPacket* out[8];
  EXPECT_EQ(sim.sched().Dequeue(sim.now() + MsToTsc(100), out, 8,
                                [](TestPacket*, uint32_t, uint32_t, DropReason) {}),
            0u);
  const uint64_t sent_before = sim.flow(0, 1).tx_packets;
  EXPECT_EQ(sim.Offer(0, 1, 100), Verdict::kQueued);  // still usable
  sim.Run(MsToTsc(100), NsToTsc(10'000));
  EXPECT_EQ(sim.flow(0, 1).tx_packets, sent_before + 1);
}

}  // namespace
}  // namespace shaper::sched::test
