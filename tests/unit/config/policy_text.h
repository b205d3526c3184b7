// Helpers for the config tests: load YAML text, list the diagnostics as
// "file:line:col: path: message" strings.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"

namespace shaper::config::testing {

inline std::vector<std::string> Errors(std::string_view text, const Limits& limits = {}) {
  auto policy = LoadPolicyText(text, "p.yaml", limits);
  std::vector<std::string> out;
  if (!policy) {
    for (const Diagnostic& d : policy.error()) out.push_back(d.ToString());
  }
  return out;
}

// Ten lines: tests append sections from line 11 on.
inline const std::string kHead = R"(version: 1
link:
  capacity: 10Gbit
  shape_at: 98%
classes:
  - name: realtime
    priority: latency
    dscp: [EF]
  - name: bulk
    priority: bulk
)";

}  // namespace shaper::config::testing
