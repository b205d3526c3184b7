// shaperctl's live commands (status, reload, explain): they talk to a
// running shaper-control over its admin socket (admin.h) and print its
// JSON replies as tables, or as JSON with --json. Exit status: 0 done,
// 1 the command failed (shaper-control not running, tenant unknown, policy
// invalid on reload).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace shaper::control {

int RunStatus(const std::string& admin_path, bool json);
int RunReload(const std::string& admin_path);
int RunExplain(const std::string& admin_path, const std::string& tenant, bool json);

// The text shaperctl prints (exposed for tests).
std::string FormatRate(uint64_t bps);
std::string StatusTable(const nlohmann::json& status);
std::string ExplainText(const nlohmann::json& explain);

}  // namespace shaper::control
