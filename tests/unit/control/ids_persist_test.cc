// Tenant ids survive a control restart: the in-process core against the real
// in-process dataplane ctl server, with the id map in a state file.
//
// The scenario that motivated it: a, b, c run; a reload removes b and adds d
// (a=1, c=3, d=4); the control restarts while the dataplane keeps running.
// Numbered from scratch the restarted control would send a=1, c=2, d=3 and
// the dataplane would accept it, handing c's queues and counters to d's id
// neighbour. With the state file the plan after the restart is a=1, c=3, d=4.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/daemon/core.h"
#include "control/dpclient/plan_compiler.h"
#include "tests/unit/control/core_fixture.h"
#include "tests/unit/control/test_env.h"

namespace shaper::control {
namespace {

using shaper::testing::InProcessDataplane;

constexpr const char* kHead = R"(version: 1
link:
  capacity: 1000Mbit
  shape_at: 95%
classes:
  - name: bulk
    priority: bulk
    queue_limit: 50ms
allocation: {mode: static, interval: 100ms}
tenants:
)";

// A policy with one tenant per name, each with its own /24.
std::string PolicyWith(const std::vector<std::string>& names) {
  std::string text = kHead;
  int net = 1;
  for (const std::string& name : names) {
    text += "  - name: " + name + "\n    match: {prefixes: [10.0." + std::to_string(net++) +
            ".0/24]}\n    guaranteed: 10Mbit\n    ceiling: 100Mbit\n";
  }
  return text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class IdsPersistTest : public shaper::testing::CoreFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartDataplane());
    // Two levels that do not exist yet, as /run/shaper on a fresh boot.
    state_path_ = dir_ + "/run/shaper/control.ids";
  }

  // A new core (the old one destroyed first, as a process restart would),
  // started and connected: the dataplane has its plan.
  void StartCore(const std::string& state_path) {
    CoreOptions options;
    options.state_path = state_path;
    ASSERT_NO_FATAL_FAILURE(CoreFixture::StartCore(options));
    const uint64_t plans_before = dataplane_->received().plans;
    core_->Tick();
    ASSERT_TRUE(core_->dataplane_up());
    ASSERT_EQ(dataplane_->received().plans, plans_before + 1);
  }
  std::map<std::string, uint32_t> Ids() const { return dataplane_->received().ids; }
  bool Logged(const std::string& a, const std::string& b) const {
    for (const std::string& line : log_lines_) {
      if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
    }
    return false;
  }

  // a, b, c; then the reload that removes b and adds d.
  void RunUpToTheReload() {
    shaper::testing::WriteByRename(policy_path_, PolicyWith({"a", "b", "c"}));
    StartCore(state_path_);
    ASSERT_EQ(Ids(), (std::map<std::string, uint32_t>{{"default", 0}, {"a", 1}, {"b", 2}, {"c", 3}}));
    shaper::testing::WriteByRename(policy_path_, PolicyWith({"a", "c", "d"}));
    const ReloadOutcome out = core_->Reload("admin");
    ASSERT_TRUE(out.ok) << out.error;
    ASSERT_EQ(Ids(), (std::map<std::string, uint32_t>{{"default", 0}, {"a", 1}, {"c", 3}, {"d", 4}}));
  }

  std::string state_path_;
};

