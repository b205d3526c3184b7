// Policy -> plan blob (see plan_compiler.h).
//
// Derivations the plan needs and the policy does not state:
// - assured rate = guaranteed: the allocator later pushes demand-driven
//   assured rates as rate updates; until then the floor is the promise.
// - per-tenant queue bytes = ceiling x the longest class queue_limit: the most
//   a tenant can usefully hold, since anything beyond would be dropped by the
//   sojourn limit anyway; clamped to [one frame, 4 GiB).
// - link queue bytes (the global watermark) = shape rate x the longest class
//   queue_limit, on the same reasoning for the whole link.
// - burst below one max-size frame is raised to kMinBurstBytes: a bucket that
//   cannot hold a frame would never send it.
#include "control/dpclient/plan_compiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace shaper::dpclient {
namespace {

std::unexpected<std::string> Err(std::string text) {
  return std::unexpected(std::move(text));
}

template <size_t N>
bool CopyName(char (&dst)[N], std::string_view name) {
  if (name.size() >= N) return false;
  std::memcpy(dst, name.data(), name.size());
  return true;
}

// FNV-1a, 64 bit: a stable fingerprint of the plan for logs, not security.
uint64_t Fnv1a(std::span<const std::byte> bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (std::byte b : bytes) {
    h ^= static_cast<uint8_t>(b);
    h *= 0x100000001b3ULL;
  }
  return h;
}

template <class T>
void Put(std::vector<std::byte>& blob, uint64_t offset, const T& value) {
  std::memcpy(blob.data() + offset, &value, sizeof(T));
}

uint64_t AlignUp8(uint64_t v) {
  return (v + 7) & ~uint64_t{7};
}

std::expected<abi::PlanTenantRates, std::string> TenantRates(const std::string& at,
                                                             const config::DirectionRates& r,
                                                             uint64_t max_queue_limit_ns) {
  if (r.ceiling_bps == 0 || r.ceiling_bps > abi::kMaxRateBps) {
    return Err(
        fmt::format("{}.ceiling_bps={}: must be in [1, {}]", at, r.ceiling_bps, abi::kMaxRateBps));
  }
  if (r.guaranteed_bps > r.ceiling_bps) {
    return Err(fmt::format("{}.guaranteed_bps={}: must be <= ceiling_bps={}", at, r.guaranteed_bps,
                           r.ceiling_bps));
  }
  if (r.weight == 0 || r.weight > abi::kMaxWeight) {
    return Err(fmt::format("{}.weight={}: must be in [1, {}]", at, r.weight, abi::kMaxWeight));
  }
  abi::PlanTenantRates out{};
  out.assured_bps = r.guaranteed_bps;
  out.ceiling_bps = r.ceiling_bps;
  out.weight = r.weight;
  out.burst_bytes = std::clamp<uint64_t>(r.burst_bytes, abi::kMinBurstBytes, abi::kMaxBurstBytes);
  out.queue_bytes_limit =
      std::clamp<uint64_t>(BytesInTime(r.ceiling_bps, max_queue_limit_ns),
                           abi::kMinTenantQueueBytes, abi::kMaxTenantQueueBytes);
  return out;
}

// The policy loader's alphabet for names (config/loader.cc).
bool ValidTenantName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
}

std::optional<uint32_t> ParseU32(std::string_view text) {
  uint32_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

constexpr std::string_view kIdsMagic = "shaper-tenant-ids";
constexpr std::string_view kNextIdKey = "next_id=";

}  // namespace

uint64_t BytesInTime(uint64_t rate_bps, uint64_t ns) {
  // rate (<= 2^64) x time (<= 2^64) needs more than 64 bits before the divide.
  const long double bytes =
      static_cast<long double>(rate_bps) * static_cast<long double>(ns) / 8e9L;
  return bytes >= 1.8e19L ? UINT64_MAX : static_cast<uint64_t>(bytes);
}

