// The policy model: what an operator's YAML policy means, after loading and
// validation. Every quantity is in base units with the unit in the name
// (bits per second, bytes, nanoseconds, parts per million), so nothing
// downstream has to remember a unit.
//
// The YAML keys (docs/policy.md documents each; config/policy.schema.json is
// the same language for editors):
//
//   version: 1                                   required
//   link:                                        required
//     capacity: 10Gbit                           required, a bit rate
//     shape_at: 98%                              optional (default 100%), a percentage or a bit rate
//     overhead: 24B                              optional (default 24B), bytes per packet
//   classes: [...]                               required, >= 1 bulk class, <= kMaxClasses
//     - name: realtime                           required, unique
//       priority: latency | bulk                 required
//       dscp: [EF, CS5, 46]                      optional, names or numbers 0..63
//       weight: 1                                bulk only (default 1), > 0
//       max_share: 20%                           latency only (default 20%)
//       queue_limit: 2ms                         optional (default 5ms latency, 50ms bulk)
//       default: true                            optional: the class for unmarked traffic
//                                                (default: the first bulk class)
//   groups: [...]                                optional
//     - name: pop-east                           required, unique among groups
//       parent: another-group                    optional (nesting, depth <= kMaxGroupDepth)
//       guaranteed / ceiling / weight            as for tenants, and download:/upload:
//   tenants: [...]                               required (may be empty)
//     - name: acme                               required, unique among tenants
//       group: pop-east                          optional
//       match:                                   required
//         prefixes: [203.0.113.0/24, ...]        required, >= 1, IPv4 or IPv6, no host bits
//         vlan: 100                              optional, 1..4094
//       guaranteed: 1Gbit                        both directions (default 0)
//       ceiling: 5Gbit                           both directions (default: the shape rate)
//       weight: 2                                both directions (default 1)
//       burst: 5ms                               a duration at the ceiling, or bytes (default 5ms)
//       download: {guaranteed, ceiling, weight, burst}   overrides for one direction
//       upload:   {guaranteed, ceiling, weight, burst}
//   default_tenant:                              optional; traffic that matches no tenant
//     guaranteed / ceiling / weight / burst / download / upload   (default ceiling: 100% of shape)
//   allocation:                                  optional
//     mode: dynamic | static                     default dynamic
//     interval: 100ms                            default 100ms, 10ms..10s
//     hysteresis: 1%                             default 1%
//
// "download" is traffic toward the tenant (matched on the destination
// address), "upload" traffic from it (matched on the source address).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace shaper::config {

inline constexpr uint32_t kMaxClasses = 8;
inline constexpr uint32_t kMaxGroupDepth = 4;
inline constexpr uint32_t kNoGroup = UINT32_MAX;

enum class Direction : uint8_t { kDownload = 0, kUpload = 1 };
inline constexpr int kDirections = 2;
inline constexpr const char* DirectionName(Direction d) {
  return d == Direction::kDownload ? "download" : "upload";
}

enum class Priority : uint8_t { kLatency, kBulk };

// An IPv4 or IPv6 prefix. IPv4 addresses sit in the first 4 bytes of addr,
// network byte order; bytes past the prefix length are zero.
struct Prefix {
  std::array<uint8_t, 16> addr{};
  uint8_t length = 0;
  bool is_v6 = false;
  bool operator==(const Prefix&) const = default;
  std::string ToString() const;
};

// Rates of one entity (tenant, group, default tenant) in one direction.
struct DirectionRates {
  uint64_t guaranteed_bps = 0;
  uint64_t ceiling_bps = 0;  // after defaults: never 0
  uint32_t weight = 1;
  uint64_t burst_bytes = 0;  // bytes allowed above the ceiling rate in one go
};

struct Link {
  uint64_t capacity_bps = 0;
  uint64_t shape_rate_bps = 0;  // capacity * shape_at, or an explicit rate
  uint32_t overhead_bytes = 24;
};

struct TrafficClass {
  std::string name;
  Priority priority = Priority::kBulk;
  std::vector<uint8_t> dscp;       // code points 0..63 mapped to this class
  uint32_t weight = 1;             // bulk classes
  uint32_t max_share_ppm = 0;      // latency classes: share of the tenant's rate, 1e6 = 100%
  uint64_t queue_limit_ns = 0;     // sojourn limit
  bool is_default = false;         // unmarked traffic goes here (exactly one after loading)
};

struct Group {
  std::string name;
  uint32_t parent = kNoGroup;      // index into Policy::groups
  std::array<DirectionRates, kDirections> rates;
};

struct Tenant {
  std::string name;
  uint32_t group = kNoGroup;       // index into Policy::groups
  uint16_t vlan = 0;               // 0 = any VLAN
  std::vector<Prefix> prefixes;
  std::array<DirectionRates, kDirections> rates;  // indexed by Direction
};

struct Allocation {
  enum class Mode : uint8_t { kDynamic, kStatic } mode = Mode::kDynamic;
  uint64_t interval_ns = 100'000'000;
  uint32_t hysteresis_ppm = 10'000;
};

struct Policy {
  uint32_t version = 1;
  Link link;
  std::vector<TrafficClass> classes;
  std::vector<Group> groups;
  std::vector<Tenant> tenants;
  std::array<DirectionRates, kDirections> default_tenant;
  Allocation allocation;
  // The class for each DSCP code point (index into classes).
  std::array<uint8_t, 64> dscp_to_class{};
};

}  // namespace shaper::config
