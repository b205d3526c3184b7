// Plan and rates validation (see plan_validate.h for why). The order matters:
// nothing is read through a struct pointer until the bytes under it have been
// proven to lie inside the blob, aligned; nothing is used as an index until it
// has been compared with the bound it indexes.
#include "dataplane/ctl/plan_validate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <tuple>
#include <unordered_set>

namespace shaper::ctl {
namespace {

using abi::kDirections;

std::unexpected<std::string> Err(std::string text) {
  return std::unexpected(std::move(text));
}

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// A name field: NUL-terminated inside its array, non-empty, no control bytes
// (names end up in logs and metric labels). Returns an error suffix or "".
std::string CheckName(const char* name, size_t capacity) {
  const void* nul = std::memchr(name, '\0', capacity);
  if (nul == nullptr) {
    return fmt::format("not NUL-terminated within {} bytes", capacity);
  }
  const size_t len = static_cast<const char*>(nul) - name;
  if (len == 0) return "must not be empty";
  for (size_t i = 0; i < len; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) return fmt::format("control byte 0x{:02x} at offset {}", c, i);
  }
  // Bytes after the terminator are padding: zero, so two encoders of the same
  // plan produce the same bytes.
  if (!AllZero(reinterpret_cast<const uint8_t*>(name) + len, capacity - len)) {
    return "bytes after the terminating NUL must be zero";
  }
  return "";
}

std::string_view NameOf(const char* name) {
  return std::string_view(name);
}

std::string FormatPrefix(const abi::PlanPrefix& p) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(p.is_v6 ? AF_INET6 : AF_INET, p.addr, text, sizeof(text));
  return fmt::format("{}/{}", text, p.length);
}

// Where a section's entries lie, after checking them against the blob.
template <class Entry>
std::expected<std::span<const Entry>, std::string> Section(std::span<const std::byte> blob,
                                                           const abi::PlanHeader& h,
                                                           abi::PlanSection which) {
  const uint32_t s = static_cast<uint32_t>(which);
  const abi::SectionRef& ref = h.sections[s];
  const char* name = abi::PlanSectionName(s);
  if (ref.entry_bytes != sizeof(Entry)) {
    return Err(fmt::format("header.sections.{}.entry_bytes={}: must be {}", name, ref.entry_bytes,
                           sizeof(Entry)));
  }
  if (ref.offset_bytes % alignof(uint64_t) != 0) {
    return Err(fmt::format("header.sections.{}.offset_bytes={}: must be a multiple of 8", name,
                           ref.offset_bytes));
  }
  if (ref.offset_bytes < sizeof(abi::PlanHeader) || ref.offset_bytes > blob.size()) {
    return Err(fmt::format("header.sections.{}.offset_bytes={}: outside the blob [{}, {}]", name,
                           ref.offset_bytes, sizeof(abi::PlanHeader), blob.size()));
  }
  // count and entry size are 32-bit: the product cannot overflow 64 bits.
  const uint64_t bytes = uint64_t{ref.count} * ref.entry_bytes;
  if (bytes > blob.size() - ref.offset_bytes) {
    return Err(
        fmt::format("header.sections.{}.count={}: {} entries at offset {} run past the "
                    "end of the blob ({} bytes)",
                    name, ref.count, ref.count, ref.offset_bytes, blob.size()));
  }
  const auto* first = reinterpret_cast<const Entry*>(blob.data() + ref.offset_bytes);
  return std::span<const Entry>(first, ref.count);
}

// `at` names the entry (a callable, so the name is only formatted for an error:
// validating 100k tenants must not build a million strings).
template <class At>
std::string CheckRange(const At& at, std::string_view field, uint64_t value, uint64_t lo,
                       uint64_t hi) {
  if (value >= lo && value <= hi) return {};
  if (lo == 1 && value == 0) return fmt::format("{}{}=0: must be > 0", at(), field);
  return fmt::format("{}{}={}: must be in [{}, {}]", at(), field, value, lo, hi);
}

