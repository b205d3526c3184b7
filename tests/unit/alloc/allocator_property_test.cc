// The allocator against its promises on thousands of seeded random
// instances, and against an independent reference.
//
// The reference shares the same *definition* (DESIGN.md's rule, level by
// level) but computes it another way: exact rational numbers and progressive
// filling by events (raise every active child at its weight until the spare
// runs out or the next child reaches its want, drop that child, repeat), with
// the tree walked recursively. The allocator sorts by extra/weight, works in
// integers and rounds; so the two agree within the rounding bound the
// allocator documents: a tenant under d groups is within d + 1 bits/s.
#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "control/alloc/allocator.h"

namespace shaper::control::alloc {
namespace {

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

// --- Exact rationals; overflow throws, so the test fails instead of lying. ---

i128 CheckedMul(i128 a, i128 b) {
  i128 r;
  if (__builtin_mul_overflow(a, b, &r)) throw std::overflow_error("rational overflow (mul)");
  return r;
}
i128 CheckedAdd(i128 a, i128 b) {
  i128 r;
  if (__builtin_add_overflow(a, b, &r)) throw std::overflow_error("rational overflow (add)");
  return r;
}
i128 Gcd(i128 a, i128 b) {
  if (a < 0) a = -a;
  while (b != 0) {
    const i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

struct Q {
  i128 n = 0;
  i128 d = 1;  // > 0, gcd(n, d) == 1
};
Q Make(i128 n, i128 d) {
  if (d < 0) {
    n = -n;
    d = -d;
  }
  const i128 g = Gcd(n, d);
  return g > 1 ? Q{n / g, d / g} : Q{n, d};
}
Q FromInt(u128 v) {
  return Q{static_cast<i128>(v), 1};
}
Q operator+(Q a, Q b) {
  const i128 g = Gcd(a.d, b.d);
  return Make(CheckedAdd(CheckedMul(a.n, b.d / g), CheckedMul(b.n, a.d / g)),
              CheckedMul(a.d / g, b.d));
}
Q operator-(Q a, Q b) {
  return a + Q{-b.n, b.d};
}
Q operator*(Q a, Q b) {
  return Make(CheckedMul(a.n, b.n), CheckedMul(a.d, b.d));
}
Q operator/(Q a, Q b) {
  return Make(CheckedMul(a.n, b.d), CheckedMul(a.d, b.n));
}
bool operator<(Q a, Q b) {
  return CheckedMul(a.n, b.d) < CheckedMul(b.n, a.d);
}
bool operator==(Q a, Q b) {
  return a.n == b.n && a.d == b.d;
}
Q Min(Q a, Q b) {
  return b < a ? b : a;
}
double ToDouble(Q q) {
  return static_cast<double>(q.n) / static_cast<double>(q.d);
}

// --- Instances ---------------------------------------------------------------

struct Instance {
  uint64_t capacity_bps = 0;
  std::vector<GroupSpec> groups;
  std::vector<TenantSpec> tenants;
  Problem problem() const { return Problem{capacity_bps, groups, tenants}; }
};

std::string Describe(const Instance& in) {
  std::ostringstream s;
  s << "capacity " << in.capacity_bps << "\n";
  for (size_t g = 0; g < in.groups.size(); ++g) {
    const GroupSpec& x = in.groups[g];
    s << "  group " << g << ": parent "
      << static_cast<int64_t>(x.parent == kNoGroup ? -1 : x.parent) << " g " << x.guaranteed_bps
      << " c " << x.ceiling_bps << " w " << x.weight << "\n";
  }
  for (size_t t = 0; t < in.tenants.size(); ++t) {
    const TenantSpec& x = in.tenants[t];
    s << "  tenant " << t << ": group " << static_cast<int64_t>(x.group == kNoGroup ? -1 : x.group)
      << " g " << x.guaranteed_bps << " c " << x.ceiling_bps << " w " << x.weight << " d "
      << x.demand_bps << "\n";
  }
  return s.str();
}

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  bool OneIn(uint64_t n) { return Uniform(0, n - 1) == 0; }

 private:
  std::mt19937_64 rng_;
};

// Groups name lower-numbered parents, so no cycles and index order is
// parent-first. `valid` makes it a policy the loader would accept (guarantees
// fit their group's, the link's; guaranteed <= ceiling), where every floor
// must hold; otherwise anything goes, including overcommitted guarantees.
Instance RandomInstance(Random& r, uint64_t scale, uint32_t max_weight, bool valid,
                        uint32_t max_tenants, uint32_t max_groups) {
  Instance in;
  const uint64_t unbounded = 1000 * scale;
  const uint32_t groups = static_cast<uint32_t>(r.Uniform(0, max_groups));
  for (uint32_t g = 0; g < groups; ++g) {
    GroupSpec x;
    x.parent = (g > 0 && r.OneIn(2)) ? static_cast<uint32_t>(r.Uniform(0, g - 1)) : kNoGroup;
    x.guaranteed_bps = r.OneIn(3) ? 0 : r.Uniform(0, scale);
    x.ceiling_bps = r.OneIn(4) ? unbounded : r.Uniform(valid ? x.guaranteed_bps : 0, 2 * scale);
    x.weight = static_cast<uint32_t>(r.Uniform(1, max_weight));
    in.groups.push_back(x);
  }
  const uint32_t tenants = static_cast<uint32_t>(r.Uniform(1, max_tenants));
  for (uint32_t t = 0; t < tenants; ++t) {
    TenantSpec x;
    const uint64_t pick = r.Uniform(0, groups);
    x.group = pick == groups ? kNoGroup : static_cast<uint32_t>(pick);
    x.guaranteed_bps = r.OneIn(3) ? 0 : r.Uniform(0, scale / 2);
    x.ceiling_bps = r.OneIn(4) ? unbounded : r.Uniform(valid ? x.guaranteed_bps : 0, 2 * scale);
    x.weight = static_cast<uint32_t>(r.Uniform(1, max_weight));
    const uint64_t kind = r.Uniform(0, 5);
    x.demand_bps = kind == 0 ? 0 : kind <= 2 ? 10 * scale : r.Uniform(0, 2 * scale);
    in.tenants.push_back(x);
  }
  in.capacity_bps = r.Uniform(0, 4 * scale);
  if (valid) {
    std::vector<uint64_t> inner(groups + 1, 0);  // sum of children's guarantees; [groups] = link
    for (const TenantSpec& t : in.tenants)
      inner[t.group == kNoGroup ? groups : t.group] += t.guaranteed_bps;
    for (uint32_t g = groups; g-- > 0;) {
      GroupSpec& x = in.groups[g];
      x.guaranteed_bps = std::max(x.guaranteed_bps, inner[g]);
      x.ceiling_bps = std::max(x.ceiling_bps, x.guaranteed_bps);
      inner[x.parent == kNoGroup ? groups : x.parent] += x.guaranteed_bps;
    }
    in.capacity_bps = std::max(in.capacity_bps, inner[groups]);
  }
  return in;
}

// The tree, computed independently of the allocator: children per node
// (node G = the link), wants and floors by recursion.
struct Child {
  bool is_group;
  uint32_t index;
};

struct Tree {
  explicit Tree(const Instance& in) : in_(in), kids(in.groups.size() + 1) {
    const uint32_t link = static_cast<uint32_t>(in.groups.size());
    for (uint32_t t = 0; t < in.tenants.size(); ++t) {
      kids[in.tenants[t].group == kNoGroup ? link : in.tenants[t].group].push_back({false, t});
    }
    for (uint32_t g = 0; g < in.groups.size(); ++g) {
      kids[in.groups[g].parent == kNoGroup ? link : in.groups[g].parent].push_back({true, g});
    }
  }
  u128 Want(Child c) const {
    if (!c.is_group)
      return std::min(in_.tenants[c.index].demand_bps, in_.tenants[c.index].ceiling_bps);
    u128 sum = 0;
    for (const Child k : kids[c.index]) sum += Want(k);
    return std::min<u128>(in_.groups[c.index].ceiling_bps, sum);
  }
  u128 Floor(Child c) const {
    if (!c.is_group) return std::min<u128>(Want(c), in_.tenants[c.index].guaranteed_bps);
    return std::min(Want(c),
                    std::max<u128>(in_.groups[c.index].guaranteed_bps, ChildFloors(c.index)));
  }
  u128 ChildFloors(uint32_t node) const {
    u128 sum = 0;
    for (const Child k : kids[node]) sum += Floor(k);
    return sum;
  }
  u128 Rate(const Allocation& a, Child c) const {
    return c.is_group ? a.groups[c.index].rate_bps : a.rate_bps[c.index];
  }
  uint32_t Weight(Child c) const {
    return c.is_group ? in_.groups[c.index].weight : in_.tenants[c.index].weight;
  }
  uint32_t Depth(uint32_t group) const {  // groups on the path, counting `group`
    uint32_t d = 0;
    for (uint32_t g = group; g != kNoGroup; g = in_.groups[g].parent) ++d;
    return d;
  }

  const Instance& in_;
  std::vector<std::vector<Child>> kids;
};

// --- The reference: exact progressive filling, level by level. ---

class Reference {
 private:
  Tree tree_;  // first: the constructor needs it before distributing

 public:
  explicit Reference(const Instance& in)
      : tree_(in), tenant_rate(in.tenants.size()), group_rate(in.groups.size()) {
    Distribute(static_cast<uint32_t>(in.groups.size()), FromInt(in.capacity_bps));
  }
  std::vector<Q> tenant_rate;
  std::vector<Q> group_rate;

 private:
  void Distribute(uint32_t node, Q amount) {
    const std::vector<Child>& kids = tree_.kids[node];
    std::vector<Q> x(kids.size());
    std::vector<Q> want(kids.size());
    std::vector<Q> floor(kids.size());
    Q floors;
    for (size_t i = 0; i < kids.size(); ++i) {
      want[i] = FromInt(tree_.Want(kids[i]));
      floor[i] = FromInt(tree_.Floor(kids[i]));
      floors = floors + floor[i];
    }
    if (amount < floors) {
      for (size_t i = 0; i < kids.size(); ++i) x[i] = floor[i] * amount / floors;
    } else {
      Q spare = amount - floors;
      std::vector<bool> active(kids.size());
      for (size_t i = 0; i < kids.size(); ++i) {
        x[i] = floor[i];
        active[i] = floor[i] < want[i];
      }
      while (Q{} < spare) {
        Q weights;
        for (size_t i = 0; i < kids.size(); ++i) {
          if (active[i]) weights = weights + FromInt(tree_.Weight(kids[i]));
        }
        if (weights == Q{}) break;
        Q step = spare / weights;  // the level rise that would use all the spare
        for (size_t i = 0; i < kids.size(); ++i) {
          if (active[i]) step = Min(step, (want[i] - x[i]) / FromInt(tree_.Weight(kids[i])));
        }
        for (size_t i = 0; i < kids.size(); ++i) {
          if (!active[i]) continue;
          x[i] = x[i] + FromInt(tree_.Weight(kids[i])) * step;
          if (x[i] == want[i]) active[i] = false;
        }
        spare = spare - weights * step;
      }
    }
    for (size_t i = 0; i < kids.size(); ++i) {
      if (kids[i].is_group) {
        group_rate[kids[i].index] = x[i];
        Distribute(kids[i].index, x[i]);
      } else {
        tenant_rate[kids[i].index] = x[i];
      }
    }
  }
};

// |actual - expected| < bound, exactly.
::testing::AssertionResult Within(uint64_t actual, Q expected, uint32_t bound) {
  const Q diff = FromInt(actual) - expected;
  const Q abs = diff.n < 0 ? Q{-diff.n, diff.d} : diff;
  if (abs < FromInt(bound)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << actual << " vs exact " << ToDouble(expected) << " (bound " << bound << ")";
}

void CheckAgainstReference(const Instance& in, const Allocation& a) {
  const Reference ref(in);
  const Tree tree(in);
  for (uint32_t t = 0; t < in.tenants.size(); ++t) {
    EXPECT_TRUE(Within(a.rate_bps[t], ref.tenant_rate[t], tree.Depth(in.tenants[t].group) + 1))
        << "tenant " << t;
  }
  for (uint32_t g = 0; g < in.groups.size(); ++g) {
    EXPECT_TRUE(Within(a.groups[g].rate_bps, ref.group_rate[g], tree.Depth(g))) << "group " << g;
  }
}

// --- Properties ----------------------------------------------------------------

void CheckProperties(const Instance& in, const Allocation& a, bool valid) {
  const Tree tree(in);
  const uint32_t link = static_cast<uint32_t>(in.groups.size());
  const Problem problem = in.problem();

  // Work conserving, and the totals add up.
  u128 link_want = 0;
  for (const Child k : tree.kids[link]) link_want += tree.Want(k);
  u128 sum = 0;
  for (const uint64_t r : a.rate_bps) sum += r;
  EXPECT_TRUE(sum == a.total_bps);
  EXPECT_TRUE(sum == std::min<u128>(in.capacity_bps, link_want)) << "not work conserving";

  // Caps always; floors when the policy is valid.
  for (uint32_t t = 0; t < in.tenants.size(); ++t) {
    const TenantSpec& x = in.tenants[t];
    EXPECT_LE(a.rate_bps[t], std::min(x.demand_bps, x.ceiling_bps)) << "tenant " << t;
    if (valid) {
      EXPECT_GE(a.rate_bps[t], std::min(x.demand_bps, x.guaranteed_bps)) << "tenant " << t;
    }
    const Explanation e = Explain(problem, a, t);
    EXPECT_EQ(e.floor_bps + e.spare_bps, a.rate_bps[t]) << "tenant " << t;
    switch (e.bound) {
      case Bound::kDemand:
        EXPECT_EQ(a.rate_bps[t], x.demand_bps) << "tenant " << t;
        break;
      case Bound::kCeiling:
        EXPECT_EQ(a.rate_bps[t], x.ceiling_bps) << "tenant " << t;
        break;
      case Bound::kGroupCeiling:
        ASSERT_LT(e.group, in.groups.size());
        EXPECT_EQ(a.groups[e.group].rate_bps, in.groups[e.group].ceiling_bps) << "tenant " << t;
        break;
      case Bound::kOvercommitted:
        EXPECT_FALSE(valid) << "tenant " << t;
        break;
      case Bound::kNone:
        EXPECT_EQ(a.total_bps, in.capacity_bps) << "tenant " << t << ": link not full";
        break;
    }
  }
  EXPECT_EQ(a.link_overcommitted, in.capacity_bps < tree.ChildFloors(link));
  if (valid) {
    EXPECT_FALSE(a.link_overcommitted);
  }

  // Groups: hand out exactly what they got, within their limits.
  for (uint32_t g = 0; g < in.groups.size(); ++g) {
    const Child self{true, g};
    u128 children = 0;
    for (const Child k : tree.kids[g]) children += tree.Rate(a, k);
    EXPECT_TRUE(children == a.groups[g].rate_bps) << "group " << g;
    EXPECT_LE(a.groups[g].rate_bps, in.groups[g].ceiling_bps) << "group " << g;
    EXPECT_TRUE(a.groups[g].rate_bps <= tree.Want(self)) << "group " << g;
    if (valid) {
      EXPECT_TRUE(a.groups[g].rate_bps >= tree.Floor(self)) << "group " << g;
      EXPECT_FALSE(a.groups[g].children_overcommitted) << "group " << g;
    }
  }

  // Weights, at every node that had a spare: among children still below
  // their want, extras (above floor) are in proportion to weight within
  // rounding; a child that reached its want has no more per weight than
  // one that did not.
  for (uint32_t node = 0; node <= link; ++node) {
    const uint64_t amount = node == link ? in.capacity_bps : a.groups[node].rate_bps;
    if (amount < tree.ChildFloors(node)) continue;
    const std::vector<Child>& kids = tree.kids[node];
    for (const Child u : kids) {
      const u128 want_u = tree.Want(u);
      const u128 rate_u = tree.Rate(a, u);
      if (rate_u >= want_u) continue;
      const u128 x_u = rate_u - tree.Floor(u);
      const u128 w_u = tree.Weight(u);
      for (const Child o : kids) {
        const u128 rate_o = tree.Rate(a, o);
        const u128 floor_o = tree.Floor(o);
        const u128 want_o = tree.Want(o);
        if (want_o == floor_o || (o.is_group == u.is_group && o.index == u.index)) continue;
        const u128 x_o = rate_o - floor_o;
        const u128 w_o = tree.Weight(o);
        if (rate_o < want_o) {
          const u128 lhs = x_u * w_o;
          const u128 rhs = x_o * w_u;
          EXPECT_TRUE((lhs > rhs ? lhs - rhs : rhs - lhs) < w_u + w_o)
              << "node " << node << ": uncapped children out of weight proportion";
        } else {
          // x_o <= L * w_o + 1 (it may have reached its want by a
          // leftover bit/s) and L * w_u < x_u + 1.
          EXPECT_TRUE(x_o * w_u < (x_u + 1) * w_o + w_u)
              << "node " << node << ": a capped child got more per weight than an uncapped one";
        }
      }
    }
  }
}

struct Sweep {
  uint64_t seed;
  int instances;
  uint64_t scale;
  uint32_t max_weight;
  bool valid;
  uint32_t max_tenants;
  uint32_t max_groups;
  bool reference;
};

// The selection search and its sort fallback must settle the same capped
// set, so allocators forced into the fallback early agree bit for bit.
void CheckSameAs(const Allocation& expected, const Allocation& actual, const char* what) {
  EXPECT_EQ(expected.rate_bps, actual.rate_bps) << what;
  ASSERT_EQ(expected.groups.size(), actual.groups.size()) << what;
  for (size_t g = 0; g < expected.groups.size(); ++g) {
    EXPECT_EQ(expected.groups[g].rate_bps, actual.groups[g].rate_bps) << what << ", group " << g;
  }
}

void RunSweep(const Sweep& sweep) {
  Random r(sweep.seed);
  Allocator allocator;  // reused across instances, as the control loop does
  Allocator sort_only(0);
  Allocator one_round(1);
  Allocation a;
  Allocation b;
  for (int i = 0; i < sweep.instances; ++i) {
    const Instance in = RandomInstance(r, sweep.scale, sweep.max_weight, sweep.valid,
                                       sweep.max_tenants, sweep.max_groups);
    const auto done = allocator.Allocate(in.problem(), a);
    ASSERT_TRUE(done.has_value()) << done.error() << "\n" << Describe(in);
    CheckProperties(in, a, sweep.valid);
    if (sweep.reference) CheckAgainstReference(in, a);
    ASSERT_TRUE(sort_only.Allocate(in.problem(), b).has_value());
    CheckSameAs(a, b, "sort only");
    ASSERT_TRUE(one_round.Allocate(in.problem(), b).has_value());
    CheckSameAs(a, b, "one selection round, then sort");
    if (::testing::Test::HasFailure()) {
      FAIL() << "instance " << i << " of seed " << sweep.seed << ":\n" << Describe(in);
    }
  }
}

TEST(AllocatorProperties, ValidSmallInstancesRoundingHeavy) {
  RunSweep({.seed = 1,
            .instances = 4000,
            .scale = 100,
            .max_weight = 5,
            .valid = true,
            .max_tenants = 6,
            .max_groups = 2,
            .reference = true});
}

TEST(AllocatorProperties, ArbitrarySmallInstancesIncludingOvercommit) {
  RunSweep({.seed = 2,
            .instances = 4000,
            .scale = 100,
            .max_weight = 5,
            .valid = false,
            .max_tenants = 6,
            .max_groups = 2,
            .reference = true});
}

TEST(AllocatorProperties, LargeRatesAndWeights) {
  RunSweep({.seed = 3,
            .instances = 4000,
            .scale = 10'000'000'000,
            .max_weight = 100,
            .valid = false,
            .max_tenants = 6,
            .max_groups = 2,
            .reference = true});
  RunSweep({.seed = 4,
            .instances = 2000,
            .scale = 10'000'000'000,
            .max_weight = 100,
            .valid = true,
            .max_tenants = 6,
            .max_groups = 2,
            .reference = true});
}

TEST(AllocatorProperties, BiggerTreesDeeperNesting) {
  RunSweep({.seed = 5,
            .instances = 500,
            .scale = 1'000'000,
            .max_weight = 50,
            .valid = true,
            .max_tenants = 80,
            .max_groups = 6,
            .reference = true});
  RunSweep({.seed = 6,
            .instances = 500,
            .scale = 1'000'000,
            .max_weight = 50,
            .valid = false,
            .max_tenants = 80,
            .max_groups = 6,
            .reference = false});
}

TEST(AllocatorProperties, LargeFlatAndGroupedWithManyTies) {
  // Small rates and weights over thousands of tenants: many equal ratios,
  // many selection rounds.
  RunSweep({.seed = 7,
            .instances = 60,
            .scale = 20,
            .max_weight = 3,
            .valid = false,
            .max_tenants = 3000,
            .max_groups = 0,
            .reference = false});
  RunSweep({.seed = 8,
            .instances = 60,
            .scale = 1'000'000,
            .max_weight = 20,
            .valid = true,
            .max_tenants = 3000,
            .max_groups = 8,
            .reference = false});
}

// The reference is only worth trusting if it reproduces DESIGN.md too.
TEST(AllocatorReference, ReproducesTheDesignExample) {
  Instance in;
  in.capacity_bps = 950;
  TenantSpec a;
  a.guaranteed_bps = 100;
  a.ceiling_bps = 1000;
  a.weight = 1;
  a.demand_bps = 10'000;
  TenantSpec b = a;
  b.guaranteed_bps = 300;
  b.ceiling_bps = 350;
  TenantSpec c = a;
  c.weight = 3;
  in.tenants = {a, b, c};
  const Reference ref(in);
  EXPECT_TRUE(ref.tenant_rate[0] == FromInt(200));
  EXPECT_TRUE(ref.tenant_rate[1] == FromInt(350));
  EXPECT_TRUE(ref.tenant_rate[2] == FromInt(400));
}

}  // namespace
}  // namespace shaper::control::alloc
