// Limits against hostile or mistaken files, and the size the loader must
// handle: a million tenants.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include <fmt/format.h>

#include "config/loader.h"
#include "tests/unit/config/policy_text.h"

namespace shaper::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Errors;
using testing::kHead;

// "Billion laughs": ten levels of ten aliases each expand to 10^10 scalars.
std::string AliasBomb() {
  std::string text = "version: 1\nlink: {capacity: 1Gbit}\nclasses: [{name: bulk, priority: bulk}]\n";
  text += "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int level = 1; level < 10; ++level) {
    text += fmt::format("x{}: &a{} [", level, level);
    for (int i = 0; i < 10; ++i) text += fmt::format("{}*a{}", i ? ", " : "", level - 1);
    text += "]\n";
  }
  text += "tenants: *a9\n";
  return text;
}

TEST(Limits, AliasBombIsRejectedQuickly) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> errors = Errors(AliasBomb());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // x0..x9 are unknown keys, reported; expanding x3 while skipping it
  // passes 1000 alias uses at its 8th alias (120 before x3, 111 per *a2).
  EXPECT_THAT(errors, ::testing::Contains("p.yaml:7:45: x3: more than 1000 alias uses (limit max_aliases), "
                                          "counting aliases inside aliased nodes: the file expands too much"));
  // Expanding the bomb would take hours; the limit stops it in well under a
  // millisecond. The bound is loose so a loaded machine does not fail it.
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(Limits, AliasesWithinTheLimitAreFine) {
  Limits limits;
  limits.max_aliases = 2;
  const std::string text = kHead + R"(tenants:
  - {name: a, match: {prefixes: [10.0.0.0/24]}, download: &r {ceiling: 1Gbit}, upload: *r}
  - {name: b, match: {prefixes: [10.0.1.0/24]}, download: *r, upload: *r}
)";
  EXPECT_THAT(Errors(text, limits),
              ElementsAre("p.yaml:13:71: tenants[1].upload: more than 2 alias uses (limit max_aliases), counting "
                          "aliases inside aliased nodes: the file expands too much"));
  limits.max_aliases = 3;
  EXPECT_TRUE(Errors(text, limits).empty());
}

TEST(Limits, UnknownAlias) {
  EXPECT_THAT(Errors(kHead + "tenants: *nothing\n"),
              ElementsAre("p.yaml:11:10: tenants: alias *nothing refers to no anchor defined before it"));
}

TEST(Limits, DeepNesting) {
  const std::string text = kHead + "tenants: " + std::string(100'000, '[') + std::string(100'000, ']') + "\n";
  EXPECT_THAT(Errors(text), ElementsAre("p.yaml:11:11: tenants[0]: expected a mapping (key: value), got a list",
                                        "p.yaml:11:41: tenants[0]: nesting deeper than 32 levels (limit max_depth)"));
}

TEST(Limits, FileSize) {
  Limits limits;
  limits.max_file_bytes = 100;
  const std::string text = kHead + "tenants: []\n" + std::string(200, '#');
  EXPECT_THAT(Errors(text, limits),
              ElementsAre(fmt::format("p.yaml: the file is {} bytes, more than the limit of 100 (max_file_bytes)",
                                      text.size())));
  // From a file, the size is checked before anything is read.
  const std::string path = ::testing::TempDir() + "config_limits_test.yaml";
  {
    std::ofstream out(path);
    out << text;
  }
  auto policy = LoadPolicyFile(path, limits);
  std::remove(path.c_str());
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().at(0).ToString(),
            fmt::format("{}: the file is {} bytes, more than the limit of 100 (max_file_bytes)", path, text.size()));
}

TEST(Limits, TenantCount) {
  Limits limits;
  limits.max_tenants = 3;
  std::string text = kHead + "tenants:\n";
  for (int i = 0; i < 5; ++i) text += fmt::format("  - {{name: t{}, match: {{prefixes: [10.0.{}.0/24]}}}}\n", i, i);
  EXPECT_THAT(Errors(text, limits), ElementsAre("p.yaml:15:5: tenants[3]: more than 3 tenants (limit max_tenants)"));
  limits.max_tenants = 5;
  EXPECT_TRUE(Errors(text, limits).empty());
}

TEST(Limits, ErrorCount) {
  Limits limits;
  limits.max_errors = 3;
  std::string text = kHead + "tenants:\n";
  for (int i = 0; i < 10; ++i) {
    text += fmt::format("  - {{name: t{}, match: {{prefixes: [10.0.{}.0/24], vlan: 0}}}}\n", i, i);
  }
  const std::vector<std::string> errors = Errors(text, limits);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_THAT(errors[0], HasSubstr("p.yaml:12:"));
  EXPECT_EQ(errors[3], "p.yaml: 7 more errors not shown (limit max_errors = 3)");
}

// A million tenants, generated here (not by a script) so the test stands alone.
TEST(Limits, MillionTenantsLoad) {
  constexpr uint32_t kTenants = 1'000'000;
  std::string text = R"(version: 1
link: {capacity: 100Gbit}
classes: [{name: bulk, priority: bulk}]
tenants:
)";
  text.reserve(kTenants * 100);
  for (uint32_t i = 0; i < kTenants; ++i) {
    fmt::format_to(std::back_inserter(text),
                   "  - name: t{}\n    match: {{prefixes: [10.{}.{}.{}/32]}}\n    guaranteed: 50Kbit\n    ceiling: "
                   "10Mbit\n",
                   i, (i >> 16) & 255, (i >> 8) & 255, i & 255);
  }
  auto policy = LoadPolicyText(text, "million.yaml");
  ASSERT_TRUE(policy.has_value()) << FormatDiagnostics(policy.error());
  ASSERT_EQ(policy->tenants.size(), kTenants);
  const Tenant& last = policy->tenants.back();
  EXPECT_EQ(last.name, "t999999");
  EXPECT_EQ(last.prefixes.at(0).ToString(), "10.15.66.63/32");
  EXPECT_EQ(last.rates[0].guaranteed_bps, 50'000u);
  EXPECT_EQ(last.rates[1].ceiling_bps, 10'000'000u);
}

}  // namespace
}  // namespace shaper::config
