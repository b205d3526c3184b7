// The plan as the packet path uses it, and how it reaches the workers.
//
// A RuntimePlan is built on the main lcore from a validated PlanView (it
// allocates: LPM tables, one sched::Profile per direction) and is read-only
// from then on. PlanPublisher hands it to the workers with RCU
// (rte_rcu_qsbr): publishing is one atomic pointer store, the workers never
// lock, and the old plan is freed only once every worker has provably
// stopped using it. The worker notices a new plan by its pointer and calls
// Scheduler::SetProfile() between bursts; queues and counters live in the
// scheduler and the stats segment, not in the plan, so they survive.
//
// Why the publisher waits for two grace periods: a worker's scheduler keeps
// the old Profile pointer beyond the loop iteration that read the old plan.
// After the first grace period every worker has begun an iteration that sees
// the new plan (and swaps its profile at the top of it); after the second,
// every such iteration has ended, so nobody holds the old Profile any more.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/abi/plan.h"
#include "dataplane/classify.h"
#include "dataplane/ctl/plan_validate.h"
#include "dataplane/sched/scheduler.h"

struct rte_rcu_qsbr;

namespace shaper::dataplane {

struct RuntimePlan {
  uint64_t generation = 0;
  uint32_t num_classes = 0;
  uint32_t tenant_id_limit = 0;  // profiles cover ids [0, tenant_id_limit)
  uint8_t default_class = 0;
  std::shared_ptr<const ClassifyTables> classify;  // shared with plans made by rate updates
  std::array<std::unique_ptr<sched::Profile>, abi::kDirections> profiles;
  // Budget of the non-IP bypass (ARP, LLDP, ...) per direction: 1% of the
  // shape rate, so control-plane frames go first but can never crowd out
  // tenants.
  std::array<uint64_t, abi::kDirections> bypass_bytes_per_s{};

  // What the profiles were built from, kept to rebuild them on a rate update.
  std::array<sched::LinkParams, abi::kDirections> links{};
  std::vector<sched::ClassParams> classes;  // padded to the workers' class count
  std::array<std::vector<sched::TenantParams>, abi::kDirections> tenants;
};

class PlanPublisher;

inline constexpr uint32_t kBypassShareDivisor = 100;  // 1% of the link

// Builds everything from a validated plan (main lcore; allocates). The
// profiles have `sched_classes` classes, the count the workers' schedulers
// were built for (--max-classes, the stats segment's num_classes): the plan's
// own, padded. A plan with more classes is refused (validation already does,
// with the limit set to the same number). With a
// publisher, the classifier of the plan in force is kept when the prefixes
// (and DSCP map) did not change, and otherwise the publisher's spare
// classifier is rewritten with the difference (ClassifyTables::Update).
std::expected<std::unique_ptr<RuntimePlan>, std::string> BuildRuntimePlan(
    const ctl::PlanView& plan, uint64_t generation, uint64_t tsc_hz, uint32_t sched_classes,
    PlanPublisher* publisher = nullptr);

// A copy of `current` with the assured rates of `rates` applied (the LPM
// tables are shared, the profiles rebuilt).
std::expected<std::unique_ptr<RuntimePlan>, std::string> ApplyRates(const RuntimePlan& current,
                                                                    const ctl::RatesView& rates,
                                                                    uint64_t tsc_hz);

class PlanPublisher {
 public:
  // `num_workers` reader threads, ids 0..num_workers-1.
  static std::expected<std::unique_ptr<PlanPublisher>, std::string> Create(uint32_t num_workers);
  ~PlanPublisher();
  PlanPublisher(const PlanPublisher&) = delete;
  PlanPublisher& operator=(const PlanPublisher&) = delete;

  // Main lcore: makes `plan` current, waits until no worker can still use the
  // previous one, frees it. Blocks for about two worker loop iterations.
  void Publish(std::unique_ptr<RuntimePlan>&& plan);
  const RuntimePlan* current() const { return current_.load(std::memory_order_acquire); }
  // Main lcore: the classifier of a retired plan, out of every worker's
  // reach, for BuildRuntimePlan to rewrite (empty when there is none).
  std::shared_ptr<ClassifyTables>* spare_slot() { return &spare_; }

  // Worker side.
  void Online(uint32_t worker);
  void Offline(uint32_t worker);
  const RuntimePlan* Acquire() const { return current_.load(std::memory_order_acquire); }
  void Quiescent(uint32_t worker);

 private:
  PlanPublisher(rte_rcu_qsbr* qsbr, uint32_t num_workers)
      : qsbr_(qsbr), num_workers_(num_workers) {}
  rte_rcu_qsbr* qsbr_;
  uint32_t num_workers_;
  std::atomic<const RuntimePlan*> current_{nullptr};
  std::unique_ptr<RuntimePlan> owned_;
  std::shared_ptr<ClassifyTables> spare_;
};

}  // namespace shaper::dataplane
