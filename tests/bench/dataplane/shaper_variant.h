// Variant C: shaper's own packet path, one direction (upload: the tenant is
// the source address), as the dataplane worker runs it: classify the burst
// into the mbuf dynfield, enqueue each frame into sched::Scheduler, dequeue
// what may leave now, count per tenant and class in abi::TenantStats rows of
// the stats segment's layout for 2 classes (abi::TenantStatsBytes(2) apart,
// as the dataplane started with --max-classes 2 keeps them), send to
// net_null.
//
// Classification is shaper's ClassifyTables (rte_lpm on the source address,
// one /32 rule per tenant) when the dataplane library is built
// (SHAPER_BENCH_REAL_CLASSIFIER) and the config asks for it; otherwise a
// stand-in writes the stream's precomputed tenant into the dynfield (an
// array lookup), and the bench says which one each figure used.
//
// Profile: tenant i (ids 1..N; 0 is the default tenant, which gets nothing
// here) has assured = link / N, ceiling = ceiling_factor x that, weight 1;
// classes: 0 latency (max_share 20%, queue_limit 5 ms), 1 bulk (50 ms).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/abi/stats.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/sched/scheduler.h"
#include "dataplane/warm.h"
#include "tests/bench/dataplane/harness.h"

#ifdef SHAPER_BENCH_REAL_CLASSIFIER
#include "dataplane/classify.h"
#endif

namespace shaper::bench {

struct ShaperConfig {
  uint64_t link_bps = 0;
  uint32_t num_tenants = 0;
  uint32_t ceiling_factor = 4;
  uint32_t burst_bytes = 3048;
  uint64_t tenant_queue_bytes = 2 * 64 * kFrameBytes;  // rte_sched's 2 queues x 64 frames
  uint64_t global_queue_bytes = 0;                     // watermark; 0 = none
  // Use shaper's ClassifyTables (when built in); false: the stand-in.
  bool real_classifier = true;
};

// Per-tenant dataplane state of one direction, excluding queued packets.
struct StateBytes {
  uint64_t profile_bytes = 0;      // sizeof(sched::TenantProfile)
  uint64_t sched_bytes = 0;        // Scheduler::TenantStateBytes: its per-tenant structs
  uint64_t sched_alloc_bytes = 0;  // the same from its allocation (slope over tenants)
  uint64_t stats_bytes = 0;        // abi::TenantStatsBytes(2): the stride of the counters
  uint64_t stats_alloc_bytes = 0;  // the same from the counters' allocation, per tenant
  uint64_t heap_bytes = 0;         // whole allocation: Profile + Scheduler + stats, all tenants
  uint64_t tenants = 0;
};

// Registers the MbufMeta dynfield: the dataplane's own registration when it
// is linked in, else a bench-local field of the same layout.
std::string RegisterBenchMeta();
bool UsingRealClassifier();

class ShaperVariant {
 public:
  using Sched = sched::Scheduler<dataplane::MbufTraits>;

  static std::unique_ptr<ShaperVariant> Create(const ShaperConfig& config, uint16_t tx_port,
                                               std::string* error);
  ~ShaperVariant();
  ShaperVariant(const ShaperVariant&) = delete;
  ShaperVariant& operator=(const ShaperVariant&) = delete;

  void Process(rte_mbuf** pkts, const StreamEntry** meta, uint16_t n, uint64_t now_tsc,
               RunStats& stats);

  const StateBytes& state_bytes() const { return state_; }
  // Distinct 64-byte lines of per-tenant state one frame touches, averaged
  // over a sample of tenants spread over all of them and over the
  // generator's class mix (latency_share of frames in the latency class):
  // the tenant's profile entry, its scheduler block and its counters (the
  // arrival pair, the class's tx pair and its queued gauge), from the arrays' real
  // addresses.
  struct TouchedLines {
    double profile = 0, scheduler = 0, counters = 0;
    double total() const { return profile + scheduler + counters; }
  };
  TouchedLines CountTouchedLines(double latency_share) const;
  // Frames sent per bench tenant (index = stream tenant id), for --accuracy.
  uint64_t TxPackets(uint32_t stream_tenant) const;
  uint64_t TxBytes(uint32_t stream_tenant) const;
  const abi::TenantStats& Stats(uint32_t stream_tenant) const;
  uint32_t num_classes() const { return num_classes_; }
  const Sched& scheduler() const { return *sched_; }
  bool real_classifier() const { return real_classifier_; }
  double classifier_build_s() const { return classifier_build_s_; }

 private:
  ShaperVariant() = default;

  uint16_t tx_port_ = 0;
  std::unique_ptr<sched::Profile> profile_;
  std::unique_ptr<Sched> sched_;
  // Per packet: the row of a scheduler tenant id, stats_stride_ bytes apart.
  abi::TenantStats* TenantStatsOf(uint32_t tenant) {
    return reinterpret_cast<abi::TenantStats*>(stats_base_ + uint64_t{tenant} * stats_stride_);
  }
  // The class's queued-bytes gauge, published after every enqueue, dequeue
  // and expiry, as Worker::PublishQueued does.
  void PublishQueued(uint32_t tenant, uint32_t cls) {
    *abi::QueuedBytesOf(TenantStatsOf(tenant), num_classes_, cls) = static_cast<uint32_t>(
        std::min<uint64_t>(sched_->tenant_queued_bytes(tenant, cls), UINT32_MAX));
  }
  const abi::TenantStats* TenantStatsOf(uint32_t tenant) const {
    return reinterpret_cast<const abi::TenantStats*>(stats_base_ +
                                                     uint64_t{tenant} * stats_stride_);
  }

  // Huge pages, as the scheduler's arrays (sched/profile.h); 8-byte words so
  // every counter is aligned. Row = scheduler tenant id.
  sched::HugePageVector<uint64_t> tenant_stats_;
  std::byte* stats_base_ = nullptr;
  uint32_t stats_stride_ = 0;
  uint32_t num_classes_ = 0;
  StateBytes state_;
  bool real_classifier_ = false;
  uint32_t warm_min_tenants_ = UINT32_MAX;  // dataplane/warm.h
  bool send_now_ = true;                     // Scheduler::SendNow, as the worker
  double classifier_build_s_ = 0;
#ifdef SHAPER_BENCH_REAL_CLASSIFIER
  std::unique_ptr<dataplane::ClassifyTables> classify_;
#endif
};

}  // namespace shaper::bench
