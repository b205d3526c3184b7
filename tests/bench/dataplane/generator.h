// The synthetic traffic source of shaper-bench.
//
// The stream is decided before the clock starts: a seeded sequence of
// (tenant, class) draws, uniform or Zipf over the tenants, each turned into a
// 64-byte IPv4/UDP frame whose source address identifies the tenant (one /32
// per tenant, 10.0.0.0 + tenant id) and whose DSCP carries the class (EF for
// the latency class, 0 for bulk). What stays on the timed path is what a NIC
// receive burst costs a real dataplane: mbufs come from a mempool in bursts
// and get their 60 bytes written (the 4-byte FCS is counted in the overhead).
// Every variant frees its frames the same way, through rte_eth_tx_burst on a
// net_null port (which frees them) or rte_pktmbuf_free for a drop, so the
// mempool round trip is identical across plain, rte_sched and shaper.
#pragma once

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shaper::bench {

inline constexpr uint32_t kFrameBytes = 60;       // 64-byte Ethernet frame without its FCS
inline constexpr uint32_t kWireOverheadBytes = 24;  // preamble 8 + IFG 12 + FCS 4
inline constexpr uint8_t kDscpEf = 46;
inline constexpr uint32_t kLatencyClass = 0;
inline constexpr uint32_t kBulkClass = 1;
inline constexpr uint32_t kTenantBaseAddr = 0x0a000000;  // 10.0.0.0, host order

enum class Dist : uint8_t { kUniform, kZipf };
const char* DistName(Dist d);

// One precomputed frame of the stream: what to write and, for the variants
// that cannot read frames (rte_sched) or the documented stand-in classifier,
// the answer a classifier would give.
struct StreamEntry {
  uint32_t src_addr_be;
  uint32_t tenant;
  uint16_t ip_csum_be;  // IPv4 header checksum for this source and TOS
  uint8_t tos;
  uint8_t cls;
};
static_assert(sizeof(StreamEntry) == 12);

struct StreamParams {
  uint32_t num_tenants = 1;
  Dist dist = Dist::kUniform;
  double zipf_s = 1.0;
  uint32_t latency_permille = 100;  // share of frames marked EF
  uint32_t length = 1u << 22;       // entries before the stream repeats
  uint64_t seed = 1;
  // When set (one weight per tenant), tenants are drawn in these proportions
  // instead of `dist`: the --accuracy mode's hand-picked offered loads.
  std::vector<double> tenant_weights;
};

class Generator {
 public:
  explicit Generator(const StreamParams& params);

  // Allocates up to n mbufs from pool, writes the next frames of the stream
  // into them and points meta[i] at their stream entries. Returns how many it
  // produced: fewer than n when the pool runs low (a real NIC would count
  // those as rx_nombuf; the caller counts them the same way).
  uint16_t Burst(rte_mempool* pool, rte_mbuf** pkts, const StreamEntry** meta, uint16_t n);

  const std::vector<StreamEntry>& stream() const { return stream_; }
  // Frames per tenant in one pass over the stream (offered-load shares).
  std::vector<uint64_t> TenantCounts() const;

 private:
  std::vector<StreamEntry> stream_;
  uint32_t pos_ = 0;
  alignas(64) uint8_t template_[64]{};
};

// Builds only the 60-byte frame for one entry (tests and the classifier
// stand-in check use it).
void WriteFrame(const StreamEntry& entry, uint8_t* out);

}  // namespace shaper::bench