std::string CheckLinks(std::span<const abi::PlanLink> links) {
  for (uint32_t d = 0; d < links.size(); ++d) {
    const abi::PlanLink& l = links[d];
    auto at = [&] { return fmt::format("links[{}]", abi::DirectionName(d)); };
    if (auto e = CheckRange(at, ".rate_bps", l.rate_bps, 1, abi::kMaxRateBps); !e.empty()) return e;
    if (auto e = CheckRange(at, ".queue_bytes_limit", l.queue_bytes_limit,
                            abi::kMinTenantQueueBytes, UINT64_MAX);
        !e.empty()) {
      return e;
    }
    if (auto e = CheckRange(at, ".overhead_bytes", l.overhead_bytes, 0, abi::kMaxOverheadBytes);
        !e.empty()) {
      return e;
    }
    if (l.reserved != 0) return fmt::format("{}.reserved={}: must be 0", at(), l.reserved);
  }
  return "";
}

std::string CheckClasses(std::span<const abi::PlanClass> classes) {
  std::unordered_set<std::string_view> names;
  bool any_bulk = false;
  for (uint32_t i = 0; i < classes.size(); ++i) {
    const abi::PlanClass& c = classes[i];
    auto at = [&] { return fmt::format("classes[{}]", i); };
    if (auto e = CheckName(c.name, sizeof(c.name)); !e.empty()) return at() + ".name: " + e;
    if (!names.insert(NameOf(c.name)).second) {
      return fmt::format("{}.name=\"{}\": duplicate class name", at(), NameOf(c.name));
    }
    if (c.latency > 1) return fmt::format("{}.latency={}: must be 0 or 1", at(), c.latency);
    if (auto e = CheckRange(at, ".queue_limit_ns", c.queue_limit_ns, 1, abi::kMaxQueueLimitNs);
        !e.empty()) {
      return e;
    }
    if (auto e = CheckRange(at, ".weight", c.weight, 1, abi::kMaxWeight); !e.empty()) return e;
    if (c.latency) {
      if (auto e = CheckRange(at, ".max_share_ppm", c.max_share_ppm, 1, abi::kPpm); !e.empty()) {
        return e;
      }
    } else {
      any_bulk = true;
      if (c.max_share_ppm != 0) {
        return fmt::format("{}.max_share_ppm={}: must be 0 for a bulk class", at(),
                           c.max_share_ppm);
      }
    }
    if (!AllZero(c.reserved, sizeof(c.reserved))) return at() + ".reserved: must be 0";
  }
  if (!any_bulk) return "classes: at least one bulk class is required (latency classes only)";
  return "";
}

template <class At>
std::string CheckTenantRates(const At& at, const abi::PlanTenantRates& r) {
  if (auto e = CheckRange(at, ".ceiling_bps", r.ceiling_bps, 1, abi::kMaxRateBps); !e.empty()) {
    return e;
  }
  if (r.assured_bps > r.ceiling_bps) {
    return fmt::format("{}.assured_bps={}: must be <= ceiling_bps={}", at(), r.assured_bps,
                       r.ceiling_bps);
  }
  if (auto e = CheckRange(at, ".weight", r.weight, 1, abi::kMaxWeight); !e.empty()) return e;
  if (auto e =
          CheckRange(at, ".burst_bytes", r.burst_bytes, abi::kMinBurstBytes, abi::kMaxBurstBytes);
      !e.empty()) {
    return e;
  }
  if (auto e = CheckRange(at, ".queue_bytes_limit", r.queue_bytes_limit, abi::kMinTenantQueueBytes,
                          abi::kMaxTenantQueueBytes);
      !e.empty()) {
    return e;
  }
  if (r.reserved != 0) return fmt::format("{}.reserved={}: must be 0", at(), r.reserved);
  return "";
}

