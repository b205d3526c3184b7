// Reload keeps the policy in force on every kind of bad file: a YAML syntax
// error, a validation error, an empty file, the file deleted, and a file
// caught half-written (seen by the watcher, completed a moment later). After
// each: the dataplane received nothing (no plan, no generation change, the
// same ids and rates), the old policy still allocates, shaper_policy_valid
// is 0 and the error is counted; then a good file applies and valid is 1.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "control/daemon/core.h"
#include "control/daemon/watcher.h"
#include "tests/unit/control/core_fixture.h"
#include "tests/unit/control/test_env.h"

namespace shaper::control {
namespace {

using shaper::testing::InProcessDataplane;
using shaper::testing::Received;

// DESIGN.md's worked example (as core_test.cc): all greedy -> a 190, b 390, c 370.
constexpr std::string_view kTenantsABC = R"(version: 1
link:
  capacity: 1000Mbit
  shape_at: 95%
classes:
  - name: bulk
    priority: bulk
    queue_limit: 50ms
tenants:
  - name: a
    match: {prefixes: [10.0.1.0/24]}
    guaranteed: 100Mbit
    ceiling: 900Mbit
  - name: b
    match: {prefixes: [10.0.2.0/24]}
    guaranteed: 300Mbit
    ceiling: 400Mbit
  - name: c
    match: {prefixes: [10.0.3.0/24]}
    guaranteed: 100Mbit
    ceiling: 900Mbit
    weight: 3
)";
constexpr std::string_view kTenantD = R"(  - name: d
    match: {prefixes: [10.0.4.0/24]}
    guaranteed: 50Mbit
)";
constexpr std::string_view kAllocation = "allocation: {mode: dynamic, interval: 100ms}\n";

const std::string kPolicy = std::string(kTenantsABC) + std::string(kAllocation);
// The good edit: d added (its match is where the partial write cuts).
const std::string kPolicyWithD =
    std::string(kTenantsABC) + std::string(kTenantD) + std::string(kAllocation);

// Where a half-written kPolicyWithD stops: inside d's prefix list, so the
// YAML flow sequence is never closed.
std::string CutMidTenantD() {
  const std::string full = kPolicyWithD;
  return full.substr(0, full.find("10.0.4.") + 5);
}

struct BadFile {
  const char* name;
  std::function<void(const std::string& path)> make;
  const char* error_says;  // in the reload's error
};

const BadFile kBadFiles[] = {
    {"YamlSyntaxError",
     [](const std::string& p) {
       // A flow mapping never closed.
       shaper::testing::WriteByRename(p, "version: 1\nlink: {capacity: 1000Mbit\ntenants: [\n");
     },
     "syntax error"},
    {"ValidationError",
     [](const std::string& p) {
       std::string text = kPolicyWithD;
       const std::string from = "guaranteed: 300Mbit\n    ceiling: 400Mbit";
       text.replace(text.find(from), from.size(), "guaranteed: 300Mbit\n    ceiling: 200Mbit");
       shaper::testing::WriteByRename(p, text);
     },
     "ceiling"},
    {"EmptyFile", [](const std::string& p) { std::ofstream(p, std::ios::trunc).flush(); }, "empty"},
    {"FileDeleted", [](const std::string& p) { std::filesystem::remove(p); }, "cannot open"},
    {"TruncatedMidTenant",
     [](const std::string& p) { std::ofstream(p, std::ios::trunc) << CutMidTenantD(); },
     "syntax error"},
};

