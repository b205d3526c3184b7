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
  ids.Settle();  // the dataplane took that plan
  // Next reload: the freed 2 and 3 are reused, lowest first.
  ids.Update(Names({"a", "d", "e", "f", "g", "h"}));
  EXPECT_EQ(ids.Find("f"), 2u);
  EXPECT_EQ(ids.Find("g"), 3u);
  EXPECT_EQ(ids.Find("h"), 6u);
  EXPECT_EQ(ids.Find("a"), 1u);
  EXPECT_EQ(ids.Find("d"), 4u);
  EXPECT_EQ(ids.id_limit(), 7u);
}

// Reloads while the dataplane is away (no Settle between them): the plan it
// holds still has b's queues and counters under id 2, so no later update may
// hand 2 to a newcomer before the dataplane has taken a plan without b.
TEST(TenantIds, RetiredIdsWaitForTheDataplaneBeforeReuse) {
  TenantIds ids;
  ids.Update(Names({"a", "b", "c"}));  // 1 2 3, pushed
  ids.Settle();
  ids.Update(Names({"a", "c"}));       // b leaves: not pushed
  EXPECT_EQ(ids.retired(), 1u);
  ids.Update(Names({"a", "c", "x"}));  // x arrives: not pushed either
  EXPECT_EQ(ids.Find("x"), 4u);
  ids.Settle();  // the dataplane reconnects and takes {a=1, c=3, x=4}
  EXPECT_EQ(ids.retired(), 0u);
  ids.Update(Names({"a", "c", "x", "y"}));
  EXPECT_EQ(ids.Find("y"), 2u);
  // A name that leaves and comes back before a settle gets a new id: the
  // old one is still retired.
  ids.Settle();
  ids.Update(Names({"a", "c", "x"}));
  ids.Update(Names({"a", "c", "x", "y"}));
  EXPECT_EQ(ids.Find("y"), 5u);
}

TEST(TenantIds, IdLimitShrinksWhenTopTenantsLeave) {
  TenantIds ids;
  ids.Update(Names({"a", "b", "c"}));
  ids.Update(Names({"a"}));
  EXPECT_EQ(ids.id_limit(), 2u);
  ids.Settle();
  ids.Update(Names({"a", "x", "y", "z"}));
  EXPECT_EQ(ids.Find("x"), 2u);
  EXPECT_EQ(ids.Find("y"), 3u);
  EXPECT_EQ(ids.Find("z"), 4u);
}

// The id map after b and d left, e came: a=1 c=3 e=5, 2 and 4 free.
TenantIds WithHoles() {
  TenantIds ids;
  ids.Update(Names({"a", "b", "c", "d"}));
  ids.Update(Names({"a", "c", "e"}));
  ids.Settle();
  return ids;
}

TEST(TenantIdsPersist, FormatIsHeaderThenIdNameLinesById) {
  EXPECT_EQ(FormatTenantIds(WithHoles().state()),
            "shaper-tenant-ids 1 next_id=6\n"
            "1 a\n"
            "3 c\n"
            "5 e\n");
}

TEST(TenantIdsPersist, RoundTripKeepsIdsAndTheFreeIds) {
  TenantIds original = WithHoles();
  auto restored = ParseTenantIds(FormatTenantIds(original.state()));
  ASSERT_TRUE(restored.has_value()) << restored.error();
  for (const char* name : {"a", "c", "e"}) EXPECT_EQ(restored->Find(name), original.Find(name)) << name;
  EXPECT_EQ(restored->Find("b"), std::nullopt);
  EXPECT_EQ(restored->id_limit(), original.id_limit());
  EXPECT_EQ(restored->size(), 3u);
  // The free ids are rebuilt: the same next reload numbers the same way in
  // both (2 and 4 reused lowest first, then 6), and c's id is not handed out.
  const auto next = Names({"e", "a", "f", "g", "h", "c"});
  original.Update(next);
  restored->Update(next);
  EXPECT_EQ(restored->Find("f"), 2u);
  EXPECT_EQ(restored->Find("g"), 4u);
  EXPECT_EQ(restored->Find("h"), 6u);
  EXPECT_EQ(restored->Find("c"), 3u);
  EXPECT_EQ(FormatTenantIds(restored->state()), FormatTenantIds(original.state()));
}