std::string CheckTenants(std::span<const abi::PlanTenant> tenants, const Limits& limits) {
  if (tenants[0].id != abi::kDefaultTenantId) {
    return fmt::format("tenants[0].id={}: the first tenant must be the default tenant, id 0",
                       tenants[0].id);
  }
  std::unordered_set<std::string_view> names;
  names.reserve(tenants.size());
  for (uint32_t i = 0; i < tenants.size(); ++i) {
    const abi::PlanTenant& t = tenants[i];
    auto at = [&] { return fmt::format("tenants[{}]", i); };
    if (t.id >= limits.max_tenants) {
      return fmt::format("{}.id={}: must be < max_tenants={}", at(), t.id, limits.max_tenants);
    }
    if (i > 0 && t.id <= tenants[i - 1].id) {
      return fmt::format("{}.id={}: ids must be unique and ascending (previous id {})", at(), t.id,
                         tenants[i - 1].id);
    }
    if (auto e = CheckName(t.name, sizeof(t.name)); !e.empty()) return at() + ".name: " + e;
    if (!names.insert(NameOf(t.name)).second) {
      return fmt::format("{}.name=\"{}\": duplicate tenant name", at(), NameOf(t.name));
    }
    if (t.vlan > 4094) return fmt::format("{}.vlan={}: must be 0 (any) or 1..4094", at(), t.vlan);
    if (t.reserved != 0) return fmt::format("{}.reserved={}: must be 0", at(), t.reserved);
    for (uint32_t d = 0; d < kDirections; ++d) {
      if (auto e = CheckTenantRates([&] { return at() + "." + abi::DirectionName(d); }, t.rates[d]);
          !e.empty()) {
        return e;
      }
    }
  }
  return "";
}

const abi::PlanTenant* FindById(std::span<const abi::PlanTenant> tenants, uint32_t id) {
  auto it = std::lower_bound(tenants.begin(), tenants.end(), id,
                             [](const abi::PlanTenant& t, uint32_t v) { return t.id < v; });
  return (it != tenants.end() && it->id == id) ? &*it : nullptr;
}

std::string CheckPrefixes(std::span<const abi::PlanPrefix> prefixes,
                          std::span<const abi::PlanTenant> tenants) {
  // The same prefix on the same VLAN in two rules would make the longest match
  // ambiguous: sort (vlan, family, length, address) keys, compare neighbours.
  struct Key {
    uint16_t vlan;
    uint8_t is_v6;
    uint8_t length;
    uint32_t index;
    uint8_t addr[16];
    auto Tie() const { return std::tie(vlan, is_v6, length); }
  };
  std::vector<Key> keys(prefixes.size());
  for (uint32_t i = 0; i < prefixes.size(); ++i) {
    const abi::PlanPrefix& p = prefixes[i];
    auto at = [&] { return fmt::format("prefixes[{}]", i); };
    if (p.tenant_id == abi::kDefaultTenantId) {
      return at() + ".tenant_id=0: the default tenant takes what matches no prefix; it has none";
    }
    const abi::PlanTenant* owner = FindById(tenants, p.tenant_id);
    if (owner == nullptr) {
      return fmt::format("{}.tenant_id={}: no tenant with this id", at(), p.tenant_id);
    }
    keys[i] = Key{owner->vlan, p.is_v6, p.length, i, {}};
    std::memcpy(keys[i].addr, p.addr, sizeof(p.addr));
    if (p.is_v6 > 1) return fmt::format("{}.is_v6={}: must be 0 or 1", at(), p.is_v6);
    const uint32_t max_len = p.is_v6 ? 128 : 32;
    if (p.length > max_len) {
      return fmt::format("{}.length={}: must be <= {} for {}", at(), p.length, max_len,
                         p.is_v6 ? "IPv6" : "IPv4");
    }
    if (!p.is_v6 && !AllZero(p.addr + 4, 12)) {
      return at() + ".addr: an IPv4 prefix must have addr[4..15] zero";
    }
    // No host bits: every bit past `length` is zero.
    for (uint32_t bit = p.length; bit < max_len; ++bit) {
      if (p.addr[bit / 8] & (0x80u >> (bit % 8))) {
        return fmt::format("{}={}: host bits set past /{} (bit {})", at(), FormatPrefix(p),
                           p.length, bit);
      }
    }
    if (p.reserved != 0) return fmt::format("{}.reserved={}: must be 0", at(), p.reserved);
  }
  auto same = [](const Key& a, const Key& b) {
    return a.Tie() == b.Tie() && std::memcmp(a.addr, b.addr, sizeof(a.addr)) == 0;
  };
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.Tie() != b.Tie()) return a.Tie() < b.Tie();
    const int c = std::memcmp(a.addr, b.addr, sizeof(a.addr));
    return c != 0 ? c < 0 : a.index < b.index;
  });
  for (size_t k = 1; k < keys.size(); ++k) {
    if (same(keys[k - 1], keys[k])) {
      const abi::PlanPrefix& first = prefixes[keys[k - 1].index];
      const abi::PlanPrefix& dup = prefixes[keys[k].index];
      return fmt::format("prefixes[{}]={}: duplicates prefixes[{}] (tenant ids {} and {}, vlan {})",
                         keys[k].index, FormatPrefix(dup), keys[k - 1].index, dup.tenant_id,
                         first.tenant_id, keys[k].vlan);
    }
  }
  return "";
}

}  // namespace