class ReloadKeepsPolicyTest : public shaper::testing::CoreFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartDataplane());
    shaper::testing::WriteByRename(policy_path_, kPolicy);
    ASSERT_NO_FATAL_FAILURE(StartCore());
    // Connected, with dynamic rates pushed (not just the plan's guarantees).
    core_->Tick();
    ASSERT_TRUE(core_->dataplane_up());
    GreedyTick();
    GreedyTick();
    ASSERT_EQ(Assured("a"), 190 * kMbit);
  }

  // a, b and c greedy downstream (1 Gbit/s offered each) for one interval.
  void GreedyTick() { CoreFixture::GreedyTick({"a", "b", "c"}); }
  // The value of a sample of `family` (with label `result` = `result` when given).
  double Metric(const std::string& family, const std::string& result = "") {
    for (const auto& f : core_->CollectMetrics(false)) {
      if (f.name != family) continue;
      for (const auto& m : f.metric) {
        const bool match = result.empty() || (!m.label.empty() && m.label[0].value == result);
        if (match)
          return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
    return -1;
  }
  std::set<std::string> StatusTenants() {
    std::set<std::string> names;
    const nlohmann::json status = core_->Status();  // range-for would not keep a temporary alive
    for (const auto& row : status["tenants"]) names.insert(row["tenant"].get<std::string>());
    return names;
  }

  // Everything a bad reload must leave alone, against `before`.
  void ExpectNothingChanged(const Received& before, uint64_t generation_before) {
    shaper::testing::ExpectSameReceived(dataplane_->received(), before);
    EXPECT_EQ(core_->plan_generation(), generation_before);
    EXPECT_TRUE(core_->dataplane_up());
    EXPECT_EQ(StatusTenants(), (std::set<std::string>{"default", "a", "b", "c"}));
    EXPECT_FALSE(core_->Status()["policy_valid"].get<bool>());
    EXPECT_EQ(Metric("shaper_policy_valid"), 0);
  }

  // The good edit applies: one new plan, a, b, c keep their ids, d is in.
  void ExpectGoodEditApplies(const Received& before) {
    const ReloadOutcome ok = core_->Reload("test");
    ASSERT_TRUE(ok.ok) << ok.error;
    EXPECT_EQ(ok.tenants, 4u);
    const Received now = dataplane_->received();
    EXPECT_EQ(now.plans, before.plans + 1);
    EXPECT_EQ(core_->plan_generation(), now.generation);
    for (const char* name : {"default", "a", "b", "c"})
      EXPECT_EQ(now.ids.at(name), before.ids.at(name)) << name;
    EXPECT_EQ(now.ids.count("d"), 1u);
    EXPECT_TRUE(core_->Status()["policy_valid"].get<bool>());
    EXPECT_EQ(Metric("shaper_policy_valid"), 1);
    EXPECT_TRUE(core_->Explain("d")["ok"].get<bool>());
  }
};

// Each kind of bad file on its own, then the good edit.
TEST_F(ReloadKeepsPolicyTest, EachBadFileChangesNothingThenAGoodOneApplies) {
  for (const BadFile& bad : kBadFiles) {
    SCOPED_TRACE(bad.name);
    // A fresh start for each kind: the good file in force, counters known.
    shaper::testing::WriteByRename(policy_path_, kPolicy);
    ASSERT_TRUE(core_->Reload("reset").ok);
    GreedyTick();
    const Received before = dataplane_->received();
    const uint64_t generation = core_->plan_generation();
    const double errors = Metric("shaper_policy_reloads_total", "error");
    const double successes = Metric("shaper_policy_reloads_total", "success");
    ASSERT_EQ(Metric("shaper_policy_valid"), 1);

    bad.make(policy_path_);
    const ReloadOutcome out = core_->Reload("test");
    EXPECT_FALSE(out.ok);
    EXPECT_NE(out.error.find(bad.error_says), std::string::npos) << out.error;
    ExpectNothingChanged(before, generation);
    EXPECT_EQ(Metric("shaper_policy_reloads_total", "error"), errors + 1);
    EXPECT_EQ(Metric("shaper_policy_reloads_total", "success"), successes);
    // The old policy still allocates: the same shares as before.
    GreedyTick();
    EXPECT_EQ(Assured("a"), 190 * kMbit);
    EXPECT_EQ(Assured("b"), 390 * kMbit);
    EXPECT_EQ(Assured("c"), 370 * kMbit);
    EXPECT_EQ(dataplane_->received().plans, before.plans);

    shaper::testing::WriteByRename(policy_path_, kPolicyWithD);
    ExpectGoodEditApplies(dataplane_->received());
    EXPECT_EQ(Metric("shaper_policy_reloads_total", "success"), successes + 1);
    EXPECT_EQ(Metric("shaper_policy_reloads_total", "error"), errors + 1);
  }
}

// One bad file after another: each is counted, valid stays 0 throughout,
// and nothing reaches the dataplane until the good file.
TEST_F(ReloadKeepsPolicyTest, BadFilesInARowAreEachCounted) {
  const Received before = dataplane_->received();
  const uint64_t generation = core_->plan_generation();
  double expected_errors = 0;
  for (const BadFile& bad : kBadFiles) {
    SCOPED_TRACE(bad.name);
    bad.make(policy_path_);
    EXPECT_FALSE(core_->Reload("test").ok);
    ++expected_errors;
    ExpectNothingChanged(before, generation);
    EXPECT_EQ(Metric("shaper_policy_reloads_total", "error"), expected_errors);
    EXPECT_EQ(Metric("shaper_policy_reloads_total", "success"), 0);
  }
  shaper::testing::WriteByRename(policy_path_, kPolicyWithD);
  ExpectGoodEditApplies(before);
  EXPECT_EQ(Metric("shaper_policy_reloads_total", "success"), 1);
}

// A writer that truncates the file in place, writes half, closes it, and
// writes the rest a moment later: the watcher reports both closes; the first
// (broken) state changes nothing, the completed file applies.
TEST_F(ReloadKeepsPolicyTest, PartialWriteInPlaceThenCompleted) {
  auto watcher = PolicyWatcher::Create(policy_path_);
  ASSERT_TRUE(watcher.has_value()) << watcher.error();
  const Received before = dataplane_->received();
  const uint64_t generation = core_->plan_generation();

  const std::string head = CutMidTenantD();
  std::ofstream(policy_path_, std::ios::trunc) << head;
  ASSERT_TRUE((*watcher)->ReadEventsSettled(20, 500));
  const ReloadOutcome broken = core_->Reload("inotify");
  EXPECT_FALSE(broken.ok);
  EXPECT_NE(broken.error.find("syntax error"), std::string::npos) << broken.error;
  ExpectNothingChanged(before, generation);
  EXPECT_EQ(Metric("shaper_policy_reloads_total", "error"), 1);

  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::ofstream(policy_path_, std::ios::app) << kPolicyWithD.substr(head.size());
  ASSERT_TRUE((*watcher)->ReadEventsSettled(20, 500));
  ExpectGoodEditApplies(before);
  EXPECT_EQ(Metric("shaper_policy_reloads_total", "success"), 1);
  EXPECT_EQ(Metric("shaper_policy_reloads_total", "error"), 1);
}

// A dataplane started with --max-classes 2: a 2-class policy applies and its
// per-class series come from the 2-class stats segment; a reload to 3 classes
// is refused by the dataplane with its reason, which the reload reports and
// counts like any other failed reload, and the policy in force stands. A
// control started on the 3-class file cannot connect and logs the reason.
constexpr std::string_view kTwoClasses = R"(version: 1
link: {capacity: 1000Mbit, shape_at: 95%}
classes:
  - {name: realtime, priority: latency, dscp: [EF], max_share: 20%, queue_limit: 5ms}
  - {name: bulk, priority: bulk, queue_limit: 50ms, default: true}
)";
constexpr std::string_view kScavenger =
    "  - {name: scavenger, priority: bulk, dscp: [CS1], queue_limit: 50ms}\n";
