// Parsing is done in integers (unsigned __int128 for the intermediate
// products), never in floating point, so "1.1Gbit" is exactly 1'100'000'000
// and "0.3ms" exactly 300'000 ns.
#include "config/units.h"

#include <array>
#include <limits>

#include <fmt/format.h>

namespace shaper::config {
namespace {

// __extension__: -Wpedantic rejects __int128, which GCC and Clang both provide.
__extension__ typedef unsigned __int128 u128;

struct Unit {
  std::string_view name;
  uint64_t multiplier;  // base units per one of this unit
};

constexpr std::array kRateUnits{
    Unit{"bit", 1},           Unit{"Kbit", 1'000},          Unit{"kbit", 1'000},
    Unit{"Mbit", 1'000'000},  Unit{"mbit", 1'000'000},      Unit{"Gbit", 1'000'000'000},
    Unit{"gbit", 1'000'000'000}, Unit{"Tbit", 1'000'000'000'000}, Unit{"tbit", 1'000'000'000'000},
    Unit{"bps", 1},           Unit{"Kbps", 1'000},          Unit{"kbps", 1'000},
    Unit{"Mbps", 1'000'000},  Unit{"Gbps", 1'000'000'000},  Unit{"Tbps", 1'000'000'000'000},
};
constexpr std::array kByteUnits{
    Unit{"B", 1},
    Unit{"KB", 1'000},
    Unit{"kB", 1'000},
    Unit{"MB", 1'000'000},
    Unit{"GB", 1'000'000'000},
    Unit{"TB", 1'000'000'000'000},
    Unit{"KiB", uint64_t{1} << 10},
    Unit{"MiB", uint64_t{1} << 20},
    Unit{"GiB", uint64_t{1} << 30},
    Unit{"TiB", uint64_t{1} << 40},
};
constexpr std::array kDurationUnits{
    Unit{"ns", 1},
    Unit{"us", 1'000},
    Unit{"\u00b5s", 1'000},
    Unit{"ms", 1'000'000},
    Unit{"s", 1'000'000'000},
};
constexpr std::array kPercentUnits{Unit{"%", 10'000}};  // ppm per percent

constexpr std::string_view kRateForms = "bit, Kbit, Mbit, Gbit, Tbit (or bps, Kbps, Mbps, Gbps, Tbps)";
constexpr std::string_view kByteForms = "B, KB, MB, GB (decimal) or KiB, MiB, GiB (binary)";
constexpr std::string_view kDurationForms = "ns, us, ms, s";
constexpr std::string_view kPercentForms = "% (e.g. 98% or 97.5%)";

struct Kind {
  std::string_view what;        // "a bit rate"
  std::string_view base_plural;  // for "not a whole number of ..."
  std::string_view forms;
  std::string_view example;
};
constexpr Kind kRate{"a bit rate", "bits per second", kRateForms, "100Mbit"};
constexpr Kind kBytes{"a size", "bytes", kByteForms, "24B"};
constexpr Kind kDuration{"a duration", "nanoseconds", kDurationForms, "5ms"};
constexpr Kind kPercent{"a percentage", "parts per million (at most 4 decimals)", kPercentForms, "98%"};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "1.5 Gbit" into digits and unit, and scales by the unit found in
// `units`; `reject_unit` may turn a known-ambiguous unit into a message.
template <size_t N, typename Reject>
std::expected<uint64_t, std::string> ParseQuantity(std::string_view raw, const Kind& kind,
                                                   const std::array<Unit, N>& units,
                                                   Reject&& reject_unit) {
  const std::string_view text = Trim(raw);
  if (text.empty()) {
    return std::unexpected(fmt::format("empty value: expected {} such as {}", kind.what, kind.example));
  }
  size_t i = 0;
  if (text[0] == '-') {
    return std::unexpected(fmt::format("negative value \"{}\": {} cannot be negative", raw, kind.what));
  }
  if (text[0] == '+') i = 1;
  const size_t int_begin = i;
  while (i < text.size() && IsDigit(text[i])) ++i;
  std::string_view int_digits = text.substr(int_begin, i - int_begin);
  std::string_view frac_digits;
  if (i < text.size() && text[i] == '.') {
    const size_t frac_begin = ++i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    frac_digits = text.substr(frac_begin, i - frac_begin);
  }
  if (int_digits.empty() && frac_digits.empty()) {
    return std::unexpected(
        fmt::format("\"{}\" is not {}: write a number and a unit: {}", raw, kind.what, kind.forms));
  }
  const std::string_view unit = Trim(text.substr(i));
  if (unit.empty()) {
    return std::unexpected(fmt::format("bare number \"{}\": add a unit: {}", raw, kind.forms));
  }
  const Unit* found = nullptr;
  for (const Unit& u : units) {
    if (u.name == unit) found = &u;
  }
  if (found == nullptr) {
    if (auto msg = reject_unit(unit); !msg.empty()) return std::unexpected(std::move(msg));
    return std::unexpected(fmt::format("unknown unit \"{}\" in \"{}\": use {}", unit, raw, kind.forms));
  }

  // Leading zeros do not count toward overflow; trailing fraction zeros do
  // not count toward precision.
  while (int_digits.size() > 1 && int_digits.front() == '0') int_digits.remove_prefix(1);
  while (!frac_digits.empty() && frac_digits.back() == '0') frac_digits.remove_suffix(1);
  const auto overflow = [&] {
    return std::unexpected(fmt::format("\"{}\" is too large (more than 2^64-1 {})", raw, kind.base_plural));
  };
  if (int_digits.size() > 20) return overflow();
  if (frac_digits.size() > 18) {
    return std::unexpected(fmt::format("\"{}\" has too many decimals", raw));
  }
  u128 whole = 0;
  for (char c : int_digits) whole = whole * 10 + static_cast<unsigned>(c - '0');
  u128 frac = 0;
  u128 frac_scale = 1;
  for (char c : frac_digits) {
    frac = frac * 10 + static_cast<unsigned>(c - '0');
    frac_scale *= 10;
  }
  const u128 frac_scaled = frac * found->multiplier;
  if (frac_scaled % frac_scale != 0) {
    return std::unexpected(fmt::format("\"{}\" is not a whole number of {}", raw, kind.base_plural));
  }
  const u128 value = whole * found->multiplier + frac_scaled / frac_scale;
  if (value > std::numeric_limits<uint64_t>::max()) return overflow();
  return static_cast<uint64_t>(value);
}

std::string NoReject(std::string_view) { return {}; }

// Formats v exactly in the largest unit that needs at most `max_decimals`
// decimals; units must be ordered from small to large and start with 1.
template <size_t N>
std::string FormatExact(uint64_t v, const std::array<Unit, N>& units, int max_decimals) {
  uint64_t decimal_div = 1;
  for (int i = 0; i < max_decimals; ++i) decimal_div *= 10;
  for (size_t k = N; k-- > 0;) {
    const uint64_t m = units[k].multiplier;
    if (k > 0 && v < m) continue;
    // Exact with at most max_decimals decimals?
    const uint64_t step = m >= decimal_div ? m / decimal_div : 1;
    if (k > 0 && (m % decimal_div != 0 || v % step != 0)) continue;
    const uint64_t whole = v / m;
    uint64_t frac = (v % m) / step;
    if (frac == 0) return fmt::format("{}{}", whole, units[k].name);
    int digits = max_decimals;
    while (frac % 10 == 0) {
      frac /= 10;
      --digits;
    }
    return fmt::format("{}.{:0{}}{}", whole, frac, digits, units[k].name);
  }
  return fmt::format("{}{}", v, units[0].name);
}

constexpr std::array kRateOut{Unit{"bit", 1}, Unit{"Kbit", 1'000}, Unit{"Mbit", 1'000'000},
                              Unit{"Gbit", 1'000'000'000}, Unit{"Tbit", 1'000'000'000'000}};
constexpr std::array kDecimalBytesOut{Unit{"B", 1}, Unit{"KB", 1'000}, Unit{"MB", 1'000'000},
                                      Unit{"GB", 1'000'000'000}, Unit{"TB", 1'000'000'000'000}};
constexpr std::array kBinaryBytesOut{Unit{"B", 1}, Unit{"KiB", uint64_t{1} << 10},
                                     Unit{"MiB", uint64_t{1} << 20}, Unit{"GiB", uint64_t{1} << 30},
                                     Unit{"TiB", uint64_t{1} << 40}};
constexpr std::array kDurationOut{Unit{"ns", 1}, Unit{"us", 1'000}, Unit{"ms", 1'000'000},
                                  Unit{"s", 1'000'000'000}};

}  // namespace

std::expected<uint64_t, std::string> ParseBitRate(std::string_view text) {
  return ParseQuantity(text, kRate, kRateUnits, [&](std::string_view unit) -> std::string {
    if (unit == "mbps" || unit == "gbps" || unit == "tbps") {
      return fmt::format("ambiguous unit \"{}\" in \"{}\" (tc reads it as bytes per second): write {}bps or {}bit",
                         unit, text, static_cast<char>(unit[0] - 'a' + 'A'),
                         static_cast<char>(unit[0] - 'a' + 'A'));
    }
    if (unit.find('B') != std::string_view::npos) {
      return fmt::format("\"{}\" is a size in bytes, not a rate: use {}", text, kRateForms);
    }
    return {};
  });
}

std::expected<uint64_t, std::string> ParseBytes(std::string_view text) {
  return ParseQuantity(text, kBytes, kByteUnits, [&](std::string_view unit) -> std::string {
    if (!unit.empty() && unit.back() == 'b') {
      return fmt::format("\"{}\" reads as bits; sizes are in bytes: {}", text, kByteForms);
    }
    return {};
  });
}

std::expected<uint64_t, std::string> ParseDuration(std::string_view text) {
  return ParseQuantity(text, kDuration, kDurationUnits, NoReject);
}

std::expected<uint32_t, std::string> ParsePercent(std::string_view text) {
  auto ppm = ParseQuantity(text, kPercent, kPercentUnits, NoReject);
  if (!ppm) return std::unexpected(std::move(ppm.error()));
  if (*ppm > 1'000'000) {
    return std::unexpected(fmt::format("\"{}\" is more than 100%", text));
  }
  return static_cast<uint32_t>(*ppm);
}

std::string FormatBitRate(uint64_t bps) { return FormatExact(bps, kRateOut, 3); }

std::string FormatBytes(uint64_t bytes) {
  std::string decimal = FormatExact(bytes, kDecimalBytesOut, 3);
  std::string binary = FormatExact(bytes, kBinaryBytesOut, 0);
  return binary.size() < decimal.size() ? binary : decimal;
}

std::string FormatDuration(uint64_t ns) { return FormatExact(ns, kDurationOut, 3); }

std::string FormatPercent(uint32_t ppm) {
  return FormatExact(ppm, std::array{Unit{"%", 10'000}}, 4);
}

std::string FormatBitRateShort(uint64_t bps) {
  size_t k = kRateOut.size() - 1;
  while (k > 0 && bps < kRateOut[k].multiplier) --k;
  std::string s = fmt::format("{:.2f}", static_cast<double>(bps) / static_cast<double>(kRateOut[k].multiplier));
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s + std::string(kRateOut[k].name);
}

}  // namespace shaper::config
