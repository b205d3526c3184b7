// The worker lcore: one port pair, both directions, one loop.
//
// Each iteration reads the TSC once and, per direction: retries frames the
// TX queue refused last time, takes a burst from RX, classifies it, offers
// each frame to the scheduler (or the bypass), asks the scheduler what may
// leave now and hands that to TX. Frames the TX queue does not accept stay
// in a small per-direction buffer and go first next time; the buffer being
// full throttles dequeue, so a stuck link backs up into the tenant queues
// (where queue limits drop and count) rather than losing frames silently.
//
// Non-IP frames (ARP, LLDP, ...) skip the tenant queues within a token
// bucket of 1% of the shape rate: neighbours and link protocols keep working
// under full load, and a flood of them cannot take more than that; beyond
// the budget they queue as default-tenant traffic.
//
// Without a plan the worker is a transparent bridge: frames go straight from
// RX to TX, counted as the default tenant's.
//
// Every drop happens in Drop(): counted per tenant, direction, class and
// reason in this lcore's block of the stats segment (plain stores: one writer
// per block), then freed. RX never stalls for lack of mbufs: when the pool's
// free count falls below a watermark, new frames are dropped as `pool_low`
// instead of queued, which keeps mbufs for the RX rings. Two exceptions keep
// a flood that fills the pool from taking what others are owed, down to half
// the watermark (below that everything new is dropped): a frame of a tenant
// whose backlog drains at its assured rate within kAssuredBacklogNs (it
// sends within its guarantee), and a frame of the direction that holds fewer
// queued frames than the other (the larger backlog yields; otherwise the
// direction polled first would hold the whole pool and starve the other).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/abi/plan.h"
#include "dataplane/abi/stats.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/runtime_plan.h"
#include "dataplane/sched/scheduler.h"

struct rte_mempool;

namespace shaper::dataplane {

inline constexpr uint32_t kRxBurst = 32;
// RX bursts a direction may take in one iteration while its ring stays full
// (Worker::PollDirection): up to 128 frames before the dequeue and TX.
inline constexpr uint32_t kMaxRxBurstsPerPoll = 4;
// Frames one iteration may hand to TX per direction. Twice what it may
// receive: a shaper that can send less per iteration than it receives lets
// its queues, and the mbuf pool behind them, fill even when no rate holds
// the traffic back (with 64 against 128 received, AF_XDP at 3 Gbit/s ran its
// fill ring dry and collapsed to 0.1 Gbit/s).
inline constexpr uint32_t kTxBuffer = 2 * kRxBurst * kMaxRxBurstsPerPoll;
static_assert(kTxBuffer >= kRxBurst * kMaxRxBurstsPerPoll, "TX must keep up with RX per iteration");
// Empty iterations before an idle worker may sleep (--idle-sleep-us).
inline constexpr uint32_t kIdlePollsBeforeSleep = 1024;
// Under pool pressure a tenant may still queue what its assured rate sends
// in this long (see above).
inline constexpr uint64_t kAssuredBacklogNs = 2'000'000;

// Byte token bucket in 32.32 fixed point, so refill needs no division.
class TokenBucket {
 public:
  void Configure(uint64_t bytes_per_s, uint64_t burst_bytes, uint64_t tsc_hz, uint64_t now_tsc);
  bool Take(uint32_t bytes, uint64_t now_tsc);

 private:
  uint64_t rate_q32_per_tsc_ = 0;
  uint64_t burst_q32_ = 0;
  uint64_t tokens_q32_ = 0;
  uint64_t last_tsc_ = 0;
  uint64_t max_elapsed_tsc_ = 0;
};

struct WorkerConfig {
  uint32_t index = 0;   // RCU reader id and stats lcore slot
  uint16_t port_a = 0;  // tenant-facing: A->B is upload
  uint16_t port_b = 1;
  uint16_t queue = 0;
  rte_mempool* pool = nullptr;
  uint32_t pool_low_watermark = 0;  // free mbufs below which new frames are dropped
  uint32_t max_tenants = 0;
  uint32_t idle_sleep_us = 0;  // 0: never sleep
  // Plans with at least this many tenants get the warm pass (warm.h); 0:
  // from the core's L2 size. Tests set 1 to run it on small plans.
  uint32_t warm_min_tenants = 0;
};

// Where the worker's counters go: its own block of the stats segment. The
// segment's num_classes (--max-classes) is also the class count the worker's
// schedulers are built for: a plan's profiles must have exactly that many.
struct WorkerStats {
  std::byte* base = nullptr;
  const abi::StatsHeader* header = nullptr;
  uint32_t slot = 0;
};

// Counts that are not in the stats segment's layout; for logs and tests.
struct WorkerTotals {
  uint64_t bypass_packets = 0;
  uint64_t malformed_packets = 0;  // forwarded as default tenant
  uint64_t unshaped_packets = 0;   // forwarded without a plan
  uint64_t drained_at_exit = 0;    // queued frames freed at shutdown
  uint64_t profiles_refused = 0;   // plans whose profiles did not fit the schedulers
  uint64_t warm_passes = 0;        // bursts loaded ahead by the warm pass (warm.h)
  uint64_t sent_now_packets = 0;   // frames of idle tenants sent at once (Scheduler::SendNow)
};

class Worker {
 public:
  Worker(const WorkerConfig& config, PlanPublisher& plans, WorkerStats stats,
         const std::atomic<bool>& stop);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The lcore body: loops until `stop`, then drains and frees every queued
  // frame. Returns 0.
  int Run();
  // One loop iteration at `now_tsc`; returns the frames moved (RX + TX).
  uint32_t Poll(uint64_t now_tsc);
  // Frees every frame held in scheduler queues and TX buffers.
  void Drain();

