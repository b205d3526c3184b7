// The sections of a policy document (link, classes, groups, tenants,
// default_tenant, allocation), each read from the event stream into the
// model. Positions of the fields that later checks need go to the Builder's
// side tables (see loader_internal.h).
#include <charconv>
#include <optional>

#include <fmt/format.h>

#include "config/loader_internal.h"
#include "config/prefix.h"
#include "config/units.h"

namespace shaper::config::internal {
namespace {

__extension__ typedef unsigned __int128 u128;  // -Wpedantic rejects __int128 without __extension__

constexpr uint64_t kMaxWeight = 1'000'000;
constexpr uint64_t kMaxOverheadBytes = 1024;

constexpr std::string_view kLinkKeys[] = {"capacity", "shape_at", "overhead"};
constexpr std::string_view kClassKeys[] = {"name",      "priority",    "dscp",   "weight",
                                           "max_share", "queue_limit", "default"};
constexpr std::string_view kGroupKeys[] = {"name",   "parent", "guaranteed", "ceiling",
                                           "weight", "burst",  "download",   "upload"};
constexpr std::string_view kTenantKeys[] = {"name",   "group", "match",    "guaranteed", "ceiling",
                                            "weight", "burst", "download", "upload"};
constexpr std::string_view kDefaultTenantKeys[] = {"guaranteed", "ceiling",  "weight",
                                                   "burst",      "download", "upload"};
constexpr std::string_view kDirectionKeys[] = {"guaranteed", "ceiling", "weight", "burst"};
constexpr std::string_view kMatchKeys[] = {"prefixes", "vlan"};
constexpr std::string_view kAllocationKeys[] = {"mode", "interval", "hysteresis"};

// DSCP names of RFC 2474/2597/3246/8622.
std::optional<uint8_t> ParseDscp(std::string_view text) {
  uint32_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec == std::errc() && end == text.data() + text.size()) {
    if (number <= 63) return static_cast<uint8_t>(number);
    return std::nullopt;
  }
  std::string upper(text);
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  if (upper == "EF") return 46;
  if (upper == "LE") return 1;
  if (upper == "DF" || upper == "BE") return 0;
  if (upper.size() == 3 && upper.starts_with("CS") && upper[2] >= '0' && upper[2] <= '7') {
    return static_cast<uint8_t>((upper[2] - '0') * 8);
  }
  if (upper.size() == 4 && upper.starts_with("AF") && upper[2] >= '1' && upper[2] <= '4' && upper[3] >= '1' &&
      upper[3] <= '3') {
    return static_cast<uint8_t>((upper[2] - '0') * 8 + (upper[3] - '0') * 2);
  }
  return std::nullopt;
}

// "EF (46)" for a name, "46" for a number.
std::string DscpText(std::string_view text, uint8_t code) {
  return fmt::format("{}", code) == text ? std::string(text) : fmt::format("{} ({})", text, code);
}

}  // namespace

void Builder::ParseDirection(const Event& start, RatesIn* in) {
  if (!ExpectMap(start)) return;
  ForEachKey(kDirectionKeys, [&](size_t key) {
    switch (key) {
      case 0: ReadRate(&in->guaranteed, false); break;
      case 1: ReadRate(&in->ceiling, true); break;
      case 2: ReadUint(&in->weight, 1, kMaxWeight, "weight"); break;
      default: ReadBurst(in); break;
    }
  });
}

void Builder::ParseRateKey(std::string_view key, EntityIn* in) {
  if (key == "guaranteed") {
    ReadRate(&in->both.guaranteed, false);
  } else if (key == "ceiling") {
    ReadRate(&in->both.ceiling, true);
  } else if (key == "weight") {
    ReadUint(&in->both.weight, 1, kMaxWeight, "weight");
  } else if (key == "burst") {
    ReadBurst(&in->both);
  } else {  // download or upload
    ParseDirection(reader_.Next(), &in->dir[key == "download" ? 0 : 1]);
  }
}

