// The stats segment (layout in dataplane/abi/stats.h): the writer side that
// the dataplane owns, and StatsReader for control, shaperctl and tests.
//
// The segment is a memfd, so it needs no path in /dev/shm to clean up and no
// name another process could squat; readers get it over the control socket
// (hello reply, SCM_RIGHTS). After the writer has mapped it read-write it adds
// F_SEAL_FUTURE_WRITE: every later mapping, i.e. every reader's, can only be
// read-only, so a reader cannot corrupt the counters even by mistake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include "dataplane/abi/stats.h"

namespace shaper::ctl {

class StatsSegment {
 public:
  // `num_classes` (1..abi::kMaxClasses, the dataplane's --max-classes) is
  // the class stride of the per-class and per-tenant arrays.
  static std::expected<std::unique_ptr<StatsSegment>, std::string> Create(uint32_t num_lcores,
                                                                          uint32_t max_tenants,
                                                                          uint32_t num_ports,
                                                                          uint32_t num_classes,
                                                                          uint64_t tsc_hz);
  ~StatsSegment();
  StatsSegment(const StatsSegment&) = delete;
  StatsSegment& operator=(const StatsSegment&) = delete;

  int fd() const { return fd_; }  // owned; the ctl server dups it into the hello reply
  uint64_t size_bytes() const { return size_bytes_; }
  std::byte* base() { return base_; }
  abi::StatsHeader& header() { return *reinterpret_cast<abi::StatsHeader*>(base_); }
  const abi::StatsHeader& header() const {
    return *reinterpret_cast<const abi::StatsHeader*>(base_);
  }

  // Block of lcore slot `index` (0..num_lcores-1; the dataplane maps its
  // worker lcores to slots). Only that lcore writes into it.
  abi::LcoreStats* lcore(uint32_t index) { return abi::LcoreAt(base_, header(), index); }
  abi::PortStats* port(uint32_t index) { return abi::PortAt(base_, header(), index); }
  abi::TenantStats* tenant(uint32_t lcore_index, uint32_t tenant, uint32_t direction) {
    return abi::TenantAt(lcore(lcore_index), header(), tenant, direction);
  }
  abi::ClassStats* class_stats(uint32_t lcore_index, uint32_t direction, uint32_t cls) {
    return abi::ClassAt(lcore(lcore_index), header(), direction, cls);
  }
  uint32_t num_classes() const { return header().num_classes; }
  // A tenant's tails (cls < num_classes()).
  abi::ClassTx* tx(uint32_t lcore_index, uint32_t tenant, uint32_t direction, uint32_t cls) {
    return abi::TxOf(this->tenant(lcore_index, tenant, direction), cls);
  }
  uint32_t* queued_bytes(uint32_t lcore_index, uint32_t tenant, uint32_t direction, uint32_t cls) {
    return abi::QueuedBytesOf(this->tenant(lcore_index, tenant, direction), num_classes(), cls);
  }

  // Main lcore, once per round: liveness for readers.
  void Heartbeat(uint64_t now_ns) {
    abi::StatsHeader& h = header();
    h.heartbeat = h.heartbeat + 1;
    h.last_update_ns = now_ns;
  }
  void SetPlanGeneration(uint64_t generation) { header().plan_generation = generation; }

 private:
  StatsSegment(int fd, std::byte* base, uint64_t size_bytes)
      : fd_(fd), base_(base), size_bytes_(size_bytes) {}
  int fd_;
  std::byte* base_;
  uint64_t size_bytes_;
};

// Sums of one tenant in one direction over all lcores. Sized for the ABI's
// most classes; entries at and above num_classes (the segment's) stay zero.
struct TenantTotals {
  uint32_t num_classes = 0;
  uint64_t arrival_packets = 0;
  uint64_t arrival_bytes = 0;
  uint64_t drop_packets[abi::kDropReasons] = {};
  abi::ClassTx tx[abi::kMaxClasses] = {};
  uint64_t queued_bytes[abi::kMaxClasses] = {};
  uint64_t tx_bytes() const;
  uint64_t tx_packets() const;
  uint64_t drops() const;
};

// Read-only view of a stats segment received from the dataplane. Checks the
// header against the mapping once, so the sums below never read outside it.
class StatsReader {
 public:
  // Maps `fd` read-only (the fd is not kept; the caller may close it).
  // Refuses a segment of another version (header.version != kStatsVersion)
  // or whose offsets disagree with ComputeStatsLayout, saying which.
  static std::expected<StatsReader, std::string> Map(int fd);
  StatsReader(StatsReader&& other) noexcept;
  StatsReader& operator=(StatsReader&& other) noexcept;
  StatsReader(const StatsReader&) = delete;
  StatsReader& operator=(const StatsReader&) = delete;
  ~StatsReader();

  // The header as mapped; the layout fields were checked by Map and do not
  // change, the live fields (heartbeat, generation) are read with Load().
  const abi::StatsHeader& header() const { return *header_; }
  uint64_t heartbeat() const;
  uint64_t last_update_ns() const;
  uint64_t plan_generation() const;
  uint32_t max_tenants() const { return header_->max_tenants; }
  uint32_t num_lcores() const { return header_->num_lcores; }
  uint32_t num_ports() const { return header_->num_ports; }
  // The dataplane's --max-classes: classes at and above it have no counters.
  uint32_t num_classes() const { return header_->num_classes; }

  // Out-of-range indices give zeros.
  TenantTotals SumTenant(uint32_t tenant, uint32_t direction) const;
  abi::ClassStats SumClass(uint32_t direction, uint32_t cls) const;
  abi::PortStats Port(uint32_t port) const;
  abi::LcoreStats Lcore(uint32_t index) const;

  // A relaxed single-copy-atomic load of a counter the dataplane writes.
  static uint64_t Load(const uint64_t& counter) {
    return __atomic_load_n(&counter, __ATOMIC_RELAXED);
  }
  static uint32_t Load(const uint32_t& counter) {
    return __atomic_load_n(&counter, __ATOMIC_RELAXED);
  }

 private:
  StatsReader(const std::byte* base, uint64_t size_bytes)
      : base_(base),
        size_bytes_(size_bytes),
        header_(reinterpret_cast<const abi::StatsHeader*>(base)) {}
  const std::byte* base_ = nullptr;
  uint64_t size_bytes_ = 0;
  const abi::StatsHeader* header_ = nullptr;
};

}  // namespace shaper::ctl
