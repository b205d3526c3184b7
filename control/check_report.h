// What `shaperctl check` prints for a policy: a table for people and JSON
// for scripts. Kept apart from the command line so the numbers (shares,
// totals, oversubscription) are computed in one place.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "config/loader.h"
#include "config/model.h"

namespace shaper::control {

struct CheckTotals {
  uint64_t guaranteed_bps[config::kDirections] = {};  // saturates at 2^64-1
  uint64_t ceiling_bps[config::kDirections] = {};
};
CheckTotals ComputeTotals(const config::Policy& policy);

// `limit` tenants are listed (0: all); the totals always cover every tenant.
std::string CheckTable(const std::string& file, const config::Policy& policy, uint64_t limit);
nlohmann::json CheckJson(const std::string& file, const config::Policy& policy, uint64_t limit);
nlohmann::json ErrorsJson(const std::string& file, const config::Diagnostics& diagnostics);

}  // namespace shaper::control