TEST_F(IdsPersistTest, RestartKeepsTheIdsTheDataplaneRuns) {
  RunUpToTheReload();
  // What the accepted reload saved, created 0600 in directories made 0755.
  EXPECT_EQ(ReadFile(state_path_), "shaper-tenant-ids 1 next_id=5\n1 a\n3 c\n4 d\n");
  struct stat st {};
  ASSERT_EQ(stat(state_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(stat((dir_ + "/run/shaper").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_FALSE(std::filesystem::exists(state_path_ + ".tmp"));

  // The control restarts; the dataplane runs on.
  StartCore(state_path_);
  EXPECT_EQ(Ids(), (std::map<std::string, uint32_t>{{"default", 0}, {"a", 1}, {"c", 3}, {"d", 4}}));
  EXPECT_TRUE(Logged("tenant ids restored", "tenants=3"));

  // The free id 2 is still known after the restart: the next newcomer takes it.
  shaper::testing::WriteByRename(policy_path_, PolicyWith({"a", "c", "d", "e"}));
  ASSERT_TRUE(core_->Reload("admin").ok);
  EXPECT_EQ(Ids().at("e"), 2u);
  EXPECT_EQ(ReadFile(state_path_), "shaper-tenant-ids 1 next_id=5\n1 a\n2 e\n3 c\n4 d\n");
}

// The same restart without a state file renumbers: the bug this guards.
TEST_F(IdsPersistTest, WithoutStateTheRestartWouldRenumber) {
  RunUpToTheReload();
  StartCore("");
  EXPECT_EQ(Ids(), (std::map<std::string, uint32_t>{{"default", 0}, {"a", 1}, {"c", 2}, {"d", 3}}));
}

TEST_F(IdsPersistTest, MalformedStateStartsFromScratchWithAWarning) {
  std::filesystem::create_directories(dir_ + "/run/shaper");
  std::ofstream(state_path_) << "shaper-tenant-ids 1 next_id=5\n1 a\nthree c\n";
  shaper::testing::WriteByRename(policy_path_, PolicyWith({"a", "c", "d"}));
  StartCore(state_path_);
  EXPECT_TRUE(Logged("level=warn", "line 3")) << "no warning naming the bad line";
  EXPECT_EQ(Ids(), (std::map<std::string, uint32_t>{{"default", 0}, {"a", 1}, {"c", 2}, {"d", 3}}));
  // The accepted plan replaced the bad file.
  EXPECT_EQ(ReadFile(state_path_), "shaper-tenant-ids 1 next_id=4\n1 a\n2 c\n3 d\n");
}

TEST_F(IdsPersistTest, MissingStateStartsFromScratch) {
  shaper::testing::WriteByRename(policy_path_, PolicyWith({"a", "b"}));
  StartCore(state_path_);
  EXPECT_TRUE(Logged("no saved tenant ids", state_path_));
  EXPECT_FALSE(Logged("level=warn", "tenant ids"));
  EXPECT_EQ(ReadFile(state_path_), "shaper-tenant-ids 1 next_id=3\n1 a\n2 b\n");
}

// A reload the dataplane never accepted saves nothing: the file keeps
// describing the plan that runs.
TEST_F(IdsPersistTest, RefusedReloadDoesNotSave) {
  RunUpToTheReload();
  const std::string saved = ReadFile(state_path_);
  // More tenants than the dataplane has rows: the plan cannot be applied.
  std::vector<std::string> names;
  for (uint32_t i = 0; i < InProcessDataplane::kMaxTenants; ++i) names.push_back("t" + std::to_string(i));
  shaper::testing::WriteByRename(policy_path_, PolicyWith(names));
  EXPECT_FALSE(core_->Reload("admin").ok);
  EXPECT_EQ(ReadFile(state_path_), saved);
  // A restart numbers from the saved map (a=1 c=3 d=4, 2 free).
  shaper::testing::WriteByRename(policy_path_, PolicyWith({"x", "a", "c", "d"}));
  StartCore(state_path_);
  EXPECT_EQ(Ids(), (std::map<std::string, uint32_t>{
                       {"default", 0}, {"a", 1}, {"x", 2}, {"c", 3}, {"d", 4}}));
}

TEST_F(IdsPersistTest, UnwritableStateIsLoggedNotFatal) {
  // The state's directory is a file: the save fails, the control runs on.
  std::ofstream(dir_ + "/run") << "not a directory";
  shaper::testing::WriteByRename(policy_path_, PolicyWith({"a"}));
  StartCore(state_path_);
  EXPECT_TRUE(core_->dataplane_up());
  EXPECT_TRUE(Logged("cannot save the tenant ids", "mkdir"));
}

}  // namespace
}  // namespace shaper::control
