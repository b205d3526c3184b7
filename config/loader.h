// Loading a policy: YAML text -> validated Policy, or every error in the file.
//
//   auto policy = shaper::config::LoadPolicyFile("/etc/shaper/policy.yaml");
//   if (!policy) { fmt::print(stderr, "{}", FormatDiagnostics(policy.error())); return 1; }
//
// Errors are collected, not thrown: one bad tenant does not hide the errors
// of the next. Each names the file, the 1-based line and column, the field
// path (tenants[1].download.ceiling) and the value. Only a fault that makes
// the rest of the file unreadable stops early: a YAML syntax error or a
// limit below (a hostile file must not exhaust memory or time).
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"

namespace shaper::config {

struct Diagnostic {
  std::string file;
  uint32_t line = 0;  // 1-based; 0 when the error is about the whole file
  uint32_t col = 0;   // 1-based
  std::string path;   // tenants[1].download.ceiling; empty for syntax errors
  std::string message;
  // "file:line:col: path: message" (parts that are empty are left out).
  std::string ToString() const;
};
using Diagnostics = std::vector<Diagnostic>;

// One diagnostic per line, each ending in '\n'.
std::string FormatDiagnostics(const Diagnostics& diagnostics);

struct Limits {
  uint64_t max_file_bytes = 512ull << 20;  // checked before reading
  uint64_t max_tenants = 2'000'000;
  uint32_t max_depth = 32;                 // YAML nesting (mappings + sequences)
  // Alias uses, counting those inside replayed anchors: a "billion laughs"
  // file has few aliases in the text but expands exponentially; counting the
  // expansions stops it after max_aliases steps.
  uint32_t max_aliases = 1000;
  // Errors kept in full; past this only a count is added (a file that is
  // wrong on every one of its million tenants gives a readable report).
  uint32_t max_errors = 1000;
};

std::expected<Policy, Diagnostics> LoadPolicyFile(const std::string& path, const Limits& limits = {});
// file_name is used in diagnostics only.
std::expected<Policy, Diagnostics> LoadPolicyText(std::string_view text, std::string_view file_name,
                                                  const Limits& limits = {});

}  // namespace shaper::config
