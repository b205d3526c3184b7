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
// for upload, destination for download) goes through one rte_lpm (IPv4) or
// rte_lpm6 (IPv6) table.
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

struct rte_lpm;
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

 private:
  ClassifyTables() = default;
  uint32_t Resolve(uint32_t row, uint16_t vlan) const;

  rte_lpm* v4_ = nullptr;
  rte_lpm6* v6_ = nullptr;
  std::vector<MatchRow> rows_;
  std::vector<VlanChoice> choices_;
  std::array<uint8_t, 64> dscp_to_class_{};
  uint8_t default_class_ = 0;
};

}  // namespace shaper::dataplane
