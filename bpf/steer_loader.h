// The userspace side of the XDP steering program (bpf/steer.bpf.c): load it
// from its embedded skeleton, attach it to interfaces, pin its maps, and keep
// its managed prefixes in step with the policy.
//
// shaper-control owns one SteerProgram. Prefix changes go through
// SyncPrefixes(), an idempotent reconciler: it reads what the maps hold,
// compares it with what the policy wants and writes only the difference,
// adding and updating first and removing last, so a prefix that stays
// managed is never briefly absent (which would hand its traffic to the
// kernel). With pinning, a restarted control process reopens the same maps
// and its first sync is a no-op when the policy did not change.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bpf/availability.h"
#include "bpf/steer.h"
#include "config/model.h"

struct steer;  // the bpftool skeleton (steer.skel.h), kept out of this header

namespace shaper::bpf {

enum class XdpMode : uint8_t {
  kGeneric,  // skb mode: works on every interface, slower
  kNative,   // driver mode: needs driver support (veth, most 10G+ NICs)
};

// Which address of a frame arriving on a port is the tenant's.
enum class TenantSide : uint8_t {
  kSource,       // access-facing port: tenants send (upload)
  kDestination,  // core-facing port: tenants receive (download)
  kBoth,         // unknown or mixed: look both up
};

struct LoadOptions {
  // Pin every map but xsks_map under this bpffs directory (created if
  // missing) and reuse maps already pinned there; the default is where the
  // dataplane's net_af_xdp PMD pins them (bpf/steer.h). xsks_map stays
  // private to each loaded instance. Empty: no pinning (tests, benchmarks).
  std::string pin_dir = STEER_PIN_DIR;
  // Written to steer_config right after load. A program whose maps were
  // reused from the pin directory gets it too: the policy decides.
  uint32_t config_flags = STEER_F_MATCH_SRC | STEER_F_MATCH_DST | STEER_F_NON_IP | STEER_F_ND;
};

// A prefix the policy manages, with the tenant it belongs to.
struct ManagedPrefix {
  config::Prefix prefix;
  uint32_t tenant_id = 0;
};

// One entry of a prefix map, as both the BPF maps and the reconciler see it.
struct PrefixEntry {
  config::Prefix prefix;
  steer_prefix_value value{};
};

// What SyncPrefixes did: each counter is one map write or delete.
struct SyncStats {
  uint32_t added = 0;
  uint32_t updated = 0;  // present with another tenant id: overwritten
  uint32_t removed = 0;
  uint32_t unchanged = 0;
  bool operator==(const SyncStats&) const = default;
};

// The two prefix maps as the reconciler needs them. Tests wrap the real
// maps to count and order the operations.
class PrefixMaps {
 public:
  virtual ~PrefixMaps() = default;
  virtual std::expected<std::vector<PrefixEntry>, Error> Dump() = 0;
  virtual std::expected<void, Error> Put(const PrefixEntry& entry) = 0;
  virtual std::expected<void, Error> Erase(const config::Prefix& prefix) = 0;
};

// The steer_v4 / steer_v6 maps behind two file descriptors (not owned).
class BpfPrefixMaps final : public PrefixMaps {
 public:
  BpfPrefixMaps(int v4_fd, int v6_fd) : v4_fd_(v4_fd), v6_fd_(v6_fd) {}
  std::expected<std::vector<PrefixEntry>, Error> Dump() override;
  std::expected<void, Error> Put(const PrefixEntry& entry) override;
  std::expected<void, Error> Erase(const config::Prefix& prefix) override;

 private:
  int v4_fd_;
  int v6_fd_;
};

// Makes `maps` hold exactly `wanted`: validates every wanted prefix first
// (length, host bits, one tenant per prefix) and changes nothing if one is
// bad; then puts new and changed entries, then erases the ones not wanted.
std::expected<SyncStats, Error> SyncPrefixes(PrefixMaps& maps,
                                             std::span<const ManagedPrefix> wanted);

class SteerProgram {
 public:
  static std::expected<std::unique_ptr<SteerProgram>, Error> Load(const LoadOptions& options);
  ~SteerProgram();
  SteerProgram(const SteerProgram&) = delete;
  SteerProgram& operator=(const SteerProgram&) = delete;

  // Attaches the program to an interface; it is detached again when this
  // object is destroyed (then every frame goes to the kernel).
  std::expected<void, Error> Attach(int ifindex, XdpMode mode);
  std::expected<void, Error> Detach(int ifindex);

  std::expected<void, Error> SetConfigFlags(uint32_t flags);
  // Names the tenant side for frames arriving on `ifindex` (and sets
  // STEER_F_PER_IFACE); ClearTenantSide returns the port to the global flags.
  std::expected<void, Error> SetTenantSide(int ifindex, TenantSide side);
  std::expected<void, Error> ClearTenantSide(int ifindex);
  // Replaces the set of managed VLAN ids (1..4094).
  std::expected<void, Error> SetVlans(std::span<const uint16_t> vlan_ids);
  std::expected<SyncStats, Error> SyncPrefixes(std::span<const ManagedPrefix> wanted);
  // Counters summed over all CPUs.
  std::expected<steer_counters, Error> Counters() const;

  int prog_fd() const;
  int v4_fd() const;
  int v6_fd() const;
  int vlans_fd() const;
  int config_fd() const;
  int counters_fd() const;
  int xsks_fd() const;
  int ifaces_fd() const;

 private:
  SteerProgram() = default;
  struct Attachment {
    int ifindex;
    uint32_t xdp_flags;
  };
  steer* skel_ = nullptr;
  std::vector<Attachment> attached_;
};

}  // namespace shaper::bpf