void TenantIds::Update(std::span<const std::string> names) {
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> next;
  next.reserve(names.size());
  std::vector<uint32_t> released;
  for (const std::string& name : names) {
    if (auto it = ids_.find(name); it != ids_.end()) next.emplace(name, it->second);
  }
  for (const auto& [name, id] : ids_) {
    if (!next.contains(name)) released.push_back(id);
  }
  for (const std::string& name : names) {
    if (next.contains(name)) continue;
    uint32_t id;
    if (!free_.empty()) {
      id = *free_.begin();
      free_.erase(free_.begin());
    } else {
      id = next_id_++;
    }
    next.emplace(name, id);
  }
  // Retired, not freed: neither this update's newcomers nor a later update's
  // may take them before the dataplane has dropped them (Settle).
  retired_.insert(retired_.end(), released.begin(), released.end());
  ids_ = std::move(next);
}

void TenantIds::Settle() {
  free_.insert(retired_.begin(), retired_.end());
  retired_.clear();
  // Trim fresh ids that are free at the top, so id_limit shrinks when the
  // highest tenants go away.
  while (!free_.empty() && *free_.rbegin() == next_id_ - 1) {
    free_.erase(std::prev(free_.end()));
    --next_id_;
  }
}

void TenantIds::Update(const config::Policy& policy) {
  std::vector<std::string> names;
  names.reserve(policy.tenants.size());
  for (const config::Tenant& t : policy.tenants) names.push_back(t.name);
  Update(names);
}

std::optional<uint32_t> TenantIds::Find(std::string_view name) const {
  if (name == kDefaultTenantName) return abi::kDefaultTenantId;
  auto it = ids_.find(name);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

TenantIds::State TenantIds::state() const {
  State out;
  out.next_id = next_id_;
  out.entries.reserve(ids_.size());
  for (const auto& [name, id] : ids_) out.entries.emplace_back(name, id);
  std::sort(out.entries.begin(), out.entries.end(),
            [](const auto& x, const auto& y) { return x.second < y.second; });
  return out;
}

std::expected<TenantIds, std::string> TenantIds::Restore(const State& state) {
  if (state.next_id == 0 || state.next_id > kMaxTenantIdsNextId) {
    return Err(fmt::format("next_id={}: must be in [1, {}]", state.next_id, kMaxTenantIdsNextId));
  }
  TenantIds out;
  out.next_id_ = state.next_id;
  std::set<uint32_t> used;
  for (const auto& [name, id] : state.entries) {
    if (id == abi::kDefaultTenantId || id >= state.next_id) {
      return Err(fmt::format("tenant '{}' id={}: must be in [1, next_id={})", name, id, state.next_id));
    }
    if (name.empty() || name == kDefaultTenantName) {
      return Err(fmt::format("id {} name='{}': empty or reserved for the default tenant", id, name));
    }
    if (!used.insert(id).second) return Err(fmt::format("id {}: given to more than one tenant", id));
    if (!out.ids_.emplace(name, id).second) {
      return Err(fmt::format("tenant '{}': listed more than once", name));
    }
  }
  for (uint32_t id = 1; id < state.next_id; ++id) {
    if (!used.contains(id)) out.free_.insert(id);
  }
  return out;
}

std::string FormatTenantIds(const TenantIds::State& state) {
  std::string out = fmt::format("{} {} {}{}\n", kIdsMagic, kTenantIdsFormatVersion, kNextIdKey,
                                state.next_id);
  for (const auto& [name, id] : state.entries) out += fmt::format("{} {}\n", id, name);
  return out;
}

std::expected<TenantIds, std::string> ParseTenantIds(std::string_view text) {
  TenantIds::State state;
  size_t line_no = 0;
  bool header_seen = false;
  std::set<uint32_t> seen_ids;
  std::set<std::string_view> seen_names;  // views into `text`, which outlives them
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      // Every line the writer emits ends in '\n': a missing one is a cut file.
      return Err(fmt::format("line {} '{}': no newline at the end (truncated file?)", line_no + 1,
                             text));
    }
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    const size_t sp = line.find(' ');
    const size_t sp2 = sp == std::string_view::npos ? sp : line.find(' ', sp + 1);
    if (!header_seen) {
      // "shaper-tenant-ids VERSION next_id=N"
      const size_t sp3 = sp2 == std::string_view::npos ? sp2 : line.find(' ', sp2 + 1);
      if (sp2 == std::string_view::npos || sp3 != std::string_view::npos ||
          line.substr(0, sp) != kIdsMagic) {
        return Err(fmt::format("line {} '{}': expected the header '{} {} {}N'", line_no, line,
                               kIdsMagic, kTenantIdsFormatVersion, kNextIdKey));
      }
      const auto version = ParseU32(line.substr(sp + 1, sp2 - sp - 1));
      if (version != kTenantIdsFormatVersion) {
        return Err(fmt::format("line {} '{}': format version must be {}", line_no, line,
                               kTenantIdsFormatVersion));
      }
      const std::string_view next = line.substr(sp2 + 1);
      const auto next_id = next.starts_with(kNextIdKey)
                               ? ParseU32(next.substr(kNextIdKey.size()))
                               : std::nullopt;
      if (!next_id || *next_id == 0 || *next_id > kMaxTenantIdsNextId) {
        return Err(fmt::format("line {} '{}': expected {}N with N in [1, {}]", line_no, line,
                               kNextIdKey, kMaxTenantIdsNextId));
      }
      state.next_id = *next_id;
      header_seen = true;
      continue;
    }
    // "ID NAME"
    if (sp == std::string_view::npos || sp2 != std::string_view::npos) {
      return Err(fmt::format("line {} '{}': expected 'ID NAME'", line_no, line));
    }
    const auto id = ParseU32(line.substr(0, sp));
    const std::string_view name = line.substr(sp + 1);
    if (!id) return Err(fmt::format("line {} '{}': id is not a number", line_no, line));
    if (!ValidTenantName(name)) {
      return Err(fmt::format("line {} '{}': name must be letters, digits, '-', '_' or '.'",
                             line_no, line));
    }
    // Restore() checks these too; here the error can name the line.
    if (*id == abi::kDefaultTenantId || *id >= state.next_id) {
      return Err(fmt::format("line {} '{}': id must be in [1, next_id={})", line_no, line,
                             state.next_id));
    }
    if (name == kDefaultTenantName) {
      return Err(fmt::format("line {} '{}': name is the default tenant's", line_no, line));
    }
    if (!seen_ids.insert(*id).second) {
      return Err(fmt::format("line {} '{}': id {} is listed twice", line_no, line, *id));
    }
    if (!seen_names.insert(name).second) {
      return Err(fmt::format("line {} '{}': name '{}' is listed twice", line_no, line, name));
    }
    state.entries.emplace_back(std::string(name), *id);
  }
  if (!header_seen) return Err("line 1 '': empty file, expected the header");
  auto ids = TenantIds::Restore(state);
  if (!ids) return Err(fmt::format("line 1: {}", ids.error()));
  return ids;
}

