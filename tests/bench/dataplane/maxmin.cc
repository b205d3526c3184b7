#include "tests/bench/dataplane/maxmin.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "control/alloc/allocator.h"

namespace shaper::bench {

// The sharing rule is computed by the control process's allocator
// (control/alloc), which its own tests check against an exact reference on
// thousands of random instances; the bench only converts units.
std::vector<double> MaxMinReference(double link_bps, const std::vector<TenantDemand>& tenants) {
  namespace alloc = shaper::control::alloc;
  auto bits = [](double v) { return v <= 0 ? uint64_t{0} : static_cast<uint64_t>(std::llround(v)); };
  std::vector<alloc::TenantSpec> specs(tenants.size());
  for (size_t i = 0; i < tenants.size(); ++i) {
    specs[i].guaranteed_bps = bits(tenants[i].assured_bps);
    specs[i].ceiling_bps = bits(tenants[i].ceiling_bps);
    specs[i].demand_bps = bits(tenants[i].demand_bps);
    specs[i].weight = static_cast<uint32_t>(std::max(1L, std::lround(tenants[i].weight)));
  }
  const alloc::Problem problem{bits(link_bps), {}, specs};
  std::vector<double> out(tenants.size(), 0.0);
  if (auto result = alloc::Allocate(problem)) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(result->rate_bps[i]);
  }
  return out;
}

}  // namespace shaper::bench