constexpr std::string_view kTenantsABCOnly = R"(tenants:
  - {name: a, match: {prefixes: [10.0.1.0/24]}, guaranteed: 100Mbit, ceiling: 900Mbit}
  - {name: b, match: {prefixes: [10.0.2.0/24]}, guaranteed: 300Mbit, ceiling: 400Mbit}
  - {name: c, match: {prefixes: [10.0.3.0/24]}, guaranteed: 100Mbit, ceiling: 900Mbit, weight: 3}
allocation: {mode: dynamic, interval: 100ms}
)";

class TwoClassDataplaneTest : public shaper::testing::CoreFixture {
 protected:
  // Tenants a, b, c with the two classes, and with a third (scavenger) too.
  const std::string two_classes_ = std::string(kTwoClasses) + std::string(kTenantsABCOnly);
  const std::string three_classes_ =
      std::string(kTwoClasses) + std::string(kScavenger) + std::string(kTenantsABCOnly);

  double Sample(const std::string& family, const std::string& tenant, const std::string& cls) {
    for (const auto& f : core_->CollectMetrics(false)) {
      if (f.name != family) continue;
      for (const auto& m : f.metric) {
        std::map<std::string, std::string> labels;
        for (const auto& l : m.label) labels[l.name] = l.value;
        if (labels["tenant"] == tenant && labels["class"] == cls &&
            labels["direction"] == "download")
          return m.counter.value;
      }
    }
    return -1;
  }
  std::set<std::string> Classes(const std::string& family) {
    std::set<std::string> out;
    for (const auto& f : core_->CollectMetrics(false))
      if (f.name == family)
        for (const auto& m : f.metric)
          for (const auto& l : m.label)
            if (l.name == "class") out.insert(l.value);
    return out;
  }
};

