#include "dataplane/runtime_plan.h"

#include <fmt/format.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <cstring>

namespace shaper::dataplane {
namespace {

sched::TenantParams ToParams(const abi::PlanTenantRates& r) {
  return sched::TenantParams{.assured_bps = r.assured_bps,
                             .ceiling_bps = r.ceiling_bps,
                             .weight = r.weight,
                             .burst_bytes = r.burst_bytes,
                             .queue_bytes_limit = r.queue_bytes_limit};
}

// Ids the plan does not use get harmless parameters: no prefix maps to them,
// so they never see a packet, but the profile is indexed by id.
sched::TenantParams HoleParams(const sched::LinkParams& link) {
  return sched::TenantParams{.assured_bps = 0,
                             .ceiling_bps = link.rate_bps,
                             .weight = 1,
                             .burst_bytes = abi::kMinBurstBytes,
                             .queue_bytes_limit = abi::kMinTenantQueueBytes};
}

std::expected<void, std::string> BuildProfiles(RuntimePlan& p, uint64_t tsc_hz) {
  for (uint32_t d = 0; d < abi::kDirections; ++d) {
    auto profile = sched::Profile::TryBuild(tsc_hz, p.links[d], p.classes, p.tenants[d]);
    if (!profile)
      return std::unexpected(
          fmt::format("{} scheduler profile: {}", abi::DirectionName(d), profile.error()));
    p.profiles[d] = std::move(*profile);
  }
  return {};
}

}  // namespace

std::expected<std::unique_ptr<RuntimePlan>, std::string> BuildRuntimePlan(
    const ctl::PlanView& plan, uint64_t generation, uint64_t tsc_hz, uint32_t sched_classes,
    PlanPublisher* publisher) {
  if (plan.classes().size() > sched_classes) {
    return std::unexpected(
        fmt::format("plan has {} classes; this dataplane was started with --max-classes {}",
                    plan.classes().size(), sched_classes));
  }
  auto p = std::make_unique<RuntimePlan>();
  p->generation = generation;
  p->num_classes = static_cast<uint32_t>(plan.classes().size());
  p->tenant_id_limit = plan.tenant_id_limit();
  p->default_class = plan.default_class();

  for (uint32_t d = 0; d < abi::kDirections; ++d) {
    const abi::PlanLink& l = plan.link(d);
    p->links[d] = sched::LinkParams{.rate_bps = l.rate_bps,
                                    .overhead_bytes = l.overhead_bytes,
                                    .queue_bytes_limit = l.queue_bytes_limit};
    p->bypass_bytes_per_s[d] = l.rate_bps / 8 / kBypassShareDivisor;
  }
  for (const abi::PlanClass& c : plan.classes()) {
    p->classes.push_back(sched::ClassParams{.latency = c.latency != 0,
                                            .weight = c.weight,
                                            .max_share_ppm = c.max_share_ppm,
                                            .queue_limit_ns = c.queue_limit_ns});
  }
  // The worker's schedulers are built once for sched_classes classes (their
  // queues must survive plans with more or fewer classes), and a profile must
  // match that count: pad with bulk classes no packet is ever mapped to (the
  // DSCP map and default class only name the plan's own classes).
  while (p->classes.size() < sched_classes) {
    p->classes.push_back(sched::ClassParams{.latency = false,
                                            .weight = 1,
                                            .max_share_ppm = 0,
                                            .queue_limit_ns = abi::kMaxQueueLimitNs});
  }
  for (uint32_t d = 0; d < abi::kDirections; ++d) {
    p->tenants[d].assign(p->tenant_id_limit, HoleParams(p->links[d]));
  }
  // VLAN of each tenant id, for the match rules.
  std::vector<uint16_t> vlan_of(p->tenant_id_limit, 0);
  for (const abi::PlanTenant& t : plan.tenants()) {
    for (uint32_t d = 0; d < abi::kDirections; ++d) p->tenants[d][t.id] = ToParams(t.rates[d]);
    vlan_of[t.id] = t.vlan;
  }

  std::vector<MatchRule> rules;
  rules.reserve(plan.prefixes().size());
  for (const abi::PlanPrefix& pre : plan.prefixes()) {
    MatchRule r;
    std::memcpy(r.addr.data(), pre.addr, r.addr.size());
    r.length = pre.length;
    r.is_v6 = pre.is_v6 != 0;
    r.tenant = pre.tenant_id;
    r.vlan = vlan_of[pre.tenant_id];
    rules.push_back(r);
  }
  std::array<uint8_t, 64> dscp{};
  std::copy(plan.dscp_to_class().begin(), plan.dscp_to_class().end(), dscp.begin());
  // Unchanged prefixes keep the tables in force; changed ones rewrite the
  // spare (see classify.h).
  const RuntimePlan* current = publisher ? publisher->current() : nullptr;
  auto tables =
      ClassifyTables::Update(rules, dscp, p->default_class, current ? current->classify : nullptr,
                             publisher ? publisher->spare_slot() : nullptr);
  if (!tables) return std::unexpected(tables.error());
  p->classify = std::move(*tables);

  if (auto ok = BuildProfiles(*p, tsc_hz); !ok) return std::unexpected(ok.error());
  return p;
}

std::expected<std::unique_ptr<RuntimePlan>, std::string> ApplyRates(const RuntimePlan& current,
                                                                    const ctl::RatesView& rates,
                                                                    uint64_t tsc_hz) {
  auto p = std::make_unique<RuntimePlan>();
  p->generation = current.generation;
  p->num_classes = current.num_classes;
  p->tenant_id_limit = current.tenant_id_limit;
  p->default_class = current.default_class;
  p->classify = current.classify;
  p->bypass_bytes_per_s = current.bypass_bytes_per_s;
  p->links = current.links;
  p->classes = current.classes;
  p->tenants = current.tenants;
  for (const abi::RateEntry& e : rates.entries) {
    // Validated against the plan in force, but this plan is the one we hold.
    if (e.direction >= abi::kDirections || e.tenant_id >= p->tenant_id_limit)
      return std::unexpected(fmt::format("rates: tenant {} direction {} is not in plan {}",
                                         e.tenant_id, e.direction, p->generation));
    sched::TenantParams& t = p->tenants[e.direction][e.tenant_id];
    t.assured_bps = std::min(e.assured_bps, t.ceiling_bps);
  }
  if (auto ok = BuildProfiles(*p, tsc_hz); !ok) return std::unexpected(ok.error());
  return p;
}

std::expected<std::unique_ptr<PlanPublisher>, std::string> PlanPublisher::Create(
    uint32_t num_workers) {
  const uint32_t threads = std::max<uint32_t>(num_workers, 1);
  const size_t bytes = rte_rcu_qsbr_get_memsize(threads);
  auto* qsbr =
      static_cast<rte_rcu_qsbr*>(rte_zmalloc("shaper_plan_rcu", bytes, RTE_CACHE_LINE_SIZE));
  if (!qsbr)
    return std::unexpected(fmt::format("rte_zmalloc({} bytes) for the plan RCU failed", bytes));
  if (rte_rcu_qsbr_init(qsbr, threads) != 0) {
    rte_free(qsbr);
    return std::unexpected("rte_rcu_qsbr_init failed");
  }
  for (uint32_t w = 0; w < num_workers; ++w) rte_rcu_qsbr_thread_register(qsbr, w);
  return std::unique_ptr<PlanPublisher>(new PlanPublisher(qsbr, num_workers));
}

PlanPublisher::~PlanPublisher() {
  current_.store(nullptr, std::memory_order_release);
  owned_.reset();
  spare_.reset();
  rte_free(qsbr_);
}

void PlanPublisher::Publish(std::unique_ptr<RuntimePlan>&& plan) {
  current_.store(plan.get(), std::memory_order_release);
  std::unique_ptr<RuntimePlan> old = std::move(owned_);
  owned_ = std::move(plan);
  if (!old) return;
  // Two grace periods: see the header.
  rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  // No worker can reach the old plan now. Its classifier, when the new plan
  // does not share it, becomes the spare the next plan's tables are
  // rewritten in (freeing it would cost more than rewriting it).
  if (old->classify && old->classify != owned_->classify && old->classify.use_count() == 1)
    spare_ = std::const_pointer_cast<ClassifyTables>(std::move(old->classify));
  old.reset();
}

void PlanPublisher::Online(uint32_t worker) {
  rte_rcu_qsbr_thread_online(qsbr_, worker);
}
void PlanPublisher::Offline(uint32_t worker) {
  rte_rcu_qsbr_thread_offline(qsbr_, worker);
}
void PlanPublisher::Quiescent(uint32_t worker) {
  rte_rcu_qsbr_quiescent(qsbr_, worker);
}

}  // namespace shaper::dataplane
