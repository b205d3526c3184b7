// Pieces of the Prometheus text format 0.0.4, written the way
// prometheus::TextSerializer (1.0.x) writes them, for text built without
// MetricFamily objects (ControlCore::AppendMetricsText). Tests compare both.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace shaper::control {

// A value as prometheus::TextSerializer (1.0.x) writes it: printf's "%.16g",
// "Nan", "+Inf", "-Inf". Whole numbers below 1e16, which "%.16g" writes in
// full, take std::to_chars' integer path (most samples are counters).
inline void AppendValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "Nan";
    return;
  }
  if (std::isinf(value)) {
    out += value < 0 ? "-Inf" : "+Inf";
    return;
  }
  char buf[32];
  std::to_chars_result r;
  if (std::fabs(value) < 1e16 && value == std::trunc(value) && !std::signbit(value)) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<uint64_t>(value));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general, 16);
  }
  out.append(buf, r.ptr);
}

// A label value between its quotes: backslash, double quote and newline
// escaped, as the text format (and TextSerializer) does.
inline void AppendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

}  // namespace shaper::control
