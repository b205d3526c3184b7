// The warm pass: before a burst is scheduled, the packet path loads the
// cache lines of per-tenant state its frames will touch (the scheduler
// block and profile entry, Scheduler::WarmTenant, and the counters), in a
// tight loop of independent loads, so that the burst's misses overlap
// instead of coming one or two at a time inside the scheduler's dependent
// steps. It pays only when that state does not stay in the core's cache:
// on the development VM (2 MiB of L2) shaper-bench measured -3 to -8% at
// 1k-4096 tenants (all hits: the pass is pure cost), +8-12% at 10k, +20% at
// 100k and +26-28% at 1M (docs/benchmarks.md). So it runs when the plan's
// tenants' state is larger than the L2 cache.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "dataplane/abi/stats.h"

namespace shaper::dataplane {

// Tenant count from which the warm pass runs, for `bytes_per_tenant` bytes
// of per-tenant state that compete for the core's L2 cache (sysconf's
// figure; 1 MiB when it has none). Off the packet path.
inline uint32_t WarmPassMinTenants(uint64_t bytes_per_tenant) {
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  const uint64_t cache = l2 > 0 ? static_cast<uint64_t>(l2) : uint64_t{1} << 20;
  return static_cast<uint32_t>(
      std::min<uint64_t>(cache / std::max<uint64_t>(bytes_per_tenant, 1), UINT32_MAX));
}

// One frame's loads: its tenant's scheduler block and profile entry
// (Scheduler::WarmTenant) and the two ends of what the frame writes in its
// counters row (the arrival pair, the last class's queued gauge).
template <class Sched>
uint64_t WarmFrame(const Sched& sched, uint32_t tenant, const abi::TenantStats* row,
                   uint32_t num_classes) {
  return sched.WarmTenant(tenant) + row->arrival_packets +
         *abi::QueuedBytesOf(row, num_classes, num_classes - 1);
}

// Keeps the sum of the warm pass's loads alive, so the compiler keeps them.
inline void KeepLoads(uint64_t sum) {
  asm volatile("" : : "r"(sum));
}

}  // namespace shaper::dataplane