void Builder::ParseLink(const Event& start) {
  if (!ExpectMap(start)) return;
  Field capacity, overhead;
  const uint64_t seen = ForEachKey(kLinkKeys, [&](size_t key) {
    switch (key) {
      case 0: ReadRate(&capacity, true); break;
      case 1: {
        Event v;
        if (!ReadScalar(&v, "a percentage or a bit rate")) break;
        if (v.text.ends_with('%')) {
          auto ppm = ParsePercent(v.text);
          if (!ppm || *ppm == 0) {
            Error(v.pos, ppm ? std::string("shape_at must be more than 0%") : ppm.error());
          } else {
            shape_at_ppm_ = Field{*ppm, v.pos};
          }
        } else if (auto rate = ParseBitRate(v.text); !rate || *rate == 0) {
          Error(v.pos, rate ? "shape_at must be more than 0bit"
                            : fmt::format("shape_at \"{}\" must be a percentage of the capacity (98%) or a bit "
                                          "rate (9.8Gbit): {}",
                                          v.text, rate.error()));
        } else {
          shape_at_bps_ = Field{*rate, v.pos};
        }
        break;
      }
      default:
        if (ReadBytes(&overhead)) {
          if (overhead.value > kMaxOverheadBytes) {
            Error(overhead.pos, fmt::format("overhead {} is more than {}B per packet",
                                            FormatBytes(overhead.value), kMaxOverheadBytes));
          } else {
            policy_.link.overhead_bytes = static_cast<uint32_t>(overhead.value);
          }
        }
        break;
    }
  });
  if (!(seen & 1)) {
    Error(start.pos, "missing required key 'capacity'");
    return;
  }
  if (capacity.pos.line == 0) return;  // reported where it was read
  Link& link = policy_.link;
  link.capacity_bps = capacity.value;
  link.shape_rate_bps = capacity.value;
  if (shape_at_ppm_.pos.line != 0) {
    link.shape_rate_bps = static_cast<uint64_t>(static_cast<u128>(capacity.value) * shape_at_ppm_.value / 1'000'000);
  } else if (shape_at_bps_.pos.line != 0) {
    if (shape_at_bps_.value > capacity.value) {
      PathScope scope(this, "shape_at");
      Error(shape_at_bps_.pos, fmt::format("shape_at {} exceeds the capacity {}", FormatBitRate(shape_at_bps_.value),
                                           FormatBitRate(capacity.value)));
      return;
    }
    link.shape_rate_bps = shape_at_bps_.value;
  }
  if (link.shape_rate_bps == 0) {
    PathScope scope(this, "shape_at");
    Error(shape_at_ppm_.pos, "the shape rate rounds down to 0bit");
    return;
  }
  link_ok_ = true;
}

