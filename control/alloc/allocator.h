// The control process's rate allocator: a hierarchical weighted max-min
// allocation of one link direction, link -> groups (nested) -> tenants.
//
// What it promises (DESIGN.md, "The sharing rule, exactly"). Every entity
// (tenant or group) has a *want* and a *floor*:
//   tenant: want  = min(demand, ceiling)
//           floor = min(want, guaranteed)
//   group:  want  = min(ceiling, sum of its children's wants)
//           floor = min(want, max(guaranteed, sum of its children's floors))
// At each node (the link, or a group) holding an amount A, every child first
// gets its floor; the rest, the *spare*, is shared among the children that
// want more in proportion to weight, none above its want, and what a child
// cannot take is shared again among the others, until the spare is used or
// nobody wants more. A group then shares what it got among its own children
// the same way. The result is work conserving at every node: a node hands out
// min(A, sum of its children's wants), exactly, to the bit per second.
//
// Why a group's floor takes the max with its children's floors: a validated
// policy never lets tenants' guarantees exceed their group's, but a tenant's
// guarantee is a promise to that tenant; if a group were given less than the
// floors inside it, the promise would break for reasons the operator never
// wrote. When the floors of a node exceed its amount all the same (a link
// whose guarantees exceed its shape rate, a group ceiling below the
// guarantees inside it), the node is *overcommitted*: its children get
// floor * A / sum-of-floors, i.e. every guarantee is scaled by the same
// factor, and there is no spare. That is the least surprising degradation.
//
// How: water-filling. At a node with spare S, child i can take extra
// e_i = want_i - floor_i with weight w_i. The final "water level" L (spare per
// unit of weight) satisfies S = f(L) = sum_i min(e_i, w_i * L); child i is
// capped (gets e_i) exactly when e_i / w_i <= L, and every other child gets
// w_i * L. Finding which children are capped is a selection problem, not a
// sorting one: pick a pivot child p, split the candidates by e_i / w_i
// against e_p / w_p, and evaluate f(e_p / w_p) <= S to learn on which side of
// the pivot the level lies; one side is settled (all capped, or all not) and
// the search continues in the other, as in quickselect. Expected O(n) per
// node, with pivots from a fixed-seed generator (the same input always takes
// the same path); after 2 log2(n) + 8 rounds (an unlucky input) the rest is
// sorted by e_i / w_i and walked up (the textbook water-filling, O(n log n)),
// so the worst case is O(n log n). Nodes whose children all fit (the link not
// congested) skip the search; children that want nothing beyond their floor
// never enter it. Both ways give the same capped set, so the result does not
// depend on which one ran.
//
// Arithmetic: integers in bits/s (uint64), products in 128 bits; ratios are
// compared by cross-multiplication, never by division, so the order is
// exact. Rounding: a share is floor(S_rest * w_i / W_rest), which never hands
// out more than the node holds; the few leftover bits/s (fewer than the
// number of uncapped children) go one each to the children whose shares lost
// the largest fractions (largest remainder, ties to the lowest id, tenants
// before groups): deterministic, and never past a want (an uncapped child's
// exact share is strictly below its want, so floor + 1 is at most its want).
// Each child is thus strictly within 1 bit/s of its exact real-valued share
// given its node's amount, and a tenant under d groups within d + 1 bits/s of
// the exact allocation.
//
// Explanations (`shaperctl explain`) are not stored per tenant: Explain()
// rebuilds one tenant's record from the problem and the allocation in
// O(depth), so a tick over a million tenants writes only their rates.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shaper::control::alloc {

// 128-bit intermediates for products of rates and weights; __extension__
// keeps -Wpedantic quiet about the GNU type.
__extension__ typedef unsigned __int128 Uint128;

inline constexpr uint32_t kNoGroup = UINT32_MAX;
// Children are named by a 32-bit id with the top bit telling groups apart.
inline constexpr uint32_t kMaxEntities = (1u << 31) - 1;

struct GroupSpec {
  uint32_t parent = kNoGroup;  // index into Problem::groups, or kNoGroup (the link)
  uint64_t guaranteed_bps = 0;
  uint64_t ceiling_bps = UINT64_MAX;
  uint32_t weight = 1;  // > 0
};

// 32 bytes: a million of them are read several times per tick.
struct TenantSpec {
  uint64_t guaranteed_bps = 0;
  uint64_t ceiling_bps = UINT64_MAX;
  uint64_t demand_bps = 0;
  uint32_t group = kNoGroup;  // index into Problem::groups, or kNoGroup (the link)
  uint32_t weight = 1;        // > 0
};
static_assert(sizeof(TenantSpec) == 32);

// One direction of one link.
struct Problem {
  uint64_t capacity_bps = 0;  // the shape rate
  std::span<const GroupSpec> groups;
  std::span<const TenantSpec> tenants;
};

struct GroupState {
  uint64_t rate_bps = 0;                // what it got from its parent; its children share it
  uint64_t want_bps = 0;                // min(ceiling, sum of its children's wants)
  uint64_t floor_bps = 0;               // its floor at its parent's level
  uint64_t children_floor_bps = 0;      // sum of its children's floors (saturating)
  bool children_overcommitted = false;  // rate < children_floor: floors were scaled down
};

