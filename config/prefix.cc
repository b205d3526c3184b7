#include "config/prefix.h"

#include <arpa/inet.h>

#include <charconv>

#include <fmt/format.h>

namespace shaper::config {
namespace {

// Clears the bits past `length`; returns whether any was set.
bool ClearHostBits(std::array<uint8_t, 16>* addr, int length, int total_bits) {
  bool had = false;
  for (int bit = length; bit < total_bits; ++bit) {
    uint8_t& byte = (*addr)[static_cast<size_t>(bit / 8)];
    const uint8_t mask = static_cast<uint8_t>(0x80u >> (bit % 8));
    if (byte & mask) {
      had = true;
      byte = static_cast<uint8_t>(byte & ~mask);
    }
  }
  return had;
}

}  // namespace

std::string Prefix::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v6 ? AF_INET6 : AF_INET, addr.data(), buf, sizeof(buf));
  return fmt::format("{}/{}", buf, length);
}

std::expected<Prefix, std::string> ParsePrefix(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  const bool v6 = host.find(':') != std::string_view::npos;
  // inet_pton needs a terminated string; addresses are short.
  if (host.size() >= INET6_ADDRSTRLEN) {
    return std::unexpected(fmt::format("\"{}\" is not an IPv4 or IPv6 prefix", text));
  }
  char buf[INET6_ADDRSTRLEN] = {};
  host.copy(buf, host.size());
  Prefix p;
  p.is_v6 = v6;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, p.addr.data()) != 1) {
    return std::unexpected(fmt::format("\"{}\" is not an IPv4 or IPv6 prefix ({} address \"{}\" does not parse)",
                                       text, v6 ? "IPv6" : "IPv4", host));
  }
  const int total_bits = v6 ? 128 : 32;
  if (slash == std::string_view::npos) {
    return std::unexpected(
        fmt::format("\"{}\" has no prefix length; did you mean {}/{}?", text, host, total_bits));
  }
  const std::string_view len_text = text.substr(slash + 1);
  int length = -1;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), length);
  if (ec != std::errc() || end != len_text.data() + len_text.size() || len_text.empty() || length < 0 ||
      length > total_bits) {
    return std::unexpected(fmt::format("\"{}\": prefix length \"{}\" must be 0..{} for {}", text, len_text,
                                       total_bits, v6 ? "IPv6" : "IPv4"));
  }
  p.length = static_cast<uint8_t>(length);
  if (ClearHostBits(&p.addr, length, total_bits)) {
    return std::unexpected(fmt::format("{} has host bits set; did you mean {}?", text, p.ToString()));
  }
  return p;
}

}  // namespace shaper::config
