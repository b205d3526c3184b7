// Units of the policy language: bit rates, byte counts, durations and
// percentages, parsed from the operator's text into exact integers in base
// units, and formatted back for tables and messages.
//
// Every quantity must carry its unit: a bare "100" is an error, because a
// policy that means 100 Mbit/s but says 100 bit/s shapes a link to nothing.
//
// Case rules (why: operators come from tc, router CLIs and data sheets, and
// the forms that mean different things there must not be guessed at):
//   rates      bit, Kbit, Mbit, Gbit, Tbit; the prefix may be lower case
//              (kbit, mbit, gbit, tbit: tc's spelling, bits there too).
//              bps, Kbps, kbps, Mbps, Gbps, Tbps: bits per second, with the
//              prefix in the usual case only: tc reads "mbps"/"gbps" as
//              *bytes* per second, so those are rejected, not guessed.
//              Anything with an upper-case B (MB, MBps, Bps) is bytes and is
//              never a rate.
//   bytes      B, KB (or kB), MB, GB, TB: decimal (1 KB = 1000 B);
//              KiB, MiB, GiB, TiB: binary. A lower-case "b" is rejected.
//   durations  ns, us (or µs), ms, s.
//   percents   98%, 97.5% (at most 4 decimals: the model keeps parts per
//              million), 0%..100%.
// Decimals are allowed ("1.5Gbit") and converted exactly, in integers: the
// result must be a whole number of the base unit ("1.5bit" is an error).
// Negative values and values that do not fit in 64 bits are errors.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace shaper::config {

// Each returns the value in base units, or a message naming the text and,
// where it helps, the accepted forms.
std::expected<uint64_t, std::string> ParseBitRate(std::string_view text);   // bit/s
std::expected<uint64_t, std::string> ParseBytes(std::string_view text);     // bytes
std::expected<uint64_t, std::string> ParseDuration(std::string_view text);  // ns
std::expected<uint32_t, std::string> ParsePercent(std::string_view text);   // ppm

// Exact forms that parse back to the same value: the largest unit that needs
// at most 3 decimals ("1.5Gbit", "1234.567Kbit", "5ms"); for bytes, the
// shorter of that and a whole binary unit ("1.5KB", "1MiB").
std::string FormatBitRate(uint64_t bps);
std::string FormatBytes(uint64_t bytes);
std::string FormatDuration(uint64_t ns);
std::string FormatPercent(uint32_t ppm);

// A short, rounded form for tables: 3 significant decimals ("1.23Gbit").
std::string FormatBitRateShort(uint64_t bps);

}  // namespace shaper::config
