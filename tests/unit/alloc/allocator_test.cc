// Hand-worked allocations: DESIGN.md's example, each rule of the sharing
// rule on its own, groups, rounding, errors, and the hysteresis helper.
#include "control/alloc/allocator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace shaper::control::alloc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kMbit = 1'000'000;
constexpr uint64_t kGreedy = 100'000 * kMbit;  // far above any ceiling here

TenantSpec Tenant(uint64_t guaranteed, uint64_t ceiling, uint32_t weight, uint64_t demand,
                  uint32_t group = kNoGroup) {
  TenantSpec t;
  t.group = group;
  t.guaranteed_bps = guaranteed;
  t.ceiling_bps = ceiling;
  t.weight = weight;
  t.demand_bps = demand;
  return t;
}

GroupSpec Group(uint64_t guaranteed, uint64_t ceiling, uint32_t weight,
                uint32_t parent = kNoGroup) {
  GroupSpec g;
  g.parent = parent;
  g.guaranteed_bps = guaranteed;
  g.ceiling_bps = ceiling;
  g.weight = weight;
  return g;
}

Allocation MustAllocate(uint64_t capacity, const std::vector<GroupSpec>& groups,
                        const std::vector<TenantSpec>& tenants) {
  auto result = Allocate(Problem{capacity, groups, tenants});
  EXPECT_TRUE(result.has_value()) << result.error();
  return result.value_or(Allocation{});
}

TEST(Allocator, DesignWorkedExample) {
  const std::vector<TenantSpec> tenants = {
      Tenant(100 * kMbit, 1000 * kMbit, 1, kGreedy),  // A
      Tenant(300 * kMbit, 400 * kMbit, 1, kGreedy),   // B
      Tenant(100 * kMbit, 1000 * kMbit, 3, kGreedy),  // C
  };
  const Problem problem{950 * kMbit, {}, tenants};
  const auto a = Allocate(problem);
  ASSERT_TRUE(a.has_value()) << a.error();
  EXPECT_THAT(a->rate_bps, ElementsAre(190 * kMbit, 390 * kMbit, 370 * kMbit));
  EXPECT_EQ(a->total_bps, 950 * kMbit);

  const Explanation ea = Explain(problem, *a, 0);
  EXPECT_EQ(ea.floor_bps, 100 * kMbit);
  EXPECT_EQ(ea.spare_bps, 90 * kMbit);
  EXPECT_EQ(ea.demand_bps, kGreedy);
  EXPECT_EQ(ea.weight, 1u);
  EXPECT_EQ(ea.bound, Bound::kNone);
  const Explanation ec = Explain(problem, *a, 2);
  EXPECT_EQ(ec.floor_bps, 100 * kMbit);
  EXPECT_EQ(ec.spare_bps, 270 * kMbit);
  EXPECT_EQ(ec.weight, 3u);
}

TEST(Allocator, DesignWorkedExampleWithBCappedAt350) {
  const std::vector<TenantSpec> tenants = {
      Tenant(100 * kMbit, 1000 * kMbit, 1, kGreedy),
      Tenant(300 * kMbit, 350 * kMbit, 1, kGreedy),
      Tenant(100 * kMbit, 1000 * kMbit, 3, kGreedy),
  };
  const Problem problem{950 * kMbit, {}, tenants};
  const auto a = Allocate(problem);
  ASSERT_TRUE(a.has_value()) << a.error();
  EXPECT_THAT(a->rate_bps, ElementsAre(200 * kMbit, 350 * kMbit, 400 * kMbit));
  const Explanation eb = Explain(problem, *a, 1);
  EXPECT_EQ(eb.bound, Bound::kCeiling);
  EXPECT_EQ(eb.floor_bps, 300 * kMbit);
  EXPECT_EQ(eb.spare_bps, 50 * kMbit);
  EXPECT_EQ(Explain(problem, *a, 0).bound, Bound::kNone);
  EXPECT_EQ(BoundName(eb.bound), "ceiling");
}

