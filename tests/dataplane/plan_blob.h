// Writes plan blobs (dataplane/abi/plan.h) for tests, without the policy
// compiler: a test states the tenants, prefixes and classes it cares about,
// and gets bytes that ctl::ValidatePlan accepts (or, after a deliberate
// poke, rejects).
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/abi/plan.h"

namespace shaper::testing {

struct TestTenant {
  uint32_t id = 0;
  std::string name{};
  uint16_t vlan = 0;
  uint64_t assured_bps = 0;
  uint64_t ceiling_bps = 1'000'000'000;
  std::vector<std::string> prefixes{};  // "10.1.0.0/16", "2001:db8::/32"
};

struct TestClass {
  std::string name{};
  bool latency = false;
  uint32_t weight = 1;
  uint32_t max_share_ppm = 0;
  uint64_t queue_limit_ns = 50'000'000;
};

class PlanBlob {
 public:
  PlanBlob() {
    classes_.push_back({"bulk"});
    dscp_.fill(0);
    tenants_.push_back({abi::kDefaultTenantId, "default"});
  }
  PlanBlob& link(uint64_t rate_bps, uint64_t queue_bytes = 64ull << 20) {
    rate_bps_ = rate_bps;
    link_queue_bytes_ = queue_bytes;
    return *this;
  }
  // Replaces the classes; class i gets id i.
  PlanBlob& classes(std::vector<TestClass> c) {
    classes_ = std::move(c);
    return *this;
  }
  PlanBlob& dscp(uint8_t code_point, uint8_t cls) {
    dscp_[code_point] = cls;
    return *this;
  }
  PlanBlob& default_class(uint8_t cls) {
    default_class_ = cls;
    return *this;
  }
  PlanBlob& tenant(TestTenant t) {
    tenants_.push_back(std::move(t));
    return *this;
  }
  PlanBlob& default_tenant_ceiling(uint64_t bps) {
    tenants_[0].ceiling_bps = bps;
    return *this;
  }

  std::vector<std::byte> bytes() const {
    std::vector<abi::PlanPrefix> prefixes;
    for (const TestTenant& t : tenants_)
      for (const std::string& p : t.prefixes) prefixes.push_back(ParsePrefix(p, t.id));

    const size_t links_off = sizeof(abi::PlanHeader);
    const size_t classes_off = links_off + abi::kDirections * sizeof(abi::PlanLink);
    const size_t tenants_off = classes_off + classes_.size() * sizeof(abi::PlanClass);
    const size_t prefixes_off = tenants_off + tenants_.size() * sizeof(abi::PlanTenant);
    const size_t total = prefixes_off + prefixes.size() * sizeof(abi::PlanPrefix);
    std::vector<std::byte> out(total);

    abi::PlanHeader h{};
    h.magic = abi::kPlanMagic;
    h.abi_version = abi::kAbiVersion;
    h.header_bytes = sizeof(abi::PlanHeader);
    h.total_bytes = total;
    h.policy_hash = 0x1234;
    h.default_class = default_class_;
    std::memcpy(h.dscp_to_class, dscp_.data(), dscp_.size());
    h.sections[0] = {links_off, abi::kDirections, sizeof(abi::PlanLink)};
    h.sections[1] = {classes_off, static_cast<uint32_t>(classes_.size()), sizeof(abi::PlanClass)};
    h.sections[2] = {tenants_off, static_cast<uint32_t>(tenants_.size()), sizeof(abi::PlanTenant)};
    h.sections[3] = {prefixes_off, static_cast<uint32_t>(prefixes.size()), sizeof(abi::PlanPrefix)};
    std::memcpy(out.data(), &h, sizeof(h));

    for (uint32_t d = 0; d < abi::kDirections; ++d) {
      abi::PlanLink l{rate_bps_, link_queue_bytes_, 24, 0};
      std::memcpy(out.data() + links_off + d * sizeof(l), &l, sizeof(l));
    }
    for (size_t i = 0; i < classes_.size(); ++i) {
      const TestClass& c = classes_[i];
      abi::PlanClass pc{};
      pc.queue_limit_ns = c.queue_limit_ns;
      pc.weight = c.weight;
      pc.max_share_ppm = c.latency ? c.max_share_ppm : 0;
      pc.latency = c.latency;
      std::strncpy(pc.name, c.name.c_str(), sizeof(pc.name) - 1);
      std::memcpy(out.data() + classes_off + i * sizeof(pc), &pc, sizeof(pc));
    }
    for (size_t i = 0; i < tenants_.size(); ++i) {
      const TestTenant& t = tenants_[i];
      abi::PlanTenant pt{};
      pt.id = t.id;
      pt.vlan = t.vlan;
      for (uint32_t d = 0; d < abi::kDirections; ++d) {
        pt.rates[d] =
            abi::PlanTenantRates{t.assured_bps, t.ceiling_bps, 64 * 1024, 4ull << 20, 1, 0};
      }
      std::strncpy(pt.name, t.name.c_str(), sizeof(pt.name) - 1);
      std::memcpy(out.data() + tenants_off + i * sizeof(pt), &pt, sizeof(pt));
    }
    for (size_t i = 0; i < prefixes.size(); ++i)
      std::memcpy(out.data() + prefixes_off + i * sizeof(abi::PlanPrefix), &prefixes[i],
                  sizeof(abi::PlanPrefix));
    return out;
  }

  static abi::PlanPrefix ParsePrefix(const std::string& text, uint32_t tenant) {
    abi::PlanPrefix p{};
    p.tenant_id = tenant;
    const size_t slash = text.find('/');
    const std::string addr = text.substr(0, slash);
    p.length = static_cast<uint8_t>(std::stoi(text.substr(slash + 1)));
    p.is_v6 = addr.find(':') != std::string::npos;
    if (inet_pton(p.is_v6 ? AF_INET6 : AF_INET, addr.c_str(), p.addr) != 1)
      throw std::invalid_argument("plan_blob: bad prefix " + text);
    return p;
  }

 private:
  uint64_t rate_bps_ = 1'000'000'000;
  uint64_t link_queue_bytes_ = 64ull << 20;
  uint8_t default_class_ = 0;
  std::array<uint8_t, 64> dscp_{};
  std::vector<TestClass> classes_;
  std::vector<TestTenant> tenants_;
};

}  // namespace shaper::testing
