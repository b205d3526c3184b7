// Classification: which tenant and class a frame belongs to.
//
// What it promises: for each frame, a tenant id (0, the default tenant, when
// nothing matches), a class (the plan's DSCP map for IP, the plan's default
// class otherwise) and flags, written into the frame's MbufMeta. It reads only
// the first segment and never past its data_len: a frame cut short inside any
// header, or with impossible header fields, is flagged malformed and goes to
// the default tenant and class (a transparent bridge forwards what it does not
// understand; it just does not give it anyone's bandwidth).
//
// How: Ethernet, then up to two VLAN tags (0x8100, 0x88a8, 0x9100 in any
// order: QinQ stacks), then IPv4 or IPv6. The tenant-side address (source
// for upload, destination for download) goes through one rte_fib (IPv4,
// DIR-24-8, looked up once per burst) or rte_lpm6 (IPv6) table.
//
// Why rte_fib and not rte_lpm for IPv4: rte_lpm_add scans every rule of the
// same prefix length for a duplicate, so loading N /32 tenants costs O(N^2)
// (100k took 1.4-12 s, 1M did not finish); rte_fib keeps its rules in a
// binary trie (rte_rib), O(32) per add, with the same DIR-24-8 lookup.
//
// Plan changes (Update). Creating a table is cheap, freeing it is not (DPDK
// zeroes 64 MiB of tbl24 on rte_free), and a plan that changes no prefix
// should not touch the tables at all. So Update() returns the current tables
// when the normalised rules are equal, and otherwise rewrites a *spare*
// table (the one the previous plan used, retired by PlanPublisher once no
// worker can read it) with only the difference: deleted prefixes removed,
// new or re-pointed ones added. A fresh table is created only when there is
// no spare or the spare is too small.
//
// VLAN-qualified tenants. A tenant with `vlan: 100` owns its prefixes on
// VLAN 100 only (the outermost tag: with QinQ, the S-tag, which is what
// identifies a customer on a provider link). Rather than one LPM table per
// VLAN (rte_lpm's tbl24 alone is 64 MiB, and a policy may use thousands of
// VLANs), the LPM next hop is a row index: a row holds the answer for frames
// on no particular VLAN and a short list of (vlan, tenant) exceptions. The
// rows are computed off the packet path from every prefix's chain of
// covering prefixes, so the lookup is still exactly "longest matching prefix
// among the tenants that accept this VLAN" (a VLAN-qualified prefix beats an
// unqualified one of the same length), at the cost of one LPM lookup and, on
// tagged frames, a scan of a row's exceptions (usually zero or one).
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct rte_fib;
struct rte_lpm6;
struct rte_mbuf;

namespace shaper::dataplane {

inline constexpr uint32_t kNoTenant = UINT32_MAX;

// One match rule, as the plan gives it (abi::PlanPrefix plus the tenant's VLAN).
struct MatchRule {
  std::array<uint8_t, 16> addr{};  // IPv4 in addr[0..3], network byte order
  uint8_t length = 0;
  bool is_v6 = false;
  uint16_t vlan = 0;  // 0 = any VLAN
  uint32_t tenant = 0;
  bool operator==(const MatchRule&) const = default;
};

// The answer for one LPM next hop.
struct MatchRow {
  uint32_t any_tenant;    // frames on any VLAN without an exception below (kNoTenant: default)
  uint32_t first_choice;  // index into ClassifyTables::choices_
  uint32_t num_choices;
};
struct VlanChoice {
  uint16_t vlan;
  uint32_t tenant;  // kNoTenant: default
};

// Read-only after Build(); shared by all workers through the RCU-published plan.
class ClassifyTables {
 public:
  // Builds the LPM tables (allocates: main lcore only).
  static std::expected<std::unique_ptr<ClassifyTables>, std::string> Build(
      std::span<const MatchRule> rules, const std::array<uint8_t, 64>& dscp_to_class,
      uint8_t default_class);
  // Tables for a new plan (main lcore): `current` itself when rules, DSCP map
  // and default class are unchanged (order and duplicates aside); otherwise
  // `*spare` rewritten with the difference when it is unshared and big enough
  // (it must not be in any worker's reach; it is moved out of `*spare` only
  // when used), or fresh tables. On an error `current` is untouched.
  static std::expected<std::shared_ptr<const ClassifyTables>, std::string> Update(
      std::span<const MatchRule> rules, const std::array<uint8_t, 64>& dscp_to_class,
      uint8_t default_class, const std::shared_ptr<const ClassifyTables>& current,
      std::shared_ptr<ClassifyTables>* spare);
  ~ClassifyTables();
  ClassifyTables(const ClassifyTables&) = delete;
  ClassifyTables& operator=(const ClassifyTables&) = delete;

  // Classifies n frames of one direction (abi::kDownload / kUpload): writes
  // tenant, class, flags and vlan into each frame's MbufMeta.
  void ClassifyBurst(uint32_t direction, rte_mbuf* const* pkts, uint32_t n) const;

  // The tenant a single address maps to (for tests and shaperctl-like tools).
  uint32_t LookupV4(uint32_t addr_host_order, uint16_t vlan) const;
  uint32_t LookupV6(const uint8_t* addr, uint16_t vlan) const;

  size_t num_rows() const { return rows_.size(); }
  size_t num_choices() const { return choices_.size(); }
  // What the last Build/Update did with the tables (for tests and logs).
  enum class Origin : uint8_t { kFresh, kRewritten, kUnchanged };
  Origin origin() const { return origin_; }
  // Prefixes added, re-pointed or deleted in the LPM tables by that build.
  size_t prefix_writes() const { return prefix_writes_; }

  // One prefix as installed: key and LPM next hop (a row index, or for
  // IPv4 the tenant itself: see kDirectTenant in classify.cc).
  struct Installed {
    std::array<uint8_t, 16> addr;
    uint8_t length;
    uint32_t next_hop;
  };

 private:
  ClassifyTables() = default;
  // Fills `t` from normalised rules; `fresh`: create new LPM tables rather
  // than rewrite the ones `t` has.
  static std::expected<void, std::string> BuildInto(ClassifyTables& t,
                                                    std::array<std::vector<MatchRule>, 2>&& rules,
                                                    const std::array<uint8_t, 64>& dscp_to_class,
                                                    uint8_t default_class, bool fresh);
  std::expected<void, std::string> Install(int v6, const std::vector<Installed>& want, bool fresh);
  uint32_t Resolve(uint32_t row, uint16_t vlan) const;
  // The tenant for an rte_fib lookup result (0 = no prefix matched).
  uint32_t TenantOfV4(uint64_t fib_next_hop, uint16_t vlan) const;

  rte_fib* v4_ = nullptr;
  rte_lpm6* v6_ = nullptr;
  // Capacity of each family's table (rules, tbl8 groups), to know whether a
  // spare can take a new plan's prefixes.
  std::array<uint32_t, 2> cap_rules_{};
  std::array<uint32_t, 2> cap_tbl8_{};
  // Per family ([0] IPv4, [1] IPv6): the normalised rules (masked, sorted by
  // prefix then VLAN, duplicates removed) and what is in the LPM table,
  // sorted by prefix.
  std::array<std::vector<MatchRule>, 2> rules_;
  std::array<std::vector<Installed>, 2> installed_;
  Origin origin_ = Origin::kFresh;
  size_t prefix_writes_ = 0;
  std::vector<MatchRow> rows_;
  std::vector<VlanChoice> choices_;
  std::array<uint8_t, 64> dscp_to_class_{};
  uint8_t default_class_ = 0;
};

}  // namespace shaper::dataplane