TEST(Allocator, DemandBelowGuaranteeTakesOnlyItsDemand) {
  const std::vector<TenantSpec> tenants = {
      Tenant(100 * kMbit, 1000 * kMbit, 1, 40 * kMbit),
      Tenant(100 * kMbit, 1000 * kMbit, 1, kGreedy),
  };
  const Problem problem{500 * kMbit, {}, tenants};
  const Allocation a = MustAllocate(problem.capacity_bps, {}, tenants);
  EXPECT_THAT(a.rate_bps, ElementsAre(40 * kMbit, 460 * kMbit));
  const Explanation e = Explain(problem, a, 0);
  EXPECT_EQ(e.bound, Bound::kDemand);
  EXPECT_EQ(e.floor_bps, 40 * kMbit);
  EXPECT_EQ(e.spare_bps, 0u);
}

TEST(Allocator, UncongestedLinkGivesEveryoneItsWant) {
  const std::vector<TenantSpec> tenants = {
      Tenant(0, 300 * kMbit, 1, 200 * kMbit),
      Tenant(10 * kMbit, 300 * kMbit, 7, kGreedy),
      Tenant(0, 300 * kMbit, 1, 0),
  };
  const Problem problem{10'000 * kMbit, {}, tenants};
  const Allocation a = MustAllocate(problem.capacity_bps, {}, tenants);
  EXPECT_THAT(a.rate_bps, ElementsAre(200 * kMbit, 300 * kMbit, 0u));
  EXPECT_EQ(a.total_bps, 500 * kMbit);
  EXPECT_EQ(a.link_want_bps, 500 * kMbit);
  EXPECT_EQ(Explain(problem, a, 0).bound, Bound::kDemand);
  EXPECT_EQ(Explain(problem, a, 1).bound, Bound::kCeiling);
  EXPECT_EQ(Explain(problem, a, 2).bound, Bound::kDemand);
}

TEST(Allocator, OvercommittedGuaranteesScaleInProportion) {
  const std::vector<TenantSpec> tenants = {
      Tenant(100, 1000, 5, kGreedy), Tenant(200, 1000, 1, kGreedy),
      Tenant(100, 1000, 1, 60),  // its floor is its demand, 60
  };
  const Problem problem{90, {}, tenants};
  const Allocation a = MustAllocate(90, {}, tenants);
  // Floors 100 + 200 + 60 = 360 on 90: each scaled by 1/4, weights ignored.
  EXPECT_THAT(a.rate_bps, ElementsAre(25u, 50u, 15u));
  EXPECT_TRUE(a.link_overcommitted);
  const Explanation e = Explain(problem, a, 1);
  EXPECT_EQ(e.bound, Bound::kOvercommitted);
  EXPECT_EQ(e.group, kNoGroup);
  EXPECT_EQ(e.floor_bps, 50u);
  EXPECT_EQ(e.spare_bps, 0u);
}

TEST(Allocator, RoundingNeverExceedsCapacityAndGoesToTheLargestRemainders) {
  const std::vector<TenantSpec> tenants(3, Tenant(0, 1000, 1, kGreedy));
  EXPECT_THAT(MustAllocate(10, {}, tenants).rate_bps, ElementsAre(4u, 3u, 3u));
  EXPECT_THAT(MustAllocate(11, {}, tenants).rate_bps, ElementsAre(4u, 4u, 3u));
  EXPECT_THAT(MustAllocate(12, {}, tenants).rate_bps, ElementsAre(4u, 4u, 4u));
  // Equal remainders above: ties to the lowest ids. Weights 1:2 on 10:
  // exact 3.33 / 6.67 -> 3 / 6, the leftover 1 to the larger fraction (0.67).
  const std::vector<TenantSpec> weighted = {Tenant(0, 1000, 1, kGreedy),
                                            Tenant(0, 1000, 2, kGreedy)};
  EXPECT_THAT(MustAllocate(10, {}, weighted).rate_bps, ElementsAre(3u, 7u));
  // 1:1:2 on 9: exact 2.25 / 2.25 / 4.5 -> 2 / 2 / 4, leftover 1 to id 2.
  const std::vector<TenantSpec> three = {Tenant(0, 1000, 1, kGreedy), Tenant(0, 1000, 1, kGreedy),
                                         Tenant(0, 1000, 2, kGreedy)};
  EXPECT_THAT(MustAllocate(9, {}, three).rate_bps, ElementsAre(2u, 2u, 5u));
}

TEST(Allocator, ZeroCapacityGivesNothing) {
  const std::vector<TenantSpec> tenants = {Tenant(5, 10, 1, 10), Tenant(0, 10, 1, 10)};
  const Allocation a = MustAllocate(0, {}, tenants);
  EXPECT_THAT(a.rate_bps, ElementsAre(0u, 0u));
  EXPECT_TRUE(a.link_overcommitted);
}

TEST(Allocator, HugeRatesUse128BitIntermediates) {
  // Default ceilings (UINT64_MAX) and greedy demands: sums overflow 64 bits.
  const std::vector<TenantSpec> tenants = {Tenant(0, UINT64_MAX, 1, UINT64_MAX),
                                           Tenant(0, UINT64_MAX, 3, UINT64_MAX),
                                           Tenant(0, UINT64_MAX, 4'000'000'000u, UINT64_MAX)};
  const uint64_t capacity = UINT64_MAX - 1;
  const Allocation a = MustAllocate(capacity, {}, tenants);
  EXPECT_EQ(a.link_want_bps, UINT64_MAX);
  EXPECT_EQ(a.rate_bps[0] + a.rate_bps[1] + a.rate_bps[2], capacity);
  const uint64_t unit = capacity / 4'000'000'004u;
  EXPECT_NEAR(static_cast<double>(a.rate_bps[0]), static_cast<double>(unit), 2.0);
  EXPECT_NEAR(static_cast<double>(a.rate_bps[1]), static_cast<double>(3 * unit), 4.0);
}

TEST(Allocator, GroupCeilingBindsItsTenants) {
  const std::vector<GroupSpec> groups = {Group(0, 300 * kMbit, 1)};
  const std::vector<TenantSpec> tenants = {
      Tenant(0, 1000 * kMbit, 1, kGreedy, 0),
      Tenant(0, 1000 * kMbit, 1, kGreedy, 0),
      Tenant(0, 1000 * kMbit, 1, kGreedy),
  };
  const Problem problem{1000 * kMbit, groups, tenants};
  const Allocation a = MustAllocate(problem.capacity_bps, groups, tenants);
  EXPECT_THAT(a.rate_bps, ElementsAre(150 * kMbit, 150 * kMbit, 700 * kMbit));
  EXPECT_EQ(a.groups[0].rate_bps, 300 * kMbit);
  const Explanation e = Explain(problem, a, 0);
  EXPECT_EQ(e.bound, Bound::kGroupCeiling);
  EXPECT_EQ(e.group, 0u);
  // Tenant 2 is below its ceiling: the link's spare ran out first.
  EXPECT_EQ(Explain(problem, a, 2).bound, Bound::kNone);
}

TEST(Allocator, GroupTakesItsWeightedShareAndSplitsItByChildWeights) {
  const std::vector<GroupSpec> groups = {Group(0, UINT64_MAX, 2)};
  const std::vector<TenantSpec> tenants = {
      Tenant(0, UINT64_MAX, 1, kGreedy, 0),
      Tenant(0, UINT64_MAX, 3, kGreedy, 0),
      Tenant(0, UINT64_MAX, 1, kGreedy),
  };
  const Allocation a = MustAllocate(900 * kMbit, groups, tenants);
  // Link level: group (w2) vs tenant 2 (w1) -> 600 / 300; group: 1:3.
  EXPECT_EQ(a.groups[0].rate_bps, 600 * kMbit);
  EXPECT_THAT(a.rate_bps, ElementsAre(150 * kMbit, 450 * kMbit, 300 * kMbit));
}

TEST(Allocator, GroupGuaranteeHoldsEvenWhenItsTenantsHaveNone) {
  const std::vector<GroupSpec> groups = {Group(500 * kMbit, UINT64_MAX, 1)};
  std::vector<TenantSpec> tenants = {
      Tenant(0, UINT64_MAX, 1, kGreedy, 0),
      Tenant(0, UINT64_MAX, 1, kGreedy),
  };
  Allocation a = MustAllocate(600 * kMbit, groups, tenants);
  // Floor 500 for the group, spare 100 shared 1:1.
  EXPECT_EQ(a.groups[0].floor_bps, 500 * kMbit);
  EXPECT_THAT(a.rate_bps, ElementsAre(550 * kMbit, 50 * kMbit));

  // A group's guarantee is limited by what its subtree wants.
  tenants[0].demand_bps = 200 * kMbit;
  a = MustAllocate(600 * kMbit, groups, tenants);
  EXPECT_EQ(a.groups[0].floor_bps, 200 * kMbit);
  EXPECT_THAT(a.rate_bps, ElementsAre(200 * kMbit, 400 * kMbit));
}

TEST(Allocator, NestedGroupsShareLevelByLevel) {
  // link -> {G0 (ceiling 600) -> {G1 -> {t1, t2}, t0}, t3}
  const std::vector<GroupSpec> groups = {Group(0, 600 * kMbit, 1), Group(0, UINT64_MAX, 1, 0)};
  const std::vector<TenantSpec> tenants = {
      Tenant(0, UINT64_MAX, 1, kGreedy, 0),
      Tenant(0, UINT64_MAX, 1, kGreedy, 1),
      Tenant(0, UINT64_MAX, 1, kGreedy, 1),
      Tenant(0, UINT64_MAX, 1, kGreedy),
  };
  Problem problem{1000 * kMbit, groups, tenants};
  Allocation a = MustAllocate(problem.capacity_bps, groups, tenants);
  EXPECT_EQ(a.groups[0].rate_bps, 500 * kMbit);
  EXPECT_EQ(a.groups[1].rate_bps, 250 * kMbit);
  EXPECT_THAT(a.rate_bps, ElementsAre(250 * kMbit, 125 * kMbit, 125 * kMbit, 500 * kMbit));
  EXPECT_EQ(Explain(problem, a, 1).bound, Bound::kNone);  // the link ran out first

  problem.capacity_bps = 2000 * kMbit;
  a = MustAllocate(problem.capacity_bps, groups, tenants);
  EXPECT_THAT(a.rate_bps, ElementsAre(300 * kMbit, 150 * kMbit, 150 * kMbit, 1400 * kMbit));
  const Explanation e = Explain(problem, a, 1);
  EXPECT_EQ(e.bound, Bound::kGroupCeiling);
  EXPECT_EQ(e.group, 0u);  // G0's ceiling, two levels up
}

TEST(Allocator, GroupCeilingBelowTheGuaranteesInsideScalesThem) {
  const std::vector<GroupSpec> groups = {Group(0, 100, 1)};
  const std::vector<TenantSpec> tenants = {Tenant(100, 1000, 1, kGreedy, 0),
                                           Tenant(100, 1000, 1, kGreedy, 0)};
  const Problem problem{1000, groups, tenants};
  const Allocation a = MustAllocate(1000, groups, tenants);
  EXPECT_THAT(a.rate_bps, ElementsAre(50u, 50u));
  EXPECT_TRUE(a.groups[0].children_overcommitted);
  EXPECT_FALSE(a.link_overcommitted);
  const Explanation e = Explain(problem, a, 0);
  EXPECT_EQ(e.bound, Bound::kOvercommitted);
  EXPECT_EQ(e.group, 0u);
}

TEST(Allocator, MalformedProblemsNameTheFieldAndValue) {
  const std::vector<TenantSpec> bad_group = {Tenant(0, 10, 1, 10), Tenant(0, 10, 1, 10, 5)};
  auto r = Allocate(Problem{100, {}, bad_group});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr("tenants[1].group: 5"));

  const std::vector<TenantSpec> zero_weight = {Tenant(0, 10, 0, 10)};
  r = Allocate(Problem{100, {}, zero_weight});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr("tenants[0].weight: 0"));

  const std::vector<GroupSpec> cycle = {Group(0, 10, 1, 2), Group(0, 10, 1), Group(0, 10, 1, 0)};
  r = Allocate(Problem{100, cycle, {}});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr("cycle"));
  EXPECT_THAT(r.error(), HasSubstr("groups[2].parent: 0"));

  const std::vector<GroupSpec> self = {Group(0, 10, 1, 0)};
  r = Allocate(Problem{100, self, {}});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr("groups[0].parent: 0"));

  const std::vector<GroupSpec> out_of_range = {Group(0, 10, 1, 7)};
  r = Allocate(Problem{100, out_of_range, {}});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr("groups[0].parent: 7"));

  const std::vector<GroupSpec> zero_group_weight = {Group(0, 10, 0)};
  r = Allocate(Problem{100, zero_group_weight, {}});
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error(), HasSubstr("groups[0].weight: 0"));
}