const abi::PlanTenant* PlanView::FindTenant(uint32_t id) const {
  return FindById(tenants_, id);
}

std::expected<PlanView, std::string> ValidatePlan(std::span<const std::byte> blob,
                                                  const Limits& limits) {
  if (reinterpret_cast<uintptr_t>(blob.data()) % alignof(uint64_t) != 0) {
    return Err("plan: blob is not 8-byte aligned in memory");
  }
  if (blob.size() < sizeof(abi::PlanHeader)) {
    return Err(fmt::format("plan: {} bytes is shorter than the {}-byte header", blob.size(),
                           sizeof(abi::PlanHeader)));
  }
  if (blob.size() > limits.max_plan_bytes) {
    return Err(fmt::format("plan: {} bytes exceeds the dataplane limit of {} bytes", blob.size(),
                           limits.max_plan_bytes));
  }
  const auto& h = *reinterpret_cast<const abi::PlanHeader*>(blob.data());
  if (h.magic != abi::kPlanMagic) {
    return Err(fmt::format("header.magic=0x{:08x}: not a plan (expected 0x{:08x})", h.magic,
                           abi::kPlanMagic));
  }
  if (h.abi_version != abi::kAbiVersion) {
    return Err(fmt::format("header.abi_version={}: this dataplane speaks version {}", h.abi_version,
                           abi::kAbiVersion));
  }
  if (h.header_bytes != sizeof(abi::PlanHeader)) {
    return Err(
        fmt::format("header.header_bytes={}: must be {}", h.header_bytes, sizeof(abi::PlanHeader)));
  }
  if (h.total_bytes != blob.size()) {
    return Err(
        fmt::format("header.total_bytes={}: the blob is {} bytes", h.total_bytes, blob.size()));
  }
  if (!AllZero(h.reserved0, sizeof(h.reserved0)) || !AllZero(h.reserved1, sizeof(h.reserved1))) {
    return Err("header.reserved: must be 0");
  }

  PlanView view;
  view.bytes_ = blob;
  view.header_ = &h;
  auto links = Section<abi::PlanLink>(blob, h, abi::PlanSection::kLinks);
  if (!links) return Err(links.error());
  auto classes = Section<abi::PlanClass>(blob, h, abi::PlanSection::kClasses);
  if (!classes) return Err(classes.error());
  auto tenants = Section<abi::PlanTenant>(blob, h, abi::PlanSection::kTenants);
  if (!tenants) return Err(tenants.error());
  auto prefixes = Section<abi::PlanPrefix>(blob, h, abi::PlanSection::kPrefixes);
  if (!prefixes) return Err(prefixes.error());

  if (links->size() != kDirections) {
    return Err(fmt::format("header.sections.links.count={}: must be {} (one per direction)",
                           links->size(), kDirections));
  }
  const uint32_t max_classes = std::min(limits.max_classes, abi::kMaxClasses);
  if (classes->empty() || classes->size() > abi::kMaxClasses) {
    return Err(fmt::format("header.sections.classes.count={}: must be in [1, {}]", classes->size(),
                           abi::kMaxClasses));
  }
  if (classes->size() > max_classes) {
    // Valid for the ABI, but this instance's schedulers and stats segment
    // were sized for fewer (a restart with a larger --max-classes fixes it).
    return Err(fmt::format(
        "header.sections.classes.count={0}: plan has {0} classes; this dataplane was started "
        "with --max-classes {1}",
        classes->size(), max_classes));
  }
  if (tenants->empty() || tenants->size() > limits.max_tenants) {
    return Err(fmt::format("header.sections.tenants.count={}: must be in [1, {}] (max_tenants)",
                           tenants->size(), limits.max_tenants));
  }
  if (prefixes->size() > limits.max_prefixes) {
    return Err(fmt::format("header.sections.prefixes.count={}: must be <= {} (max_prefixes)",
                           prefixes->size(), limits.max_prefixes));
  }

  if (auto e = CheckLinks(*links); !e.empty()) return Err(e);
  if (auto e = CheckClasses(*classes); !e.empty()) return Err(e);
  const uint32_t num_classes = static_cast<uint32_t>(classes->size());
  for (uint32_t d = 0; d < abi::kDscpValues; ++d) {
    if (h.dscp_to_class[d] >= num_classes) {
      return Err(fmt::format("header.dscp_to_class[{}]={}: must be < {} (number of classes)", d,
                             h.dscp_to_class[d], num_classes));
    }
  }
  if (h.default_class >= num_classes) {
    return Err(fmt::format("header.default_class={}: must be < {} (number of classes)",
                           h.default_class, num_classes));
  }
  if (auto e = CheckTenants(*tenants, limits); !e.empty()) return Err(e);
  if (auto e = CheckPrefixes(*prefixes, *tenants); !e.empty()) return Err(e);

  view.links_ = *links;
  view.classes_ = *classes;
  view.tenants_ = *tenants;
  view.prefixes_ = *prefixes;
  view.tenant_id_limit_ = tenants->back().id + 1;
  return view;
}

