// The numbers `shaperctl check` prints: static shares, totals and the
// oversubscription ratio, in the table and in JSON.
#include "control/check_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"

namespace shaper::control {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kPolicy = R"(version: 1
link: {capacity: 10Gbit, shape_at: 8Gbit}
classes: [{name: bulk, priority: bulk}]
tenants:
  - {name: a, match: {prefixes: [10.0.0.0/24]}, guaranteed: 1Gbit, ceiling: 4Gbit, weight: 3}
  - {name: b, match: {prefixes: [10.0.1.0/24]}, download: {guaranteed: 2Gbit, ceiling: 8Gbit}}
  - {name: c, match: {prefixes: [10.0.2.0/24]}, ceiling: 2Gbit}
default_tenant: {guaranteed: 1Gbit, ceiling: 1Gbit}
)";

config::Policy Load() {
  auto policy = config::LoadPolicyText(kPolicy, "p.yaml");
  EXPECT_TRUE(policy.has_value()) << config::FormatDiagnostics(policy.error());
  return std::move(*policy);
}

TEST(CheckReport, Totals) {
  const CheckTotals t = ComputeTotals(Load());
  EXPECT_EQ(t.guaranteed_bps[0], 4'000'000'000u);   // 1 + 2 + 0 + default 1
  EXPECT_EQ(t.guaranteed_bps[1], 2'000'000'000u);   // 1 + 0 + 0 + default 1
  EXPECT_EQ(t.ceiling_bps[0], 14'000'000'000u);     // 4 + 8 + 2
  EXPECT_EQ(t.ceiling_bps[1], 14'000'000'000u);     // 4 + 8 (the shape rate, by default) + 2
}

TEST(CheckReport, Json) {
  const nlohmann::json j = CheckJson("p.yaml", Load(), 2);
  EXPECT_EQ(j["valid"], true);
  EXPECT_EQ(j["link"]["shape_rate_bps"], 8'000'000'000u);
  EXPECT_EQ(j["tenant_count"], 3);
  ASSERT_EQ(j["tenants"].size(), 2u);  // --limit 2
  EXPECT_EQ(j["tenants"][0]["download"]["weight"], 3);
  EXPECT_DOUBLE_EQ(j["tenants"][0]["download"]["static_share"].get<double>(), 0.125);
  EXPECT_DOUBLE_EQ(j["tenants"][1]["download"]["static_share"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["totals"]["download"]["guaranteed_share"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["totals"]["download"]["oversubscription"].get<double>(), 1.75);
  EXPECT_TRUE(j["tenants"][0]["group"].is_null());
}

TEST(CheckReport, TableListsUpToTheLimit) {
  const std::string all = CheckTable("p.yaml", Load(), 0);
  EXPECT_THAT(all, HasSubstr("p.yaml: valid: 3 tenants, 0 groups, 1 class\n"));
  EXPECT_THAT(all, HasSubstr("link: capacity 10Gbit, shape rate 8Gbit (80.00% of capacity)"));
  EXPECT_THAT(all, HasSubstr("download         2Gbit         8Gbit       1    25.00%"));
  EXPECT_THAT(all, HasSubstr("guaranteed 4Gbit (50.00% of the shape rate), ceilings 14Gbit (oversubscription "
                             "1.75x)"));
  const std::string one = CheckTable("p.yaml", Load(), 1);
  EXPECT_THAT(one, HasSubstr("... 2 more tenants not listed (--limit 0 lists all)"));
  EXPECT_THAT(one, Not(HasSubstr("\nb ")));
}

TEST(CheckReport, ErrorsJson) {
  auto bad = config::LoadPolicyText("version: 1\n", "bad.yaml");
  ASSERT_FALSE(bad.has_value());
  const nlohmann::json j = ErrorsJson("bad.yaml", bad.error());
  EXPECT_EQ(j["valid"], false);
  ASSERT_EQ(j["errors"].size(), 3u);
  EXPECT_EQ(j["errors"][0]["line"], 1);
  EXPECT_EQ(j["errors"][0]["message"], "missing required key 'link'");
  EXPECT_EQ(j["errors"][0]["text"], "bad.yaml:1:1: missing required key 'link'");
}

}  // namespace
}  // namespace shaper::control
