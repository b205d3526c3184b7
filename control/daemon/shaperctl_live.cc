#include "control/daemon/shaperctl_live.h"

#include <cstdio>

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
