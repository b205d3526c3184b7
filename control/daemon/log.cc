#include "control/daemon/log.h"

#include <chrono>
#include <cstdio>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace shaper::control {

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

std::optional<LogLevel> ParseLogLevel(std::string_view text) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (text == LogLevelName(l)) return l;
  }
  return std::nullopt;
}

namespace {

void AppendValue(std::string& line, std::string_view value) {
  // Diagnostics end in a newline; it means nothing inside one line.
  while (!value.empty() && value.back() == '\n') value.remove_suffix(1);
  const bool quote = value.empty() || value.find_first_of(" \"=\t\n") != std::string_view::npos;
  if (!quote) {
    line += value;
    return;
  }
  line += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') line += '\\';
    // Diagnostics span lines; one event must stay one line.
    line += c == '\n' ? ' ' : c;
  }
  line += '"';
}

}  // namespace

Logger::Logger(LogLevel level, Sink sink) : level_(level), sink_(std::move(sink)) {
  if (!sink_) {
    sink_ = [](std::string_view line) {
      std::fwrite(line.data(), 1, line.size(), stderr);
      std::fflush(stderr);
    };
  }
}

void Logger::Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) const {
  if (level < level_) return;
  // fmt 9 prints whole seconds for %S, so the milliseconds are added by hand:
  // operators time reloads and reconnects from these lines.
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
  std::string line = fmt::format("ts={:%Y-%m-%dT%H:%M:%S}.{:03d}Z level={} msg=", secs, ms,
                                 LogLevelName(level));
  AppendValue(line, msg);
  for (const LogField& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    AppendValue(line, f.value);
  }
  line += '\n';
  sink_(line);
}

}  // namespace shaper::control
