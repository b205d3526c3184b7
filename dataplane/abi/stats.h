// The stats segment: shared memory the dataplane writes and readers (control,
// shaperctl, tests) map read-only. Modelled on VPP's stats segment.
//
// Why this shape:
// - Per-lcore blocks, one writer each, plain stores, no atomics and no locks on
//   the packet path. A reader sums the blocks of all lcores.
// - Every counter is an independent, naturally aligned 64-bit word (queued
//   bytes: 32-bit), so on x86-64 and arm64 a reader never sees half a word;
//   it may see a counter a few packets older than its neighbour, which is
//   fine for rates computed over 100 ms.
// - The layout is fixed when the dataplane starts (lcores, max_tenants, ports,
//   classes) and never changes with a plan: a plan change neither remaps nor
//   resets. Counters of a tenant id carry over; the plan generation in the
//   header says which plan's names label them.
// - The class count is a start-time dimension (`--max-classes N`), not the
//   ABI's maximum: the per-class arrays are N wide, so a tenant's counters
//   take 88 bytes with 2 classes instead of 208 with 8. A million tenants,
//   both directions, one lcore: 168 MiB instead of 397 MiB, and the packet
//   path touches fewer cache lines per tenant.
//   TenantStats is therefore a fixed head followed by two arrays of N, and
//   its stride comes from the header (tenant_stats_bytes), never sizeof.
// - Liveness: the main lcore bumps `heartbeat` and `last_update_ns`
//   (CLOCK_MONOTONIC) every poll round; a reader that sees them stand still
//   knows the dataplane is gone or stuck.
//
// Layout (offsets in the header, all 64-aligned):
//   StatsHeader
//   PortStats     [num_ports]                      written by the main lcore
//   per lcore, lcore_block_bytes apart, num_lcores of them:
//     LcoreStats                                   lcore cycles
//     ClassStats  [kDirections][num_classes]       sojourn histogram, drops by reason
//     TenantStats [max_tenants][kDirections]       tenant_stats_bytes each:
//       head (arrivals, drops by reason)           48 bytes
//       ClassTx  tx[num_classes]                   16 bytes each
//       uint32_t queued_bytes[num_classes]         4 bytes each
//       padding to a multiple of 8                 (2 classes: 88 bytes; 8: 208)
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "dataplane/abi/plan.h"