TEST(Allocator, ReusedAllocatorMatchesAFreshOne) {
  const std::vector<GroupSpec> groups_a = {Group(0, 300, 1), Group(10, 200, 2, 0)};
  const std::vector<TenantSpec> tenants_a = {Tenant(5, 100, 1, 90, 1), Tenant(0, 500, 2, 400),
                                             Tenant(1, 50, 1, 60, 0)};
  const std::vector<GroupSpec> groups_b = {Group(0, 80, 3)};
  const std::vector<TenantSpec> tenants_b = {Tenant(0, 100, 1, 90, 0), Tenant(20, 500, 2, 400)};
  Allocator allocator;
  Allocation out;
  ASSERT_TRUE(allocator.Allocate(Problem{400, groups_a, tenants_a}, out).has_value());
  ASSERT_TRUE(allocator.Allocate(Problem{150, groups_b, tenants_b}, out).has_value());
  const Allocation fresh = MustAllocate(150, groups_b, tenants_b);
  EXPECT_EQ(out.rate_bps, fresh.rate_bps);
  ASSERT_EQ(out.groups.size(), 1u);
  EXPECT_EQ(out.groups[0].rate_bps, fresh.groups[0].rate_bps);
  // Spare 130 at level 26 per weight: the group (80 / 3 = 26.7) stays just
  // under its ceiling: 78 for it, 20 + 52 for tenant 1.
  EXPECT_THAT(out.rate_bps, ElementsAre(78u, 72u));
}

