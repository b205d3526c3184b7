// The loader on whole files: the design's example, defaults, anchors, and a
// file with many errors reporting all of them.
#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "tests/unit/config/policy_text.h"

namespace shaper::config {
namespace {

using ::testing::ElementsAre;
using testing::Errors;
using testing::kHead;

// The example policy of DESIGN.md.
constexpr std::string_view kDesignExample = R"(# policy.yaml
version: 1
link:
  capacity: 10Gbit          # line rate
  shape_at: 98%             # shape slightly below it, so we own the queue
  overhead: 24B             # preamble + IFG + FCS per packet
classes:
  - name: realtime
    priority: latency
    dscp: [EF, CS5, CS6, CS7]
    max_share: 20%          # of the tenant's rate
    queue_limit: 2ms
  - name: bulk
    priority: bulk
    weight: 1
    queue_limit: 30ms
groups:                     # optional, nested: site -> tenant
  - name: pop-east
    ceiling: 6Gbit
    guaranteed: 2Gbit
tenants:
  - name: acme
    group: pop-east
    match: {prefixes: [203.0.113.0/24, "2001:db8:1::/48"], vlan: 100}
    guaranteed: 1Gbit       # both directions, unless download/upload say otherwise
    ceiling: 5Gbit
    weight: 2
    burst: 5ms
  - name: globex
    match: {prefixes: [198.51.100.0/25]}
    download: {guaranteed: 500Mbit, ceiling: 2Gbit}
    upload:   {guaranteed: 100Mbit, ceiling: 500Mbit}
default_tenant: {ceiling: 100Mbit}   # traffic that matches no tenant
allocation: {mode: dynamic, interval: 100ms}
)";

constexpr auto kDown = static_cast<size_t>(Direction::kDownload);
constexpr auto kUp = static_cast<size_t>(Direction::kUpload);

TEST(Loader, DesignExample) {
  auto policy = LoadPolicyText(kDesignExample, "policy.yaml");
  ASSERT_TRUE(policy.has_value()) << FormatDiagnostics(policy.error());
  const Policy& p = *policy;
  EXPECT_EQ(p.version, 1u);
  EXPECT_EQ(p.link.capacity_bps, 10'000'000'000u);
  EXPECT_EQ(p.link.shape_rate_bps, 9'800'000'000u);
  EXPECT_EQ(p.link.overhead_bytes, 24u);

  ASSERT_EQ(p.classes.size(), 2u);
  EXPECT_EQ(p.classes[0].name, "realtime");
  EXPECT_EQ(p.classes[0].priority, Priority::kLatency);
  EXPECT_EQ(p.classes[0].dscp, (std::vector<uint8_t>{46, 40, 48, 56}));
  EXPECT_EQ(p.classes[0].max_share_ppm, 200'000u);
  EXPECT_EQ(p.classes[0].queue_limit_ns, 2'000'000u);
  EXPECT_FALSE(p.classes[0].is_default);
  EXPECT_EQ(p.classes[1].priority, Priority::kBulk);
  EXPECT_EQ(p.classes[1].queue_limit_ns, 30'000'000u);
  EXPECT_TRUE(p.classes[1].is_default);  // the first bulk class
  EXPECT_EQ(p.dscp_to_class[46], 0);
  EXPECT_EQ(p.dscp_to_class[40], 0);
  EXPECT_EQ(p.dscp_to_class[0], 1);   // unlisted: the default class
  EXPECT_EQ(p.dscp_to_class[10], 1);

  ASSERT_EQ(p.groups.size(), 1u);
  EXPECT_EQ(p.groups[0].name, "pop-east");
  EXPECT_EQ(p.groups[0].parent, kNoGroup);
  EXPECT_EQ(p.groups[0].rates[kDown].ceiling_bps, 6'000'000'000u);
  EXPECT_EQ(p.groups[0].rates[kUp].guaranteed_bps, 2'000'000'000u);

  ASSERT_EQ(p.tenants.size(), 2u);
  const Tenant& acme = p.tenants[0];
  EXPECT_EQ(acme.name, "acme");
  EXPECT_EQ(acme.group, 0u);
  EXPECT_EQ(acme.vlan, 100);
  ASSERT_EQ(acme.prefixes.size(), 2u);
  EXPECT_EQ(acme.prefixes[0].ToString(), "203.0.113.0/24");
  EXPECT_FALSE(acme.prefixes[0].is_v6);
  EXPECT_EQ(acme.prefixes[1].ToString(), "2001:db8:1::/48");
  EXPECT_TRUE(acme.prefixes[1].is_v6);
  for (size_t d : {kDown, kUp}) {
    EXPECT_EQ(acme.rates[d].guaranteed_bps, 1'000'000'000u);
    EXPECT_EQ(acme.rates[d].ceiling_bps, 5'000'000'000u);
    EXPECT_EQ(acme.rates[d].weight, 2u);
    EXPECT_EQ(acme.rates[d].burst_bytes, 3'125'000u);  // 5 ms at 5 Gbit/s
  }
  const Tenant& globex = p.tenants[1];
  EXPECT_EQ(globex.group, kNoGroup);
  EXPECT_EQ(globex.vlan, 0);
  EXPECT_EQ(globex.rates[kDown].guaranteed_bps, 500'000'000u);
  EXPECT_EQ(globex.rates[kDown].ceiling_bps, 2'000'000'000u);
  EXPECT_EQ(globex.rates[kUp].guaranteed_bps, 100'000'000u);
  EXPECT_EQ(globex.rates[kUp].ceiling_bps, 500'000'000u);
  EXPECT_EQ(globex.rates[kUp].burst_bytes, 312'500u);  // default 5 ms at 500 Mbit/s
  EXPECT_EQ(globex.rates[kUp].weight, 1u);

  EXPECT_EQ(p.default_tenant[kDown].ceiling_bps, 100'000'000u);
  EXPECT_EQ(p.default_tenant[kDown].guaranteed_bps, 0u);
  EXPECT_EQ(p.allocation.mode, Allocation::Mode::kDynamic);
  EXPECT_EQ(p.allocation.interval_ns, 100'000'000u);
}

TEST(Loader, Defaults) {
  auto policy = LoadPolicyText(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/8]}
    upload: {burst: 64KB}
)",
                               "p.yaml");
  ASSERT_TRUE(policy.has_value()) << FormatDiagnostics(policy.error());
  const Policy& p = *policy;
  EXPECT_EQ(p.link.overhead_bytes, 24u);
  EXPECT_EQ(p.classes[0].queue_limit_ns, 5'000'000u);   // latency default
  EXPECT_EQ(p.classes[1].queue_limit_ns, 50'000'000u);  // bulk default
  EXPECT_EQ(p.classes[1].weight, 1u);
  const Tenant& t = p.tenants[0];
  EXPECT_EQ(t.rates[kDown].guaranteed_bps, 0u);
  EXPECT_EQ(t.rates[kDown].ceiling_bps, 9'800'000'000u);  // the shape rate
  EXPECT_EQ(t.rates[kDown].weight, 1u);
  EXPECT_EQ(t.rates[kDown].burst_bytes, 6'125'000u);  // 5 ms at 9.8 Gbit/s
  EXPECT_EQ(t.rates[kUp].burst_bytes, 64'000u);
  EXPECT_EQ(p.default_tenant[kUp].ceiling_bps, 9'800'000'000u);
  EXPECT_EQ(p.allocation.hysteresis_ppm, 10'000u);
  // A class marked default takes unmarked and unlisted traffic.
  auto marked = LoadPolicyText(R"(version: 1
link: {capacity: 1Gbit, shape_at: 900Mbit}
classes:
  - {name: rt, priority: latency, dscp: [EF]}
  - {name: bulk, priority: bulk, dscp: [CS1]}
  - {name: best, priority: bulk, default: true}
tenants: []
)",
                               "p.yaml");
  ASSERT_TRUE(marked.has_value()) << FormatDiagnostics(marked.error());
  EXPECT_EQ(marked->link.shape_rate_bps, 900'000'000u);
  EXPECT_TRUE(marked->classes[2].is_default);
  EXPECT_FALSE(marked->classes[1].is_default);
  EXPECT_EQ(marked->dscp_to_class[8], 1);
  EXPECT_EQ(marked->dscp_to_class[0], 2);
  EXPECT_EQ(marked->dscp_to_class[63], 2);
}

// Sections may come in any order: ceilings default to a shape rate read
// later, and tenants may name groups defined after them.
TEST(Loader, SectionsInAnyOrder) {
  auto policy = LoadPolicyText(R"(tenants:
  - {name: a, group: g, match: {prefixes: [10.0.0.0/24]}, guaranteed: 1Mbit}
groups:
  - {name: g, guaranteed: 1Mbit}
classes: [{name: bulk, priority: bulk}]
link: {capacity: 1Gbit, shape_at: 50%}
version: 1
)",
                               "p.yaml");
  ASSERT_TRUE(policy.has_value()) << FormatDiagnostics(policy.error());
  EXPECT_EQ(policy->tenants[0].group, 0u);
  EXPECT_EQ(policy->tenants[0].rates[kDown].ceiling_bps, 500'000'000u);
  EXPECT_THAT(Errors(kHead + "tenants:\n"),
              ElementsAre("p.yaml:11:9: tenants: expected a list, got an empty value"));
}

TEST(Loader, AnchorsAndAliases) {
  auto policy = LoadPolicyText(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/24]}
    download: &gold {guaranteed: 100Mbit, ceiling: 1Gbit}
    upload: *gold
  - name: b
    match: {prefixes: [10.0.1.0/24]}
    ceiling: &cap 2Gbit
    download: *gold
    upload: {ceiling: *cap}
)",
                               "p.yaml");
  ASSERT_TRUE(policy.has_value()) << FormatDiagnostics(policy.error());
  EXPECT_EQ(policy->tenants[0].rates[kUp].ceiling_bps, 1'000'000'000u);
  EXPECT_EQ(policy->tenants[0].rates[kUp].guaranteed_bps, 100'000'000u);
  EXPECT_EQ(policy->tenants[1].rates[kDown].ceiling_bps, 1'000'000'000u);
  EXPECT_EQ(policy->tenants[1].rates[kUp].ceiling_bps, 2'000'000'000u);
}

// One run reports the errors of every section and every tenant, in file order.
TEST(Loader, ReportsAllErrors) {
  EXPECT_THAT(Errors(R"(version: 1
link:
  capacity: 10Gbit
  shape_at: 98%
  overhed: 24B
classes:
  - {name: bulk, priority: bulk}
tenants:
  - name: a
    match: {prefixes: [203.0.113.5/24]}
  - name: b
    match: {prefixes: [10.0.0.0/8]}
    download: {guaranteed: 500Mbit, ceiling: 400Mbit}
    upload: {guaranteed: 100}
  - name: c
    match: {prefixes: [10.1.0.0/16], vlan: 5000}
    celing: 5Gbit
)"),
              ElementsAre("p.yaml:5:3: link.overhed: unknown key 'overhed'; did you mean 'overhead'?",
                          "p.yaml:10:24: tenants[0].match.prefixes[0]: 203.0.113.5/24 has host bits set; did you "
                          "mean 203.0.113.0/24?",
                          "p.yaml:13:28: tenants[1].download.guaranteed: guaranteed 500Mbit exceeds the ceiling "
                          "400Mbit",
                          "p.yaml:14:26: tenants[1].upload.guaranteed: bare number \"100\": add a unit: bit, Kbit, "
                          "Mbit, Gbit, Tbit (or bps, Kbps, Mbps, Gbps, Tbps)",
                          "p.yaml:16:44: tenants[2].match.vlan: vlan \"5000\" must be a whole number from 1 to 4094",
                          "p.yaml:17:5: tenants[2].celing: unknown key 'celing'; did you mean 'ceiling'?"));
}

TEST(Loader, SyntaxError) {
  // Only the syntax error: what was read before it may be its echo.
  EXPECT_THAT(Errors("version: 1\nlink: {capacity: [1, 2}\n"),
              ElementsAre("p.yaml:2:23: syntax error: did not find expected ',' or ']' (while parsing a flow "
                          "sequence)"));
  EXPECT_THAT(Errors("version: 1\n  bad indent: 2\n"),
              ElementsAre("p.yaml:2:13: syntax error: mapping values are not allowed in this context"));
}

TEST(Loader, EmptyAndNonMappingFiles) {
  EXPECT_THAT(Errors(""), ElementsAre("p.yaml: the file is empty: a policy needs version, link, classes and "
                                      "tenants"));
  EXPECT_THAT(Errors("- a\n"), ElementsAre("p.yaml:1:1: expected a mapping (key: value), got a list"));
  EXPECT_THAT(Errors(kHead + "tenants: []\n---\nversion: 1\n"),
              ElementsAre("p.yaml:12:1: a policy file holds one YAML document; a second one starts here"));
}

TEST(Loader, LoadsFromFile) {
  const std::string path = ::testing::TempDir() + "config_loader_test.yaml";
  {
    std::ofstream out(path);
    out << kDesignExample;
  }
  auto policy = LoadPolicyFile(path);
  ASSERT_TRUE(policy.has_value()) << FormatDiagnostics(policy.error());
  EXPECT_EQ(policy->tenants.size(), 2u);
  std::remove(path.c_str());
  auto missing = LoadPolicyFile(path);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error()[0].ToString(), path + ": cannot open: No such file or directory");
}

}  // namespace
}  // namespace shaper::config
