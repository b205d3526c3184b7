// A small policy built in code (no YAML: these tests exercise the plan, not
// the loader), and helpers to reach into a plan blob to corrupt it.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "config/model.h"
#include "control/dpclient/plan_compiler.h"
#include "dataplane/abi/plan.h"

namespace shaper::testing {

inline config::Prefix MakePrefix(const char* text, uint8_t length) {
  config::Prefix p;
  p.length = length;
  p.is_v6 = std::strchr(text, ':') != nullptr;
  inet_pton(p.is_v6 ? AF_INET6 : AF_INET, text, p.addr.data());
  return p;
}

inline config::DirectionRates Rates(uint64_t guaranteed_bps, uint64_t ceiling_bps,
                                    uint32_t weight = 1) {
  return config::DirectionRates{guaranteed_bps, ceiling_bps, weight, 625'000};
}

// Tenants (ids after a fresh TenantIds::Update): default 0, acme 1, globex 2,
// initech 3. Prefixes in plan order: acme v4, acme v6, globex, initech.
inline config::Policy TestPolicy() {
  config::Policy p;
  p.link = {10'000'000'000, 9'500'000'000, 24};
  config::TrafficClass rt;
  rt.name = "realtime";
  rt.priority = config::Priority::kLatency;
  rt.dscp = {46};
  rt.max_share_ppm = 200'000;
  rt.queue_limit_ns = 2'000'000;
  config::TrafficClass bulk;
  bulk.name = "bulk";
  bulk.priority = config::Priority::kBulk;
  bulk.weight = 1;
  bulk.queue_limit_ns = 30'000'000;
  bulk.is_default = true;
  p.classes = {rt, bulk};
  p.dscp_to_class.fill(1);
  p.dscp_to_class[46] = 0;

  config::Tenant acme;
  acme.name = "acme";
  acme.vlan = 100;
  acme.prefixes = {MakePrefix("203.0.113.0", 24), MakePrefix("2001:db8:1::", 48)};
  acme.rates = {Rates(1'000'000'000, 5'000'000'000, 2), Rates(1'000'000'000, 5'000'000'000, 2)};
  config::Tenant globex;
  globex.name = "globex";
  globex.prefixes = {MakePrefix("198.51.100.0", 25)};
  globex.rates = {Rates(500'000'000, 2'000'000'000), Rates(100'000'000, 500'000'000)};
  config::Tenant initech;
  initech.name = "initech";
  initech.prefixes = {MakePrefix("192.0.2.0", 24)};
  initech.rates = {Rates(0, 1'000'000'000), Rates(0, 1'000'000'000)};
  p.tenants = {acme, globex, initech};
  p.default_tenant = {Rates(0, 100'000'000), Rates(0, 100'000'000)};
  return p;
}

inline std::vector<std::byte> CompiledTestPlan() {
  const config::Policy policy = TestPolicy();
  dpclient::TenantIds ids;
  ids.Update(policy);
  auto plan = dpclient::CompilePlan(policy, ids);
  if (!plan) return {};
  return *plan;
}

// Accessors into a (compiled, hence well-formed) blob, for corrupting it.
inline abi::PlanHeader& Header(std::vector<std::byte>& blob) {
  return *reinterpret_cast<abi::PlanHeader*>(blob.data());
}
template <class T>
T& Entry(std::vector<std::byte>& blob, abi::PlanSection s, size_t i) {
  const abi::SectionRef& ref = Header(blob).sections[static_cast<uint32_t>(s)];
  return reinterpret_cast<T*>(blob.data() + ref.offset_bytes)[i];
}
inline abi::PlanLink& Link(std::vector<std::byte>& b, size_t i) {
  return Entry<abi::PlanLink>(b, abi::PlanSection::kLinks, i);
}
inline abi::PlanClass& Class(std::vector<std::byte>& b, size_t i) {
  return Entry<abi::PlanClass>(b, abi::PlanSection::kClasses, i);
}
inline abi::PlanTenant& Tenant(std::vector<std::byte>& b, size_t i) {
  return Entry<abi::PlanTenant>(b, abi::PlanSection::kTenants, i);
}
inline abi::PlanPrefix& Prefix(std::vector<std::byte>& b, size_t i) {
  return Entry<abi::PlanPrefix>(b, abi::PlanSection::kPrefixes, i);
}
inline abi::SectionRef& Sec(std::vector<std::byte>& b, abi::PlanSection s) {
  return Header(b).sections[static_cast<uint32_t>(s)];
}

}  // namespace shaper::testing
