// ControlCore's admin replies: `status` (every tenant's rates and counters)
// and `explain TENANT` (why each direction got its rate), as JSON for
// shaperctl, which prints them as tables.
#include <string>

#include "control/daemon/core.h"

namespace shaper::control {

nlohmann::json ControlCore::Status() const {
  std::lock_guard lock(mu_);
  nlohmann::json tenants = nlohmann::json::array();
  for (uint32_t id = 0; id < IdLimitLocked(); ++id) {
    if (names_[id].empty()) continue;
    for (uint32_t d = 0; d < config::kDirections; ++d) {
      const Direction& dir = dirs_[d];
      uint64_t queue_bytes = 0;
      uint64_t drop_packets = 0;
      if (stats_) {
        const ctl::TenantTotals t = stats_->SumTenant(id, d);
        for (uint64_t q : t.queued_bytes) queue_bytes += q;
        drop_packets = t.drops();
      }
      const bool has_demand = dir.demand && id < dir.demand->size();
      tenants.push_back({
          {"tenant", names_[id]},
          {"id", id},
          {"direction", abi::DirectionName(d)},
          {"rate_bps", has_demand ? dir.demand->tenant(id).tx_bps : 0},
          {"demand_bps", has_demand ? dir.demand->demand_bps(id) : 0},
          {"allocated_bps", id < dir.pushed_bps.size() ? dir.pushed_bps[id] : dir.guaranteed_bps[id]},
          {"guaranteed_bps", dir.tenants[id].guaranteed_bps},
          {"ceiling_bps", dir.tenants[id].ceiling_bps},
          {"queue_bytes", queue_bytes},
          {"drop_packets", drop_packets},
      });
    }
  }
  return {
      {"ok", true},
      {"policy", options_.policy_path},
      {"policy_valid", policy_valid_},
      {"mode", policy_.allocation.mode == config::Allocation::Mode::kDynamic ? "dynamic" : "static"},
      {"interval_ns", policy_.allocation.interval_ns},
      {"dataplane_up", api_ != nullptr},
      {"plan_generation", generation_},
      {"reloads", {{"success", reloads_success_}, {"error", reloads_error_}}},
      {"tenants", std::move(tenants)},
  };
}

nlohmann::json ControlCore::Explain(std::string_view tenant) const {
  std::lock_guard lock(mu_);
  const auto id = ids_.Find(tenant);
  if (!id || *id >= IdLimitLocked() || names_[*id].empty()) {
    return {{"ok", false}, {"error", "unknown tenant '" + std::string(tenant) + "'"}};
  }
  nlohmann::json directions = nlohmann::json::array();
  for (uint32_t d = 0; d < config::kDirections; ++d) {
    const Direction& dir = dirs_[d];
    nlohmann::json j = {{"direction", abi::DirectionName(d)}};
    if (!dir.has_allocation) {
      // Static mode, or no tick yet: the plan's assured rate is the guarantee.
      j["allocated"] = false;
      j["guaranteed_bps"] = dir.tenants[*id].guaranteed_bps;
      j["ceiling_bps"] = dir.tenants[*id].ceiling_bps;
      j["rate_bps"] = *id < dir.pushed_bps.size() ? dir.pushed_bps[*id] : dir.guaranteed_bps[*id];
      j["reason"] = policy_.allocation.mode == config::Allocation::Mode::kStatic
                        ? "static allocation: the assured rate is the guarantee"
                        : "no allocation yet (dataplane not connected or no tick since the last change)";
      directions.push_back(std::move(j));
      continue;
    }
    const alloc::Problem problem{policy_.link.shape_rate_bps, dir.groups, dir.tenants};
    const alloc::Explanation e = alloc::Explain(problem, dir.allocation, *id);
    j["allocated"] = true;
    j["rate_bps"] = e.rate_bps;
    j["demand_bps"] = e.demand_bps;
    j["guaranteed_bps"] = e.guaranteed_bps;
    j["ceiling_bps"] = e.ceiling_bps;
    j["weight"] = e.weight;
    j["floor_bps"] = e.floor_bps;
    j["spare_bps"] = e.spare_bps;
    j["bound"] = std::string(alloc::BoundName(e.bound));
    if (e.group != alloc::kNoGroup && e.group < policy_.groups.size()) {
      j["group"] = policy_.groups[e.group].name;
    }
    j["pushed_bps"] = *id < dir.pushed_bps.size() ? dir.pushed_bps[*id] : 0;
    j["link_total_bps"] = dir.allocation.total_bps;
    j["link_want_bps"] = dir.allocation.link_want_bps;
    directions.push_back(std::move(j));
  }
  return {{"ok", true}, {"tenant", std::string(tenant)}, {"id", *id}, {"directions", std::move(directions)}};
}

}  // namespace shaper::control