TEST_F(TwoClassDataplaneTest, ThreeClassPolicyIsRefusedWithTheDataplanesReason) {
  ASSERT_NO_FATAL_FAILURE(StartDataplane(2));
  ASSERT_EQ(dataplane_->segment().num_classes(), 2u);
  shaper::testing::WriteByRename(policy_path_, two_classes_);
  ASSERT_NO_FATAL_FAILURE(StartCore());
  core_->Tick();
  ASSERT_TRUE(core_->dataplane_up());
  GreedyTick({"a"});  // class 1 (bulk) traffic, as test_env.h writes it
  EXPECT_EQ(Sample("shaper_tenant_transmit_bytes_total", "a", "bulk"), 1000.0 * kMbit / 8 / 10);
  EXPECT_EQ(Sample("shaper_tenant_transmit_bytes_total", "a", "realtime"), 0);
  EXPECT_EQ(Classes("shaper_tenant_transmit_bytes_total"),
            (std::set<std::string>{"realtime", "bulk"}));
  EXPECT_EQ(Classes("shaper_class_queue_delay_seconds"),
            (std::set<std::string>{"realtime", "bulk"}));

  const Received before = dataplane_->received();
  const uint64_t generation = core_->plan_generation();
  shaper::testing::WriteByRename(policy_path_, three_classes_);
  const ReloadOutcome out = core_->Reload("test");
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.error.find("plan has 3 classes; this dataplane was started with --max-classes 2"),
            std::string::npos)
      << out.error;
  shaper::testing::ExpectSameReceived(dataplane_->received(), before);
  EXPECT_EQ(core_->plan_generation(), generation);
  EXPECT_TRUE(core_->dataplane_up());
  EXPECT_FALSE(core_->Status()["policy_valid"].get<bool>());
  EXPECT_EQ(Classes("shaper_tenant_transmit_bytes_total"),
            (std::set<std::string>{"realtime", "bulk"}))
      << "the policy in force labels the series";
  bool logged = false;
  for (const std::string& line : log_lines_)
    logged = logged || (line.find("policy reload failed") != std::string::npos &&
                        line.find("--max-classes 2") != std::string::npos);
  EXPECT_TRUE(logged) << "the reload failure is logged with the dataplane's reason";

  // A control (re)started on the 3-class file: the first apply is refused,
  // it stays disconnected and says why.
  log_lines_.clear();
  ASSERT_NO_FATAL_FAILURE(StartCore());
  core_->Tick();
  EXPECT_FALSE(core_->dataplane_up());
  logged = false;
  for (const std::string& line : log_lines_)
    logged = logged || (line.find("dataplane connect failed") != std::string::npos &&
                        line.find("plan has 3 classes") != std::string::npos);
  EXPECT_TRUE(logged) << "the refused first plan is logged with the dataplane's reason";
}

// A reload whose apply-plan ends without a reply before the plan reached the
// dataplane; pushed again on a new connection, the plan is refused outright
// (3 classes on a --max-classes 2 dataplane). The previous policy goes back in
// force on that connection and the reload counts as failed, with the
// dataplane's reason, exactly as a refusal on the first call does (above).
TEST_F(TwoClassDataplaneTest, UnansweredReloadRefusedWhenPushedAgainKeepsThePrevious) {
  ASSERT_NO_FATAL_FAILURE(StartDataplane(2));
  shaper::testing::WriteByRename(policy_path_, two_classes_);
  ASSERT_NO_FATAL_FAILURE(StartCore());
  core_->Tick();
  ASSERT_TRUE(core_->dataplane_up());
  const Received before = dataplane_->received();

  shaper::testing::WriteByRename(policy_path_, three_classes_);
  next_apply_fault_ = shaper::testing::ApplyFault::kNotSent;
  const ReloadOutcome out = core_->Reload("test");
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.error.find("plan has 3 classes; this dataplane was started with --max-classes 2"),
            std::string::npos)
      << out.error;
  // The previous plan, pushed again on the new connection.
  const Received now = dataplane_->received();
  EXPECT_EQ(now.plans, before.plans + 1);
  EXPECT_EQ(now.ids, before.ids);
  EXPECT_EQ(core_->plan_generation(), now.generation);
  EXPECT_TRUE(core_->dataplane_up());
  EXPECT_FALSE(core_->Status()["policy_valid"].get<bool>());
  EXPECT_EQ(core_->Status()["reloads"]["error"].get<uint64_t>(), 1u);
  EXPECT_EQ(core_->Status()["reloads"]["success"].get<uint64_t>(), 0u);
  EXPECT_EQ(Classes("shaper_tenant_transmit_bytes_total"),
            (std::set<std::string>{"realtime", "bulk"}));
  bool failed = false;
  bool previous = false;
  for (const std::string& line : log_lines_) {
    failed = failed || (line.find("policy reload failed") != std::string::npos &&
                        line.find("--max-classes 2") != std::string::npos);
    previous = previous || (line.find("plan applied") != std::string::npos &&
                            line.find("previous, the reload's was refused") != std::string::npos);
  }
  EXPECT_TRUE(failed) << "the reload failure is logged with the dataplane's reason";
  EXPECT_TRUE(previous) << "the plan pushed back is logged as the previous policy";
}

}  // namespace
}  // namespace shaper::control
