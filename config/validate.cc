// The rules that span sections of a policy, run once the whole document is
// read: defaults that depend on the link (a ceiling defaults to the shape
// rate), group references in any order, and the sums that make guarantees
// promises the link can keep:
//
//  - per entity and direction: guaranteed <= ceiling <= the link's shape rate;
//  - per direction: the guarantees of all tenants (and the default tenant)
//    fit in the shape rate; with groups, so do the guarantees of the
//    top-level groups and the tenants without a group;
//  - per group: its tenants' and child groups' guarantees fit in its own.
// Sums are taken in 128 bits: a million tenants at a large rate must not wrap.
#include <algorithm>

#include <fmt/format.h>

#include "config/loader_internal.h"
#include "config/units.h"

namespace shaper::config::internal {
namespace {

// __extension__: -Wpedantic rejects __int128, which GCC and Clang both provide.
__extension__ typedef unsigned __int128 u128;

constexpr uint64_t kDefaultBurstNs = 5'000'000;
// A burst derived from a duration is at least one full-size Ethernet frame
// (1514 bytes), or a slow tenant could never send a large packet.
constexpr uint64_t kMinDerivedBurstBytes = 1514;

uint64_t Clamp64(u128 v) { return v > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(v); }

}  // namespace

void Builder::ApplyRates(const EntityIn& in, std::array<DirectionRates, kDirections>* out, EntitySide* side) {
  for (int d = 0; d < kDirections; ++d) {
    const RatesIn& dir = in.dir[static_cast<size_t>(d)];
    DirectionRates& r = (*out)[static_cast<size_t>(d)];
    DirectionOrigin& o = side->dir[static_cast<size_t>(d)];
    const Field& g = dir.guaranteed.pos.line != 0 ? dir.guaranteed : in.both.guaranteed;
    const Field& c = dir.ceiling.pos.line != 0 ? dir.ceiling : in.both.ceiling;
    const Field& w = dir.weight.pos.line != 0 ? dir.weight : in.both.weight;
    r.guaranteed_bps = g.value;
    o.guaranteed = g.pos;
    o.guaranteed_in_dir = dir.guaranteed.pos.line != 0;
    r.ceiling_bps = c.value;  // 0: the shape rate, filled in by FinishRates
    o.ceiling = c.pos;
    o.ceiling_in_dir = dir.ceiling.pos.line != 0;
    r.weight = w.pos.line != 0 ? static_cast<uint32_t>(w.value) : 1;
    const bool dir_burst = dir.burst_bytes.pos.line != 0 || dir.burst_ns.pos.line != 0;
    const RatesIn& b = dir_burst ? dir : in.both;
    if (b.burst_bytes.pos.line != 0) {
      r.burst_bytes = b.burst_bytes.value;
      o.burst_ns = 0;
    } else {
      o.burst_ns = b.burst_ns.pos.line != 0 ? b.burst_ns.value : kDefaultBurstNs;
    }
  }
}

std::string Builder::EntityPath(Entity entity, uint32_t index, bool in_dir, Direction d,
                                std::string_view key) const {
  std::string s;
  switch (entity) {
    case Entity::kTenant: s = fmt::format("tenants[{}]", index); break;
    case Entity::kGroup: s = fmt::format("groups[{}]", index); break;
    case Entity::kDefaultTenant: s = "default_tenant"; break;
  }
  if (in_dir) s += fmt::format(".{}", DirectionName(d));
  if (!key.empty()) s += fmt::format(".{}", key);
  return s;
}

void Builder::FinishRates(Entity entity, uint32_t index, std::array<DirectionRates, kDirections>* rates,
                          const EntitySide& side) {
  const uint64_t shape = policy_.link.shape_rate_bps;
  for (int di = 0; di < kDirections; ++di) {
    const auto d = static_cast<Direction>(di);
    DirectionRates& r = (*rates)[static_cast<size_t>(di)];
    const DirectionOrigin& o = side.dir[static_cast<size_t>(di)];
    const bool ceiling_set = o.ceiling.line != 0;
    if (!ceiling_set) r.ceiling_bps = shape;
    if (o.burst_ns != 0) {
      const u128 bytes = static_cast<u128>(r.ceiling_bps) * o.burst_ns / 8'000'000'000u;
      r.burst_bytes = std::max(Clamp64(bytes), kMinDerivedBurstBytes);
    }
    // When a field is written for both directions and the other is not, the
    // direction is named in the message, since the path does not say it.
    const std::string dir_name =
        o.guaranteed_in_dir == o.ceiling_in_dir ? std::string() : fmt::format("{} ", DirectionName(d));
    if (ceiling_set && link_ok_ && r.ceiling_bps > shape) {
      ErrorAt(o.ceiling, EntityPath(entity, index, o.ceiling_in_dir, d, "ceiling"),
              fmt::format("ceiling {} exceeds the link's shape rate {}", FormatBitRate(r.ceiling_bps),
                          FormatBitRate(shape)));
    } else if (r.guaranteed_bps > r.ceiling_bps && (ceiling_set || link_ok_)) {
      ErrorAt(o.guaranteed, EntityPath(entity, index, o.guaranteed_in_dir, d, "guaranteed"),
              ceiling_set ? fmt::format("guaranteed {} exceeds the {}ceiling {}", FormatBitRate(r.guaranteed_bps),
                                        dir_name, FormatBitRate(r.ceiling_bps))
                          : fmt::format("guaranteed {} exceeds the link's shape rate {} (the default ceiling)",
                                        FormatBitRate(r.guaranteed_bps), FormatBitRate(shape)));
    }
  }
}

void Builder::ResolveGroups() {
  std::vector<std::string_view> names;
  for (const Group& g : policy_.groups) names.push_back(g.name);
  for (const PendingRef& ref : group_parents_) {
    const std::string path = fmt::format("groups[{}].parent", ref.index);
    auto it = group_index_.find(ref.name);
    if (it == group_index_.end()) {
      const std::string_view s = Suggest(ref.name, names);
      ErrorAt(ref.pos, path,
              fmt::format("unknown group '{}'{}", ref.name, s.empty() ? "" : fmt::format("; did you mean '{}'?", s)));
    } else if (it->second == ref.index) {
      ErrorAt(ref.pos, path, fmt::format("group '{}' cannot be its own parent", ref.name));
    } else {
      policy_.groups[ref.index].parent = it->second;
    }
  }
  // Depth of each group (1 = under the link), memoised; a cycle is reported
  // once, at the group where the walk closed it.
  constexpr uint32_t kUnknown = 0, kInCycle = UINT32_MAX;
  std::vector<uint32_t> depth(policy_.groups.size(), kUnknown);
  std::vector<uint32_t> on_walk(policy_.groups.size(), 0);  // walk id + 1
  std::vector<uint32_t> walk;
  for (uint32_t start = 0; start < policy_.groups.size(); ++start) {
    if (depth[start] != kUnknown) continue;
    // Follow parents up to the top, a group of known depth, or a group
    // already on this walk (a cycle).
    walk.clear();
    uint32_t below = 0;  // depth of the parent of walk.back()
    for (uint32_t g = start;;) {
      on_walk[g] = start + 1;
      walk.push_back(g);
      const uint32_t parent = policy_.groups[g].parent;
      if (parent == kNoGroup) break;
      if (depth[parent] != kUnknown) {
        below = depth[parent];
        break;
      }
      if (on_walk[parent] == start + 1) {
        std::string chain = policy_.groups[parent].name;
        for (uint32_t h = policy_.groups[parent].parent;; h = policy_.groups[h].parent) {
          chain += " -> " + policy_.groups[h].name;
          if (h == parent) break;
        }
        ErrorAt(group_parent_pos_[parent], fmt::format("groups[{}].parent", parent),
                fmt::format("groups form a cycle: {}", chain));
        below = kInCycle;
        break;
      }
      g = parent;
    }
    for (size_t i = walk.size(); i-- > 0;) {
      const uint32_t w = walk[i];
      depth[w] = below == kInCycle ? kInCycle : below + 1;
      below = depth[w];
      if (depth[w] == kMaxGroupDepth + 1) {
        std::string chain = policy_.groups[w].name;
        for (uint32_t h = policy_.groups[w].parent; h != kNoGroup; h = policy_.groups[h].parent) {
          chain += " -> " + policy_.groups[h].name;
        }
        ErrorAt(group_parent_pos_[w], fmt::format("groups[{}].parent", w),
                fmt::format("groups nest more than {} deep: {}", kMaxGroupDepth, chain));
      }
    }
  }
}

void Builder::ResolveTenantGroups() {
  std::vector<std::string_view> names;
  for (const Group& g : policy_.groups) names.push_back(g.name);
  for (const PendingRef& ref : tenant_groups_) {
    auto it = group_index_.find(ref.name);
    if (it != group_index_.end()) {
      policy_.tenants[ref.index].group = it->second;
      continue;
    }
    const std::string_view s = Suggest(ref.name, names);
    ErrorAt(ref.pos, fmt::format("tenants[{}].group", ref.index),
            fmt::format("unknown group '{}'{}", ref.name, s.empty() ? "" : fmt::format("; did you mean '{}'?", s)));
  }
}

void Builder::CheckGuaranteeSums() {
  const size_t n_groups = policy_.groups.size();
  std::vector<u128> member_sum(n_groups);
  std::vector<uint32_t> member_tenants(n_groups), member_groups(n_groups);
  for (int di = 0; di < kDirections; ++di) {
    const auto d = static_cast<Direction>(di);
    const auto dz = static_cast<size_t>(di);
    std::fill(member_sum.begin(), member_sum.end(), 0);
    std::fill(member_tenants.begin(), member_tenants.end(), 0);
    std::fill(member_groups.begin(), member_groups.end(), 0);
    u128 all_tenants = policy_.default_tenant[dz].guaranteed_bps;
    u128 top_level = all_tenants;
    for (const Tenant& t : policy_.tenants) {
      const uint64_t g = t.rates[dz].guaranteed_bps;
      all_tenants += g;
      if (t.group == kNoGroup) {
        top_level += g;
      } else {
        member_sum[t.group] += g;
        ++member_tenants[t.group];
      }
    }
    for (const Group& g : policy_.groups) {
      if (g.parent == kNoGroup) {
        top_level += g.rates[dz].guaranteed_bps;
      } else {
        member_sum[g.parent] += g.rates[dz].guaranteed_bps;
        ++member_groups[g.parent];
      }
    }
    const uint64_t shape = policy_.link.shape_rate_bps;
    if (link_ok_ && all_tenants > shape) {
      ErrorAt(tenants_pos_, "tenants",
              fmt::format("the {} guarantees of {} tenants (and the default tenant) sum to {}, more than the "
                          "link's shape rate {}",
                          DirectionName(d), policy_.tenants.size(), FormatBitRate(Clamp64(all_tenants)),
                          FormatBitRate(shape)));
    } else if (link_ok_ && top_level > shape) {
      ErrorAt(groups_pos_, "groups",
              fmt::format("the {} guarantees of the top-level groups and the tenants without a group sum to {}, "
                          "more than the link's shape rate {}",
                          DirectionName(d), FormatBitRate(Clamp64(top_level)), FormatBitRate(shape)));
    }
    for (uint32_t i = 0; i < n_groups; ++i) {
      const Group& g = policy_.groups[i];
      const DirectionOrigin& o = group_side_[i].dir[dz];
      if (member_sum[i] <= g.rates[dz].guaranteed_bps) continue;
      const bool written = o.guaranteed.line != 0;
      ErrorAt(written ? o.guaranteed : group_side_[i].item,
              written ? EntityPath(Entity::kGroup, i, o.guaranteed_in_dir, d, "guaranteed")
                      : EntityPath(Entity::kGroup, i, false, d, ""),
              fmt::format("the {} guarantees of its members ({} tenant{}, {} group{}) sum to {}, more than the "
                          "group's guaranteed {}",
                          DirectionName(d), member_tenants[i], member_tenants[i] == 1 ? "" : "s", member_groups[i],
                          member_groups[i] == 1 ? "" : "s", FormatBitRate(Clamp64(member_sum[i])),
                          FormatBitRate(g.rates[dz].guaranteed_bps)));
    }
  }
}

void Builder::FinishClasses() {
  if (classes_pos_.line == 0) return;  // missing: reported at the root
  const auto& classes = policy_.classes;
  if (classes.size() > kMaxClasses) {
    ErrorAt(classes_pos_, "classes",
            fmt::format("{} classes: at most {} are supported", classes.size(), kMaxClasses));
  }
  const auto first_bulk =
      std::find_if(classes.begin(), classes.end(), [](const TrafficClass& c) { return c.priority == Priority::kBulk; });
  if (first_bulk == classes.end()) {
    ErrorAt(classes_pos_, "classes", "at least one class must have priority bulk");
    return;
  }
  const auto def = default_class_ >= 0 ? static_cast<size_t>(default_class_)
                                       : static_cast<size_t>(first_bulk - classes.begin());
  if (def >= kMaxClasses) return;  // reported above
  policy_.classes[def].is_default = true;
  for (int code = 0; code < 64; ++code) {
    const int32_t owner = dscp_owner_[static_cast<size_t>(code)];
    policy_.dscp_to_class[static_cast<size_t>(code)] =
        static_cast<uint8_t>(owner >= 0 && static_cast<size_t>(owner) < kMaxClasses ? owner : static_cast<int32_t>(def));
  }
}

void Builder::Finish() {
  ResolveGroups();
  ResolveTenantGroups();
  FinishClasses();
  ApplyRates(default_in_, &policy_.default_tenant, &default_side_);
  FinishRates(Entity::kDefaultTenant, 0, &policy_.default_tenant, default_side_);
  for (uint32_t i = 0; i < policy_.groups.size(); ++i) {
    FinishRates(Entity::kGroup, i, &policy_.groups[i].rates, group_side_[i]);
  }
  for (uint32_t i = 0; i < policy_.tenants.size(); ++i) {
    FinishRates(Entity::kTenant, i, &policy_.tenants[i].rates, tenant_side_[i]);
  }
  CheckGuaranteeSums();
  // The vector grew by doubling; the model lives as long as the policy.
  policy_.tenants.shrink_to_fit();
}

}  // namespace shaper::config::internal