struct Allocation {
  std::vector<uint64_t> rate_bps;   // per tenant
  std::vector<GroupState> groups;   // per group
  uint64_t total_bps = 0;           // sum of rate_bps == min(capacity, the link's want)
  uint64_t link_want_bps = 0;       // sum of the link's children's wants (saturating)
  bool link_overcommitted = false;  // the floors at the link exceeded its capacity
};

// What held a tenant where it is.
enum class Bound : uint8_t {
  kDemand,         // it got all it asked for
  kCeiling,        // held at its own ceiling (it asked for more)
  kGroupCeiling,   // an enclosing group reached its ceiling (Explanation::group)
  kOvercommitted,  // guarantees exceeded what its node (Explanation::group) had
  kNone,           // no cap: it got its weighted share of a spare that ran out
};
std::string_view BoundName(Bound bound);

struct Explanation {
  uint64_t rate_bps = 0;
  uint64_t demand_bps = 0;
  uint64_t guaranteed_bps = 0;
  uint64_t ceiling_bps = 0;
  uint32_t weight = 0;
  uint64_t floor_bps = 0;  // the part given as its floor (scaled when overcommitted)
  uint64_t spare_bps = 0;  // the part received from the spare
  Bound bound = Bound::kNone;
  uint32_t group = kNoGroup;  // the group that bound it (kGroupCeiling, kOvercommitted)
};

// Holds scratch space, so a control loop that allocates every tick does not
// reallocate. Not thread-safe; one per direction, or one used in turn.
class Allocator {
 public:
  // Rounds of the selection search per node before falling back to a sort;
  // kAutoRounds is 2 log2(n) + 8. Tests set a small value to drive the
  // fallback, which must give the same result.
  static constexpr uint32_t kAutoRounds = UINT32_MAX;
  explicit Allocator(uint32_t selection_rounds = kAutoRounds)
      : selection_rounds_(selection_rounds) {}

  // Fills `out`, reusing its storage. Fails (naming the field and the value)
  // only on a malformed problem: a group or parent index out of range, a
  // cycle of groups, a zero weight, too many entities.
  std::expected<void, std::string> Allocate(const Problem& problem, Allocation& out);

 private:
  struct Share {
    uint64_t extra_bps;  // what the child can still take (or its floor, when scaling
                         // floors); then the remainder of its share's division
    uint32_t weight;
    uint32_t child;  // tenant index, or kGroupBit | group index
  };

  struct Child {
    uint64_t floor_bps;
    uint64_t want_bps;
    uint32_t weight;
    uint32_t id;  // tenant index, or kGroupBit | group index
  };

  std::expected<void, std::string> ValidateGroups(const Problem& problem);
  std::expected<void, std::string> ScanTenants(const Problem& problem);
  void AggregateGroups(const Problem& problem, Allocation& out);
  void FillChildren(const Problem& problem, const Allocation& out);
  void DistributeNode(const Problem& problem, uint32_t node, uint64_t amount_bps, Allocation& out);
  void WaterFill(uint64_t spare_bps, std::span<Share> shares, Allocation& out) const;
  size_t SplitCapped(uint64_t spare_bps, std::span<Share> shares, Uint128& capped_bps,
                     uint64_t& uncapped_weight) const;
  static void ScaleFloors(uint64_t amount_bps, Uint128 floors_bps, std::span<Share> shares,
                          Allocation& out);

  std::vector<uint32_t> depth_;            // per group
  std::vector<uint32_t> groups_by_depth_;  // ascending depth: parents first
  std::vector<Uint128> want_sum_;          // per node (groups, then the link)
  std::vector<Uint128> floor_sum_;         // per node
  std::vector<uint32_t> child_begin_;      // per node + 1: offsets into children_
  std::vector<Child> children_;            // by node; unused when there are no groups
  std::vector<Share> shares_;
  std::vector<uint32_t> path_;
  uint32_t selection_rounds_;
};

// Convenience for one-off use (tests, `shaperctl check`).
std::expected<Allocation, std::string> Allocate(const Problem& problem);

// One tenant's record for `shaperctl explain`. `problem` must be the one
// `allocation` was computed from.
Explanation Explain(const Problem& problem, const Allocation& allocation, uint32_t tenant);

// Which tenants' new rates are worth pushing to the dataplane. A push costs a
// message and a plan-side update; a rate that moved by 0.1% is noise from
// the demand estimate. A tenant is selected when
//   - it has no pushed rate yet (index beyond `pushed_bps`), or
//   - |next - pushed| * 1e6 > threshold_ppm * pushed (relative to what the
//     dataplane enforces now, so a slow drift is pushed once it adds up), or
//   - it crosses its guarantee (pushed < guaranteed <= next or the reverse):
//     the floor is a promise, the share above it best effort, so moving
//     across the guarantee always matters even by a few bits/s.
// `guaranteed_bps` may be shorter than `next_bps` (missing = 0).
class Hysteresis {
 public:
  explicit Hysteresis(uint32_t threshold_ppm) : threshold_ppm_(threshold_ppm) {}
  // Appends the selected tenant indices, ascending, to `changed`.
  void Select(std::span<const uint64_t> pushed_bps, std::span<const uint64_t> next_bps,
              std::span<const uint64_t> guaranteed_bps, std::vector<uint32_t>& changed) const;

 private:
  uint32_t threshold_ppm_;
};

}  // namespace shaper::control::alloc