void Builder::ParseClass(const Event& start) {
  if (!ExpectMap(start)) return;
  const auto index = static_cast<uint32_t>(policy_.classes.size());
  policy_.classes.emplace_back();
  class_pos_.push_back(start.pos);
  Field weight, max_share, queue_limit;
  Pos name_pos;
  bool priority_ok = false;
  const uint64_t seen = ForEachKey(kClassKeys, [&](size_t key) {
    TrafficClass& c = policy_.classes[index];
    switch (key) {
      case 0: ReadName(&c.name, &name_pos); break;
      case 1: {
        Event v;
        if (!ReadScalar(&v, "latency or bulk")) break;
        if (v.text == "latency" || v.text == "bulk") {
          c.priority = v.text == "latency" ? Priority::kLatency : Priority::kBulk;
          priority_ok = true;
        } else {
          Error(v.pos, fmt::format("priority must be latency or bulk, got \"{}\"", v.text));
        }
        break;
      }
      case 2: {
        const Event v = reader_.Next();
        if (!ExpectSeq(v)) break;
        for (uint64_t i = 0;; ++i) {
          const Event d = reader_.Next();
          if (d.kind == EventKind::kSeqEnd || d.kind == EventKind::kDocEnd) break;
          PathScope scope(this, i);
          if (d.kind != EventKind::kScalar) {
            Error(d.pos, fmt::format("expected a DSCP name or number, got {}", Describe(d)));
            reader_.Skip(d);
            continue;
          }
          const std::optional<uint8_t> code = ParseDscp(d.text);
          if (!code) {
            Error(d.pos, fmt::format("unknown DSCP \"{}\": use EF, AF11..AF43, CS0..CS7, LE, DF (or BE), or a "
                                     "number 0..63",
                                     d.text));
            continue;
          }
          const int32_t owner = dscp_owner_[*code];
          if (owner == static_cast<int32_t>(index)) {
            Error(d.pos, fmt::format("DSCP {} is listed twice in this class", DscpText(d.text, *code)));
          } else if (owner >= 0) {
            Error(d.pos, fmt::format("DSCP {} is already mapped to class '{}' (line {})", DscpText(d.text, *code),
                                     policy_.classes[static_cast<size_t>(owner)].name,
                                     class_pos_[static_cast<size_t>(owner)].line));
          } else {
            dscp_owner_[*code] = static_cast<int32_t>(index);
            c.dscp.push_back(*code);
          }
        }
        break;
      }
      case 3: ReadUint(&weight, 1, kMaxWeight, "weight"); break;
      case 4:
        if (ReadPercent(&max_share) && max_share.value == 0) {
          Error(max_share.pos, "max_share must be more than 0%");
        }
        break;
      case 5:
        if (ReadDuration(&queue_limit) && queue_limit.value == 0) {
          Error(queue_limit.pos, "queue_limit must be more than 0");
        }
        break;
      default: {
        bool is_default = false;
        Pos pos;
        if (!ReadBool(&is_default, &pos) || !is_default) break;
        if (default_class_ >= 0) {
          Error(pos, fmt::format("class '{}' (line {}) is already the default class",
                                       policy_.classes[static_cast<size_t>(default_class_)].name,
                                       class_pos_[static_cast<size_t>(default_class_)].line));
        } else {
          default_class_ = static_cast<int32_t>(index);
        }
        break;
      }
    }
  });
  TrafficClass& c = policy_.classes[index];
  if (!(seen & 1)) Error(start.pos, "missing required key 'name'");
  if (!(seen & 2)) Error(start.pos, "missing required key 'priority'");
  if (!c.name.empty()) {
    if (auto [it, inserted] = class_index_.emplace(c.name, index); !inserted) {
      PathScope scope(this, "name");
      Error(name_pos, fmt::format("duplicate class name '{}' (first at line {})", c.name,
                                  class_pos_[it->second].line));
    }
  }
  if (!priority_ok) return;
  const bool latency = c.priority == Priority::kLatency;
  if (latency && weight.pos.line != 0) {
    PathScope scope(this, "weight");
    Error(weight.pos, "weight applies to bulk classes only (latency classes go first, up to max_share)");
  }
  if (!latency && max_share.pos.line != 0) {
    PathScope scope(this, "max_share");
    Error(max_share.pos, "max_share applies to latency classes only");
  }
  if (weight.pos.line != 0) c.weight = static_cast<uint32_t>(weight.value);
  if (latency) c.max_share_ppm = max_share.pos.line != 0 ? static_cast<uint32_t>(max_share.value) : 200'000;
  c.queue_limit_ns = queue_limit.pos.line != 0 ? queue_limit.value : (latency ? 5'000'000 : 50'000'000);
}

void Builder::ParseClasses(const Event& start) {
  classes_pos_ = start.pos;
  if (!ExpectSeq(start)) return;
  for (uint64_t i = 0;; ++i) {
    const Event item = reader_.Next();
    if (item.kind == EventKind::kSeqEnd || item.kind == EventKind::kDocEnd) break;
    PathScope scope(this, i);
    ParseClass(item);
  }
}