TEST(TenantIdsPersist, EmptyMapRoundTrips) {
  auto restored = ParseTenantIds(FormatTenantIds(TenantIds().state()));
  ASSERT_TRUE(restored.has_value()) << restored.error();
  EXPECT_EQ(restored->size(), 0u);
  restored->Update(Names({"x"}));
  EXPECT_EQ(restored->Find("x"), 1u);
}

TEST(TenantIdsPersist, RestoreRefusesInconsistentState) {
  EXPECT_FALSE(TenantIds::Restore({{{"a", 0}}, 3}).has_value());        // the default's id
  EXPECT_FALSE(TenantIds::Restore({{{"a", 3}}, 3}).has_value());        // not below next_id
  EXPECT_FALSE(TenantIds::Restore({{{"a", 1}, {"b", 1}}, 3}).has_value());  // id twice
  EXPECT_FALSE(TenantIds::Restore({{{"a", 1}, {"a", 2}}, 3}).has_value());  // name twice
  EXPECT_FALSE(TenantIds::Restore({{{"default", 1}}, 3}).has_value());
  EXPECT_FALSE(TenantIds::Restore({{}, 0}).has_value());
  auto ok = TenantIds::Restore({{{"b", 2}}, 4});
  ASSERT_TRUE(ok.has_value()) << ok.error();
  ok->Update(Names({"b", "x", "y", "z"}));
  EXPECT_EQ(ok->Find("x"), 1u);
  EXPECT_EQ(ok->Find("y"), 3u);
  EXPECT_EQ(ok->Find("z"), 4u);
}

TEST(TenantIdsPersist, MalformedFilesAreRefusedNamingTheLine) {
  struct Case {
    const char* text;
    const char* error_says;
  };
  const Case cases[] = {
      {"", "line 1"},
      {"1 a\n", "line 1 '1 a'"},
      {"shaper-tenant-ids 2 next_id=3\n1 a\n", "format version must be 1"},
      {"shaper-tenant-ids 1 next_id=x\n", "line 1"},
      {"shaper-tenant-ids 1 next_id=0\n", "line 1"},
      {"shaper-tenant-ids 1\n", "line 1"},
      {"shaper-tenant-ids 1 next_id=3\n1 a\n2b\n", "line 3 '2b'"},
      {"shaper-tenant-ids 1 next_id=3\n1 a\nx b\n", "line 3 'x b': id is not a number"},
      {"shaper-tenant-ids 1 next_id=3\n1 a\n-1 b\n", "line 3"},
      {"shaper-tenant-ids 1 next_id=3\n1 a b\n", "line 2"},
      {"shaper-tenant-ids 1 next_id=3\n1 a/b\n", "line 2 '1 a/b': name must be"},
      {"shaper-tenant-ids 1 next_id=3\n1 a\n3 b\n", "line 3 '3 b': id must be in [1, next_id=3)"},
      {"shaper-tenant-ids 1 next_id=3\n0 a\n", "line 2"},
      {"shaper-tenant-ids 1 next_id=3\n1 a\n1 b\n", "line 3 '1 b': id 1 is listed twice"},
      {"shaper-tenant-ids 1 next_id=3\n1 a\n2 a\n", "line 3 '2 a': name 'a' is listed twice"},
      {"shaper-tenant-ids 1 next_id=3\n1 default\n", "line 2"},
      {"shaper-tenant-ids 1 next_id=3\n1 a\n2 b", "line 3 '2 b': no newline"},  // cut short
      {"shaper-tenant-ids 1 next_id=3\n1 a\n\n", "line 3"},
  };
  for (const Case& c : cases) {
    auto ids = ParseTenantIds(c.text);
    ASSERT_FALSE(ids.has_value()) << c.text;
    EXPECT_NE(ids.error().find(c.error_says), std::string::npos) << c.text << " -> " << ids.error();
  }
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