PlanCeilings PlanCeilings::From(const PlanView& plan, uint64_t generation) {
  PlanCeilings c;
  c.generation = generation;
  c.ceiling_bps.assign(plan.tenant_id_limit(), {0, 0});
  for (const abi::PlanTenant& t : plan.tenants()) {
    for (uint32_t d = 0; d < kDirections; ++d) c.ceiling_bps[t.id][d] = t.rates[d].ceiling_bps;
  }
  return c;
}

std::expected<RatesView, RatesFailure> ValidateRates(std::span<const std::byte> blob,
                                                     const Limits& limits,
                                                     const PlanCeilings& in_force) {
  auto invalid = [](std::string text) {
    return std::unexpected(RatesFailure{RatesError::kInvalid, std::move(text)});
  };
  if (reinterpret_cast<uintptr_t>(blob.data()) % alignof(uint64_t) != 0) {
    return invalid("rates: blob is not 8-byte aligned in memory");
  }
  if (blob.size() < sizeof(abi::RatesHeader)) {
    return invalid(fmt::format("rates: {} bytes is shorter than the {}-byte header", blob.size(),
                               sizeof(abi::RatesHeader)));
  }
  if (blob.size() > limits.max_plan_bytes) {
    return invalid(fmt::format("rates: {} bytes exceeds the dataplane limit of {} bytes",
                               blob.size(), limits.max_plan_bytes));
  }
  const auto& h = *reinterpret_cast<const abi::RatesHeader*>(blob.data());
  if (h.magic != abi::kRatesMagic) {
    return invalid(fmt::format("rates.magic=0x{:08x}: not a rates blob (expected 0x{:08x})",
                               h.magic, abi::kRatesMagic));
  }
  if (h.abi_version != abi::kAbiVersion) {
    return invalid(fmt::format("rates.abi_version={}: this dataplane speaks version {}",
                               h.abi_version, abi::kAbiVersion));
  }
  if (h.header_bytes != sizeof(abi::RatesHeader)) {
    return invalid(
        fmt::format("rates.header_bytes={}: must be {}", h.header_bytes, sizeof(abi::RatesHeader)));
  }
  if (h.total_bytes != blob.size()) {
    return invalid(
        fmt::format("rates.total_bytes={}: the blob is {} bytes", h.total_bytes, blob.size()));
  }
  if (!AllZero(h.reserved, sizeof(h.reserved))) return invalid("rates.reserved: must be 0");
  if (h.entry_bytes != sizeof(abi::RateEntry)) {
    return invalid(
        fmt::format("rates.entry_bytes={}: must be {}", h.entry_bytes, sizeof(abi::RateEntry)));
  }
  if (h.entries_offset % alignof(uint64_t) != 0 || h.entries_offset < sizeof(abi::RatesHeader) ||
      h.entries_offset > blob.size()) {
    return invalid(fmt::format("rates.entries_offset={}: must be 8-aligned in [{}, {}]",
                               h.entries_offset, sizeof(abi::RatesHeader), blob.size()));
  }
  if (uint64_t{h.count} * h.entry_bytes > blob.size() - h.entries_offset) {
    return invalid(fmt::format("rates.count={}: entries run past the end of the blob ({} bytes)",
                               h.count, blob.size()));
  }
  if (in_force.generation == 0) {
    return std::unexpected(RatesFailure{RatesError::kStale, "rates: no plan is in force yet"});
  }
  if (h.plan_generation != in_force.generation) {
    return std::unexpected(
        RatesFailure{RatesError::kStale,
                     fmt::format("rates.plan_generation={}: the plan in force is generation {}",
                                 h.plan_generation, in_force.generation)});
  }
  std::span<const abi::RateEntry> entries(
      reinterpret_cast<const abi::RateEntry*>(blob.data() + h.entries_offset), h.count);
  // One bit per (tenant, direction) to catch an entry given twice, which
  // would make the result depend on entry order.
  std::vector<bool> seen(in_force.ceiling_bps.size() * kDirections, false);
  for (uint32_t i = 0; i < entries.size(); ++i) {
    const abi::RateEntry& e = entries[i];
    auto at = [&] { return fmt::format("rates.entries[{}]", i); };
    if (e.tenant_id >= in_force.ceiling_bps.size() || in_force.ceiling_bps[e.tenant_id][0] == 0) {
      return invalid(fmt::format("{}.tenant_id={}: no such tenant in plan generation {}", at(),
                                 e.tenant_id, in_force.generation));
    }
    if (e.direction >= kDirections) {
      return invalid(
          fmt::format("{}.direction={}: must be 0 (download) or 1 (upload)", at(), e.direction));
    }
    if (!AllZero(e.reserved, sizeof(e.reserved))) return invalid(at() + ".reserved: must be 0");
    const uint64_t ceiling = in_force.ceiling_bps[e.tenant_id][e.direction];
    if (e.assured_bps > ceiling) {
      return invalid(fmt::format("{}.assured_bps={}: must be <= the tenant's {} ceiling_bps={}",
                                 at(), e.assured_bps, abi::DirectionName(e.direction), ceiling));
    }
    const size_t bit = size_t{e.tenant_id} * kDirections + e.direction;
    if (seen[bit]) {
      return invalid(fmt::format("{}: tenant {} {} given twice", at(), e.tenant_id,
                                 abi::DirectionName(e.direction)));
    }
    seen[bit] = true;
  }
  return RatesView{&h, entries};
}

std::expected<std::vector<std::byte>, std::string> ReadPlanFile(const std::string& path,
                                                                const Limits& limits) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Err(fmt::format("{}: {}", path, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Err(fmt::format("{}: not a regular file", path));
  }
  if (static_cast<uint64_t>(st.st_size) > limits.max_plan_bytes) {
    close(fd);
    return Err(fmt::format("{}: {} bytes exceeds the limit of {} bytes", path, st.st_size,
                           limits.max_plan_bytes));
  }
  std::vector<std::byte> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "file shrank while reading";
      close(fd);
      return Err(fmt::format("{}: {}", path, why));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return bytes;
}

}  // namespace shaper::ctl
