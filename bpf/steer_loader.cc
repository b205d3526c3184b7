#include "bpf/steer_loader.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>

#include "steer.skel.h"

namespace shaper::bpf {
namespace {

std::unexpected<Error> Fail(std::string message) {
  return std::unexpected(Error{std::move(message)});
}

std::string PrefixText(const config::Prefix& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(p.is_v6 ? AF_INET6 : AF_INET, p.addr.data(), buf, sizeof(buf));
  return std::string(buf) + "/" + std::to_string(p.length);
}

// Ordering key of a prefix in the reconciler's maps.
using PrefixKey = std::tuple<bool, uint8_t, std::array<uint8_t, 16>>;
PrefixKey KeyOf(const config::Prefix& p) {
  return {p.is_v6, p.length, p.addr};
}

bool HostBitsZero(const config::Prefix& p) {
  const size_t bytes = p.is_v6 ? 16 : 4;
  for (size_t i = 0; i < bytes; ++i) {
    const int bits_in_prefix =
        std::clamp(static_cast<int>(p.length) - static_cast<int>(8 * i), 0, 8);
    const uint8_t host_mask = static_cast<uint8_t>(0xffu >> bits_in_prefix);
    if (p.addr[i] & host_mask) return false;
  }
  for (size_t i = bytes; i < p.addr.size(); ++i)
    if (p.addr[i] != 0) return false;
  return true;
}

bool SameValue(const steer_prefix_value& a, const steer_prefix_value& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

}  // namespace

// --- the prefix maps -------------------------------------------------------

std::expected<std::vector<PrefixEntry>, Error> BpfPrefixMaps::Dump() {
  std::vector<PrefixEntry> out;
  // LPM tries support get_next_key from NULL (the first key) onwards.
  {
    steer_lpm_v4 key{}, next{};
    const steer_lpm_v4* prev = nullptr;
    while (bpf_map_get_next_key(v4_fd_, prev, &next) == 0) {
      PrefixEntry e;
      if (bpf_map_lookup_elem(v4_fd_, &next, &e.value) != 0)
        return Fail("steer_v4: lookup of a listed key failed: " + ErrnoText(errno));
      e.prefix.is_v6 = false;
      e.prefix.length = static_cast<uint8_t>(next.prefixlen);
      std::memcpy(e.prefix.addr.data(), next.addr, sizeof(next.addr));
      out.push_back(e);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT) return Fail("steer_v4: listing keys failed: " + ErrnoText(errno));
  }
  {
    steer_lpm_v6 key{}, next{};
    const steer_lpm_v6* prev = nullptr;
    while (bpf_map_get_next_key(v6_fd_, prev, &next) == 0) {
      PrefixEntry e;
      if (bpf_map_lookup_elem(v6_fd_, &next, &e.value) != 0)
        return Fail("steer_v6: lookup of a listed key failed: " + ErrnoText(errno));
      e.prefix.is_v6 = true;
      e.prefix.length = static_cast<uint8_t>(next.prefixlen);
      std::memcpy(e.prefix.addr.data(), next.addr, sizeof(next.addr));
      out.push_back(e);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT) return Fail("steer_v6: listing keys failed: " + ErrnoText(errno));
  }
  return out;
}

std::expected<void, Error> BpfPrefixMaps::Put(const PrefixEntry& entry) {
  int rc;
  if (entry.prefix.is_v6) {
    steer_lpm_v6 key{};
    key.prefixlen = entry.prefix.length;
    std::memcpy(key.addr, entry.prefix.addr.data(), sizeof(key.addr));
    rc = bpf_map_update_elem(v6_fd_, &key, &entry.value, BPF_ANY);
  } else {
    steer_lpm_v4 key{};
    key.prefixlen = entry.prefix.length;
    std::memcpy(key.addr, entry.prefix.addr.data(), sizeof(key.addr));
    rc = bpf_map_update_elem(v4_fd_, &key, &entry.value, BPF_ANY);
  }
  if (rc != 0) {
    return Fail(std::string(entry.prefix.is_v6 ? "steer_v6" : "steer_v4") + ": adding prefix " +
                PrefixText(entry.prefix) + " failed: " + ErrnoText(errno) +
                (errno == ENOSPC ? " (map full)" : ""));
  }
  return {};
}

std::expected<void, Error> BpfPrefixMaps::Erase(const config::Prefix& prefix) {
  int rc;
  if (prefix.is_v6) {
    steer_lpm_v6 key{};
    key.prefixlen = prefix.length;
    std::memcpy(key.addr, prefix.addr.data(), sizeof(key.addr));
    rc = bpf_map_delete_elem(v6_fd_, &key);
  } else {
    steer_lpm_v4 key{};
    key.prefixlen = prefix.length;
    std::memcpy(key.addr, prefix.addr.data(), sizeof(key.addr));
    rc = bpf_map_delete_elem(v4_fd_, &key);
  }
  // Gone already is what we wanted (someone else removed it meanwhile).
  if (rc != 0 && errno != ENOENT) {
    return Fail(std::string(prefix.is_v6 ? "steer_v6" : "steer_v4") + ": removing prefix " +
                PrefixText(prefix) + " failed: " + ErrnoText(errno));
  }
  return {};
}

// --- the reconciler --------------------------------------------------------

std::expected<SyncStats, Error> SyncPrefixes(PrefixMaps& maps,
                                             std::span<const ManagedPrefix> wanted) {
  // Validate everything before the first write: a bad policy changes nothing.
  std::map<PrefixKey, PrefixEntry> want;
  for (size_t i = 0; i < wanted.size(); ++i) {
    const config::Prefix& p = wanted[i].prefix;
    const unsigned max_len = p.is_v6 ? 128 : 32;
    if (p.length > max_len) {
      return Fail("prefixes[" + std::to_string(i) + "]: length " + std::to_string(p.length) +
                  " is longer than " + std::to_string(max_len) + " bits");
    }
    if (!HostBitsZero(p))
      return Fail("prefixes[" + std::to_string(i) + "]: " + PrefixText(p) + " has host bits set");
    PrefixEntry e{p, {}};
    e.value.tenant_id = wanted[i].tenant_id;
    auto [it, inserted] = want.emplace(KeyOf(p), e);
    if (!inserted && it->second.value.tenant_id != e.value.tenant_id) {
      return Fail("prefixes[" + std::to_string(i) + "]: " + PrefixText(p) +
                  " is wanted for tenant " + std::to_string(e.value.tenant_id) +
                  " and for tenant " + std::to_string(it->second.value.tenant_id));
    }
  }

  auto current = maps.Dump();
  if (!current) return std::unexpected(current.error());
  std::map<PrefixKey, PrefixEntry> have;
  for (const PrefixEntry& e : *current) have.emplace(KeyOf(e.prefix), e);

  SyncStats stats;
  // Add and update first: a prefix that stays managed is never absent.
  for (const auto& [key, entry] : want) {
    auto it = have.find(key);
    if (it != have.end() && SameValue(it->second.value, entry.value)) {
      ++stats.unchanged;
      continue;
    }
    if (auto r = maps.Put(entry); !r) return std::unexpected(r.error());
    ++(it == have.end() ? stats.added : stats.updated);
  }
  for (const auto& [key, entry] : have) {
    if (want.contains(key)) continue;
    if (auto r = maps.Erase(entry.prefix); !r) return std::unexpected(r.error());
    ++stats.removed;
  }
  return stats;
}

// --- the program -----------------------------------------------------------

std::expected<std::unique_ptr<SteerProgram>, Error> SteerProgram::Load(const LoadOptions& options) {
  if (auto ok = CheckBpfAvailable(options.pin_dir); !ok) return std::unexpected(ok.error());

  std::unique_ptr<SteerProgram> prog(new SteerProgram());
  prog->skel_ = steer__open();
  if (prog->skel_ == nullptr)
    return Fail("opening the embedded steer.bpf.o failed: " + ErrnoText(errno));

  if (!options.pin_dir.empty() && mkdir(options.pin_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Fail("pin directory " + options.pin_dir + ": cannot create it: " + ErrnoText(errno));
  // The object marks every map but xsks_map LIBBPF_PIN_BY_NAME (for the
  // PMD, which cannot be told where to pin); here the pin directory is
  // ours to choose, and "" means no pinning at all (tests, benchmarks).
  // xsks_map stays private to this instance in every case.
  bpf_map* pinned_maps[] = {
      prog->skel_->maps.STEER_MAP_V4,       prog->skel_->maps.STEER_MAP_V6,
      prog->skel_->maps.STEER_MAP_VLANS,    prog->skel_->maps.STEER_MAP_CONFIG,
      prog->skel_->maps.STEER_MAP_COUNTERS, prog->skel_->maps.STEER_MAP_IFACES};
  for (bpf_map* m : pinned_maps) {
    // libbpf reuses a compatible map pinned at the path, or pins the new one.
    const std::string path = options.pin_dir + "/" + bpf_map__name(m);
    const int err = bpf_map__set_pin_path(m, options.pin_dir.empty() ? nullptr : path.c_str());
    if (err != 0)
      return Fail("map " + std::string(bpf_map__name(m)) + ": setting pin path " + path + ": " +
                  ErrnoText(err));
  }
  if (int err = bpf_map__set_pin_path(prog->skel_->maps.STEER_MAP_XSKS, nullptr); err != 0)
    return Fail("map " STEER_NAME(STEER_MAP_XSKS) ": clearing its pin path: " + ErrnoText(err));

  if (int err = steer__load(prog->skel_); err != 0) {
    std::string hint;
    if (err == -EPERM || err == -EACCES)
      hint = " (needs CAP_BPF or CAP_SYS_ADMIN; on kernels before 5.11 also a high RLIMIT_MEMLOCK)";
    else if (!options.pin_dir.empty() && err == -EINVAL)
      hint = " (maps pinned under " + options.pin_dir +
             " may come from an incompatible build: remove them and load again)";
    return Fail("loading the XDP steering program failed: " + ErrnoText(err) + hint);
  }
  if (auto r = prog->SetConfigFlags(options.config_flags); !r) return std::unexpected(r.error());
  return prog;
}

SteerProgram::~SteerProgram() {
  while (!attached_.empty()) (void)Detach(attached_.back().ifindex);
  if (skel_ != nullptr) steer__destroy(skel_);
}

std::expected<void, Error> SteerProgram::Attach(int ifindex, XdpMode mode) {
  const uint32_t flags = XDP_FLAGS_UPDATE_IF_NOEXIST |
                         (mode == XdpMode::kNative ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
  if (int err = bpf_xdp_attach(ifindex, prog_fd(), flags, nullptr); err != 0) {
    std::string hint;
    if (err == -EBUSY || err == -EEXIST) hint = " (another XDP program is attached there)";
    if (err == -EOPNOTSUPP && mode == XdpMode::kNative)
      hint = " (the driver has no native XDP: use generic mode)";
    return Fail("attaching the XDP steering program to ifindex " + std::to_string(ifindex) + " (" +
                (mode == XdpMode::kNative ? "native" : "generic") +
                " mode) failed: " + ErrnoText(err) + hint);
  }
  attached_.push_back({ifindex, flags & ~static_cast<uint32_t>(XDP_FLAGS_UPDATE_IF_NOEXIST)});
  return {};
}

std::expected<void, Error> SteerProgram::Detach(int ifindex) {
  auto it = std::find_if(attached_.begin(), attached_.end(),
                         [&](const Attachment& a) { return a.ifindex == ifindex; });
  if (it == attached_.end())
    return Fail("ifindex " + std::to_string(ifindex) +
                ": the steering program is not attached there");
  // Detach only if our program is still the one attached (XDP_FLAGS_REPLACE).
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = prog_fd());
  const int err = bpf_xdp_detach(ifindex, it->xdp_flags | XDP_FLAGS_REPLACE, &opts);
  attached_.erase(it);
  if (err != 0)
    return Fail("detaching from ifindex " + std::to_string(ifindex) + " failed: " + ErrnoText(err));
  return {};
}

std::expected<void, Error> SteerProgram::SetConfigFlags(uint32_t flags) {
  steer_config cfg{};
  cfg.flags = flags;
  const uint32_t zero = 0;
  if (bpf_map_update_elem(config_fd(), &zero, &cfg, BPF_ANY) != 0)
    return Fail(std::string(STEER_NAME(STEER_MAP_CONFIG)) + ": writing flags " +
                std::to_string(flags) + " failed: " + ErrnoText(errno));
  return {};
}

std::expected<void, Error> SteerProgram::SetTenantSide(int ifindex, TenantSide side) {
  steer_iface port{};
  port.match_flags = side == TenantSide::kSource        ? STEER_F_MATCH_SRC
                     : side == TenantSide::kDestination ? STEER_F_MATCH_DST
                                                        : STEER_F_MATCH_SRC | STEER_F_MATCH_DST;
  const uint32_t key = static_cast<uint32_t>(ifindex);
  if (bpf_map_update_elem(ifaces_fd(), &key, &port, BPF_ANY) != 0) {
    return Fail(
        std::string(STEER_NAME(STEER_MAP_IFACES)) + ": setting the tenant side of ifindex " +
        std::to_string(ifindex) + " failed: " + ErrnoText(errno) +
        (errno == E2BIG ? " (more than " + std::to_string(STEER_MAX_IFACES) + " ports)" : ""));
  }
  // The program consults steer_ifaces only with STEER_F_PER_IFACE.
  steer_config cfg{};
  const uint32_t zero = 0;
  if (bpf_map_lookup_elem(config_fd(), &zero, &cfg) != 0)
    return Fail(std::string(STEER_NAME(STEER_MAP_CONFIG)) + ": read failed: " + ErrnoText(errno));
  if (cfg.flags & STEER_F_PER_IFACE) return {};
  return SetConfigFlags(cfg.flags | STEER_F_PER_IFACE);
}

std::expected<void, Error> SteerProgram::ClearTenantSide(int ifindex) {
  const uint32_t key = static_cast<uint32_t>(ifindex);
  if (bpf_map_delete_elem(ifaces_fd(), &key) != 0 && errno != ENOENT) {
    return Fail(std::string(STEER_NAME(STEER_MAP_IFACES)) + ": clearing ifindex " +
                std::to_string(ifindex) + " failed: " + ErrnoText(errno));
  }
  return {};
}

std::expected<void, Error> SteerProgram::SetVlans(std::span<const uint16_t> vlan_ids) {
  std::vector<uint32_t> want(STEER_VLAN_IDS, 0);
  for (size_t i = 0; i < vlan_ids.size(); ++i) {
    if (vlan_ids[i] < 1 || vlan_ids[i] > 4094)
      return Fail("vlans[" + std::to_string(i) + "]: " + std::to_string(vlan_ids[i]) +
                  " is outside 1..4094");
    want[vlan_ids[i]] = 1;
  }
  // Like the prefixes: write only what differs, adds before removals.
  for (uint32_t pass = 0; pass < 2; ++pass) {
    for (uint32_t vid = 0; vid < STEER_VLAN_IDS; ++vid) {
      if ((pass == 0) != (want[vid] == 1)) continue;
      steer_vlan_value have{};
      if (bpf_map_lookup_elem(vlans_fd(), &vid, &have) != 0)
        return Fail(std::string(STEER_NAME(STEER_MAP_VLANS)) + ": reading vlan " +
                    std::to_string(vid) + ": " + ErrnoText(errno));
      if ((have.managed != 0) == (want[vid] == 1)) continue;
      const steer_vlan_value value{want[vid]};
      if (bpf_map_update_elem(vlans_fd(), &vid, &value, BPF_ANY) != 0)
        return Fail(std::string(STEER_NAME(STEER_MAP_VLANS)) + ": writing vlan " +
                    std::to_string(vid) + ": " + ErrnoText(errno));
    }
  }
  return {};
}

std::expected<SyncStats, Error> SteerProgram::SyncPrefixes(std::span<const ManagedPrefix> wanted) {
  BpfPrefixMaps maps(v4_fd(), v6_fd());
  return bpf::SyncPrefixes(maps, wanted);
}

std::expected<steer_counters, Error> SteerProgram::Counters() const {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return Fail("counting possible CPUs failed: " + ErrnoText(cpus));
  std::vector<steer_counters> per_cpu(static_cast<size_t>(cpus));
  const uint32_t zero = 0;
  if (bpf_map_lookup_elem(counters_fd(), &zero, per_cpu.data()) != 0)
    return Fail(std::string(STEER_NAME(STEER_MAP_COUNTERS)) + ": read failed: " + ErrnoText(errno));
  steer_counters sum{};
  for (const steer_counters& c : per_cpu) {
    sum.steered += c.steered;
    sum.no_socket += c.no_socket;
    sum.passed += c.passed;
    sum.malformed += c.malformed;
    sum.non_ip += c.non_ip;
    sum.nd += c.nd;
    sum.vlan_match += c.vlan_match;
  }
  return sum;
}

int SteerProgram::prog_fd() const {
  return bpf_program__fd(skel_->progs.STEER_PROG);
}
int SteerProgram::v4_fd() const {
  return bpf_map__fd(skel_->maps.STEER_MAP_V4);
}
int SteerProgram::v6_fd() const {
  return bpf_map__fd(skel_->maps.STEER_MAP_V6);
}
int SteerProgram::vlans_fd() const {
  return bpf_map__fd(skel_->maps.STEER_MAP_VLANS);
}
int SteerProgram::config_fd() const {
  return bpf_map__fd(skel_->maps.STEER_MAP_CONFIG);
}
int SteerProgram::counters_fd() const {
  return bpf_map__fd(skel_->maps.STEER_MAP_COUNTERS);
}
int SteerProgram::xsks_fd() const {
  return bpf_map__fd(skel_->maps.STEER_MAP_XSKS);
}
int SteerProgram::ifaces_fd() const {
  return bpf_map__fd(skel_->maps.STEER_MAP_IFACES);
}

}  // namespace shaper::bpf
