// Logging for shaper-control: one line per event on stderr, in logfmt
// (`ts=2026-11-29T23:20:01.123Z level=info msg="plan applied" generation=3`),
// so journald keeps it readable and Loki/grep can pick fields out of it.
//
// A Logger is a level plus a sink; tests give it a sink that records lines.
// It is called from the event loop only (the metrics server's threads never log).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace shaper::control {

enum class LogLevel : uint8_t { kDebug = 0, kInfo, kWarn, kError };
std::string_view LogLevelName(LogLevel level);
std::optional<LogLevel> ParseLogLevel(std::string_view text);

// A value is quoted when it holds a space, a quote or '=' (logfmt).
struct LogField {
  std::string_view key;
  std::string value;
};

class Logger {
 public:
  using Sink = std::function<void(std::string_view line)>;
  explicit Logger(LogLevel level = LogLevel::kInfo, Sink sink = {});

  void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {}) const;
  void Debug(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kDebug, msg, fields);
  }
  void Info(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kInfo, msg, fields);
  }
  void Warn(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kWarn, msg, fields);
  }
  void Error(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    Log(LogLevel::kError, msg, fields);
  }
  LogLevel level() const { return level_; }

 private:
  LogLevel level_;
  Sink sink_;
};

}  // namespace shaper::control
