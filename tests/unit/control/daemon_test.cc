// The shaper-control executable end to end, with shaperctl: against a real
// in-process dataplane ctl server, it pushes the plan, serves /metrics and
// the admin socket, reloads on an edit by rename and on SIGHUP, refuses a
// taken metrics port, and exits cleanly on SIGTERM.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/unit/control/process_env.h"
#include "tests/unit/control/test_env.h"

namespace shaper::testing {
namespace {

constexpr const char* kPolicy = R"(version: 1
link: {capacity: 1000Mbit, shape_at: 95%}
classes:
  - {name: bulk, priority: bulk, queue_limit: 50ms}
tenants:
  - name: acme
    match: {prefixes: [10.0.1.0/24]}
    guaranteed: 100Mbit
    ceiling: 900Mbit
  - name: globex
    match: {prefixes: [10.0.2.0/24]}
    guaranteed: 200Mbit
allocation: {mode: dynamic, interval: 50ms}
)";

class DaemonTest : public ControlProcessFixture {
 protected:
  DaemonTest() : ControlProcessFixture(kPolicy, {"control.log"}) {}
};

TEST_F(DaemonTest, RunsReloadsAndAnswersShaperctl) {
  // Not running yet: shaperctl says so.
  auto [rc0, out0] = RunCommand(shaperctl_ + " status --admin " + admin_);
  EXPECT_EQ(rc0, 1) << out0;
  EXPECT_NE(out0.find("is shaper-control running?"), std::string::npos) << out0;

  pid_ = Spawn(ControlArgs(), dir_ + "/control.log");
  ASSERT_TRUE(WaitFor([&] { return dataplane_->received().plans == 1; })) << "no plan pushed";
  ASSERT_TRUE(WaitFor([&] { return access(admin_.c_str(), F_OK) == 0; }));
  struct stat st{};
  ASSERT_EQ(stat(admin_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto [rc1, out1] = RunCommand(shaperctl_ + " status --admin " + admin_);
  EXPECT_EQ(rc1, 0) << out1;
  EXPECT_NE(out1.find("acme"), std::string::npos) << out1;
  EXPECT_NE(out1.find("dataplane up"), std::string::npos) << out1;
  auto [rc2, out2] = RunCommand(shaperctl_ + " status --json --admin " + admin_);
  EXPECT_EQ(rc2, 0) << out2;
  const nlohmann::json status = nlohmann::json::parse(out2, nullptr, false);
  ASSERT_FALSE(status.is_discarded()) << out2;
  EXPECT_EQ(status["tenants"].size(), 6u);  // default, acme, globex x 2 directions

  // globex sends 400 Mbit/s downstream for a while: its allocation follows.
  const uint32_t globex = dataplane_->received().ids.at("globex");
  const bool followed = WaitFor([&] {
    dataplane_->AddTraffic(globex, abi::kDownload, 400'000'000 / 8 / 50);  // ~ per 20 ms poll
    return dataplane_->received().assured_bps.at({globex, abi::kDownload}) > 200'000'000;
  });
  EXPECT_TRUE(followed);
  auto [rc3, out3] = RunCommand(shaperctl_ + " explain globex --admin " + admin_);
  EXPECT_EQ(rc3, 0) << out3;
  EXPECT_NE(out3.find("download"), std::string::npos) << out3;
  EXPECT_NE(out3.find("bound"), std::string::npos) << out3;
  auto [rc4, out4] = RunCommand(shaperctl_ + " explain nobody --admin " + admin_);
  EXPECT_EQ(rc4, 1);
  EXPECT_NE(out4.find("nobody"), std::string::npos) << out4;

  // An editor's save (rename): the watcher reloads, acme keeps its id.
  const uint32_t acme = dataplane_->received().ids.at("acme");
  WriteByRename(policy_, std::string(kPolicy) + R"(  # edited
)");
  ASSERT_TRUE(WaitFor([&] { return dataplane_->received().plans == 2; })) << "edit not seen";
  EXPECT_EQ(dataplane_->received().ids.at("acme"), acme);
  // SIGHUP and `shaperctl reload` reload too.
  kill(pid_, SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return dataplane_->received().plans == 3; })) << "SIGHUP ignored";
  auto [rc5, out5] = RunCommand(shaperctl_ + " reload --admin " + admin_);
  EXPECT_EQ(rc5, 0) << out5;
  EXPECT_EQ(dataplane_->received().plans, 4u);
  const std::string metrics = HttpGet(port_, "/metrics");
  EXPECT_EQ(SampleValue(metrics, "shaper_policy_reloads_total{result=\"success\"}"), 3) << metrics;
  EXPECT_EQ(SampleValue(metrics, "shaper_dataplane_up"), 1) << metrics;

  // A second instance: the metrics port is taken -> a clear message, exit 1.
  std::string second = control_ + " --policy " + policy_ + " --dataplane " + dir_ + "/dp.sock --admin " + dir_ +
                       "/other.sock --metrics 127.0.0.1:" + std::to_string(port_) + " --state " + dir_ + "/control.ids";
  auto [rc6, out6] = RunCommand(second);
  EXPECT_EQ(rc6, 1) << out6;
  EXPECT_NE(out6.find(std::to_string(port_)), std::string::npos) << out6;

  kill(pid_, SIGTERM);
  int wstatus = 0;
  ASSERT_TRUE(WaitFor([&] { return waitpid(pid_, &wstatus, WNOHANG) == pid_; }));
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;
  EXPECT_NE(access(admin_.c_str(), F_OK), 0) << "admin socket left behind";
}

TEST_F(DaemonTest, InvalidPolicyExitsWithEveryDiagnostic) {
  WriteByRename(policy_, std::string(kPolicy) + "bogus: 1\nother_bogus: 2\n");
  auto [rc, out] = RunCommand(control_ + " --policy " + policy_ + " --admin " + admin_ + " --metrics 127.0.0.1:" +
                       std::to_string(port_) + " --state " + dir_ + "/control.ids");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("bogus"), std::string::npos) << out;
  EXPECT_NE(out.find("other_bogus"), std::string::npos) << out;
}

}  // namespace
}  // namespace shaper::testing
