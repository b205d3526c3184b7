#include "tests/bench/dataplane/maxmin.h"

#include <algorithm>

namespace shaper::bench {

std::vector<double> MaxMinReference(double link_bps, const std::vector<TenantDemand>& tenants) {
  const size_t n = tenants.size();
  std::vector<double> alloc(n);
  std::vector<double> cap(n);
  std::vector<bool> active(n);
  double spare = link_bps;
  for (size_t i = 0; i < n; ++i) {
    alloc[i] = std::min(tenants[i].demand_bps, tenants[i].assured_bps);
    cap[i] = std::min(tenants[i].demand_bps, tenants[i].ceiling_bps);
    active[i] = cap[i] > alloc[i];
    spare -= alloc[i];
  }
  // Water-filling: give every wanting tenant its weighted part of the spare;
  // those whose room is smaller than their part are capped and leave, and
  // the rest is shared again, until the spare is gone or nobody wants more.
  while (spare > 1e-6) {
    double wsum = 0;
    for (size_t i = 0; i < n; ++i)
      if (active[i]) wsum += tenants[i].weight;
    if (wsum == 0) break;
    bool capped_any = false;
    double given = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!active[i]) continue;
      const double part = spare * tenants[i].weight / wsum;
      if (cap[i] - alloc[i] <= part) {
        given += cap[i] - alloc[i];
        alloc[i] = cap[i];
        active[i] = false;
        capped_any = true;
      }
    }
    if (capped_any) {
      spare -= given;
      continue;
    }
    for (size_t i = 0; i < n; ++i)
      if (active[i]) alloc[i] += spare * tenants[i].weight / wsum;
    spare = 0;
  }
  return alloc;
}

}  // namespace shaper::bench
