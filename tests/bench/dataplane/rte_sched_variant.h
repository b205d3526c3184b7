// Variant B: DPDK's rte_sched as the equivalent hierarchy.
//
// One pipe per tenant, pipe rate = link rate / N (rte_sched has no
// assured/ceiling pair: a pipe is capped at its rate, so this is the closest
// equivalent of "assured = rate / N"). Two traffic classes: TC0 (strict
// priority, 20% of the pipe rate, like shaper's latency class max_share) and
// the best-effort TC (the whole pipe rate, one of its four queues used).
// A subport holds at most 4096 pipes here (a power of two, like every count
// rte_sched takes), so 100k tenants use 32 subports and 1M use 256; the
// subport count is rounded up to a power of two and the spare subports are
// configured with one idle pipe, because rte_sched's dequeue walks every
// subport. rte_sched has no classifier: the bench writes the tree path from
// the stream's precomputed tenant with rte_sched_port_pkt_write.
#pragma once

#include <rte_sched.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/bench/dataplane/harness.h"

namespace shaper::bench {

struct RteSchedConfig {
  uint64_t link_bps = 0;
  uint32_t num_tenants = 0;
  uint16_t qsize = 64;           // packets per queue (TC0 and each best-effort queue)
  uint32_t burst_bytes = 3048;   // pipe token bucket size
  uint32_t latency_share_pct = 20;
};

class RteSchedVariant {
 public:
  // Returns nullptr and sets *error (with the reason, e.g. memory) when
  // rte_sched cannot be configured for this many tenants.
  static std::unique_ptr<RteSchedVariant> Create(const RteSchedConfig& config, uint16_t tx_port,
                                 std::string* error);
  ~RteSchedVariant();
  RteSchedVariant(const RteSchedVariant&) = delete;
  RteSchedVariant& operator=(const RteSchedVariant&) = delete;

  void Process(rte_mbuf** pkts, const StreamEntry** meta, uint16_t n, uint64_t now_tsc,
               RunStats& stats);

  // When set, frames sent are counted per tenant (the --accuracy control
  // run; the timed runs leave it null).
  void CountTxPerTenant(std::vector<uint64_t>* tx_pkts) { tx_per_tenant_ = tx_pkts; }

  uint32_t pipes_per_subport() const { return pipes_per_subport_; }
  uint32_t subports() const { return subports_; }
  uint64_t footprint_bytes() const { return footprint_bytes_; }

 private:
  RteSchedVariant() = default;

  rte_sched_port* port_ = nullptr;
  uint16_t tx_port_ = 0;
  uint32_t num_tenants_ = 0;
  bool pipes_configured_ = false;
  uint32_t pipes_per_subport_ = 0;
  uint32_t pipes_log2_ = 0;
  uint32_t subports_ = 0;
  uint64_t footprint_bytes_ = 0;
  std::vector<uint64_t>* tx_per_tenant_ = nullptr;
};

}  // namespace shaper::bench