void Builder::ParseGroup(const Event& start) {
  if (!ExpectMap(start)) return;
  const auto index = static_cast<uint32_t>(policy_.groups.size());
  policy_.groups.emplace_back();
  group_side_.push_back(EntitySide{start.pos, {}});
  group_parent_pos_.emplace_back();
  EntityIn in;
  Pos name_pos;
  const uint64_t seen = ForEachKey(kGroupKeys, [&](size_t key) {
    switch (key) {
      case 0: ReadName(&policy_.groups[index].name, &name_pos); break;
      case 1: {
        Event v;
        if (ReadScalar(&v, "a group name")) {
          group_parents_.push_back(PendingRef{index, std::string(v.text), v.pos});
          group_parent_pos_[index] = v.pos;
        }
        break;
      }
      default: ParseRateKey(kGroupKeys[key], &in); break;
    }
  });
  Group& g = policy_.groups[index];
  if (!(seen & 1)) Error(start.pos, "missing required key 'name'");
  ApplyRates(in, &g.rates, &group_side_[index]);
  if (!g.name.empty()) {
    if (auto [it, inserted] = group_index_.emplace(g.name, index); !inserted) {
      PathScope scope(this, "name");
      Error(name_pos, fmt::format("duplicate group name '{}' (first at line {})", g.name,
                                  group_side_[it->second].item.line));
    }
  }
}

void Builder::ParseGroups(const Event& start) {
  groups_pos_ = start.pos;
  if (!ExpectSeq(start)) return;
  for (uint64_t i = 0;; ++i) {
    const Event item = reader_.Next();
    if (item.kind == EventKind::kSeqEnd || item.kind == EventKind::kDocEnd) break;
    PathScope scope(this, i);
    ParseGroup(item);
  }
}

void Builder::ParseMatch(const Event& start, uint32_t tenant) {
  if (!ExpectMap(start)) return;
  prefix_scratch_.clear();
  prefix_pos_scratch_.clear();
  Field vlan;
  const uint64_t seen = ForEachKey(kMatchKeys, [&](size_t key) {
    if (key == 1) {
      ReadUint(&vlan, 1, 4094, "vlan");
      return;
    }
    const Event v = reader_.Next();
    if (!ExpectSeq(v)) return;
    uint64_t i = 0;
    for (;; ++i) {
      const Event p = reader_.Next();
      if (p.kind == EventKind::kSeqEnd || p.kind == EventKind::kDocEnd) break;
      PathScope scope(this, i);
      if (p.kind != EventKind::kScalar) {
        Error(p.pos, fmt::format("expected a prefix such as 203.0.113.0/24, got {}", Describe(p)));
        reader_.Skip(p);
        continue;
      }
      auto prefix = ParsePrefix(p.text);
      if (!prefix) {
        Error(p.pos, std::move(prefix.error()));
        continue;
      }
      prefix_scratch_.push_back(*prefix);
      prefix_pos_scratch_.push_back(p.pos);
    }
    if (i == 0) Error(v.pos, "a tenant needs at least one prefix");
  });
  if (!(seen & 1)) Error(start.pos, "missing required key 'prefixes'");
  Tenant& t = policy_.tenants[tenant];
  t.vlan = static_cast<uint16_t>(vlan.value);
  // Exact capacity: most tenants have one or two prefixes.
  t.prefixes.assign(prefix_scratch_.begin(), prefix_scratch_.end());
  for (size_t i = 0; i < prefix_scratch_.size(); ++i) {
    const Prefix& p = prefix_scratch_[i];
    const Pos pos = prefix_pos_scratch_[i];
    const PrefixKey key{p.addr, p.length, p.is_v6, t.vlan};
    const auto entry = static_cast<uint32_t>(prefix_entries_.size());
    prefix_entries_.push_back(PrefixEntry{key, tenant, pos.line});
    const uint32_t found =
        prefix_set_.Insert(entry, HashPrefixKey(key), [&](uint32_t other) { return prefix_entries_[other].key == key; });
    if (found == entry) continue;
    prefix_entries_.pop_back();
    const PrefixEntry& owner = prefix_entries_[found];
    PathScope prefixes(this, "prefixes");
    PathScope item(this, i);
    if (owner.tenant == tenant) {
      Error(pos, fmt::format("prefix {} is listed twice", p.ToString()));
    } else {
      Error(pos, fmt::format("prefix {}{} is already used by tenant '{}' (line {})", p.ToString(),
                             t.vlan != 0 ? fmt::format(" on vlan {}", t.vlan) : std::string(),
                             policy_.tenants[owner.tenant].name, owner.line));
    }
  }
}

