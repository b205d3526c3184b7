// Test scaffolding for the tests that run shaper-control and shaperctl as
// processes (daemon_test.cc, live_test.cc): spawn, run a command and read
// its output, wait for a condition; and their shared fixture.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/control/test_env.h"

namespace shaper::testing {

inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Runs a command; returns its exit status and stdout (+ stderr).
inline std::pair<int, std::string> RunCommand(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::string out;
  char buf[1024];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// fork/exec with stderr to `log_path`; the caller reaps the child.
inline pid_t Spawn(const std::vector<std::string>& args, const std::string& log_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    FILE* log = std::fopen(log_path.c_str(), "w");
    if (log != nullptr) dup2(fileno(log), 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

template <typename F>
bool WaitFor(F condition, int timeout_ms = 10'000) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// A temp directory with `policy` as the policy file, a real in-process
// dataplane ctl server keeping its own heartbeat (as the main lcore does), a
// free metrics port, and the paths of the binaries under test (skipped when
// not run by meson test). The control the test spawns into pid_ is killed at
// the end; on failure its `logs` (names in the directory) are printed.
class ControlProcessFixture : public ::testing::Test {
 protected:
  ControlProcessFixture(std::string policy, std::vector<std::string> logs)
      : policy_text_(std::move(policy)), logs_(std::move(logs)) {}

  void SetUp() override {
    control_ = Env("SHAPER_CONTROL");
    shaperctl_ = Env("SHAPERCTL");
    if (control_.empty() || shaperctl_.empty()) GTEST_SKIP() << "SHAPER_CONTROL/SHAPERCTL not set (run via meson test)";
    dir_ = MakeTempDir();
    policy_ = dir_ + "/policy.yaml";
    admin_ = dir_ + "/control.sock";
    WriteByRename(policy_, policy_text_);
    dataplane_ = std::make_unique<InProcessDataplane>(dir_ + "/dp.sock", /*auto_heartbeat=*/true);
    ASSERT_TRUE(dataplane_->Start());
    port_ = FreeTcpPort();
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (HasFailure()) {
      for (const std::string& log : logs_) std::fputs(RunCommand("cat " + dir_ + "/" + log).second.c_str(), stderr);
    }
    dataplane_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // shaper-control's command line against this fixture's dataplane, admin
  // socket and metrics port.
  std::vector<std::string> ControlArgs() const {
    return {control_, "--policy", policy_, "--dataplane", dir_ + "/dp.sock", "--admin", admin_,
            "--metrics", "127.0.0.1:" + std::to_string(port_), "--log-level", "debug",
            // In the test's dir, never the shared /run default: tests must not
            // see each other's ids, and a restarted control finds them here.
            "--state", dir_ + "/control.ids"};
  }

  std::string policy_text_;
  std::vector<std::string> logs_;
  std::string control_, shaperctl_, dir_, policy_, admin_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<InProcessDataplane> dataplane_;
};

}  // namespace shaper::testing