namespace shaper::abi {

inline constexpr uint32_t kStatsMagic = 0x54415453;  // "STAT" little-endian
// 2: the class stride is the header's num_classes and TenantStats is
// variable-length (1 had kMaxClasses-wide arrays and a 208-byte TenantStats).
// 3: TenantStats's arrival counters moved after the drop counters, next to
// the tx pairs (see TenantStats).
inline constexpr uint16_t kStatsVersion = 3;
inline constexpr uint32_t kMaxPorts = 16;
inline constexpr uint32_t kMaxLcores = 128;

// Drop reasons, in the order of sched::DropReason (the metric label order).
enum class DropReason : uint8_t { kQueueLimit = 0, kQueueFull, kPoolLow, kMalformed, kCount };
inline constexpr uint32_t kDropReasons = static_cast<uint32_t>(DropReason::kCount);
inline constexpr const char* DropReasonName(uint32_t r) {
  constexpr const char* kNames[] = {"queue_limit", "queue_full", "pool_low", "malformed"};
  return r < kDropReasons ? kNames[r] : "?";
}

// Sojourn histogram: bucket b counts sojourns with std::bit_width(ns) == b,
// i.e. bucket 0 holds 0 ns and bucket b >= 1 holds [2^(b-1), 2^b) ns; the last
// bucket also takes everything longer. Upper bound of bucket b: 2^b ns (the
// Prometheus `le`), except the last (+Inf).
inline constexpr uint32_t kSojournBuckets = 32;
inline constexpr uint32_t SojournBucket(uint64_t sojourn_ns) {
  const uint32_t b = static_cast<uint32_t>(std::bit_width(sojourn_ns));
  return b < kSojournBuckets ? b : kSojournBuckets - 1;
}

struct StatsHeader {
  uint32_t magic;            // kStatsMagic
  uint16_t version;          // kStatsVersion
  uint16_t header_bytes;     // sizeof(StatsHeader)
  uint64_t total_bytes;      // size of the segment
  uint64_t heartbeat;        // +1 per main-lcore round
  uint64_t last_update_ns;   // CLOCK_MONOTONIC of the last heartbeat
  uint64_t plan_generation;  // plan in force (0: none yet)
  uint64_t tsc_hz;           // to turn cycle counts into seconds
  uint32_t num_lcores;
  uint32_t max_tenants;
  uint32_t num_classes;  // 1..kMaxClasses (--max-classes): the class stride of the arrays
  uint32_t num_ports;
  uint32_t num_directions;   // kDirections
  uint32_t sojourn_buckets;  // kSojournBuckets
  uint64_t ports_offset;
  uint64_t lcores_offset;
  uint64_t lcore_block_bytes;
  uint64_t class_stats_offset;   // within a lcore block
  uint64_t tenant_stats_offset;  // within a lcore block
  uint32_t class_stats_bytes;    // sizeof(ClassStats)
  uint32_t tenant_stats_bytes;   // TenantStatsBytes(num_classes): the stride of TenantStats
  // The mbuf pool, sampled by the main lcore with the port counters (100 ms):
  // its size, mbufs in use (queued, in rings, in flight), the most seen in
  // use, and the free count below which new frames are dropped (pool_low).
  uint32_t pool_mbufs;
  uint32_t pool_in_use;
  uint32_t pool_in_use_peak;
  uint32_t pool_low_watermark;
  uint8_t reserved[56];
};
static_assert(sizeof(StatsHeader) == 192);
static_assert(offsetof(StatsHeader, heartbeat) == 16);
static_assert(offsetof(StatsHeader, ports_offset) == 72);

// rte_eth_stats of one port, copied by the main lcore.
struct PortStats {
  uint64_t rx_packets;
  uint64_t rx_bytes;
  uint64_t tx_packets;
  uint64_t tx_bytes;
  uint64_t imissed;    // dropped by the NIC: RX ring full (we polled too slowly)
  uint64_t rx_nombuf;  // RX failed for lack of mbufs
  uint64_t ierrors;
  uint64_t oerrors;
};
static_assert(sizeof(PortStats) == 64);

struct alignas(64) LcoreStats {
  uint64_t busy_cycles;   // TSC cycles spent in rounds that moved packets
  uint64_t total_cycles;  // TSC cycles of all rounds
  uint64_t rounds;
  uint32_t lcore_id;  // DPDK lcore id
  uint32_t in_use;    // 1 if an lcore owns this block
  // Frames whose headers could not be parsed (truncated, bad IHL or length,
  // unknown ethertype inside VLAN tags, ...), forwarded as the default
  // tenant and class. Runts (shorter than an Ethernet header) are dropped
  // instead and counted under drop reason "malformed".
  uint64_t malformed_forwarded;
  uint8_t reserved[24];
};
static_assert(sizeof(LcoreStats) == 64);

// Per direction and class, summed over tenants: feeds
// shaper_class_queue_delay_seconds and the class label of drop metrics.
struct ClassStats {
  uint64_t sojourn_count;
  uint64_t sojourn_sum_ns;
  uint64_t sojourn_hist[kSojournBuckets];
  uint64_t drop_packets[kDropReasons];
};
static_assert(sizeof(ClassStats) == 304);

struct ClassTx {
  uint64_t tx_packets;
  uint64_t tx_bytes;
};

// One tenant in one direction: this fixed head, then ClassTx tx[num_classes],
// then uint32_t queued_bytes[num_classes] (a gauge, published by the worker),
// padded to a multiple of 8 so every head stays 8-aligned. Never an array of
// TenantStats: step with TenantStatsBytes(num_classes), reach the tails with
// TxOf and QueuedBytesOf. 88 bytes with 2 classes (1.4 cache lines): at 100k
// tenants 8.8 MB per direction and lcore, touched only for active tenants.
// The drops go first: every frame writes its arrival pair, its class's tx
// pair and queued gauge, and a drop is rare, so the arrival pair sits right
// before the tx pairs and what a frame writes spans 52 of the 88 bytes (at 2
// classes), on 1.75 cache lines on average instead of 2.25.
struct TenantStats {
  uint64_t drop_packets[kDropReasons];
  uint64_t arrival_packets;  // offered to the scheduler (before drops)
  uint64_t arrival_bytes;
};
static_assert(sizeof(TenantStats) == 48);
static_assert(sizeof(ClassTx) == 16);

inline constexpr uint64_t AlignUp8(uint64_t v) {
  return (v + 7) & ~uint64_t{7};
}
// Offset of queued_bytes[0] within a tenant's counters.
inline constexpr uint32_t QueuedBytesOffset(uint32_t num_classes) {
  return static_cast<uint32_t>(sizeof(TenantStats) + uint64_t{num_classes} * sizeof(ClassTx));
}
// The stride of the TenantStats array (header.tenant_stats_bytes).
inline constexpr uint32_t TenantStatsBytes(uint32_t num_classes) {
  return static_cast<uint32_t>(
      AlignUp8(QueuedBytesOffset(num_classes) + uint64_t{num_classes} * sizeof(uint32_t)));
}
static_assert(TenantStatsBytes(2) == 88);
static_assert(TenantStatsBytes(kMaxClasses) == 208);  // version 1's fixed size

// The tails of a tenant's counters. `cls` < the segment's num_classes, which
// the caller passes (a cached copy: see Worker) for queued_bytes; tx starts
// right after the head whatever the class count.
inline ClassTx* TxOf(TenantStats* ts, uint32_t cls) {
  return reinterpret_cast<ClassTx*>(ts + 1) + cls;
}
inline const ClassTx* TxOf(const TenantStats* ts, uint32_t cls) {
  return reinterpret_cast<const ClassTx*>(ts + 1) + cls;
}
inline uint32_t* QueuedBytesOf(TenantStats* ts, uint32_t num_classes, uint32_t cls) {
  return reinterpret_cast<uint32_t*>(reinterpret_cast<std::byte*>(ts) +
                                     QueuedBytesOffset(num_classes)) +
         cls;
}
inline const uint32_t* QueuedBytesOf(const TenantStats* ts, uint32_t num_classes, uint32_t cls) {
  return reinterpret_cast<const uint32_t*>(reinterpret_cast<const std::byte*>(ts) +
                                           QueuedBytesOffset(num_classes)) +
         cls;
}

inline constexpr uint64_t AlignUp64(uint64_t v) {
  return (v + 63) & ~uint64_t{63};
}

// The layout for given dimensions: the single source of every offset, used by
// the writer to fill the header and by readers to check it.
struct StatsLayout {
  uint64_t ports_offset;
  uint64_t lcores_offset;
  uint64_t lcore_block_bytes;
  uint64_t class_stats_offset;
  uint64_t tenant_stats_offset;
  uint32_t tenant_stats_bytes;  // stride of the TenantStats array
  uint64_t total_bytes;
};

// num_classes must be in [1, kMaxClasses] (StatsSegment::Create and
// StatsReader::Map check it before calling).
inline constexpr StatsLayout ComputeStatsLayout(uint32_t num_lcores, uint32_t max_tenants,
                                                uint32_t num_ports, uint32_t num_classes) {
  StatsLayout l{};
  l.ports_offset = AlignUp64(sizeof(StatsHeader));
  l.lcores_offset = AlignUp64(l.ports_offset + uint64_t{num_ports} * sizeof(PortStats));
  l.class_stats_offset = sizeof(LcoreStats);
  l.tenant_stats_offset =
      AlignUp64(l.class_stats_offset + uint64_t{kDirections} * num_classes * sizeof(ClassStats));
  l.tenant_stats_bytes = TenantStatsBytes(num_classes);
  l.lcore_block_bytes =
      AlignUp64(l.tenant_stats_offset + uint64_t{max_tenants} * kDirections * l.tenant_stats_bytes);
  l.total_bytes = l.lcores_offset + uint64_t{num_lcores} * l.lcore_block_bytes;
  return l;
}

// Pointer helpers. `base` is the start of the mapping; callers have checked
// the header against the mapping (StatsReader does; the writer built it), and
// pass indices below the header's counts.
inline PortStats* PortAt(std::byte* base, const StatsHeader& h, uint32_t port) {
  return reinterpret_cast<PortStats*>(base + h.ports_offset + uint64_t{port} * sizeof(PortStats));
}
inline const PortStats* PortAt(const std::byte* base, const StatsHeader& h, uint32_t port) {
  return reinterpret_cast<const PortStats*>(base + h.ports_offset +
                                            uint64_t{port} * sizeof(PortStats));
}
inline LcoreStats* LcoreAt(std::byte* base, const StatsHeader& h, uint32_t lcore_index) {
  return reinterpret_cast<LcoreStats*>(base + h.lcores_offset +
                                       uint64_t{lcore_index} * h.lcore_block_bytes);
}
inline const LcoreStats* LcoreAt(const std::byte* base, const StatsHeader& h,
                                 uint32_t lcore_index) {
  return reinterpret_cast<const LcoreStats*>(base + h.lcores_offset +
                                             uint64_t{lcore_index} * h.lcore_block_bytes);
}
// Readers: strides from the header (its layout fields never change after
// Create). The packet path copies them out once instead (Worker), since the
// header's first cache line is rewritten by every heartbeat.
inline ClassStats* ClassAt(LcoreStats* lcore, const StatsHeader& h, uint32_t direction,
                           uint32_t cls) {
  return reinterpret_cast<ClassStats*>(reinterpret_cast<std::byte*>(lcore) + h.class_stats_offset) +
         (uint64_t{direction} * h.num_classes + cls);
}
inline const ClassStats* ClassAt(const LcoreStats* lcore, const StatsHeader& h, uint32_t direction,
                                 uint32_t cls) {
  return reinterpret_cast<const ClassStats*>(reinterpret_cast<const std::byte*>(lcore) +
                                             h.class_stats_offset) +
         (uint64_t{direction} * h.num_classes + cls);
}
inline TenantStats* TenantAt(LcoreStats* lcore, const StatsHeader& h, uint32_t tenant,
                             uint32_t direction) {
  return reinterpret_cast<TenantStats*>(
      reinterpret_cast<std::byte*>(lcore) + h.tenant_stats_offset +
      (uint64_t{tenant} * kDirections + direction) * h.tenant_stats_bytes);
}
inline const TenantStats* TenantAt(const LcoreStats* lcore, const StatsHeader& h, uint32_t tenant,
                                   uint32_t direction) {
  return reinterpret_cast<const TenantStats*>(
      reinterpret_cast<const std::byte*>(lcore) + h.tenant_stats_offset +
      (uint64_t{tenant} * kDirections + direction) * h.tenant_stats_bytes);
}

}  // namespace shaper::abi
