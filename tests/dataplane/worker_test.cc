// The worker loop in-process, on two ports made of rte_rings (net_ring):
// the test puts frames on a port's RX ring, calls Worker::Poll() with a TSC
// it controls, and reads what the other port transmitted from its TX ring.
#include "dataplane/worker.h"

#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "dataplane/ctl/plan_validate.h"
#include "dataplane/ctl/stats_segment.h"
#include "dataplane/port.h"
#include "dataplane/runtime_plan.h"
#include "tests/dataplane/dpdk_env.h"
#include "tests/dataplane/plan_blob.h"
#include "tests/dataplane/ring_port.h"
#include "tests/tools/packet_builder.h"

namespace shaper::dataplane {
namespace {

using testing::DpdkEnv;
using testing::Packet;
using Frame = std::vector<uint8_t>;
constexpr uint32_t kMaxTenants = 64;

using testing::RingPort;

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_DPDK();
    static int instance = 0;
    ++instance;
    baseline_in_use_ = rte_mempool_in_use_count(DpdkEnv::pool());
    for (int i = 0; i < 2; ++i) {
      const std::string tag = std::to_string(instance) + "_" + std::to_string(i);
      auto port = testing::OpenRingPort(ports_[i], tag, tx_ring_size_, DpdkEnv::pool());
      ASSERT_TRUE(port.has_value()) << port.error();
      open_ports_.push_back(std::move(*port));
    }
    ASSERT_NO_FATAL_FAILURE(MakeStats(abi::kMaxClasses));
    auto pub = PlanPublisher::Create(1);
    ASSERT_TRUE(pub.has_value()) << pub.error();
    plans_ = std::move(*pub);
    MakeWorker(0);
  }

  // A stats segment for `num_classes` (shaper-dataplane --max-classes); the
  // next MakeWorker builds its schedulers for that many.
  void MakeStats(uint32_t num_classes) {
    if (worker_) worker_->Drain();
    worker_.reset();
    auto stats = ctl::StatsSegment::Create(1, kMaxTenants, 2, num_classes, rte_get_tsc_hz());
    ASSERT_TRUE(stats.has_value()) << stats.error();
    stats_ = std::move(*stats);
    num_classes_ = num_classes;
  }

  void MakeWorker(uint32_t low_watermark, uint32_t warm_min_tenants = 0) {
    WorkerConfig wc{.index = 0,
                    .port_a = ports_[0].id,
                    .port_b = ports_[1].id,
                    .queue = 0,
                    .pool = DpdkEnv::pool(),
                    .pool_low_watermark = low_watermark,
                    .max_tenants = kMaxTenants,
                    .idle_sleep_us = 0,
                    .warm_min_tenants = warm_min_tenants};
    if (worker_) worker_->Drain();
    worker_ = std::make_unique<Worker>(wc, *plans_,
                                       WorkerStats{stats_->base(), &stats_->header(), 0}, stop_);
  }

  void TearDown() override {
    if (!DpdkEnv::ready()) return;
    if (worker_) worker_->Drain();
    for (const RingPort& p : ports_) testing::EmptyRingPort(p);
    open_ports_.clear();
    plans_.reset();
    EXPECT_EQ(rte_mempool_in_use_count(DpdkEnv::pool()), baseline_in_use_) << "mbufs leaked";
    for (RingPort& p : ports_) testing::FreeRingPort(p);
  }

  void Send(int port, const std::vector<Frame>& frames) {
    for (const Frame& f : frames) {
      rte_mbuf* m = testing::MakeMbuf(f);
      ASSERT_NE(m, nullptr);
      ASSERT_EQ(rte_ring_enqueue(ports_[port].in, m), 0);
    }
  }

  std::vector<Frame> Received(int port) {
    std::vector<Frame> out;
    void* p = nullptr;
    while (rte_ring_dequeue(ports_[port].out, &p) == 0) {
      auto* m = static_cast<rte_mbuf*>(p);
      const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
      out.emplace_back(d, d + m->data_len);
      rte_pktmbuf_free(m);
    }
    return out;
  }

