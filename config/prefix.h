// IP prefixes in the policy: parsing with the checks operators need
// (no host bits, a length that fits the family) and the model's ToString.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "config/model.h"

namespace shaper::config {

// "203.0.113.0/24" or "2001:db8::/32". Errors name the text and, for host
// bits, the prefix that was probably meant.
std::expected<Prefix, std::string> ParsePrefix(std::string_view text);

}  // namespace shaper::config
