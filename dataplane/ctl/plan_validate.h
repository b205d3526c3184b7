// Plan and rates validation: the dataplane's only door for configuration.
//
// Control is trusted to be correct but not assumed to be: a bug, a different
// build or a hostile process with socket access must not be able to crash the
// dataplane or make it misbehave silently. So every field of a blob is checked
// before anything reads it as more than bytes: header, section bounds and
// alignment, counts against the dataplane's limits, then each entry. The first
// problem found is returned as text naming the field and its value
// (`tenants[17].download.ceiling_bps=0: must be > 0`), which travels back to
// the operator in the reply.
//
// After validation the blob is read in place through PlanView: no copy, no
// parse step. The view does not own the bytes; it is valid as long as they are
// (the ctl server keeps the sealed mapping alive for the on_plan callback).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

#include "dataplane/abi/plan.h"

namespace shaper::ctl {

// What this dataplane instance can hold; set at startup.
struct Limits {
  uint32_t max_tenants = 4096;  // tenant ids must be below this (stats segment rows)
  uint32_t max_classes = abi::kMaxClasses;
  uint32_t max_prefixes = 1u << 20;
  uint64_t max_plan_bytes = 256ull << 20;  // refuse larger payloads before mapping them
};

// A validated plan, read in place.
class PlanView {
 public:
  PlanView() = default;

  const abi::PlanHeader& header() const { return *header_; }
  uint64_t policy_hash() const { return header_->policy_hash; }
  const abi::PlanLink& link(uint32_t direction) const { return links_[direction]; }
  std::span<const abi::PlanLink> links() const { return links_; }
  std::span<const abi::PlanClass> classes() const { return classes_; }
  // Sorted by id, strictly ascending; tenants()[0] is the default tenant (id 0).
  std::span<const abi::PlanTenant> tenants() const { return tenants_; }
  std::span<const abi::PlanPrefix> prefixes() const { return prefixes_; }
  std::span<const uint8_t, abi::kDscpValues> dscp_to_class() const {
    return std::span<const uint8_t, abi::kDscpValues>(header_->dscp_to_class);
  }
  uint8_t default_class() const { return header_->default_class; }
  // One past the highest tenant id: the size of an array indexed by tenant id
  // (ids below it that no tenant has are holes: no prefix, no traffic).
  uint32_t tenant_id_limit() const { return tenant_id_limit_; }
  // The tenant with this id, or nullptr for a hole / out of range. O(log n).
  const abi::PlanTenant* FindTenant(uint32_t id) const;
  std::span<const std::byte> bytes() const { return bytes_; }

 private:
  friend std::expected<PlanView, std::string> ValidatePlan(std::span<const std::byte>,
                                                           const Limits&);
  std::span<const std::byte> bytes_;
  const abi::PlanHeader* header_ = nullptr;
  std::span<const abi::PlanLink> links_;
  std::span<const abi::PlanClass> classes_;
  std::span<const abi::PlanTenant> tenants_;
  std::span<const abi::PlanPrefix> prefixes_;
  uint32_t tenant_id_limit_ = 0;
};

std::expected<PlanView, std::string> ValidatePlan(std::span<const std::byte> blob,
                                                  const Limits& limits);

// What rate validation needs to know about the plan in force: per tenant id
// and direction, the ceiling (0 = no such tenant). Kept by the ctl server so
// the plan mapping itself need not outlive the apply.
struct PlanCeilings {
  uint64_t generation = 0;                                          // 0 = no plan in force
  std::vector<std::array<uint64_t, abi::kDirections>> ceiling_bps;  // index = tenant id
  static PlanCeilings From(const PlanView& plan, uint64_t generation);
};

// A validated rates blob, read in place.
struct RatesView {
  const abi::RatesHeader* header = nullptr;
  std::span<const abi::RateEntry> entries;
  uint64_t plan_generation() const { return header->plan_generation; }
};

enum class RatesError { kInvalid, kStale };
struct RatesFailure {
  RatesError kind;
  std::string text;
};

// Checks a rates blob against the plan in force: generation matches, every
// tenant id exists, direction valid, assured <= ceiling, no (tenant,
// direction) twice.
std::expected<RatesView, RatesFailure> ValidateRates(std::span<const std::byte> blob,
                                                     const Limits& limits,
                                                     const PlanCeilings& in_force);

// Reads a plan file (for `shaper-dataplane --plan FILE`); refuses files over
// limits.max_plan_bytes. The caller validates the bytes with ValidatePlan.
std::expected<std::vector<std::byte>, std::string> ReadPlanFile(const std::string& path,
                                                                const Limits& limits);

}  // namespace shaper::ctl
