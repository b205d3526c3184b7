#include "control/daemon/shaperctl_live.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <tuple>

#include <fmt/format.h>

#include "control/daemon/admin.h"

namespace shaper::control {
namespace {

constexpr int kExitFailed = 1;

// Sends `request`; prints the failure (unreachable daemon or an error reply) and returns nullopt.
std::optional<nlohmann::json> Call(const std::string& admin_path, const nlohmann::json& request) {
  auto reply = AdminCall(admin_path, request);
  if (!reply) {
    std::fputs(fmt::format("shaperctl: {}\n", reply.error()).c_str(), stderr);
    return std::nullopt;
  }
  if (!reply->value("ok", false)) {
    std::fputs(fmt::format("shaperctl: {}\n", reply->value("error", std::string("request failed"))).c_str(), stderr);
    return std::nullopt;
  }
  return std::move(*reply);
}

uint64_t U64(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned() ? j[key].get<uint64_t>() : 0;
}

// Lines TopTable keeps for itself: the two header lines, the "more rows"
// line, and the cursor's line after the last newline (else the screen scrolls).
constexpr size_t kTopReservedRows = 4;
constexpr size_t kFallbackRows = 24;  // not a terminal, or it would not say
constexpr const char* kClearScreen = "\x1b[H\x1b[2J";

// Set by SIGINT/SIGTERM during `top`; the loop ends at its next check.
volatile std::sig_atomic_t g_top_stop = 0;
void OnTopSignal(int) { g_top_stop = 1; }

size_t TerminalRows() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  return kFallbackRows;
}

// Sleeps `ns` unless a stop signal comes first (the handler has no
// SA_RESTART, so the sleep returns early with EINTR).
void SleepUnlessStopped(uint64_t ns) {
  timespec left{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (!g_top_stop && nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

}  // namespace

std::string FormatRate(uint64_t bps) {
  const double v = static_cast<double>(bps);
  if (bps >= 1'000'000'000) return fmt::format("{:.2f} Gbit/s", v / 1e9);
  if (bps >= 1'000'000) return fmt::format("{:.1f} Mbit/s", v / 1e6);
  if (bps >= 1'000) return fmt::format("{:.1f} Kbit/s", v / 1e3);
  return fmt::format("{} bit/s", bps);
}

std::string StatusTable(const nlohmann::json& status) {
  std::string out = fmt::format(
      "policy {} ({}), allocation {}, dataplane {}, plan generation {}\n", status.value("policy", std::string()),
      status.value("policy_valid", false) ? "valid" : "INVALID on disk, previous one in force",
      status.value("mode", std::string()), status.value("dataplane_up", false) ? "up" : "DOWN",
      U64(status, "plan_generation"));
  out += fmt::format("{:<24} {:<9} {:>14} {:>14} {:>14} {:>14} {:>12} {:>10}\n", "TENANT", "DIRECTION", "RATE",
                     "ALLOCATED", "GUARANTEED", "CEILING", "QUEUE", "DROPS");
  for (const nlohmann::json& row : status.value("tenants", nlohmann::json::array())) {
    out += fmt::format("{:<24} {:<9} {:>14} {:>14} {:>14} {:>14} {:>12} {:>10}\n",
                       row.value("tenant", std::string()), row.value("direction", std::string()),
                       FormatRate(U64(row, "rate_bps")), FormatRate(U64(row, "allocated_bps")),
                       FormatRate(U64(row, "guaranteed_bps")), FormatRate(U64(row, "ceiling_bps")),
                       fmt::format("{} B", U64(row, "queue_bytes")), U64(row, "drop_packets"));
  }
  return out;
}

std::string ExplainText(const nlohmann::json& explain) {
  std::string out = fmt::format("tenant {} (id {})\n", explain.value("tenant", std::string()), U64(explain, "id"));
  for (const nlohmann::json& d : explain.value("directions", nlohmann::json::array())) {
    out += fmt::format("  {}: rate {}\n", d.value("direction", std::string()), FormatRate(U64(d, "rate_bps")));
    if (!d.value("allocated", false)) {
      out += fmt::format("    guaranteed {}, ceiling {}: {}\n", FormatRate(U64(d, "guaranteed_bps")),
                         FormatRate(U64(d, "ceiling_bps")), d.value("reason", std::string()));
      continue;
    }
    out += fmt::format("    demand {}, guaranteed {}, ceiling {}, weight {}\n", FormatRate(U64(d, "demand_bps")),
                       FormatRate(U64(d, "guaranteed_bps")), FormatRate(U64(d, "ceiling_bps")), U64(d, "weight"));
    out += fmt::format("    = floor {} + share of the spare {}\n", FormatRate(U64(d, "floor_bps")),
                       FormatRate(U64(d, "spare_bps")));
    const std::string bound = d.value("bound", std::string());
    std::string why;
    if (bound == "demand") why = "it got all it asked for";
    else if (bound == "ceiling") why = "held at its own ceiling (it asked for more)";
    else if (bound == "group ceiling") why = "its group '" + d.value("group", std::string()) + "' is at its ceiling";
    else if (bound == "overcommitted") why = "guarantees exceed what its node had; all were scaled down";
    else why = "its weighted share of a spare that ran out (the link is full)";
    out += fmt::format("    bound: {} ({})\n", bound, why);
    out += fmt::format("    link: {} allocated of {} wanted\n", FormatRate(U64(d, "link_total_bps")),
                       FormatRate(U64(d, "link_want_bps")));
  }
  return out;
}

nlohmann::json SortedByRate(const nlohmann::json& status) {
  nlohmann::json out = status;
  if (!out.contains("tenants") || !out["tenants"].is_array()) return out;
  auto key = [](const nlohmann::json& row) {
    return std::tuple(U64(row, "rate_bps"), row.value("tenant", std::string()), row.value("direction", std::string()));
  };
  auto& rows = out["tenants"];
  std::stable_sort(rows.begin(), rows.end(), [&](const nlohmann::json& a, const nlohmann::json& b) {
    const auto ka = key(a);
    const auto kb = key(b);
    if (std::get<0>(ka) != std::get<0>(kb)) return std::get<0>(ka) > std::get<0>(kb);
    return std::tie(std::get<1>(ka), std::get<2>(ka)) < std::tie(std::get<1>(kb), std::get<2>(kb));
  });
  return out;
}

std::string TopTable(const nlohmann::json& status, size_t screen_rows) {
  nlohmann::json sorted = SortedByRate(status);
  const size_t fit = screen_rows > kTopReservedRows ? screen_rows - kTopReservedRows : 1;
  size_t left_out = 0;
  if (sorted.contains("tenants") && sorted["tenants"].is_array() && sorted["tenants"].size() > fit) {
    auto& rows = sorted["tenants"];
    left_out = rows.size() - fit;
    rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(fit), rows.end());
  }
  std::string out = StatusTable(sorted);
  if (left_out > 0) {
    out += fmt::format("... {} more row{} (a taller terminal, or `shaperctl status`, shows them)\n", left_out,
                       left_out == 1 ? "" : "s");
  }
  return out;
}

int RunTop(const std::string& admin_path, uint64_t interval_ns, uint64_t count, bool json) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  g_top_stop = 0;
  struct sigaction on_stop{};
  on_stop.sa_handler = OnTopSignal;
  sigemptyset(&on_stop.sa_mask);
  on_stop.sa_flags = 0;  // no SA_RESTART: the sleep and the admin call return at once
  struct sigaction old_int{}, old_term{};
  sigaction(SIGINT, &on_stop, &old_int);
  sigaction(SIGTERM, &on_stop, &old_term);

  int rc = 0;
  for (uint64_t shown = 0; count == 0 || shown < count; ++shown) {
    if (shown > 0) SleepUnlessStopped(interval_ns);
    if (g_top_stop) break;
    auto reply = AdminCall(admin_path, {{"cmd", "status"}});
    if (g_top_stop) break;  // the call was interrupted by the signal, not failed
    std::string error;
    if (!reply) error = reply.error();
    else if (!reply->value("ok", false)) error = reply->value("error", std::string("request failed"));
    if (!error.empty()) {
      if (!tty || shown == 0) {
        std::fputs(fmt::format("shaperctl: {}\n", error).c_str(), stderr);
        rc = kExitFailed;
        break;
      }
      std::fputs(fmt::format("{}shaperctl top: {} (retrying every {} ms)\n", kClearScreen, error,
                             interval_ns / 1'000'000)
                     .c_str(),
                 stdout);
      std::fflush(stdout);
      continue;
    }
    std::string text;
    if (json) {
      text = SortedByRate(*reply).dump() + "\n";
    } else {
      // Piped: refreshes follow each other, a blank line between them.
      text = tty ? kClearScreen + TopTable(*reply, TerminalRows())
                 : (shown > 0 ? "\n" : "") + TopTable(*reply, TerminalRows());
    }
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return rc;
}

int RunStatus(const std::string& admin_path, bool json) {
  auto reply = Call(admin_path, {{"cmd", "status"}});
  if (!reply) return kExitFailed;
  std::fputs(json ? (reply->dump(2) + "\n").c_str() : StatusTable(*reply).c_str(), stdout);
  return 0;
}

int RunReload(const std::string& admin_path) {
  auto reply = Call(admin_path, {{"cmd", "reload"}});
  if (!reply) return kExitFailed;
  std::fputs(fmt::format("reloaded: {} tenants, plan generation {}{}\n", U64(*reply, "tenants"),
                         U64(*reply, "plan_generation"),
                         reply->value("dataplane_up", false) ? "" : " (dataplane down: pushed when it returns)")
                 .c_str(),
             stdout);
  return 0;
}

int RunExplain(const std::string& admin_path, const std::string& tenant, bool json) {
  auto reply = Call(admin_path, {{"cmd", "explain"}, {"tenant", tenant}});
  if (!reply) return kExitFailed;
  std::fputs(json ? (reply->dump(2) + "\n").c_str() : ExplainText(*reply).c_str(), stdout);
  return 0;
}

}  // namespace shaper::control
