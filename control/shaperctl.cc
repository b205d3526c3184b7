// shaperctl: the operator's command line.
//
// `check` loads and validates policy files offline (no running shaper
// needed) and prints what they mean: the link, each tenant's guaranteed and
// ceiling rates per direction, the share of the link the guarantees take,
// and the oversubscription. `status`, `reload` and `explain` talk to a
// running shaper-control over its admin socket (control/daemon/admin.h), and
// `top` refreshes the status table, busiest tenants first.
// Exit status: 0 every file is valid, 1 a file has errors (all printed, to
// stderr), 2 the command line is wrong.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "config/loader.h"
#include "config/units.h"
#include "control/check_report.h"
#include "control/daemon/admin.h"
#include "control/daemon/shaperctl_live.h"

namespace {

constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

int RunCheck(const std::vector<std::string>& files, bool json, uint64_t limit) {
  int status = 0;
  nlohmann::json report = nlohmann::json::array();
  for (const std::string& file : files) {
    auto policy = shaper::config::LoadPolicyFile(file);
    if (!policy) {
      status = kExitInvalid;
      if (json) {
        report.push_back(shaper::control::ErrorsJson(file, policy.error()));
      } else {
        std::fputs(shaper::config::FormatDiagnostics(policy.error()).c_str(), stderr);
        const size_t n = policy.error().size();
        std::fputs(fmt::format("{}: invalid ({} error{})\n", file, n, n == 1 ? "" : "s").c_str(), stderr);
      }
      continue;
    }
    if (json) {
      report.push_back(shaper::control::CheckJson(file, *policy, limit));
    } else {
      std::fputs(shaper::control::CheckTable(file, *policy, limit).c_str(), stdout);
    }
  }
  if (json) std::puts(nlohmann::json{{"files", std::move(report)}}.dump(2).c_str());
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shaperctl: the shaper operator's command line"};
  app.footer(
      "`check` works offline; status, top, reload and explain talk to a running shaper-control over its\n"
      "admin socket (--admin).");
  app.require_subcommand(1);

  std::vector<std::string> files;
  bool json = false;
  uint64_t limit = 50;
  CLI::App* check = app.add_subcommand(
      "check", "Load and validate policy files; print each one's link, tenants and totals, or every error");
  check->add_option("FILE", files, "policy file(s) (YAML)")->required();
  check->add_flag("--json", json, "print one JSON document (errors included) on stdout, for scripts");
  check->add_option("--limit", limit, "tenants to list per file (0: all); totals always cover every tenant")
      ->capture_default_str();

  // Live commands: status, reload, explain (control/daemon/shaperctl_live.h).
  std::string admin_path = shaper::control::kDefaultAdminSocket;
  bool live_json = false;
  std::string tenant;
  CLI::App* status = app.add_subcommand("status", "Per tenant and direction: rate now, allocated, guaranteed, "
                                                  "ceiling, queue, drops (from a running shaper-control)");
  status->add_option("--admin", admin_path, "shaper-control's admin socket")->capture_default_str();
  status->add_flag("--json", live_json, "print shaper-control's JSON reply");
  std::string interval_text = "1s";
  uint64_t count = 0;
  CLI::App* top = app.add_subcommand("top", "The status table refreshed every --interval, busiest tenants first, "
                                            "cut to the terminal's height; Ctrl-C ends it");
  top->add_option("--admin", admin_path, "shaper-control's admin socket")->capture_default_str();
  top->add_option("--interval", interval_text, "time between refreshes (ms, s; at least 10ms)")
      ->capture_default_str();
  top->add_option("--count", count, "stop after this many refreshes (0: until Ctrl-C)")->capture_default_str();
  top->add_flag("--json", live_json, "one JSON status reply per refresh, one per line, tenants sorted");
  CLI::App* reload = app.add_subcommand("reload", "Make shaper-control re-read its policy file now");
  reload->add_option("--admin", admin_path, "shaper-control's admin socket")->capture_default_str();
  CLI::App* explain = app.add_subcommand("explain", "Why a tenant got its rate: demand, floor, share, what bound it");
  explain->add_option("TENANT", tenant, "tenant name")->required();
  explain->add_option("--admin", admin_path, "shaper-control's admin socket")->capture_default_str();
  explain->add_flag("--json", live_json, "print shaper-control's JSON reply");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (status->parsed()) return shaper::control::RunStatus(admin_path, live_json);
  if (top->parsed()) {
    // Below 10 ms the refreshes would only load shaper-control's event loop.
    constexpr uint64_t kMinIntervalNs = 10'000'000;
    auto interval = shaper::config::ParseDuration(interval_text);
    if (!interval || *interval < kMinIntervalNs) {
      std::fputs(fmt::format("shaperctl: --interval '{}': {}\n", interval_text,
                             interval ? "must be at least 10ms" : interval.error())
                     .c_str(),
                 stderr);
      return kExitUsage;
    }
    return shaper::control::RunTop(admin_path, *interval, count, live_json);
  }
  if (reload->parsed()) return shaper::control::RunReload(admin_path);
  if (explain->parsed()) return shaper::control::RunExplain(admin_path, tenant, live_json);
  return RunCheck(files, json, limit);
}
