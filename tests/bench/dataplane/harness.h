// The timed loop shared by the three variants, so they differ only in what
// happens between "a burst arrived" and "frames left or were dropped".
//
// One iteration: the generator fills a burst of mbufs (the RX stand-in), the
// TSC is read once, and the variant classifies, queues, schedules and sends
// to the net_null port. The figure reported is frames received (generated)
// per second: the offered rate the variant keeps up with, drops included,
// because dropping over-limit traffic is part of a shaper's work. Seconds
// are those the loop was on the CPU: the machine is shared, so gaps longer
// than kStolenGapNs between two bursts (another process had the core) are
// counted apart and left out. Transmitted frames and drops are reported
// beside it.
#pragma once

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstdint>

#include "tests/bench/dataplane/generator.h"

namespace shaper::bench {

inline constexpr uint16_t kBurst = 32;
inline constexpr uint64_t kStolenGapNs = 50'000;

inline uint64_t StolenGapTsc() { return rte_get_tsc_hz() * kStolenGapNs / 1'000'000'000; }

struct RunStats {
  uint64_t rx_pkts = 0;
  uint64_t tx_pkts = 0;
  uint64_t drop_pkts = 0;
  uint64_t short_bursts = 0;  // RX bursts the pool could not fill (rx_nombuf on a NIC)
  uint64_t elapsed_tsc = 0;
  // Time the loop did not run: gaps between two iterations longer than
  // kStolenGapNs, i.e. the core was given to another process (the machine
  // is shared). Reported so a low figure can be told from a slow variant.
  uint64_t stolen_tsc = 0;

  void Add(const RunStats& o) {
    rx_pkts += o.rx_pkts;
    tx_pkts += o.tx_pkts;
    drop_pkts += o.drop_pkts;
    short_bursts += o.short_bursts;
    elapsed_tsc += o.elapsed_tsc;
    stolen_tsc += o.stolen_tsc;
  }
  double available() const {
    return elapsed_tsc ? 1.0 - static_cast<double>(stolen_tsc) / static_cast<double>(elapsed_tsc)
                       : 1.0;
  }
};

// Sends n frames to the net_null port; net_null frees what it takes, and
// anything it refuses is freed here and counted as a drop, so every variant
// pays the same per-frame TX cost.
inline void SendToNull(uint16_t port, rte_mbuf** pkts, uint16_t n, RunStats& stats) {
  if (n == 0) return;
  const uint16_t sent = rte_eth_tx_burst(port, 0, pkts, n);
  stats.tx_pkts += sent;
  if (sent < n) {
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    stats.drop_pkts += n - sent;
  }
}

// Runs `packets` generated frames through variant v. V provides
//   void Process(rte_mbuf** pkts, const StreamEntry** meta, uint16_t n,
//                uint64_t now_tsc, RunStats& stats);
template <class V>
RunStats RunPackets(V& v, Generator& gen, rte_mempool* pool, uint64_t packets) {
  RunStats stats;
  rte_mbuf* pkts[kBurst];
  const StreamEntry* meta[kBurst];
  const uint64_t gap_tsc = StolenGapTsc();
  const uint64_t start_tsc = rte_rdtsc();
  uint64_t prev_tsc = start_tsc;
  while (stats.rx_pkts < packets) {
    const uint16_t n = gen.Burst(pool, pkts, meta, kBurst);
    if (n < kBurst) ++stats.short_bursts;
    stats.rx_pkts += n;
    const uint64_t now_tsc = rte_rdtsc();
    if (now_tsc - prev_tsc > gap_tsc) stats.stolen_tsc += now_tsc - prev_tsc;
    prev_tsc = now_tsc;
    v.Process(pkts, meta, n, now_tsc, stats);
  }
  stats.elapsed_tsc = rte_rdtsc() - start_tsc;
  return stats;
}

// Variant A: the ceiling. Frames go straight from RX to TX.
class PlainForward {
 public:
  explicit PlainForward(uint16_t port) : port_(port) {}
  void Process(rte_mbuf** pkts, const StreamEntry** /*meta*/, uint16_t n, uint64_t /*now_tsc*/,
               RunStats& stats) {
    SendToNull(port_, pkts, n, stats);
  }

 private:
  uint16_t port_;
};

}  // namespace shaper::bench
