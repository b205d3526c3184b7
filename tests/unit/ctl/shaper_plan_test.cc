// shaper-plan end to end: compile an example policy to a file, verify the
// file, and push the policy to a ctl server running in this process.
// meson passes the binary and the example policy in the environment.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "dataplane/ctl/ctl_server.h"

namespace shaper::ctl {
namespace {

struct ToolRun {
  int status = -1;
  std::string out;
};

ToolRun RunTool(const std::string& args) {
  const std::string cmd = std::string(std::getenv("SHAPER_PLAN")) + " " + args + " 2>&1";
  ToolRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) r.out += buf;
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class ShaperPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("SHAPER_PLAN") == nullptr || std::getenv("SHAPER_POLICY") == nullptr) {
      GTEST_SKIP() << "SHAPER_PLAN / SHAPER_POLICY not set (run through meson test)";
    }
    policy_ = std::getenv("SHAPER_POLICY");
    char tmpl[] = "/tmp/shaper-plan-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string policy_;
  std::string dir_;
};

TEST_F(ShaperPlanTest, CompilesAFileThatVerifies) {
  const std::string plan = dir_ + "/p.plan";
  ToolRun compile = RunTool(policy_ + " -o " + plan);
  ASSERT_EQ(compile.status, 0) << compile.out;
  ToolRun verify = RunTool("--verify " + plan);
  EXPECT_EQ(verify.status, 0) << verify.out;
  EXPECT_NE(verify.out.find("valid plan"), std::string::npos) << verify.out;

  // A corrupted file is refused with the field named.
  FILE* f = fopen(plan.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  const uint32_t bad_magic = 0xdeadbeef;
  fwrite(&bad_magic, sizeof(bad_magic), 1, f);
  fclose(f);
  ToolRun bad = RunTool("--verify " + plan);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("header.magic=0xdeadbeef"), std::string::npos) << bad.out;
}

TEST_F(ShaperPlanTest, PushesToARunningDataplane) {
  const std::string sock = dir_ + "/dp.sock";
  std::atomic<int> plans{0};
  CtlServerOptions options;
  options.socket_path = sock;
  options.log = [](std::string_view) {};
  CtlCallbacks callbacks;
  callbacks.on_plan = [&](const PlanView& view) -> std::expected<uint64_t, std::string> {
    EXPECT_GE(view.tenants().size(), 2u);
    return static_cast<uint64_t>(++plans);
  };
  callbacks.on_rates = [](const RatesView&) -> std::expected<void, std::string> { return {}; };
  auto server = CtlServer::Create(std::move(options), std::move(callbacks), -1, 0);
  ASSERT_TRUE(server.has_value()) << server.error();
  std::jthread poller([&](std::stop_token stop) {
    while (!stop.stop_requested()) (*server)->Poll(5);
  });
  ToolRun push = RunTool("--push " + policy_ + " --socket " + sock);
  EXPECT_EQ(push.status, 0) << push.out;
  EXPECT_NE(push.out.find("ok (generation 1)"), std::string::npos) << push.out;
  EXPECT_EQ(plans, 1);

  ToolRun nobody = RunTool("--push " + policy_ + " --socket " + dir_ + "/absent.sock");
  EXPECT_EQ(nobody.status, 1);
  EXPECT_NE(nobody.out.find("is shaper-dataplane running?"), std::string::npos) << nobody.out;
}

}  // namespace
}  // namespace shaper::ctl
