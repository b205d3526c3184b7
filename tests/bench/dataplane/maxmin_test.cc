// MaxMinReference is the yardstick of --accuracy: checked here against
// DESIGN.md's worked example, so an error in the bench cannot pass as an
// error in the scheduler.
#include "tests/bench/dataplane/maxmin.h"

#include <gtest/gtest.h>

namespace shaper::bench {
namespace {

constexpr double kMbit = 1e6;

TEST(MaxMinReference, DesignWorkedExample) {
  // Shape rate 950, all greedy: A 100/1000 w1, B 300/400 w1, C 100/1000 w3.
  const std::vector<TenantDemand> t = {
      {1e12, 100 * kMbit, 1000 * kMbit, 1},
      {1e12, 300 * kMbit, 400 * kMbit, 1},
      {1e12, 100 * kMbit, 1000 * kMbit, 3},
  };
  const auto a = MaxMinReference(950 * kMbit, t);
  EXPECT_NEAR(a[0], 190 * kMbit, 1);
  EXPECT_NEAR(a[1], 390 * kMbit, 1);
  EXPECT_NEAR(a[2], 370 * kMbit, 1);
}

TEST(MaxMinReference, CappedTenantGivesItsRestToOthersByWeight) {
  // DESIGN.md: with B's ceiling at 350, the 40 it cannot take go 1:3 to A and C.
  const std::vector<TenantDemand> t = {
      {1e12, 100 * kMbit, 1000 * kMbit, 1},
      {1e12, 300 * kMbit, 350 * kMbit, 1},
      {1e12, 100 * kMbit, 1000 * kMbit, 3},
  };
  const auto a = MaxMinReference(950 * kMbit, t);
  EXPECT_NEAR(a[0], 200 * kMbit, 1);
  EXPECT_NEAR(a[1], 350 * kMbit, 1);
  EXPECT_NEAR(a[2], 400 * kMbit, 1);
}

TEST(MaxMinReference, DemandBelowShareIsMetAndTheRestShared) {
  // The --accuracy setup: 100 Mbit/s, assured 25 each, offered 10/30/60/100.
  const std::vector<TenantDemand> t = {
      {10 * kMbit, 25 * kMbit, 100 * kMbit, 1},
      {30 * kMbit, 25 * kMbit, 100 * kMbit, 1},
      {60 * kMbit, 25 * kMbit, 100 * kMbit, 1},
      {100 * kMbit, 25 * kMbit, 100 * kMbit, 1},
  };
  const auto a = MaxMinReference(100 * kMbit, t);
  EXPECT_NEAR(a[0], 10 * kMbit, 1);
  EXPECT_NEAR(a[1], 30 * kMbit, 1);
  EXPECT_NEAR(a[2], 30 * kMbit, 1);
  EXPECT_NEAR(a[3], 30 * kMbit, 1);
}

TEST(MaxMinReference, NobodyWantsMoreLeavesTheSpareUnused) {
  const std::vector<TenantDemand> t = {{5 * kMbit, 25 * kMbit, 100 * kMbit, 1},
                                       {7 * kMbit, 0, 100 * kMbit, 2}};
  const auto a = MaxMinReference(100 * kMbit, t);
  EXPECT_NEAR(a[0], 5 * kMbit, 1);
  EXPECT_NEAR(a[1], 7 * kMbit, 1);
}

}  // namespace
}  // namespace shaper::bench
