// The reference allocation --accuracy compares shaper against: DESIGN.md's
// sharing rule, computed by control/alloc's allocator (no DPDK), in the
// bench's units; a unit test checks it against the worked example.
#pragma once

#include <vector>

namespace shaper::bench {

struct TenantDemand {
  double demand_bps;
  double assured_bps;
  double ceiling_bps;
  double weight;
};

// The sharing rule, exactly: min(demand, assured) first, then the spare of
// link_bps shared by weight among tenants that want more, none above
// min(demand, ceiling), redistributing what capped tenants cannot take.
std::vector<double> MaxMinReference(double link_bps, const std::vector<TenantDemand>& tenants);

}  // namespace shaper::bench
