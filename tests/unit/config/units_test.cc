// Units: exact integer results, the accepted spellings, and the messages for
// the forms that are rejected.
#include "config/units.h"

#include <gtest/gtest.h>

#include <random>

namespace shaper::config {
namespace {

TEST(ParseBitRate, AcceptsEveryUnitExactly) {
  EXPECT_EQ(ParseBitRate("1bit").value(), 1u);
  EXPECT_EQ(ParseBitRate("100Kbit").value(), 100'000u);
  EXPECT_EQ(ParseBitRate("100kbit").value(), 100'000u);
  EXPECT_EQ(ParseBitRate("100Mbit").value(), 100'000'000u);
  EXPECT_EQ(ParseBitRate("100mbit").value(), 100'000'000u);
  EXPECT_EQ(ParseBitRate("10Gbit").value(), 10'000'000'000u);
  EXPECT_EQ(ParseBitRate("2Tbit").value(), 2'000'000'000'000u);
  EXPECT_EQ(ParseBitRate("64bps").value(), 64u);
  EXPECT_EQ(ParseBitRate("64kbps").value(), 64'000u);
  EXPECT_EQ(ParseBitRate("64Kbps").value(), 64'000u);
  EXPECT_EQ(ParseBitRate("100Mbps").value(), 100'000'000u);
  EXPECT_EQ(ParseBitRate("1Gbps").value(), 1'000'000'000u);
  EXPECT_EQ(ParseBitRate("1Tbps").value(), 1'000'000'000'000u);
  EXPECT_EQ(ParseBitRate("100 Mbit").value(), 100'000'000u);
}

TEST(ParseBitRate, DecimalsAreExact) {
  EXPECT_EQ(ParseBitRate("1.5Gbit").value(), 1'500'000'000u);
  EXPECT_EQ(ParseBitRate("1.1Gbit").value(), 1'100'000'000u);  // 1.1 is not exact in binary floating point
  EXPECT_EQ(ParseBitRate("0.3Mbit").value(), 300'000u);
  EXPECT_EQ(ParseBitRate("9.8Gbit").value(), 9'800'000'000u);
  EXPECT_EQ(ParseBitRate("0.001Kbit").value(), 1u);
  EXPECT_EQ(ParseBitRate("1.50000Gbit").value(), 1'500'000'000u);
  EXPECT_EQ(ParseBitRate(".5Gbit").value(), 500'000'000u);
  EXPECT_EQ(ParseBitRate("0bit").value(), 0u);
  EXPECT_EQ(ParseBitRate("18446744073709551615bit").value(), UINT64_MAX);
}

TEST(ParseBitRate, RejectsBadForms) {
  EXPECT_EQ(ParseBitRate("100").error(),
            "bare number \"100\": add a unit: bit, Kbit, Mbit, Gbit, Tbit (or bps, Kbps, Mbps, Gbps, Tbps)");
  EXPECT_EQ(ParseBitRate("100MB").error(),
            "\"100MB\" is a size in bytes, not a rate: use bit, Kbit, Mbit, Gbit, Tbit (or bps, Kbps, Mbps, Gbps, "
            "Tbps)");
  EXPECT_EQ(ParseBitRate("100MBps").error().substr(0, 36), "\"100MBps\" is a size in bytes, not a ");
  EXPECT_EQ(ParseBitRate("100mbps").error(),
            "ambiguous unit \"mbps\" in \"100mbps\" (tc reads it as bytes per second): write Mbps or Mbit");
  EXPECT_EQ(ParseBitRate("1.5bit").error(), "\"1.5bit\" is not a whole number of bits per second");
  EXPECT_EQ(ParseBitRate("-1Gbit").error(), "negative value \"-1Gbit\": a bit rate cannot be negative");
  EXPECT_EQ(ParseBitRate("18446744073709551616bit").error(),
            "\"18446744073709551616bit\" is too large (more than 2^64-1 bits per second)");
  EXPECT_EQ(ParseBitRate("20000000000Gbit").error(),
            "\"20000000000Gbit\" is too large (more than 2^64-1 bits per second)");
  EXPECT_EQ(ParseBitRate("100Xbit").error(),
            "unknown unit \"Xbit\" in \"100Xbit\": use bit, Kbit, Mbit, Gbit, Tbit (or bps, Kbps, Mbps, Gbps, Tbps)");
  EXPECT_EQ(ParseBitRate("").error(), "empty value: expected a bit rate such as 100Mbit");
  EXPECT_EQ(ParseBitRate("Gbit").error(),
            "\"Gbit\" is not a bit rate: write a number and a unit: bit, Kbit, Mbit, Gbit, Tbit (or bps, Kbps, "
            "Mbps, Gbps, Tbps)");
  EXPECT_FALSE(ParseBitRate("1..5Gbit").has_value());
  EXPECT_FALSE(ParseBitRate("1e9bit").has_value());
  EXPECT_FALSE(ParseBitRate("1Kibit").has_value());
}

TEST(ParseBytes, DecimalAndBinary) {
  EXPECT_EQ(ParseBytes("24B").value(), 24u);
  EXPECT_EQ(ParseBytes("1KB").value(), 1'000u);
  EXPECT_EQ(ParseBytes("1kB").value(), 1'000u);
  EXPECT_EQ(ParseBytes("1.5KB").value(), 1'500u);
  EXPECT_EQ(ParseBytes("2MB").value(), 2'000'000u);
  EXPECT_EQ(ParseBytes("1GB").value(), 1'000'000'000u);
  EXPECT_EQ(ParseBytes("1KiB").value(), 1'024u);
  EXPECT_EQ(ParseBytes("1.5KiB").value(), 1'536u);
  EXPECT_EQ(ParseBytes("64MiB").value(), 64u << 20);
  EXPECT_EQ(ParseBytes("2GiB").value(), 2ull << 30);
  EXPECT_EQ(ParseBytes("24").error(),
            "bare number \"24\": add a unit: B, KB, MB, GB (decimal) or KiB, MiB, GiB (binary)");
  EXPECT_EQ(ParseBytes("64Kb").error(),
            "\"64Kb\" reads as bits; sizes are in bytes: B, KB, MB, GB (decimal) or KiB, MiB, GiB (binary)");
  EXPECT_EQ(ParseBytes("0.5B").error(), "\"0.5B\" is not a whole number of bytes");
  EXPECT_FALSE(ParseBytes("1Mbit").has_value());
}

TEST(ParseDuration, Units) {
  EXPECT_EQ(ParseDuration("7ns").value(), 7u);
  EXPECT_EQ(ParseDuration("2us").value(), 2'000u);
  EXPECT_EQ(ParseDuration("2\u00b5s").value(), 2'000u);
  EXPECT_EQ(ParseDuration("5ms").value(), 5'000'000u);
  EXPECT_EQ(ParseDuration("1.5ms").value(), 1'500'000u);
  EXPECT_EQ(ParseDuration("0.3ms").value(), 300'000u);
  EXPECT_EQ(ParseDuration("10s").value(), 10'000'000'000u);
  EXPECT_EQ(ParseDuration("100").error(), "bare number \"100\": add a unit: ns, us, ms, s");
  EXPECT_EQ(ParseDuration("5m").error(), "unknown unit \"m\" in \"5m\": use ns, us, ms, s");
  EXPECT_EQ(ParseDuration("0.5ns").error(), "\"0.5ns\" is not a whole number of nanoseconds");
}

TEST(ParsePercent, PartsPerMillion) {
  EXPECT_EQ(ParsePercent("98%").value(), 980'000u);
  EXPECT_EQ(ParsePercent("97.5%").value(), 975'000u);
  EXPECT_EQ(ParsePercent("0.0001%").value(), 1u);
  EXPECT_EQ(ParsePercent("100%").value(), 1'000'000u);
  EXPECT_EQ(ParsePercent("0%").value(), 0u);
  EXPECT_EQ(ParsePercent("101%").error(), "\"101%\" is more than 100%");
  EXPECT_EQ(ParsePercent("97.12345%").error(),
            "\"97.12345%\" is not a whole number of parts per million (at most 4 decimals)");
  EXPECT_EQ(ParsePercent("98").error(), "bare number \"98\": add a unit: % (e.g. 98% or 97.5%)");
  EXPECT_EQ(ParsePercent("-5%").error(), "negative value \"-5%\": a percentage cannot be negative");
}

TEST(Format, HumanForms) {
  EXPECT_EQ(FormatBitRate(0), "0bit");
  EXPECT_EQ(FormatBitRate(999), "999bit");
  EXPECT_EQ(FormatBitRate(1'500'000'000), "1.5Gbit");
  EXPECT_EQ(FormatBitRate(9'800'000'000), "9.8Gbit");
  EXPECT_EQ(FormatBitRate(100'000'000), "100Mbit");
  EXPECT_EQ(FormatBitRate(1'234'567), "1234.567Kbit");
  EXPECT_EQ(FormatBitRate(2'000'000'000'000'000), "2000Tbit");
  EXPECT_EQ(FormatBitRateShort(1'234'567'891), "1.23Gbit");
  EXPECT_EQ(FormatBitRateShort(950'000'000), "950Mbit");
  EXPECT_EQ(FormatBytes(24), "24B");
  EXPECT_EQ(FormatBytes(1'500), "1.5KB");
  EXPECT_EQ(FormatBytes(1 << 20), "1MiB");
  EXPECT_EQ(FormatDuration(5'000'000), "5ms");
  EXPECT_EQ(FormatDuration(1'500), "1.5us");
  EXPECT_EQ(FormatPercent(975'000), "97.5%");
  EXPECT_EQ(FormatPercent(1), "0.0001%");
}

// Every formatted value parses back to itself (seeded, so reproducible).
TEST(Format, RoundTrips) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20'000; ++i) {
    // Mix magnitudes: uniform 64-bit values are almost all huge.
    const uint64_t v = rng() >> (rng() % 64);
    ASSERT_EQ(ParseBitRate(FormatBitRate(v)).value(), v) << FormatBitRate(v);
    ASSERT_EQ(ParseBytes(FormatBytes(v)).value(), v) << FormatBytes(v);
    ASSERT_EQ(ParseDuration(FormatDuration(v)).value(), v) << FormatDuration(v);
    const auto ppm = static_cast<uint32_t>(v % 1'000'001);
    ASSERT_EQ(ParsePercent(FormatPercent(ppm)).value(), ppm) << FormatPercent(ppm);
  }
}

}  // namespace
}  // namespace shaper::config
