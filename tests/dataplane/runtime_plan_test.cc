// From plan blob to what the packet path uses: validation, LPM tables, VLAN
// tenants, profiles, rate updates, and the pool sizing rule.
#include "dataplane/runtime_plan.h"

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>

#include <cstring>

#include "dataplane/mbuf_meta.h"
#include "dataplane/pool_size.h"
#include "tests/dataplane/dpdk_env.h"
#include "tests/dataplane/plan_blob.h"
#include "tests/tools/packet_builder.h"

namespace shaper::dataplane {
namespace {

using testing::Packet;
using testing::PlanBlob;

std::vector<std::byte> SamplePlan() {
  return PlanBlob()
      .link(2'000'000'000)
      .classes(
          {{.name = "rt", .latency = true, .max_share_ppm = 200'000, .queue_limit_ns = 2'000'000},
           {.name = "bulk", .queue_limit_ns = 30'000'000}})
      .dscp(46, 0)
      .dscp(0, 1)
      .default_class(1)
      .tenant({.id = 1,
               .name = "acme",
               .vlan = 100,
               .assured_bps = 100'000'000,
               .prefixes = {"203.0.113.0/24", "2001:db8:1::/48"}})
      .tenant({.id = 3, .name = "globex", .prefixes = {"198.51.100.0/25"}})
      .bytes();
}

uint32_t TenantOf(const RuntimePlan& plan, uint32_t dir, const std::vector<uint8_t>& frame,
                  uint8_t* cls = nullptr) {
  rte_mbuf* m = testing::MakeMbuf(frame);
  EXPECT_NE(m, nullptr);
  plan.classify->ClassifyBurst(dir, &m, 1);
  const uint32_t t = Meta(m)->tenant;
  if (cls) *cls = Meta(m)->cls;
  rte_pktmbuf_free(m);
  return t;
}

TEST(RuntimePlan, BuiltFromAValidatedBlob) {
  REQUIRE_DPDK();
  const auto blob = SamplePlan();
  auto view = ctl::ValidatePlan(blob, ctl::Limits{});
  ASSERT_TRUE(view.has_value()) << view.error();
  auto plan = BuildRuntimePlan(*view, 7, rte_get_tsc_hz(), abi::kMaxClasses);
  ASSERT_TRUE(plan.has_value()) << plan.error();
  const RuntimePlan& p = **plan;
  EXPECT_EQ(p.generation, 7u);
  EXPECT_EQ(p.num_classes, 2u);
  EXPECT_EQ(p.tenant_id_limit, 4u) << "ids 0, 1, 3: id 2 is a hole";
  ASSERT_NE(p.profiles[0], nullptr);
  ASSERT_NE(p.profiles[1], nullptr);
  EXPECT_EQ(p.profiles[abi::kUpload]->num_tenants(), 4u);
  EXPECT_EQ(p.bypass_bytes_per_s[abi::kDownload], 2'000'000'000u / 8 / 100);
  EXPECT_EQ(p.tenants[abi::kUpload][1].assured_bps, 100'000'000u);

  uint8_t cls = 9;
  // acme only on VLAN 100, by source when uploading, by destination downloading.
  EXPECT_EQ(TenantOf(p, abi::kUpload,
                     Packet().eth().vlan(100).ipv4("203.0.113.5", "8.8.8.8", 46).bytes(), &cls),
            1u);
  EXPECT_EQ(cls, 0);
  EXPECT_EQ(TenantOf(p, abi::kUpload, Packet().eth().ipv4("203.0.113.5", "8.8.8.8").bytes(), &cls),
            0u);
  EXPECT_EQ(cls, 1) << "dscp 0 -> bulk";
  EXPECT_EQ(
      TenantOf(p, abi::kDownload, Packet().eth().vlan(100).ipv6("::1", "2001:db8:1::1").bytes()),
      1u);
  EXPECT_EQ(TenantOf(p, abi::kDownload, Packet().eth().ipv4("8.8.8.8", "198.51.100.100").bytes()),
            3u);
  EXPECT_EQ(TenantOf(p, abi::kDownload, Packet().eth().ipv4("8.8.8.8", "198.51.100.200").bytes()),
            0u);
}

// The profiles have the workers' class count (--max-classes), the plan's
// own classes padded; a plan with more classes than that is refused.
TEST(RuntimePlan, PaddedToTheMaxClassesAndRefusedAboveIt) {
  REQUIRE_DPDK();
  const auto blob = SamplePlan();  // 2 classes
  auto view = ctl::ValidatePlan(blob, ctl::Limits{});
  ASSERT_TRUE(view.has_value()) << view.error();
  for (uint32_t n : {2u, 3u, abi::kMaxClasses}) {
    auto plan = BuildRuntimePlan(*view, 1, rte_get_tsc_hz(), n);
    ASSERT_TRUE(plan.has_value()) << plan.error();
    EXPECT_EQ((*plan)->num_classes, 2u);
    EXPECT_EQ((*plan)->classes.size(), n);
    for (uint32_t d = 0; d < abi::kDirections; ++d)
      EXPECT_EQ((*plan)->profiles[d]->num_classes(), n);
  }
  auto refused = BuildRuntimePlan(*view, 1, rte_get_tsc_hz(), 1);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error(), "plan has 2 classes; this dataplane was started with --max-classes 1");
}

TEST(RuntimePlan, RateUpdateRebuildsProfilesAndSharesTheTables) {
  REQUIRE_DPDK();
  const auto blob = SamplePlan();
  auto view = ctl::ValidatePlan(blob, ctl::Limits{});
  ASSERT_TRUE(view.has_value()) << view.error();
  auto plan = BuildRuntimePlan(*view, 1, rte_get_tsc_hz(), abi::kMaxClasses);
  ASSERT_TRUE(plan.has_value()) << plan.error();

  std::vector<std::byte> rates(sizeof(abi::RatesHeader) + sizeof(abi::RateEntry));
  abi::RatesHeader h{};
  h.magic = abi::kRatesMagic;
  h.abi_version = abi::kAbiVersion;
  h.header_bytes = sizeof(h);
  h.total_bytes = rates.size();
  h.plan_generation = 1;
  h.entries_offset = sizeof(h);
  h.count = 1;
  h.entry_bytes = sizeof(abi::RateEntry);
  abi::RateEntry e{};
  e.tenant_id = 3;
  e.direction = abi::kDownload;
  e.assured_bps = 250'000'000;
  std::memcpy(rates.data(), &h, sizeof(h));
  std::memcpy(rates.data() + sizeof(h), &e, sizeof(e));
  auto rv = ctl::ValidateRates(rates, ctl::Limits{}, ctl::PlanCeilings::From(*view, 1));
  ASSERT_TRUE(rv.has_value()) << rv.error().text;

  auto updated = ApplyRates(**plan, *rv, rte_get_tsc_hz());
  ASSERT_TRUE(updated.has_value()) << updated.error();
  EXPECT_EQ((*updated)->tenants[abi::kDownload][3].assured_bps, 250'000'000u);
  EXPECT_EQ((*updated)->tenants[abi::kUpload][3].assured_bps, 0u) << "other direction unchanged";
  EXPECT_EQ((*updated)->classify, (*plan)->classify) << "LPM tables shared, not rebuilt";
  EXPECT_NE((*updated)->profiles[abi::kDownload], nullptr);
}

TEST(RuntimePlan, PublisherReplacesAndFreesPlans) {
  REQUIRE_DPDK();
  auto pub = PlanPublisher::Create(2);
  ASSERT_TRUE(pub.has_value()) << pub.error();
  const auto blob = SamplePlan();
  auto view = ctl::ValidatePlan(blob, ctl::Limits{});
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ((*pub)->current(), nullptr);
  for (uint64_t g = 1; g <= 5; ++g) {
    auto plan = BuildRuntimePlan(*view, g, rte_get_tsc_hz(), abi::kMaxClasses);
    ASSERT_TRUE(plan.has_value()) << plan.error();
    (*pub)->Publish(std::move(*plan));
    ASSERT_NE((*pub)->current(), nullptr);
    EXPECT_EQ((*pub)->current()->generation, g);
  }
}

// Plan changes through the publisher: a plan that changes only rates keeps
// the classifier in force (no LPM work at all); a plan that changes prefixes
// rewrites the spare, i.e. the classifier of the plan before last, which the
// publisher retired once no reader could reach it.
TEST(RuntimePlan, RatesOnlyPlanKeepsTheClassifierAndPrefixChangesReuseTheSpare) {
  REQUIRE_DPDK();
  auto pub = PlanPublisher::Create(1);
  ASSERT_TRUE(pub.has_value()) << pub.error();
  auto plan_with = [](uint64_t ceiling, bool extra) {
    PlanBlob b;
    b.link(2'000'000'000)
        .tenant({.id = 1, .name = "acme", .ceiling_bps = ceiling, .prefixes = {"203.0.113.0/24"}})
        .tenant({.id = 3, .name = "globex", .prefixes = {"198.51.100.0/25", "2001:db8:1::/48"}});
    if (extra) b.tenant({.id = 4, .name = "initech", .prefixes = {"192.0.2.0/24"}});
    return b.bytes();
  };
  auto apply = [&](const std::vector<std::byte>& blob, uint64_t g) -> const RuntimePlan* {
    auto view = ctl::ValidatePlan(blob, ctl::Limits{});
    EXPECT_TRUE(view.has_value()) << view.error();
    auto plan = BuildRuntimePlan(*view, g, rte_get_tsc_hz(), abi::kMaxClasses, pub->get());
    EXPECT_TRUE(plan.has_value()) << plan.error();
    (*pub)->Publish(std::move(*plan));
    return (*pub)->current();
  };
  const auto blob_a = plan_with(1'000'000'000, false);
  const RuntimePlan* p1 = apply(blob_a, 1);
  const ClassifyTables* t1 = p1->classify.get();
  // Rates only: same tables, new profiles with the new ceiling.
  const RuntimePlan* p2 = apply(plan_with(300'000'000, false), 2);
  EXPECT_EQ(p2->classify.get(), t1);
  EXPECT_EQ(p2->tenants[abi::kUpload][1].ceiling_bps, 300'000'000u);
  EXPECT_EQ(*(*pub)->spare_slot(), nullptr) << "shared tables are not a spare";
  // A prefix added: fresh tables (no spare yet); the old ones become the spare.
  const RuntimePlan* p3 = apply(plan_with(300'000'000, true), 3);
  EXPECT_NE(p3->classify.get(), t1);
  EXPECT_EQ(p3->classify->LookupV4(0xc0000205, 0), 4u);
  EXPECT_EQ((*pub)->spare_slot()->get(), t1);
  // Back without it: the spare (t1) is rewritten, not a new table.
  const ClassifyTables* t3 = p3->classify.get();
  const RuntimePlan* p4 = apply(plan_with(300'000'000, false), 4);
  EXPECT_EQ(p4->classify.get(), t1);
  EXPECT_EQ(p4->classify->origin(), ClassifyTables::Origin::kRewritten);
  EXPECT_EQ(p4->classify->LookupV4(0xc0000205, 0), abi::kDefaultTenantId);
  EXPECT_EQ(p4->classify->LookupV4(0xcb007105, 0), 1u);
  EXPECT_EQ(p4->classify->LookupV4(0xc6336405, 0), 3u);
  EXPECT_EQ((*pub)->spare_slot()->get(), t3);
  // Frames classify through the rewritten tables.
  EXPECT_EQ(TenantOf(*p4, abi::kUpload, Packet().eth().ipv4("198.51.100.9", "1.1.1.1").bytes()),
            3u);
  EXPECT_EQ(TenantOf(*p4, abi::kUpload, Packet().eth().ipv4("192.0.2.9", "1.1.1.1").bytes()),
            abi::kDefaultTenantId);
}

TEST(PoolSize, FromRateAndQueueLimitCappedAndOverridable) {
  PoolSizing s;
  PoolSize none = ComputePoolSize(s, 1);
  EXPECT_EQ(none.mbufs, 2 * (1024 + 1024 + 128) + 2 * kPoolCacheSize * 3 / 2 + kNoPlanQueueMbufs);
  // 100 Mbit/s, 20 ms: 250 kB per direction, 500 kB / 256 B = 1953 frames.
  s.link_rate_bps = {100'000'000, 100'000'000};
  s.max_queue_limit_ns = 20'000'000;
  PoolSize small = ComputePoolSize(s, 1);
  EXPECT_EQ(small.mbufs, std::max<uint32_t>(kMinPoolMbufs, 2 * 2176 + 768 + 1953));
  // 100 Gbit/s, 50 ms: far over the cap.
  s.link_rate_bps = {100'000'000'000, 100'000'000'000};
  s.max_queue_limit_ns = 50'000'000;
  PoolSize big = ComputePoolSize(s, 1);
  EXPECT_EQ(big.mbufs, 2 * 2176 + 768 + kMaxAutoPoolMbufs);
  EXPECT_NE(big.reason.find("capped"), std::string::npos) << big.reason;
  // The link's byte watermark bounds the queues too.
  s.link_queue_bytes = {256 * 1000, 256 * 1000};
  EXPECT_EQ(ComputePoolSize(s, 1).mbufs, std::max<uint32_t>(kMinPoolMbufs, 2 * 2176 + 768 + 2000));
  // AF_XDP ports hold their fill rings, beyond the descriptors.
  s.rx_mbufs_beyond_descriptors = 2 * (2048 - 1024);
  EXPECT_EQ(ComputePoolSize(s, 1).mbufs,
            std::max<uint32_t>(kMinPoolMbufs, 2 * 2176 + 2048 + 768 + 2000));
  s.explicit_mbufs = 12345;
  EXPECT_EQ(ComputePoolSize(s, 1).mbufs, 12345u);
  EXPECT_LT(ComputePoolSize(s, 1).low_watermark, 12345u);
}

}  // namespace
}  // namespace shaper::dataplane
