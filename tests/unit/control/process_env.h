// Test scaffolding for the tests that run shaper-control and shaperctl as
// processes (daemon_test.cc, live_test.cc): spawn, run a command and read
// its output, wait for a condition.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

}  // namespace shaper::testing