void Builder::ParseTenant(const Event& start) {
  if (!ExpectMap(start)) return;
  if (policy_.tenants.size() >= limits_.max_tenants) {
    Fatal(start.pos, fmt::format("more than {} tenants (limit max_tenants)", limits_.max_tenants));
  }
  const auto index = static_cast<uint32_t>(policy_.tenants.size());
  policy_.tenants.emplace_back();
  tenant_side_.push_back(EntitySide{start.pos, {}});
  EntityIn in;
  Pos name_pos;
  const uint64_t seen = ForEachKey(kTenantKeys, [&](size_t key) {
    Tenant& t = policy_.tenants[index];
    switch (key) {
      case 0: ReadName(&t.name, &name_pos); break;
      case 1: {
        Event v;
        if (!ReadScalar(&v, "a group name")) break;
        if (auto it = group_index_.find(std::string(v.text)); it != group_index_.end()) {
          t.group = it->second;
        } else {  // perhaps defined after the tenants: resolved in Finish()
          tenant_groups_.push_back(PendingRef{index, std::string(v.text), v.pos});
        }
        break;
      }
      case 2: ParseMatch(reader_.Next(), index); break;
      default: ParseRateKey(kTenantKeys[key], &in); break;
    }
  });
  Tenant& t = policy_.tenants[index];
  if (!(seen & 1)) Error(start.pos, "missing required key 'name'");
  if (!(seen & 4)) Error(start.pos, "missing required key 'match'");
  ApplyRates(in, &t.rates, &tenant_side_[index]);
  if (!t.name.empty()) {
    const auto& tenants = policy_.tenants;
    const auto hash = static_cast<uint32_t>(std::hash<std::string_view>{}(t.name));
    const uint32_t first =
        tenant_names_.Insert(index, hash, [&](uint32_t other) { return tenants[other].name == t.name; });
    if (first != index) {
      PathScope scope(this, "name");
      Error(name_pos,
            fmt::format("duplicate tenant name '{}' (first at line {})", t.name, tenant_side_[first].item.line));
    }
  }
}

void Builder::ParseTenants(const Event& start) {
  tenants_pos_ = start.pos;
  if (!ExpectSeq(start)) return;
  for (uint64_t i = 0;; ++i) {
    const Event item = reader_.Next();
    if (item.kind == EventKind::kSeqEnd || item.kind == EventKind::kDocEnd) break;
    PathScope scope(this, i);
    ParseTenant(item);
  }
}

void Builder::ParseDefaultTenant(const Event& start) {
  default_side_.item = start.pos;
  if (!ExpectMap(start)) return;
  ForEachKey(kDefaultTenantKeys, [&](size_t key) { ParseRateKey(kDefaultTenantKeys[key], &default_in_); });
}

void Builder::ParseAllocation(const Event& start) {
  if (!ExpectMap(start)) return;
  Allocation& a = policy_.allocation;
  ForEachKey(kAllocationKeys, [&](size_t key) {
    Field f;
    switch (key) {
      case 0: {
        Event v;
        if (!ReadScalar(&v, "dynamic or static")) break;
        if (v.text == "dynamic" || v.text == "static") {
          a.mode = v.text == "dynamic" ? Allocation::Mode::kDynamic : Allocation::Mode::kStatic;
        } else {
          Error(v.pos, fmt::format("mode must be dynamic or static, got \"{}\"", v.text));
        }
        break;
      }
      case 1:
        if (!ReadDuration(&f)) break;
        // Faster than 10ms the demand estimate is noise; slower than 10s a
        // tenant waits too long for spare capacity it could use.
        if (f.value < 10'000'000 || f.value > 10'000'000'000) {
          Error(f.pos, fmt::format("interval {} is outside 10ms..10s", FormatDuration(f.value)));
        } else {
          a.interval_ns = f.value;
        }
        break;
      default:
        if (ReadPercent(&f)) a.hysteresis_ppm = static_cast<uint32_t>(f.value);
        break;
    }
  });
}

}  // namespace shaper::config::internal
