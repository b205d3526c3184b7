// How many mbufs the dataplane needs: a pure function of the plan and the
// port setup, so it can be tested and printed at start.
//
// Frames sit in three places: RX descriptor rings (filled at start), TX
// rings and buffers (in flight), and the tenant queues. The queues are
// bounded in time (a class's queue_limit) and bytes (the link's global
// watermark), so the most they can hold is the link rate times the longest
// queue limit, capped by the watermark; counted in frames of a small bound
// size, since a frame of any length takes one mbuf. That bound is usually
// far more than memory allows, hence a cap; --mbufs overrides the result.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

#include "dataplane/abi/plan.h"

namespace shaper::dataplane {

inline constexpr uint32_t kPoolCacheSize = 256;
inline constexpr uint32_t kMinPoolMbufs = 8192;
inline constexpr uint32_t kMaxAutoPoolMbufs = 65536;     // ~150 MB of 2 KiB buffers
inline constexpr uint32_t kNoPlanQueueMbufs = 8192;      // before any plan says otherwise
inline constexpr uint32_t kQueuedFrameBoundBytes = 256;  // mean frame size assumed for queues

struct PoolSizing {
  uint32_t num_ports = 2;
  uint32_t rx_descriptors = 1024;
  uint32_t tx_descriptors = 1024;
  uint32_t num_lcores = 2;
  uint32_t explicit_mbufs = 0;  // --mbufs; 0 = compute
  // Summed over ports: mbufs an RX queue holds beyond rx_descriptors
  // (net_af_xdp lends its fill ring, 2048, whatever the descriptor count).
  uint32_t rx_mbufs_beyond_descriptors = 0;
  // From the plan (0 = none known yet).
  std::array<uint64_t, abi::kDirections> link_rate_bps{};
  std::array<uint64_t, abi::kDirections> link_queue_bytes{};
  uint64_t max_queue_limit_ns = 0;
};

struct PoolSize {
  uint32_t mbufs;
  uint32_t low_watermark;  // free mbufs below which new frames are dropped (pool_low)
  std::string reason;      // how it was computed, for the start-up log
};

// `pairs`: each pair's two directions queue independently.
inline PoolSize ComputePoolSize(const PoolSizing& s, uint32_t pairs) {
  const uint64_t rings = uint64_t{s.num_ports} * (s.rx_descriptors + s.tx_descriptors + 2 * 64) +
                         s.rx_mbufs_beyond_descriptors +
                         uint64_t{s.num_lcores} * kPoolCacheSize * 3 / 2;
  uint64_t queued = kNoPlanQueueMbufs;
  std::string how = "no plan: default queue room";
  if (s.max_queue_limit_ns > 0) {
    uint64_t bytes = 0;
    for (uint32_t d = 0; d < abi::kDirections; ++d) {
      // rate * time in bytes, ordered to stay inside 64 bits up to 10 Tbit/s * 10 s.
      uint64_t dir_bytes = s.link_rate_bps[d] / 8 / 1000 * (s.max_queue_limit_ns / 1000) / 1000;
      if (s.link_queue_bytes[d]) dir_bytes = std::min(dir_bytes, s.link_queue_bytes[d]);
      bytes += dir_bytes;
    }
    queued = bytes * pairs / kQueuedFrameBoundBytes;
    how = fmt::format("rate x {} ms queue limit / {} B frames", s.max_queue_limit_ns / 1'000'000,
                      kQueuedFrameBoundBytes);
  }
  uint64_t total = rings + std::min<uint64_t>(queued, kMaxAutoPoolMbufs);
  if (queued > kMaxAutoPoolMbufs)
    how += fmt::format(", capped at {} (raise with --mbufs)", kMaxAutoPoolMbufs);
  if (s.rx_mbufs_beyond_descriptors)
    how += fmt::format("; RX rings +{} for AF_XDP fill rings", s.rx_mbufs_beyond_descriptors);
  total = std::max<uint64_t>(total, kMinPoolMbufs);
  if (s.explicit_mbufs) {
    total = s.explicit_mbufs;
    how = "--mbufs";
  }
  PoolSize out;
  out.mbufs = static_cast<uint32_t>(total);
  // Keep enough free for every RX queue to refill a few bursts.
  out.low_watermark = static_cast<uint32_t>(std::max<uint64_t>(
      uint64_t{s.num_ports} * 4 * 32 + uint64_t{s.num_lcores} * kPoolCacheSize, total / 16));
  out.reason = how;
  return out;
}

}  // namespace shaper::dataplane