uint32_t TenantIds::id_limit() const {
  uint32_t limit = 1;
  for (const auto& [name, id] : ids_) limit = std::max(limit, id + 1);
  return limit;
}

std::expected<std::vector<std::byte>, std::string> CompilePlan(const config::Policy& policy,
                                                               const TenantIds& ids,
                                                               const CompileLimits& limits) {
  // Classes.
  if (policy.classes.empty() || policy.classes.size() > abi::kMaxClasses) {
    return Err(
        fmt::format("classes: {} classes: must be 1..{}", policy.classes.size(), abi::kMaxClasses));
  }
  std::vector<abi::PlanClass> classes(policy.classes.size());
  uint64_t max_queue_limit_ns = 0;
  int default_class = -1;
  int first_bulk = -1;
  for (size_t i = 0; i < policy.classes.size(); ++i) {
    const config::TrafficClass& c = policy.classes[i];
    abi::PlanClass& out = classes[i];
    if (!CopyName(out.name, c.name)) {
      return Err(fmt::format("classes[{}].name=\"{}\": {} bytes; the plan holds at most {}", i,
                             c.name, c.name.size(), abi::kClassNameBytes - 1));
    }
    if (c.queue_limit_ns == 0 || c.queue_limit_ns > abi::kMaxQueueLimitNs) {
      return Err(fmt::format("classes[{}].queue_limit_ns={}: must be in [1, {}]", i,
                             c.queue_limit_ns, abi::kMaxQueueLimitNs));
    }
    out.latency = c.priority == config::Priority::kLatency ? 1 : 0;
    // Weight only matters among bulk classes; a latency class may carry 0.
    out.weight = out.latency && c.weight == 0 ? 1 : c.weight;
    if (out.weight == 0 || out.weight > abi::kMaxWeight) {
      return Err(
          fmt::format("classes[{}].weight={}: must be in [1, {}]", i, c.weight, abi::kMaxWeight));
    }
    out.max_share_ppm = out.latency ? c.max_share_ppm : 0;
    out.queue_limit_ns = c.queue_limit_ns;
    max_queue_limit_ns = std::max(max_queue_limit_ns, c.queue_limit_ns);
    if (c.is_default && default_class < 0) default_class = static_cast<int>(i);
    if (!out.latency && first_bulk < 0) first_bulk = static_cast<int>(i);
  }
  if (first_bulk < 0) return Err("classes: at least one bulk class is required");
  if (default_class < 0) default_class = first_bulk;

  // Tenants, by id.
  std::vector<abi::PlanTenant> tenants;
  tenants.reserve(policy.tenants.size() + 1);
  {
    abi::PlanTenant def{};
    def.id = abi::kDefaultTenantId;
    CopyName(def.name, kDefaultTenantName);
    for (uint32_t d = 0; d < abi::kDirections; ++d) {
      auto r = TenantRates(fmt::format("default_tenant.{}", abi::DirectionName(d)),
                           policy.default_tenant[d], max_queue_limit_ns);
      if (!r) return Err(r.error());
      def.rates[d] = *r;
    }
    tenants.push_back(def);
  }
  size_t num_prefixes = 0;
  for (size_t i = 0; i < policy.tenants.size(); ++i) {
    const config::Tenant& t = policy.tenants[i];
    const std::string at = fmt::format("tenants[{}]", i);
    if (t.name == kDefaultTenantName) {
      return Err(fmt::format("{}.name=\"{}\": reserved for the default tenant", at, t.name));
    }
    abi::PlanTenant out{};
    const std::optional<uint32_t> id = ids.Find(t.name);
    if (!id) return Err(fmt::format("{}.name=\"{}\": no tenant id assigned", at, t.name));
    if (*id >= limits.max_tenants) {
      return Err(fmt::format("{} (\"{}\"): id {} is beyond the dataplane's max_tenants={}", at,
                             t.name, *id, limits.max_tenants));
    }
    out.id = *id;
    if (!CopyName(out.name, t.name)) {
      return Err(fmt::format("{}.name=\"{}\": {} bytes; the plan holds at most {}", at, t.name,
                             t.name.size(), abi::kTenantNameBytes - 1));
    }
    out.vlan = t.vlan;
    for (uint32_t d = 0; d < abi::kDirections; ++d) {
      auto r = TenantRates(at + "." + abi::DirectionName(d), t.rates[d], max_queue_limit_ns);
      if (!r) return Err(r.error());
      out.rates[d] = *r;
    }
    num_prefixes += t.prefixes.size();
    tenants.push_back(out);
  }
  std::sort(tenants.begin(), tenants.end(),
            [](const abi::PlanTenant& a, const abi::PlanTenant& b) { return a.id < b.id; });

  std::vector<abi::PlanPrefix> prefixes;
  prefixes.reserve(num_prefixes);
  for (const config::Tenant& t : policy.tenants) {
    const uint32_t id = *ids.Find(t.name);
    for (const config::Prefix& p : t.prefixes) {
      abi::PlanPrefix out{};
      out.tenant_id = id;
      out.is_v6 = p.is_v6 ? 1 : 0;
      out.length = p.length;
      std::memcpy(out.addr, p.addr.data(), sizeof(out.addr));
      prefixes.push_back(out);
    }
  }

  // Layout: header, then each section 8-aligned.
  abi::PlanHeader h{};
  h.magic = abi::kPlanMagic;
  h.abi_version = abi::kAbiVersion;
  h.header_bytes = sizeof(abi::PlanHeader);
  h.default_class = static_cast<uint8_t>(default_class);
  for (uint32_t d = 0; d < abi::kDscpValues; ++d) {
    if (policy.dscp_to_class[d] >= classes.size()) {
      return Err(fmt::format("dscp_to_class[{}]={}: there are {} classes", d,
                             policy.dscp_to_class[d], classes.size()));
    }
    h.dscp_to_class[d] = policy.dscp_to_class[d];
  }
  uint64_t offset = sizeof(abi::PlanHeader);
  auto place = [&](abi::PlanSection s, size_t count, size_t entry_bytes) {
    abi::SectionRef& ref = h.sections[static_cast<uint32_t>(s)];
    ref.offset_bytes = offset;
    ref.count = static_cast<uint32_t>(count);
    ref.entry_bytes = static_cast<uint32_t>(entry_bytes);
    offset = AlignUp8(offset + count * entry_bytes);
  };
  if (prefixes.size() > UINT32_MAX || tenants.size() > UINT32_MAX) {
    return Err(fmt::format("plan: {} tenants / {} prefixes do not fit the plan format",
                           tenants.size(), prefixes.size()));
  }
  place(abi::PlanSection::kLinks, abi::kDirections, sizeof(abi::PlanLink));
  place(abi::PlanSection::kClasses, classes.size(), sizeof(abi::PlanClass));
  place(abi::PlanSection::kTenants, tenants.size(), sizeof(abi::PlanTenant));
  place(abi::PlanSection::kPrefixes, prefixes.size(), sizeof(abi::PlanPrefix));
  h.total_bytes = offset;

  abi::PlanLink link{};
  link.rate_bps = policy.link.shape_rate_bps;
  link.overhead_bytes = policy.link.overhead_bytes;
  link.queue_bytes_limit = std::max<uint64_t>(
      BytesInTime(policy.link.shape_rate_bps, max_queue_limit_ns), abi::kMinTenantQueueBytes);

  std::vector<std::byte> blob(offset);
  auto section_at = [&](abi::PlanSection s) {
    return h.sections[static_cast<uint32_t>(s)].offset_bytes;
  };
  for (uint32_t d = 0; d < abi::kDirections; ++d) {
    Put(blob, section_at(abi::PlanSection::kLinks) + d * sizeof(link), link);
  }
  std::memcpy(blob.data() + section_at(abi::PlanSection::kClasses), classes.data(),
              classes.size() * sizeof(abi::PlanClass));
  std::memcpy(blob.data() + section_at(abi::PlanSection::kTenants), tenants.data(),
              tenants.size() * sizeof(abi::PlanTenant));
  if (!prefixes.empty()) {
    std::memcpy(blob.data() + section_at(abi::PlanSection::kPrefixes), prefixes.data(),
                prefixes.size() * sizeof(abi::PlanPrefix));
  }
  Put(blob, 0, h);
  // The hash covers everything but itself (it is zero while hashing).
  h.policy_hash = Fnv1a(blob);
  Put(blob, 0, h);
  return blob;
}

std::vector<std::byte> EncodeRates(uint64_t plan_generation,
                                   std::span<const abi::RateEntry> entries) {
  abi::RatesHeader h{};
  h.magic = abi::kRatesMagic;
  h.abi_version = abi::kAbiVersion;
  h.header_bytes = sizeof(abi::RatesHeader);
  h.plan_generation = plan_generation;
  h.entries_offset = sizeof(abi::RatesHeader);
  h.count = static_cast<uint32_t>(entries.size());
  h.entry_bytes = sizeof(abi::RateEntry);
  h.total_bytes = sizeof(abi::RatesHeader) + entries.size() * sizeof(abi::RateEntry);
  std::vector<std::byte> blob(h.total_bytes);
  Put(blob, 0, h);
  if (!entries.empty()) {
    std::memcpy(blob.data() + sizeof(h), entries.data(), entries.size() * sizeof(abi::RateEntry));
  }
  return blob;
}

}  // namespace shaper::dpclient
