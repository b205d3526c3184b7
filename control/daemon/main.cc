// shaper-control: loads the policy, pushes the plan to the dataplane, runs
// the allocation loop, reloads the policy on edit, exports Prometheus
// metrics and serves the admin socket (control/daemon/core.h has the model).
//
// One thread runs the event loop below: poll() on a timerfd (the tick), a
// signalfd (SIGHUP reloads, SIGINT/SIGTERM exit cleanly), the inotify watch
// on the policy directory and the admin socket. The metrics server's own
// threads (civetweb) serve /metrics; they only read the core's state under its mutex.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "control/daemon/admin.h"
#include "control/daemon/core.h"
#include "control/daemon/log.h"
#include "control/daemon/metrics.h"
#include "control/daemon/watcher.h"
#include "control/daemon/xdp_sync.h"
#include "dataplane/abi/messages.h"

namespace shaper::control {
namespace {

constexpr int kExitError = 1;

int ArmTimer(int fd, uint64_t period_ns) {
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(period_ns / 1'000'000'000);
  spec.it_interval.tv_nsec = static_cast<long>(period_ns % 1'000'000'000);
  spec.it_value = spec.it_interval;
  return timerfd_settime(fd, 0, &spec, nullptr);
}

int Run(ControlCore& core, AdminServer& admin, PolicyWatcher& watcher, const Logger& log) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  const int sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  const int timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (sig_fd < 0 || timer_fd < 0) {
    log.Error("event loop setup failed", {{"error", std::strerror(errno)}});
    return kExitError;
  }
  uint64_t period_ns = core.tick_period_ns();
  ArmTimer(timer_fd, period_ns);
  core.Tick();  // connect now rather than one period later

  for (;;) {
    pollfd fds[4] = {{sig_fd, POLLIN, 0}, {timer_fd, POLLIN, 0}, {watcher.fd(), POLLIN, 0}, {admin.fd(), POLLIN, 0}};
    if (poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      log.Error("poll failed", {{"error", std::strerror(errno)}});
      return kExitError;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (read(sig_fd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
        if (si.ssi_signo == SIGHUP) {
          core.Reload("sighup");
        } else {
          log.Info("shutting down", {{"signal", strsignal(static_cast<int>(si.ssi_signo))}});
          close(sig_fd);
          close(timer_fd);
          return 0;
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      uint64_t expirations = 0;
      [[maybe_unused]] const ssize_t n = read(timer_fd, &expirations, sizeof(expirations));
      core.Tick();
    }
    if ((fds[2].revents & POLLIN) && watcher.ReadEventsSettled(50, 500)) core.Reload("inotify");
    if (fds[3].revents & POLLIN) admin.HandleReady();
    // A reload may change allocation.interval.
    if (const uint64_t p = core.tick_period_ns(); p != period_ns) {
      period_ns = p;
      ArmTimer(timer_fd, period_ns);
    }
  }
}

}  // namespace
}  // namespace shaper::control

int main(int argc, char** argv) {
  using namespace shaper::control;
  CLI::App app{"shaper-control: pushes the policy to shaper-dataplane, allocates rates on demand, "
               "exports Prometheus metrics"};
  std::string policy_path;
  std::string dataplane = shaper::abi::kDefaultSocketPath;
  std::string metrics = "127.0.0.1:9470";
  std::string admin_path = kDefaultAdminSocket;
  std::string level_text = "info";
  uint32_t top_n = 20;
  std::string state_path = "/run/shaper/control.ids";
  std::string xdp_maps;
  app.add_option("--policy", policy_path, "policy file (YAML); reloaded when it changes, on SIGHUP and on `shaperctl reload`")
      ->required();
  app.add_option("--dataplane", dataplane, "shaper-dataplane's control socket")->capture_default_str();
  app.add_option("--metrics", metrics, "Prometheus listen address host:port")->capture_default_str();
  app.add_option("--metrics-top", top_n, "tenants on /metrics (by rate); /metrics/tenants has all")
      ->capture_default_str();
  app.add_option("--admin", admin_path, "admin socket for shaperctl")->capture_default_str();
  app.add_option("--state", state_path,
                 "where the tenant id map is kept across control restarts, so a restarted control "
                 "numbers tenants as the running dataplane does. Keep it on /run (tmpfs): it must "
                 "live exactly as long as the dataplane's plan, and a reboot restarts the "
                 "dataplane too. Created 0600 (its directory 0755); '' keeps it in memory only")
      ->capture_default_str();
  app.add_option("--xdp-maps", xdp_maps,
                 "AF_XDP mode: keep the XDP steering maps pinned in this bpffs directory (the "
                 "dataplane's net_af_xdp xdp_prog= pins them in /sys/fs/bpf) in step with the "
                 "policy; needs CAP_BPF or root. Off by default (PCI, af_packet: no BPF needed)");
  app.add_option("--log-level", level_text, "debug, info, warn or error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  const auto level = ParseLogLevel(level_text);
  if (!level) {
    std::fputs(fmt::format("shaper-control: --log-level '{}': expected debug, info, warn or error\n", level_text).c_str(),
               stderr);
    return 2;
  }
  const Logger log(*level);

  // SIGHUP/SIGINT/SIGTERM are read from a signalfd: block them before any
  // thread (the metrics server's) starts, so every thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CoreOptions options;
  options.policy_path = policy_path;
  options.metrics_top_n = top_n;
  options.state_path = state_path;
  std::unique_ptr<XdpMapSync> xdp;
  if (!xdp_maps.empty()) {
    auto opened = XdpMapSync::Open(xdp_maps, log);
    if (!opened) {
      std::fputs(fmt::format("shaper-control: --xdp-maps {}: {}\n", xdp_maps, opened.error()).c_str(), stderr);
      return 1;
    }
    xdp = std::move(*opened);
    options.on_policy_installed = [&xdp](const shaper::config::Policy& p, const shaper::dpclient::TenantIds& ids) {
      (void)xdp->Sync(p, ids);  // logs its own errors; the next reload retries
    };
  }
  ControlCore core(options, SocketConnector(dataplane), MonotonicNowNs, WallNowSeconds, log);
  if (auto started = core.Start(); !started) {
    std::fputs(started.error().c_str(), stderr);
    std::fputs(fmt::format("shaper-control: policy '{}' is invalid; not starting\n", policy_path).c_str(), stderr);
    return 1;
  }
  if (xdp && !xdp->last_error().empty()) {
    std::fputs(fmt::format("shaper-control: {}; not starting\n", xdp->last_error()).c_str(), stderr);
    return 1;
  }
  auto watcher = PolicyWatcher::Create(policy_path);
  if (!watcher) {
    log.Error("cannot watch the policy", {{"error", watcher.error()}});
    return 1;
  }
  auto exporter = MetricsServer::Start(metrics, core);
  if (!exporter) {
    log.Error("cannot start metrics", {{"error", exporter.error()}});
    return 1;
  }
  auto admin = AdminServer::Create(
      admin_path, [&core](const nlohmann::json& req) { return HandleAdminRequest(core, req); }, log);
  if (!admin) {
    log.Error("cannot open the admin socket", {{"error", admin.error()}});
    return 1;
  }
  log.Info("started", {{"policy", policy_path}, {"dataplane", dataplane}, {"metrics", metrics}, {"admin", admin_path}, {"state", state_path}});
  return Run(core, **admin, **watcher, log);
}