  const WorkerTotals& totals() const { return totals_; }
  uint64_t queued_bytes() const;
  // Classes of the schedulers and of the stats arrays (the segment's).
  uint32_t num_classes() const { return num_classes_; }

  using Sched = sched::Scheduler<MbufTraits>;

 private:
  struct Dir {
    uint32_t direction = 0;  // abi::kUpload / kDownload
    uint16_t rx_port = 0;
    uint16_t tx_port = 0;
    std::unique_ptr<Sched> scheduler;
    TokenBucket bypass;
    rte_mbuf* tx[kTxBuffer] = {};
    uint32_t tx_count = 0;
    uint64_t queued_frames = 0;  // in the scheduler, for pool_low fairness
  };
  enum class PoolState { kOk, kLow, kCritical };

  PoolState PoolNow() const;
  uint32_t PollDirection(Dir& dir, uint64_t now_tsc, uint64_t other_queued_frames);
  // Classifies rx[0, n) and hands each frame to the scheduler (or the
  // non-IP bypass, or a counted drop).
  void EnqueueBurst(Dir& dir, rte_mbuf** rx, uint16_t n, uint64_t now_tsc, PoolState pool,
                    uint64_t other_queued_frames);
  void Transmit(Dir& dir);
  void CountOut(Dir& dir, rte_mbuf* m, uint64_t now_tsc);
  void Drop(Dir& dir, rte_mbuf* m, uint32_t tenant, uint32_t cls, abi::DropReason reason);
  void PublishQueued(Dir& dir, uint32_t tenant, uint32_t cls);
  void SwapPlan(const RuntimePlan* plan, uint64_t now_tsc);
  // Per packet: from the members below, copied out of the header at
  // construction (its first cache line is rewritten by every heartbeat, so
  // the packet path never reads it). One multiply, no division.
  abi::TenantStats* TenantStatsOf(uint32_t tenant, uint32_t direction) {
    return reinterpret_cast<abi::TenantStats*>(
        tenant_stats_ + (uint64_t{tenant} * abi::kDirections + direction) * tenant_stats_bytes_);
  }
  abi::ClassStats* ClassStatsOf(uint32_t direction, uint32_t cls) {
    return class_stats_ + (direction * num_classes_ + cls);
  }

  WorkerConfig config_;
  PlanPublisher& plans_;
  abi::LcoreStats* lcore_;
  uint32_t num_classes_;          // header.num_classes
  uint32_t tenant_stats_bytes_;   // header.tenant_stats_bytes
  std::byte* tenant_stats_;       // this lcore's TenantStats array
  abi::ClassStats* class_stats_;  // this lcore's ClassStats array
  const std::atomic<bool>& stop_;
  const RuntimePlan* plan_ = nullptr;       // the plan the schedulers' profiles come from
  const RuntimePlan* seen_plan_ = nullptr;  // the last one published (plan_ unless refused)
  uint64_t tsc_hz_;
  uint64_t ns_per_tsc_q32_;  // sojourn: ns = (tsc * this) >> 32
  uint64_t assured_backlog_tsc_;
  Dir dirs_[abi::kDirections];
  WorkerTotals totals_;
  uint32_t idle_polls_ = 0;
  uint32_t warm_min_tenants_ = UINT32_MAX;  // the warm pass runs from this many (warm.h)
};

}  // namespace shaper::dataplane
