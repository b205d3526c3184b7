// Hierarchical weighted max-min allocation; the essay is in allocator.h.
//
// Layout of the work, per call:
//   1. Groups: indices, weights, depths (a cycle is an error), parent-first
//      order.
//   2. One pass over the tenants: indices and weights checked, wants and
//      floors summed into their node, children counted per node.
//   3. Bottom-up over the groups: each group's want and floor.
//   4. With groups, the children of each node as one compressed list; without
//      (the common flat case), the link's children are the tenants in order.
//   5. Top-down: the link distributes its capacity among its children, then
//      each group, parents first, distributes what it received.
// Nodes are numbered 0..G-1 for groups and G for the link. Each tenant spec
// is read twice per tick: by the scan, then by the children list (groups) or
// the link's distribution (flat).
#include "control/alloc/allocator.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace shaper::control::alloc {
namespace {

using u128 = Uint128;

constexpr uint32_t kGroupBit = 1u << 31;
constexpr uint32_t kDepthUnknown = 0;
constexpr uint32_t kDepthVisiting = UINT32_MAX;
constexpr uint64_t kPivotSeed = 0x5eed'a110'c470'0001;

uint64_t Saturate(u128 value) {
  return value > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(value);
}

uint64_t TenantWant(const TenantSpec& t) {
  return std::min(t.demand_bps, t.ceiling_bps);
}
uint64_t TenantFloor(const TenantSpec& t) {
  return std::min(TenantWant(t), t.guaranteed_bps);
}

void Give(Allocation& out, uint32_t child, uint64_t bps) {
  if (child & kGroupBit) {
    out.groups[child & ~kGroupBit].rate_bps += bps;
  } else {
    out.rate_bps[child] += bps;
  }
}

// splitmix64: a cheap, fixed-seed stream of pivot positions.
uint64_t NextPivot(uint64_t& state) {
  uint64_t z = (state += 0x9e37'79b9'7f4a'7c15);
  z = (z ^ (z >> 30)) * 0xbf58'476d'1ce4'e5b9;
  z = (z ^ (z >> 27)) * 0x94d0'49bb'1331'11eb;
  return z ^ (z >> 31);
}

// Sign of a.extra / a.weight - b.extra / b.weight, exactly.
template <typename ShareT>
int CompareRatio(const ShareT& a, const ShareT& b) {
  const u128 lhs = static_cast<u128>(a.extra_bps) * b.weight;
  const u128 rhs = static_cast<u128>(b.extra_bps) * a.weight;
  return lhs < rhs ? -1 : lhs > rhs ? 1 : 0;
}

// The r leftover bits/s of a floor division, one each to the children whose
// share lost the largest fraction (largest remainder; ties to the lowest id).
// r is the sum of the lost fractions, so r < the number of children with a
// non-zero remainder: no child whose share was exact gets one, and every
// child ends within 1 bit/s of its exact share. Each share's remainder is in
// its extra_bps by then (the extra is no longer needed).
template <typename ShareT>
void GiveLeftover(uint64_t leftover_bps, std::span<ShareT> rest, Allocation& out) {
  if (leftover_bps == 0) return;
  auto first = [](const ShareT& a, const ShareT& b) {
    return a.extra_bps != b.extra_bps ? a.extra_bps > b.extra_bps : a.child < b.child;
  };
  std::nth_element(rest.begin(), rest.begin() + static_cast<ptrdiff_t>(leftover_bps), rest.end(),
                   first);
  for (uint64_t i = 0; i < leftover_bps; ++i) Give(out, rest[i].child, 1);
}

}  // namespace

std::string_view BoundName(Bound bound) {
  switch (bound) {
    case Bound::kDemand:
      return "demand";
    case Bound::kCeiling:
      return "ceiling";
    case Bound::kGroupCeiling:
      return "group ceiling";
    case Bound::kOvercommitted:
      return "overcommitted";
    case Bound::kNone:
      return "none";
  }
  return "unknown";
}

std::expected<void, std::string> Allocator::ValidateGroups(const Problem& problem) {
  const size_t group_count = problem.groups.size();
  if (problem.tenants.size() > kMaxEntities) {
    return std::unexpected(fmt::format("tenants: {} entries, more than the {} allowed",
                                       problem.tenants.size(), kMaxEntities));
  }
  if (group_count > kMaxEntities) {
    return std::unexpected(
        fmt::format("groups: {} entries, more than the {} allowed", group_count, kMaxEntities));
  }
  for (size_t g = 0; g < group_count; ++g) {
    const GroupSpec& spec = problem.groups[g];
    if (spec.weight == 0)
      return std::unexpected(fmt::format("groups[{}].weight: 0, must be > 0", g));
    if (spec.parent != kNoGroup && spec.parent >= group_count) {
      return std::unexpected(fmt::format("groups[{}].parent: {}, but there are {} groups", g,
                                         spec.parent, group_count));
    }
  }

  // Depth of each group (1 for a child of the link), memoised along each walk.
  depth_.assign(group_count, kDepthUnknown);
  uint32_t max_depth = 0;
  for (uint32_t g = 0; g < group_count; ++g) {
    path_.clear();
    uint32_t at = g;
    while (at != kNoGroup && depth_[at] == kDepthUnknown) {
      depth_[at] = kDepthVisiting;
      path_.push_back(at);
      at = problem.groups[at].parent;
    }
    if (at != kNoGroup && depth_[at] == kDepthVisiting) {
      return std::unexpected(fmt::format("groups[{}].parent: {}, which closes a cycle of groups",
                                         path_.back(), problem.groups[path_.back()].parent));
    }
    uint32_t depth = at == kNoGroup ? 0 : depth_[at];
    for (auto it = path_.rbegin(); it != path_.rend(); ++it) depth_[*it] = ++depth;
    max_depth = std::max(max_depth, depth);
  }

  // Counting sort by depth: parents always come before their children.
  std::vector<uint32_t>& starts = path_;
  starts.assign(max_depth + 2, 0);
  for (uint32_t g = 0; g < group_count; ++g) ++starts[depth_[g] + 1];
  for (size_t d = 1; d < starts.size(); ++d) starts[d] += starts[d - 1];
  groups_by_depth_.resize(group_count);
  for (uint32_t g = 0; g < group_count; ++g) groups_by_depth_[starts[depth_[g]]++] = g;
  return {};
}

std::expected<void, std::string> Allocator::ScanTenants(const Problem& problem) {
  const uint32_t link = static_cast<uint32_t>(problem.groups.size());
  const bool flat = link == 0;
  want_sum_.assign(link + 1, 0);
  floor_sum_.assign(link + 1, 0);
  if (!flat) child_begin_.assign(link + 2, 0);
  for (size_t t = 0; t < problem.tenants.size(); ++t) {
    const TenantSpec& spec = problem.tenants[t];
    if (spec.weight == 0)
      return std::unexpected(fmt::format("tenants[{}].weight: 0, must be > 0", t));
    if (spec.group != kNoGroup && spec.group >= link) {
      return std::unexpected(
          fmt::format("tenants[{}].group: {}, but there are {} groups", t, spec.group, link));
    }
    const uint32_t node = spec.group == kNoGroup ? link : spec.group;
    want_sum_[node] += TenantWant(spec);
    floor_sum_[node] += TenantFloor(spec);
    if (!flat) ++child_begin_[node + 1];
  }
  return {};
}

void Allocator::AggregateGroups(const Problem& problem, Allocation& out) {
  const uint32_t link = static_cast<uint32_t>(problem.groups.size());
  // Deepest first, so every group's children are summed before it is.
  for (auto it = groups_by_depth_.rbegin(); it != groups_by_depth_.rend(); ++it) {
    const uint32_t g = *it;
    const GroupSpec& spec = problem.groups[g];
    GroupState& state = out.groups[g];
    state.want_bps = std::min(spec.ceiling_bps, Saturate(want_sum_[g]));
    state.children_floor_bps = Saturate(floor_sum_[g]);
    state.floor_bps =
        std::min(state.want_bps, std::max(spec.guaranteed_bps, state.children_floor_bps));
    const uint32_t parent = spec.parent == kNoGroup ? link : spec.parent;
    want_sum_[parent] += state.want_bps;
    floor_sum_[parent] += state.floor_bps;
  }
  out.link_want_bps = Saturate(want_sum_[link]);
}

void Allocator::FillChildren(const Problem& problem, const Allocation& out) {
  // begin[node + 1] holds the node's tenant count (ScanTenants); add its
  // groups, prefix-sum, fill with begin[node] as a cursor, then shift back so
  // that begin[node] is the node's first child again. Each entry carries what
  // distribution needs, so it reads one node's children contiguously instead
  // of chasing tenant specs scattered over the whole array.
  const uint32_t link = static_cast<uint32_t>(problem.groups.size());
  auto node_of_group = [&](const GroupSpec& g) { return g.parent == kNoGroup ? link : g.parent; };
  for (const GroupSpec& g : problem.groups) ++child_begin_[node_of_group(g) + 1];
  for (size_t n = 1; n < child_begin_.size(); ++n) child_begin_[n] += child_begin_[n - 1];
  children_.resize(problem.tenants.size() + problem.groups.size());
  for (uint32_t t = 0; t < problem.tenants.size(); ++t) {
    const TenantSpec& spec = problem.tenants[t];
    children_[child_begin_[spec.group == kNoGroup ? link : spec.group]++] =
        Child{TenantFloor(spec), TenantWant(spec), spec.weight, t};
  }
  for (uint32_t g = 0; g < problem.groups.size(); ++g) {
    children_[child_begin_[node_of_group(problem.groups[g])]++] = Child{
        out.groups[g].floor_bps, out.groups[g].want_bps, problem.groups[g].weight, kGroupBit | g};
  }
  for (size_t n = child_begin_.size() - 1; n > 0; --n) child_begin_[n] = child_begin_[n - 1];
  child_begin_[0] = 0;
}

void Allocator::DistributeNode(const Problem& problem, uint32_t node, uint64_t amount_bps,
                               Allocation& out) {
  const uint32_t link = static_cast<uint32_t>(problem.groups.size());
  const u128 floors_bps = floor_sum_[node];
  const bool overcommitted = amount_bps < floors_bps;
  if (node == link) {
    out.link_overcommitted = overcommitted;
  } else {
    out.groups[node].children_overcommitted = overcommitted;
  }

  shares_.clear();
  auto take = [&](uint32_t child, uint64_t floor_bps, uint64_t want_bps, uint32_t weight) {
    if (overcommitted) {
      if (floor_bps > 0) shares_.push_back({floor_bps, weight, child});
    } else {
      Give(out, child, floor_bps);
      if (want_bps > floor_bps) shares_.push_back({want_bps - floor_bps, weight, child});
    }
  };
  if (link == 0) {  // flat: the link's children are the tenants, in order
    for (uint32_t t = 0; t < problem.tenants.size(); ++t) {
      const TenantSpec& spec = problem.tenants[t];
      take(t, TenantFloor(spec), TenantWant(spec), spec.weight);
    }
  } else {
    for (uint32_t i = child_begin_[node]; i < child_begin_[node + 1]; ++i) {
      const Child& c = children_[i];
      take(c.id, c.floor_bps, c.want_bps, c.weight);
    }
  }
  if (overcommitted) {
    ScaleFloors(amount_bps, floors_bps, shares_, out);
  } else {
    WaterFill(amount_bps - static_cast<uint64_t>(floors_bps), shares_, out);
  }
}

size_t Allocator::SplitCapped(uint64_t spare_bps, std::span<Share> shares, u128& capped_bps,
                              uint64_t& uncapped_weight) const {
  // Invariant: [0, lo) capped, [hi, n) not, [lo, hi) undecided, and every
  // undecided ratio lies between the settled ones. capped_bps sums the
  // extras of [0, lo), uncapped_weight the weights of [hi, n).
  size_t lo = 0;
  size_t hi = shares.size();
  capped_bps = 0;
  uncapped_weight = 0;
  const uint32_t rounds = selection_rounds_ != kAutoRounds
                              ? selection_rounds_
                              : 2 * static_cast<uint32_t>(std::bit_width(shares.size())) + 8;
  uint64_t pivot_state = kPivotSeed;
  for (uint32_t round = 0; lo < hi && round < rounds; ++round) {
    const Share pivot = shares[lo + NextPivot(pivot_state) % (hi - lo)];
    // Three-way partition of [lo, hi) by ratio against the pivot's.
    size_t less_end = lo;
    size_t i = lo;
    size_t greater_begin = hi;
    u128 below_bps = 0;  // extras of ratio <= the pivot's
    uint64_t equal_weight = 0;
    uint64_t greater_weight = 0;
    while (i < greater_begin) {
      const int c = CompareRatio(shares[i], pivot);
      if (c < 0) {
        below_bps += shares[i].extra_bps;
        std::swap(shares[less_end++], shares[i++]);
      } else if (c > 0) {
        greater_weight += shares[i].weight;
        std::swap(shares[i], shares[--greater_begin]);
      } else {
        below_bps += shares[i].extra_bps;
        equal_weight += shares[i].weight;
        ++i;
      }
    }
    // Does the water reach the pivot's ratio r = e_p / w_p, i.e. is
    // f(r) = (extras of ratio <= r) + r * (weights of ratio > r) <= spare?
    // Multiplied through by w_p, and split so nothing overflows 128 bits.
    const u128 budget = static_cast<u128>(spare_bps) * pivot.weight;
    const u128 filled = (capped_bps + below_bps) * pivot.weight;
    const bool reaches =
        filled <= budget &&
        static_cast<u128>(pivot.extra_bps) * (uncapped_weight + greater_weight) <= budget - filled;
    if (reaches) {  // everything up to the pivot's ratio is capped
      capped_bps += below_bps;
      lo = greater_begin;
    } else {  // the level stays below the pivot's ratio: it and above are not
      uncapped_weight += equal_weight + greater_weight;
      hi = less_end;
    }
  }
  if (lo == hi) return lo;

  // Fallback after too many rounds: sort the undecided range and walk up
  // (the textbook water-filling). Ties by id keep it independent of std::sort.
  std::sort(shares.begin() + static_cast<ptrdiff_t>(lo),
            shares.begin() + static_cast<ptrdiff_t>(hi), [](const Share& a, const Share& b) {
              const int c = CompareRatio(a, b);
              return c != 0 ? c < 0 : a.child < b.child;
            });
  u128 spare_rest = spare_bps - capped_bps;
  uint64_t weight_rest = uncapped_weight;
  for (size_t k = lo; k < hi; ++k) weight_rest += shares[k].weight;
  for (; lo < hi; ++lo) {
    const Share& s = shares[lo];
    // extra / weight <= spare_rest / weight_rest: the level reaches this cap.
    if (static_cast<u128>(s.extra_bps) * weight_rest > spare_rest * s.weight) break;
    spare_rest -= s.extra_bps;
    weight_rest -= s.weight;
    capped_bps += s.extra_bps;
  }
  uncapped_weight = weight_rest;
  return lo;
}

void Allocator::WaterFill(uint64_t spare_bps, std::span<Share> shares, Allocation& out) const {
  if (shares.empty() || spare_bps == 0) return;
  u128 wanted_bps = 0;
  for (const Share& s : shares) wanted_bps += s.extra_bps;
  if (wanted_bps <= spare_bps) {  // not congested: everyone takes all it wants
    for (const Share& s : shares) Give(out, s.child, s.extra_bps);
    return;
  }

  u128 capped_bps;
  uint64_t weight_sum;
  const size_t capped = SplitCapped(spare_bps, shares, capped_bps, weight_sum);
  for (size_t i = 0; i < capped; ++i) Give(out, shares[i].child, shares[i].extra_bps);
  // The capped extras fit under the level, so they fit in the spare; not all
  // children are capped (wanted > spare), so weight_sum > 0.
  spare_bps -= static_cast<uint64_t>(capped_bps);
  const std::span<Share> rest = shares.subspan(capped);
  uint64_t handed_bps = 0;
  if (weight_sum <= UINT32_MAX) {
    // spare = level * W + frac, so spare * w / W = level * w + frac * w / W,
    // and frac * w < 2^64: one 64-bit division per child instead of a
    // 128-bit one (a library call, the bulk of the time at a million).
    const uint64_t level = spare_bps / weight_sum;
    const uint64_t frac = spare_bps % weight_sum;
    for (Share& s : rest) {
      const uint64_t scaled = frac * s.weight;
      const uint64_t share_bps = level * s.weight + scaled / weight_sum;
      Give(out, s.child, share_bps);
      handed_bps += share_bps;
      s.extra_bps = scaled % weight_sum;
    }
  } else {
    for (Share& s : rest) {
      const u128 scaled = static_cast<u128>(spare_bps) * s.weight;
      const uint64_t share_bps = static_cast<uint64_t>(scaled / weight_sum);
      Give(out, s.child, share_bps);
      handed_bps += share_bps;
      s.extra_bps = static_cast<uint64_t>(scaled % weight_sum);  // < weight_sum < 2^64
    }
  }
  GiveLeftover(spare_bps - handed_bps, rest, out);
}

void Allocator::ScaleFloors(uint64_t amount_bps, u128 floors_bps, std::span<Share> shares,
                            Allocation& out) {
  // floor * amount / floors, with amount < floors: each share is strictly
  // below its floor, so the leftover +1 never lifts it past the floor.
  // Remainders are < floors; past 2^64 (guarantees summing beyond 18 Ebit/s)
  // they are compared on their top 64 bits.
  int shift = 0;
  while ((floors_bps >> shift) > UINT64_MAX) ++shift;
  uint64_t handed_bps = 0;
  for (Share& s : shares) {
    const u128 scaled = static_cast<u128>(amount_bps) * s.extra_bps;
    const uint64_t share_bps = static_cast<uint64_t>(scaled / floors_bps);
    Give(out, s.child, share_bps);
    handed_bps += share_bps;
    s.extra_bps = static_cast<uint64_t>((scaled % floors_bps) >> shift);
  }
  GiveLeftover(amount_bps - handed_bps, shares, out);
}

std::expected<void, std::string> Allocator::Allocate(const Problem& problem, Allocation& out) {
  if (auto valid = ValidateGroups(problem); !valid) return valid;
  if (auto valid = ScanTenants(problem); !valid) return valid;
  out.rate_bps.assign(problem.tenants.size(), 0);
  out.groups.assign(problem.groups.size(), GroupState{});
  AggregateGroups(problem, out);
  const uint32_t link = static_cast<uint32_t>(problem.groups.size());
  if (link > 0) FillChildren(problem, out);
  DistributeNode(problem, link, problem.capacity_bps, out);
  for (const uint32_t g : groups_by_depth_) DistributeNode(problem, g, out.groups[g].rate_bps, out);
  // Every node hands out exactly min(amount, sum of its children's wants).
  out.total_bps = out.link_overcommitted ? problem.capacity_bps
                                         : std::min(problem.capacity_bps, out.link_want_bps);
  return {};
}

std::expected<Allocation, std::string> Allocate(const Problem& problem) {
  Allocator allocator;
  Allocation out;
  if (auto done = allocator.Allocate(problem, out); !done) return std::unexpected(done.error());
  return out;
}

Explanation Explain(const Problem& problem, const Allocation& allocation, uint32_t tenant) {
  const TenantSpec& spec = problem.tenants[tenant];
  Explanation e;
  e.rate_bps = allocation.rate_bps[tenant];
  e.demand_bps = spec.demand_bps;
  e.guaranteed_bps = spec.guaranteed_bps;
  e.ceiling_bps = spec.ceiling_bps;
  e.weight = spec.weight;

  auto overcommitted_at = [&](uint32_t node) {
    return node == kNoGroup ? allocation.link_overcommitted
                            : allocation.groups[node].children_overcommitted;
  };
  // In an overcommitted node the whole rate is a (scaled) floor.
  e.floor_bps = overcommitted_at(spec.group) ? e.rate_bps : TenantFloor(spec);
  e.spare_bps = e.rate_bps - e.floor_bps;

  if (e.rate_bps >= TenantWant(spec)) {
    e.bound = spec.ceiling_bps < spec.demand_bps ? Bound::kCeiling : Bound::kDemand;
    return e;
  }
  // Below its want: find the first node up the tree that ran short. A group
  // at its want must be at its ceiling (at the sum of its children's wants
  // every child would have got all it wanted).
  for (uint32_t node = spec.group;; node = problem.groups[node].parent) {
    if (overcommitted_at(node)) {
      e.bound = Bound::kOvercommitted;
      e.group = node;
      return e;
    }
    if (node == kNoGroup) {
      e.bound = Bound::kNone;
      return e;
    }
    if (allocation.groups[node].rate_bps >= allocation.groups[node].want_bps) {
      e.bound = Bound::kGroupCeiling;
      e.group = node;
      return e;
    }
  }
}

void Hysteresis::Select(std::span<const uint64_t> pushed_bps, std::span<const uint64_t> next_bps,
                        std::span<const uint64_t> guaranteed_bps,
                        std::vector<uint32_t>& changed) const {
  for (uint32_t i = 0; i < next_bps.size(); ++i) {
    if (i >= pushed_bps.size()) {
      changed.push_back(i);
      continue;
    }
    const uint64_t old_bps = pushed_bps[i];
    const uint64_t new_bps = next_bps[i];
    if (old_bps == new_bps) continue;
    const uint64_t guaranteed = i < guaranteed_bps.size() ? guaranteed_bps[i] : 0;
    const bool crosses = (old_bps < guaranteed) != (new_bps < guaranteed);
    const uint64_t diff_bps = old_bps > new_bps ? old_bps - new_bps : new_bps - old_bps;
    const bool moved =
        static_cast<u128>(diff_bps) * 1'000'000 > static_cast<u128>(threshold_ppm_) * old_bps;
    if (crosses || moved) changed.push_back(i);
  }
}

}  // namespace shaper::control::alloc