// --- Hysteresis ----------------------------------------------------------

std::vector<uint32_t> Select(uint32_t ppm, const std::vector<uint64_t>& pushed,
                             const std::vector<uint64_t>& next,
                             const std::vector<uint64_t>& guaranteed) {
  std::vector<uint32_t> changed;
  Hysteresis(ppm).Select(pushed, next, guaranteed, changed);
  return changed;
}

TEST(Hysteresis, SmallChangesAreHeldBackLargeOnesPushed) {
  const std::vector<uint64_t> pushed = {1'000'000, 1'000'000, 1'000'000, 1'000'000};
  // 1% threshold: +0.5%, exactly +1% (not beyond), +1.0001%, -2%.
  const std::vector<uint64_t> next = {1'005'000, 1'010'000, 1'010'001, 980'000};
  EXPECT_THAT(Select(10'000, pushed, next, {}), ElementsAre(2u, 3u));
  EXPECT_THAT(Select(10'000, pushed, pushed, {}), ElementsAre());
}

TEST(Hysteresis, NewTenantsAndMovesFromOrToZeroArePushed) {
  EXPECT_THAT(Select(10'000, {100, 0, 100}, {100, 1, 0, 7, 100}, {}), ElementsAre(1u, 2u, 3u, 4u));
}

TEST(Hysteresis, CrossingTheGuaranteeIsAlwaysPushed) {
  const std::vector<uint64_t> guaranteed = {1'000'000, 1'000'000, 1'000'000, 1'000'000};
  const std::vector<uint64_t> pushed = {999'999, 1'000'000, 999'000, 1'000'500};
  // Up onto the guarantee, down below it, below to below, above to above.
  const std::vector<uint64_t> next = {1'000'000, 999'999, 999'500, 1'000'100};
  EXPECT_THAT(Select(10'000, pushed, next, guaranteed), ElementsAre(0u, 1u));
}

TEST(Hysteresis, DriftIsMeasuredAgainstWhatWasPushed) {
  // The caller keeps the pushed rate; many sub-threshold steps add up.
  std::vector<uint64_t> pushed = {1000};
  std::vector<uint32_t> pushes_at;
  for (uint64_t step = 1; step <= 6; ++step) {
    const std::vector<uint64_t> next = {1000 + 4 * step};
    if (!Select(10'000, pushed, next, {}).empty()) {
      pushes_at.push_back(static_cast<uint32_t>(step));
      pushed = next;
    }
  }
  // 1004, 1008: within 1% of 1000; 1012: beyond, pushed; 1016, 1020: within
  // 1% of 1012; 1024: beyond.
  EXPECT_THAT(pushes_at, ElementsAre(3u, 6u));
}

}  // namespace
}  // namespace shaper::control::alloc
