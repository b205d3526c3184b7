// TenantIds (dense, stable by name, reuse of freed ids) and CompilePlan's
// derivations and refusals.
#include "control/dpclient/plan_compiler.h"

#include <gtest/gtest.h>

#include "dataplane/ctl/plan_validate.h"
#include "tests/unit/ctl/test_policy.h"

namespace shaper::dpclient {
namespace {

using namespace shaper::testing;

std::vector<std::string> Names(std::initializer_list<const char*> names) {
  return std::vector<std::string>(names.begin(), names.end());
}

TEST(TenantIds, DenseFromOneInOrderWithDefaultZero) {
  TenantIds ids;
  ids.Update(Names({"a", "b", "c"}));
  EXPECT_EQ(ids.Find("default"), 0u);
  EXPECT_EQ(ids.Find("a"), 1u);
  EXPECT_EQ(ids.Find("b"), 2u);
  EXPECT_EQ(ids.Find("c"), 3u);
  EXPECT_EQ(ids.Find("zz"), std::nullopt);
  EXPECT_EQ(ids.id_limit(), 4u);
  EXPECT_EQ(ids.size(), 3u);
}

TEST(TenantIds, StableAcrossReloadsWhateverTheOrder) {
  TenantIds ids;
  ids.Update(Names({"a", "b", "c"}));
  ids.Update(Names({"c", "d", "a", "b"}));
  EXPECT_EQ(ids.Find("a"), 1u);
  EXPECT_EQ(ids.Find("b"), 2u);
  EXPECT_EQ(ids.Find("c"), 3u);
  EXPECT_EQ(ids.Find("d"), 4u);
}

TEST(TenantIds, FreedIdsAreReusedFromTheNextReloadLowestFirst) {
  TenantIds ids;
  ids.Update(Names({"a", "b", "c", "d"}));  // 1 2 3 4
  // b and c leave while e arrives: e must not inherit b's or c's id in the
  // same swap.
  ids.Update(Names({"a", "d", "e"}));
  EXPECT_EQ(ids.Find("b"), std::nullopt);
  EXPECT_EQ(ids.Find("e"), 5u);
  // Next reload: the freed 2 and 3 are reused, lowest first.
  ids.Update(Names({"a", "d", "e", "f", "g", "h"}));
  EXPECT_EQ(ids.Find("f"), 2u);
  EXPECT_EQ(ids.Find("g"), 3u);
  EXPECT_EQ(ids.Find("h"), 6u);
  EXPECT_EQ(ids.Find("a"), 1u);
  EXPECT_EQ(ids.Find("d"), 4u);
  EXPECT_EQ(ids.id_limit(), 7u);
}

TEST(TenantIds, IdLimitShrinksWhenTopTenantsLeave) {
  TenantIds ids;
  ids.Update(Names({"a", "b", "c"}));
  ids.Update(Names({"a"}));
  EXPECT_EQ(ids.id_limit(), 2u);
  ids.Update(Names({"a", "x", "y", "z"}));
  EXPECT_EQ(ids.Find("x"), 2u);
  EXPECT_EQ(ids.Find("y"), 3u);
  EXPECT_EQ(ids.Find("z"), 4u);
}

TEST(CompilePlan, DerivesLimitsAndAssignsIds) {
  config::Policy policy = TestPolicy();
  policy.tenants[2].rates[0].burst_bytes = 10;  // below one frame: raised
  TenantIds ids;
  ids.Update(Names({"globex"}));  // globex keeps id 1 from an earlier policy
  ids.Update(policy);
  auto blob = CompilePlan(policy, ids);
  ASSERT_TRUE(blob.has_value()) << blob.error();
  auto view = ctl::ValidatePlan(*blob, ctl::Limits{});
  ASSERT_TRUE(view.has_value()) << view.error();
  EXPECT_STREQ(view->FindTenant(1)->name, "globex");
  EXPECT_STREQ(view->FindTenant(2)->name, "acme");
  EXPECT_STREQ(view->FindTenant(3)->name, "initech");
  EXPECT_EQ(view->FindTenant(3)->rates[0].burst_bytes, abi::kMinBurstBytes);
  EXPECT_EQ(view->FindTenant(2)->vlan, 100);
  EXPECT_EQ(view->FindTenant(2)->rates[0].assured_bps, 1'000'000'000u);  // = guaranteed
  // Link watermark: 9.5 Gbit/s x 30 ms / 8.
  EXPECT_EQ(view->link(0).queue_bytes_limit, 35'625'000u);
  // Prefixes point at the ids, not the policy positions.
  EXPECT_EQ(view->prefixes()[0].tenant_id, 2u);  // acme
  EXPECT_EQ(view->prefixes()[2].tenant_id, 1u);  // globex
}

TEST(CompilePlan, SamePolicySameBytes) {
  EXPECT_EQ(CompiledTestPlan(), CompiledTestPlan());
  config::Policy other = TestPolicy();
  other.tenants[0].rates[0].weight = 3;
  TenantIds ids;
  ids.Update(other);
  auto blob = CompilePlan(other, ids);
  ASSERT_TRUE(blob.has_value());
  auto a = ctl::ValidatePlan(*blob, {});
  const std::vector<std::byte> base = CompiledTestPlan();
  auto b = ctl::ValidatePlan(base, {});
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->policy_hash(), b->policy_hash());
}

TEST(CompilePlan, RefusesWhatThePlanCannotCarry) {
  struct Case {
    std::function<void(config::Policy&)> mutate;
    const char* expected;
  };
  const Case cases[] = {
      {[](auto& p) { p.tenants[1].name = std::string(60, 'n'); }, "tenants[1].name=\"nnnn"},
      {[](auto& p) { p.tenants[0].name = "default"; },
       "tenants[0].name=\"default\": reserved for the default tenant"},
      {[](auto& p) { p.classes[0].name = std::string(40, 'c'); }, "classes[0].name="},
      {[](auto& p) { p.classes[1].queue_limit_ns = 0; }, "classes[1].queue_limit_ns=0"},
      {[](auto& p) { p.classes.pop_back(); }, "at least one bulk class"},
      {[](auto& p) { p.tenants[2].rates[1].ceiling_bps = 0; }, "tenants[2].upload.ceiling_bps=0"},
      {[](auto& p) { p.default_tenant[0].weight = 0; }, "default_tenant.download.weight=0"},
  };
  for (const Case& c : cases) {
    config::Policy policy = TestPolicy();
    c.mutate(policy);
    TenantIds ids;
    ids.Update(policy);
    auto blob = CompilePlan(policy, ids);
    ASSERT_FALSE(blob.has_value()) << c.expected;
    EXPECT_NE(blob.error().find(c.expected), std::string::npos) << blob.error();
  }
}

TEST(CompilePlan, RefusesIdsBeyondTheDataplaneLimit) {
  const config::Policy policy = TestPolicy();
  TenantIds ids;
  ids.Update(policy);
  auto blob = CompilePlan(policy, ids, {.max_tenants = 3});
  ASSERT_FALSE(blob.has_value());
  EXPECT_NE(blob.error().find("id 3 is beyond the dataplane's max_tenants=3"), std::string::npos)
      << blob.error();
}

TEST(CompilePlan, BytesInTimeSaturates) {
  EXPECT_EQ(BytesInTime(8'000'000'000, 1'000'000'000), 1'000'000'000u);
  EXPECT_EQ(BytesInTime(UINT64_MAX, UINT64_MAX), UINT64_MAX);
}

}  // namespace
}  // namespace shaper::dpclient