  // Tenants t1 (10.0.0.0/24) and t2 (10.0.1.0/24), 5 Gbit/s ceilings on a
  // 10 Gbit/s link; classes rt (latency, DSCP 46) and bulk (the rest).
  static testing::PlanBlob TwoTenantsTwoClasses() {
    return testing::PlanBlob()
        .link(10'000'000'000)
        .classes({{.name = "rt", .latency = true, .max_share_ppm = 200'000}, {.name = "bulk"}})
        .dscp(0, 1)
        .default_class(1)
        .tenant({.id = 1, .name = "t1", .ceiling_bps = 5'000'000'000, .prefixes = {"10.0.0.0/24"}})
        .tenant({.id = 2, .name = "t2", .ceiling_bps = 5'000'000'000, .prefixes = {"10.0.1.0/24"}});
  }

  // Polls with the clock 100 us further each time (plenty at 5 Gbit/s)
  // until `want` frames left `port`, at most 100 times; returns them sorted.
  std::vector<Frame> PollFor(int port, size_t want) {
    const uint64_t hz = rte_get_tsc_hz();
    uint64_t now = rte_rdtsc();
    std::vector<Frame> out;
    for (int i = 0; i < 100 && out.size() < want; ++i) {
      worker_->Poll(now);
      now += hz / 10000;
      for (auto& f : Received(port)) out.push_back(std::move(f));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void PublishPlan(const testing::PlanBlob& blob) {
    const auto bytes = blob.bytes();
    ctl::Limits limits;
    limits.max_tenants = kMaxTenants;
    limits.max_classes = num_classes_;
    auto view = ctl::ValidatePlan(bytes, limits);
    ASSERT_TRUE(view.has_value()) << view.error();
    auto plan = BuildRuntimePlan(*view, ++generation_, rte_get_tsc_hz(), num_classes_);
    ASSERT_TRUE(plan.has_value()) << plan.error();
    plans_->Publish(std::move(*plan));
  }

  const abi::TenantStats& Tenant(uint32_t id, uint32_t dir) { return *stats_->tenant(0, id, dir); }
  const abi::ClassTx& Tx(uint32_t id, uint32_t dir, uint32_t cls) {
    return *stats_->tx(0, id, dir, cls);
  }

  uint32_t tx_ring_size_ = 1024;
  RingPort ports_[2];
  std::vector<Port> open_ports_;
  std::unique_ptr<ctl::StatsSegment> stats_;
  std::unique_ptr<PlanPublisher> plans_;
  std::unique_ptr<Worker> worker_;
  std::atomic<bool> stop_{false};
  uint64_t generation_ = 0;
  uint32_t num_classes_ = abi::kMaxClasses;
  unsigned baseline_in_use_ = 0;
};

std::vector<Frame> UdpFrames(int n, const char* src, const char* dst, uint8_t dscp = 0) {
  std::vector<Frame> v;
  for (int i = 0; i < n; ++i)
    v.push_back(Packet()
                    .eth()
                    .ipv4(src, dst, dscp)
                    .udp(static_cast<uint16_t>(1000 + i), 80)
                    .payload(64 + static_cast<size_t>(i))
                    .bytes());
  return v;
}

TEST_F(WorkerTest, WithoutPlanItBridgesBothWaysUnchanged) {
  const auto up = UdpFrames(40, "10.0.0.1", "192.0.2.1");
  const auto down = UdpFrames(40, "192.0.2.1", "10.0.0.1");
  Send(0, up);
  Send(1, down);
  const uint64_t now = rte_rdtsc();
  for (int i = 0; i < 4; ++i) worker_->Poll(now + static_cast<uint64_t>(i));
  EXPECT_EQ(Received(1), up);
  EXPECT_EQ(Received(0), down);
  EXPECT_EQ(Tenant(0, abi::kUpload).arrival_packets, 40u);
  EXPECT_EQ(Tx(0, abi::kUpload, 0).tx_packets, 40u);
  EXPECT_EQ(Tx(0, abi::kDownload, 0).tx_packets, 40u);
  EXPECT_EQ(worker_->totals().unshaped_packets, 80u);
}

TEST_F(WorkerTest, NonIpTakesTheBypassWithinItsBudget) {
  // 1 Gbit/s link: bypass 1% = 1.25 MB/s, burst 16 KiB = 273 ARP frames of 60 bytes.
  PublishPlan(testing::PlanBlob().link(1'000'000'000));
  const testing::Mac mac{2, 0, 0, 0, 0, 7};
  std::vector<Frame> arp;
  for (int i = 0; i < 400; ++i)
    arp.push_back(Packet().eth().arp(mac, "10.0.0.1", "10.0.0.2").payload(18).bytes());
  ASSERT_EQ(arp[0].size(), 60u);
  Send(0, arp);
  const uint64_t now = rte_rdtsc();
  for (int i = 0; i < 13; ++i) worker_->Poll(now);  // same instant: no refill
  EXPECT_EQ(worker_->totals().bypass_packets, 16384u / 60u);
  // The rest went to the default tenant's queue (arrivals counted once each).
  EXPECT_EQ(Tenant(0, abi::kUpload).arrival_packets, 400u);
}

TEST_F(WorkerTest, RuntsAreDroppedAsMalformed) {
  PublishPlan(testing::PlanBlob());
  Send(0, {Frame(10, 0xff), Frame(0)});
  worker_->Poll(rte_rdtsc());
  EXPECT_TRUE(Received(1).empty());
  EXPECT_EQ(Tenant(0, abi::kUpload).drop_packets[static_cast<int>(abi::DropReason::kMalformed)],
            2u);
}

TEST_F(WorkerTest, PoolLowDropsNewFramesButNotTheBypass) {
  MakeWorker(/*low_watermark=*/1u << 30);  // the pool is always "low"
  PublishPlan(testing::PlanBlob().tenant({.id = 1, .name = "t1", .prefixes = {"10.0.0.0/24"}}));
  Send(0, UdpFrames(10, "10.0.0.5", "192.0.2.1"));
  Send(0, {Packet().eth().arp({2, 0, 0, 0, 0, 1}, "10.0.0.5", "10.0.0.1").bytes()});
  worker_->Poll(rte_rdtsc());
  EXPECT_EQ(Tenant(1, abi::kUpload).arrival_packets, 10u);
  EXPECT_EQ(Tenant(1, abi::kUpload).drop_packets[static_cast<int>(abi::DropReason::kPoolLow)], 10u);
  EXPECT_EQ(Received(1).size(), 1u) << "the ARP frame still passes";
}

TEST_F(WorkerTest, ShapedFramesLeaveUnchangedAndAreCountedPerTenantAndClass) {
  PublishPlan(TwoTenantsTwoClasses());
  auto t1 = UdpFrames(10, "10.0.0.9", "192.0.2.1", 46);
  auto t2 = UdpFrames(10, "10.0.1.9", "192.0.2.1", 0);
  Send(0, t1);
  Send(0, t2);
  const std::vector<Frame> out = PollFor(1, 20);
  std::vector<Frame> want = t1;
  want.insert(want.end(), t2.begin(), t2.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(out, want);
  EXPECT_EQ(Tx(1, abi::kUpload, 0).tx_packets, 10u) << "dscp 46 -> class 0";
  EXPECT_EQ(Tx(2, abi::kUpload, 1).tx_packets, 10u) << "dscp 0 -> class 1";
  EXPECT_EQ(Tenant(1, abi::kUpload).arrival_packets, 10u);
  EXPECT_EQ(worker_->queued_bytes(), 0u);
}

// The warm pass (warm.h) only loads: with it forced on, the same frames leave
// unchanged and are counted the same, frames of the default tenant (no
// prefix) included. Without forcing, a 2-tenant plan is far below the L2
// size and the pass does not run.
TEST_F(WorkerTest, TheWarmPassOnlyLoads) {
  for (const uint32_t warm_min_tenants : {1u, 0u}) {
    SCOPED_TRACE(warm_min_tenants ? "warm pass forced" : "warm pass from the L2 size");
    MakeStats(2);
    MakeWorker(0, warm_min_tenants);
    PublishPlan(TwoTenantsTwoClasses());
    auto t1 = UdpFrames(10, "10.0.0.9", "192.0.2.1", 46);
    auto t2 = UdpFrames(10, "10.0.1.9", "192.0.2.1", 0);
    auto other = UdpFrames(5, "172.16.0.1", "192.0.2.1", 0);
    Send(0, t1);
    Send(0, t2);
    Send(0, other);
    const std::vector<Frame> out = PollFor(1, 25);
    std::vector<Frame> want = t1;
    want.insert(want.end(), t2.begin(), t2.end());
    want.insert(want.end(), other.begin(), other.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(out, want);
    EXPECT_EQ(Tx(1, abi::kUpload, 0).tx_packets, 10u);
    EXPECT_EQ(Tx(2, abi::kUpload, 1).tx_packets, 10u);
    EXPECT_EQ(Tenant(0, abi::kUpload).arrival_packets, 5u);
    EXPECT_EQ(worker_->queued_bytes(), 0u);
    if (warm_min_tenants == 1) {
      EXPECT_GT(worker_->totals().warm_passes, 0u);
    } else {
      EXPECT_EQ(worker_->totals().warm_passes, 0u);
    }
  }
}

// Shaping must not add delay when there is room: a frame of an idle tenant
// under its rates leaves in the same poll that received it; within its
// guarantee, without touching its queue (SendNow).
TEST_F(WorkerTest, AnIdleTenantsFrameLeavesInTheSamePoll) {
  PublishPlan(
      testing::PlanBlob()
          .link(1'000'000'000)
          .tenant({.id = 1,
                   .name = "t1",
                   .assured_bps = 100'000'000,
                   .ceiling_bps = 900'000'000,
                   .prefixes = {"10.0.0.0/24"}})
          .tenant(
              {.id = 2, .name = "t2", .ceiling_bps = 900'000'000, .prefixes = {"10.0.1.0/24"}}));
  uint64_t now = rte_rdtsc();
  for (const char* src : {"10.0.0.1", "10.0.1.1", "172.16.0.1"}) {
    for (int i = 0; i < 3; ++i) {
      Send(0, UdpFrames(1, src, "192.0.2.1"));
      worker_->Poll(now);
      EXPECT_EQ(Received(1).size(), 1u) << src << " round " << i;
      now += rte_get_tsc_hz() / 1000;  // 1 ms later: idle again
    }
  }
  // t1's frames (within its guarantee) skipped the queues (Scheduler::
  // SendNow); t2 and the default tenant have no guarantee, so theirs went
  // through the queues and the borrow list, as they must (weighted sharing).
  EXPECT_EQ(worker_->totals().sent_now_packets, 3u);
  EXPECT_EQ(Tx(1, abi::kUpload, 1).tx_packets + Tx(1, abi::kUpload, 0).tx_packets, 3u);
  EXPECT_EQ(worker_->queued_bytes(), 0u);
}

// The RX ring is a FIFO: a latency-class frame behind a ring full of bulk
// must reach the scheduler, and leave first, in the poll that finds it, not
// after the bulk ahead of it has been read burst by burst.
TEST_F(WorkerTest, ALatencyFrameBehindAFullRingLeavesInTheFirstPoll) {
  PublishPlan(
      testing::PlanBlob()
          .link(1'000'000'000)
          .classes({{.name = "rt", .latency = true, .max_share_ppm = 200'000}, {.name = "bulk"}})
          .dscp(0, 1)  // bulk; every other code point, EF (46) included, maps to class 0
          .default_class(1)
          .tenant({.id = 1, .name = "t1", .ceiling_bps = 10'000'000, .prefixes = {"10.0.0.0/24"}}));
  constexpr int kBulk = 3 * kRxBurst + 4;
  static_assert(kBulk + 1 <= kRxBurst * kMaxRxBurstsPerPoll);
  auto frames = UdpFrames(kBulk, "10.0.0.9", "192.0.2.1", 0);
  const auto ef = UdpFrames(1, "10.0.0.9", "192.0.2.1", 46)[0];
  frames.push_back(ef);
  Send(0, frames);
  worker_->Poll(rte_rdtsc());
  const auto out = Received(1);
  EXPECT_EQ(Tenant(1, abi::kUpload).arrival_packets, kBulk + 1u)
      << "the whole ring read in one poll";
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front(), ef) << "the EF frame leaves first, ahead of the bulk received before it";
  EXPECT_EQ(Tx(1, abi::kUpload, 0).tx_packets, 1u);
}

// Unshaped traffic must not queue: what one poll may read from a full ring
// it must be able to send in the same poll. (When TX took 64 frames per
// poll against 128 read, queues and the mbuf pool filled at line rate and
// AF_XDP collapsed.)
TEST_F(WorkerTest, WhatOnePollReadsItCanSendInThatPoll) {
  PublishPlan(
      testing::PlanBlob()
          .link(10'000'000'000)
          .tenant(
              {.id = 1, .name = "t1", .ceiling_bps = 10'000'000'000, .prefixes = {"10.0.0.0/24"}}));
  constexpr int kFrames = kRxBurst * kMaxRxBurstsPerPoll;
  const auto frames = UdpFrames(kFrames, "10.0.0.9", "192.0.2.1");
  Send(0, frames);
  worker_->Poll(rte_rdtsc());
  EXPECT_EQ(Received(1), frames) << "all of them, in order, in the poll that read them";
  EXPECT_EQ(worker_->queued_bytes(), 0u);
}

TEST_F(WorkerTest, RefusedTxIsKeptAndSentLater) {
  // Rebuild the ports with a TX ring of 8 frames.
  TearDown();
  tx_ring_size_ = 8;
  SetUp();
  const auto up = UdpFrames(30, "10.0.0.1", "192.0.2.1");
  Send(0, up);
  const uint64_t now = rte_rdtsc();
  worker_->Poll(now);
  std::vector<Frame> got = Received(1);
  EXPECT_EQ(got.size(), 8u);
  for (int i = 0; i < 10; ++i) {
    worker_->Poll(now);
    for (auto& f : Received(1)) got.push_back(std::move(f));
  }
  EXPECT_EQ(got, up) << "all frames, in order, none lost";
}

TEST_F(WorkerTest, PlanSwapWaitsForTheWorkerAndKeepsCounters) {
  PublishPlan(testing::PlanBlob().tenant({.id = 1, .name = "t1", .prefixes = {"10.0.0.0/24"}}));
  Send(0, UdpFrames(5, "10.0.0.9", "192.0.2.1"));
  worker_->Poll(rte_rdtsc());
  EXPECT_EQ(Tenant(1, abi::kUpload).arrival_packets, 5u);

  // A worker thread polls while the main thread publishes: Publish must wait
  // for it (RCU) and the worker must pick the new plan up.
  std::atomic<bool> done{false};
  std::thread poller([&] {
    plans_->Online(0);
    while (!done.load()) {
      worker_->Poll(rte_rdtsc());
      plans_->Quiescent(0);
    }
    plans_->Offline(0);
  });
  for (int i = 0; i < 3; ++i) {
    PublishPlan(testing::PlanBlob().tenant(
        {.id = 1, .name = "t1", .prefixes = {i % 2 ? "10.0.0.0/24" : "10.0.0.0/16"}}));
  }
  done = true;
  poller.join();
  Send(0, UdpFrames(5, "10.0.0.9", "192.0.2.1"));
  worker_->Poll(rte_rdtsc());
  EXPECT_EQ(Tenant(1, abi::kUpload).arrival_packets, 10u) << "counters survive plan swaps";
}

// --max-classes 2: the schedulers and the stats arrays are 2 classes wide.
// Class 1's transmit and queue counters land in the 88-byte row of the right
// tenant and direction, at the byte the layout gives, and nowhere else.
TEST_F(WorkerTest, TwoClassesCountClassOneInItsOwnPlace) {
  ASSERT_NO_FATAL_FAILURE(MakeStats(2));
  MakeWorker(0);
  ASSERT_EQ(worker_->num_classes(), 2u);
  ASSERT_EQ(stats_->header().tenant_stats_bytes, 88u);
  // Tenant 3's bucket holds 64 KiB (PlanBlob's burst) and refills at
  // 50 Mbit/s: of 100 frames of 1 KiB polled at one instant about 60 leave
  // and the rest stay queued in class 1.
  PublishPlan(
      testing::PlanBlob()
          .link(10'000'000'000)
          .classes({{.name = "rt", .latency = true, .max_share_ppm = 200'000},
                    {.name = "bulk", .queue_limit_ns = 1'000'000'000}})
          .dscp(0, 1)
          .default_class(1)
          .tenant({.id = 3, .name = "t3", .ceiling_bps = 50'000'000, .prefixes = {"10.0.3.0/24"}}));
  std::vector<Frame> frames;
  for (int i = 0; i < 100; ++i)
    frames.push_back(Packet().eth().ipv4("10.0.3.7", "192.0.2.1").udp(1, 2).payload(1000).bytes());
  Send(0, frames);
  const uint64_t now = rte_rdtsc();
  for (int i = 0; i < 5; ++i) worker_->Poll(now);  // 32 frames per RX burst; no refill
  const size_t sent = Received(1).size();
  ASSERT_GT(sent, 0u);
  ASSERT_LT(sent, frames.size()) << "the ceiling must keep some frames queued";

  const uint64_t wire = frames[0].size();
  EXPECT_EQ(Tx(3, abi::kUpload, 1).tx_packets, sent);
  EXPECT_EQ(Tx(3, abi::kUpload, 1).tx_bytes, sent * wire);
  EXPECT_EQ(Tx(3, abi::kUpload, 0).tx_packets, 0u);
  EXPECT_EQ(*stats_->queued_bytes(0, 3, abi::kUpload, 1), worker_->queued_bytes());
  EXPECT_EQ(worker_->queued_bytes(), (frames.size() - sent) * wire);

  // The same, read as raw bytes at the offsets the layout promises.
  const abi::StatsHeader& h = stats_->header();
  const std::byte* row = reinterpret_cast<const std::byte*>(stats_->lcore(0)) +
                         h.tenant_stats_offset + (3 * abi::kDirections + abi::kUpload) * 88;
  uint64_t tx_packets = 0;
  uint32_t queued = 0;
  std::memcpy(&tx_packets, row + 48 + 16, sizeof(tx_packets));  // tx[1].tx_packets
  std::memcpy(&queued, row + 48 + 2 * 16 + 4, sizeof(queued));  // queued_bytes[1]
  EXPECT_EQ(tx_packets, sent);
  EXPECT_EQ(queued, (frames.size() - sent) * wire);
  // Nothing spilled into the download row next to it or tenant 4's.
  const std::byte* after = row + 88;
  EXPECT_TRUE(std::all_of(after, after + 3 * 88, [](std::byte b) { return b == std::byte{0}; }));
  // The class histogram is [direction][2]: upload, class 1.
  EXPECT_EQ(stats_->class_stats(0, abi::kUpload, 1)->sojourn_count, sent);
  EXPECT_EQ(stats_->class_stats(0, abi::kUpload, 0)->sojourn_count, 0u);
  EXPECT_EQ(stats_->class_stats(0, abi::kDownload, 0)->sojourn_count, 0u);
}

// A plan with more classes than --max-classes never reaches the worker:
// validation and BuildRuntimePlan both refuse it, naming both numbers.
TEST_F(WorkerTest, TwoClassesRefuseAThreeClassPlan) {
  ASSERT_NO_FATAL_FAILURE(MakeStats(2));
  MakeWorker(0);
  const auto bytes =
      testing::PlanBlob().classes({{.name = "a"}, {.name = "b"}, {.name = "c"}}).bytes();
  ctl::Limits limits;
  limits.max_tenants = kMaxTenants;
  limits.max_classes = 2;
  auto refused = ctl::ValidatePlan(bytes, limits);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().find("plan has 3 classes; this dataplane was started with "
                                 "--max-classes 2"),
            std::string::npos)
      << refused.error();
  limits.max_classes = abi::kMaxClasses;
  auto view = ctl::ValidatePlan(bytes, limits);
  ASSERT_TRUE(view.has_value()) << view.error();
  auto plan = BuildRuntimePlan(*view, 1, rte_get_tsc_hz(), 2);
  ASSERT_FALSE(plan.has_value());
  EXPECT_NE(plan.error().find("--max-classes 2"), std::string::npos) << plan.error();
  // A profile of the wrong width that got published anyway is not used.
  auto wide = BuildRuntimePlan(*view, 1, rte_get_tsc_hz(), abi::kMaxClasses);
  ASSERT_TRUE(wide.has_value()) << wide.error();
  plans_->Publish(std::move(*wide));
  Send(0, UdpFrames(3, "10.0.0.1", "192.0.2.1"));
  worker_->Poll(rte_rdtsc());
  EXPECT_EQ(worker_->totals().profiles_refused, 1u);
  EXPECT_EQ(worker_->totals().unshaped_packets, 3u) << "bridged unshaped instead";
  EXPECT_EQ(Received(1).size(), 3u);
}

}  // namespace
}  // namespace shaper::dataplane
