// shaperctl's live commands (status, top, reload, explain): they talk to a
// running shaper-control over its admin socket (admin.h) and print its
// JSON replies as tables, or as JSON with --json. Exit status: 0 done,
// 1 the command failed (shaper-control not running, tenant unknown, policy
// invalid on reload).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace shaper::control {

int RunStatus(const std::string& admin_path, bool json);
int RunReload(const std::string& admin_path);
int RunExplain(const std::string& admin_path, const std::string& tenant, bool json);

// `top`: the status table every `interval_ns`, busiest first, cut to the
// terminal's height; the screen is cleared (ANSI) only when stdout is a tty.
// Stops after `count` refreshes (0: until SIGINT/SIGTERM, which exit 0).
// With --json, one status reply per line (tenants sorted, none cut).
// A failed request ends it with status 1, except on a tty after the first
// refresh: there the error is shown and the next refresh tries again, so a
// restarting shaper-control does not end an operator's watch.
int RunTop(const std::string& admin_path, uint64_t interval_ns, uint64_t count, bool json);

// The text shaperctl prints (exposed for tests).
std::string FormatRate(uint64_t bps);
std::string StatusTable(const nlohmann::json& status);
std::string ExplainText(const nlohmann::json& explain);
// `status` with its tenant rows sorted by current rate, highest first (ties:
// by tenant name, then direction, so a refresh does not reshuffle them).
nlohmann::json SortedByRate(const nlohmann::json& status);
// The top screen for a terminal `screen_rows` high: the sorted table with
// as many rows as fit, then how many were left out.
std::string TopTable(const nlohmann::json& status, size_t screen_rows);

}  // namespace shaper::control
