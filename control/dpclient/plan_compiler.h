// Compiling a validated policy into the dataplane's plan blob
// (dataplane/abi/plan.h), and the tenant ids that make counters and queues
// survive a reload.
//
// Tenant ids index the dataplane's per-tenant state and the stats segment
// rows, so they must be dense (memory is max_tenants rows) and stable by name
// (an unchanged tenant keeps its queues and counters across a reload).
// TenantIds keeps the name -> id map across reloads. An id freed by a reload
// is reused only from the next reload on: a tenant removed and another added
// in the same reload never share an id, so the newcomer never inherits the
// leaver's queued packets or counters within one plan swap.
//
// The map must also survive a control restart (the dataplane keeps its plan
// and counters meanwhile): State() exports it, Restore() rebuilds it, and
// FormatTenantIds/ParseTenantIds are its text file form:
//
//   shaper-tenant-ids 1 next_id=5
//   1 a
//   3 c
//   4 d
//
// The header holds the format version and next_id; then one `id name` per
// line. Names are what the policy loader allows (letters, digits, '-', '_',
// '.'), so they need no quoting. The free ids are not stored: they are the
// ids below next_id not in use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/model.h"
#include "dataplane/abi/plan.h"

namespace shaper::dpclient {

// The name the plan gives tenant 0 (traffic that matches no tenant).
inline constexpr std::string_view kDefaultTenantName = "default";

class TenantIds {
 public:
  TenantIds() = default;

  struct State {
    std::vector<std::pair<std::string, uint32_t>> entries;  // name -> id, by id
    uint32_t next_id = 1;
  };
  State state() const;
  // Fails (naming the entry and value) on an id of 0 or >= next_id, a
  // duplicate id or name, or an empty or reserved name.
  static std::expected<TenantIds, std::string> Restore(const State& state);

  // Makes the set of named tenants exactly `names` (the default tenant, id 0,
  // is implicit and always present): known names keep their ids, new names
  // take the lowest free id, else the next fresh one. The ids of names gone
  // are retired, not freed: the dataplane may still hold those tenants' queues
  // and counters under them until it accepts a plan without them. Settle()
  // says it has; only then are retired ids handed out again. So reloads made
  // while the dataplane is away never give a removed tenant's id (and its
  // queued packets and counters) to a newcomer.
  void Update(std::span<const std::string> names);
  void Update(const config::Policy& policy);
  // The dataplane accepted a plan built from the current ids: retired ids
  // become free (reused lowest first) and id_limit shrinks past free top ids.
  void Settle();
  size_t retired() const { return retired_.size(); }

  // 0 for kDefaultTenantName.
  std::optional<uint32_t> Find(std::string_view name) const;
  // One past the highest id in use (>= 1: the default tenant).
  uint32_t id_limit() const;
  size_t size() const { return ids_.size(); }  // named tenants, default excluded

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> ids_;
  std::set<uint32_t> free_;        // reusable ids, lowest first
  std::vector<uint32_t> retired_;  // gone from the policy, maybe not yet from the dataplane
  uint32_t next_id_ = 1;     // ids below this have been handed out at least once
};

inline constexpr uint32_t kTenantIdsFormatVersion = 1;
// A bound on next_id in a file: the free set is built from it, and no
// dataplane has anywhere near this many tenant rows.
inline constexpr uint32_t kMaxTenantIdsNextId = 1u << 24;

std::string FormatTenantIds(const TenantIds::State& state);
// Fails with the line number, the line and what is wrong with it.
std::expected<TenantIds, std::string> ParseTenantIds(std::string_view text);

struct CompileLimits {
  uint32_t max_tenants = UINT32_MAX;  // ids must stay below (the dataplane's hello says)
};

// Builds the plan blob. Fails (naming the field and value) on what the policy
// language allows but the plan cannot carry: a name too long for the plan, a
// tenant named like the default tenant, too many tenants, a class without a
// queue limit. `ids` must have been updated with this policy.
std::expected<std::vector<std::byte>, std::string> CompilePlan(const config::Policy& policy,
                                                               const TenantIds& ids,
                                                               const CompileLimits& limits = {});

// Builds a rates blob for plan `plan_generation`.
std::vector<std::byte> EncodeRates(uint64_t plan_generation,
                                   std::span<const abi::RateEntry> entries);

// Bytes a queue drains in `ns` at `rate_bps` (saturating).
uint64_t BytesInTime(uint64_t rate_bps, uint64_t ns);

}  // namespace shaper::dpclient
