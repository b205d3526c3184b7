// Demand estimation: how many bits/s each tenant would use, per direction,
// from the dataplane's counters sampled once per control tick.
//
// The allocator shares the spare by demand, so demand must answer "how much
// would this tenant send if we let it", not "how much did it send". The two
// differ for a throttled tenant: a TCP sender held at rate R offers about R,
// so its arrival rate alone would pin it at R for ever, however idle the link.
// Hence, per tenant and tick of length dt:
//
//   arrival = 8 * d(arrival_bytes) / dt       offered load (before any drop)
//   tx      = 8 * d(tx_bytes) / dt
//   base    = max(arrival, tx)                a tenant that sent X wanted X,
//                                             even if X came from an old backlog
//   backlog = 8 * queued_bytes / backlog_drain      if queued_bytes > slack
//           (the rate that empties today's queue within backlog_drain while
//           keeping up with arrivals: a standing queue is demand not yet served)
//   probe   = base * probe_ppm / 1e6           if constrained, else 0
//   constrained = drops this tick, or the queue grew by more than slack
//           (the tenant is offered less than it offers; the probe lets its
//           allocation climb geometrically, tick after tick, until it stops
//           being constrained or meets its ceiling, like a slow start)
//   raw     = base + backlog + probe           (saturating)
//
// Smoothing is asymmetric:
//   raw >= demand:  demand = raw                           (rise at once)
//   raw <  demand:  demand -= ceil((demand - raw) * a),  a = 1 - exp(-dt / tau)
// Rising at once because a tenant that starts must get its share on the next
// tick, not after a time constant of being starved (the dataplane already
// lends it spare capacity meanwhile, but its assured rate is what protects it
// from others). Decaying slowly because demand is bursty: a tenant pausing for
// one tick (a TCP window stall, an application think time) should find its
// share still there; the cost is that capacity it no longer uses stays
// assured to it for about tau, and the dataplane lends unused assured rate to
// backlogged tenants anyway, so little is wasted. The exponential factor uses
// the measured dt, so a late tick decays by the time that actually passed;
// rounding the decrement up makes demand reach the raw value (and 0) in a
// finite number of ticks instead of stalling a few bits/s above it.
//
// Counters: the cumulative ones (arrival, tx, drops) are differenced; the
// queue is a gauge. The first sample of a tenant only sets its baseline
// (demand stays 0: no rate can be known from one sample), and a counter going
// backwards (the dataplane restarted) re-baselines and holds the estimate for
// that tick rather than inventing a huge or negative rate.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

namespace shaper::control::alloc {

// One tenant, one direction, summed over lcores.
struct DemandCounters {
  uint64_t arrival_bytes = 0;  // cumulative: every byte that arrived, dropped or not
  uint64_t tx_bytes = 0;       // cumulative
  uint64_t drop_bytes = 0;     // cumulative, all reasons
  uint64_t drop_packets = 0;   // cumulative, all reasons
  uint64_t queued_bytes = 0;   // gauge: bytes queued at the moment of sampling
};

struct DemandConfig {
  uint64_t decay_time_constant_ns = 1'000'000'000;  // tau of the falling EWMA, > 0
  uint32_t probe_ppm = 250'000;                     // boost of a constrained tenant
  uint64_t backlog_drain_ns = 100'000'000;          // drain a standing queue within this, > 0
  uint64_t queue_slack_bytes = 3'000;               // queue changes below this are noise
};

// One tenant's estimate after the last tick (also what metrics export).
struct TenantDemand {
  uint64_t arrival_bps = 0;
  uint64_t tx_bps = 0;
  uint64_t raw_bps = 0;     // this tick's unsmoothed estimate
  uint64_t demand_bps = 0;  // smoothed: what the allocator uses
  bool constrained = false;
};

class DemandEstimator {
 public:
  // Fails naming the field and the value when the configuration is unusable.
  static std::expected<DemandEstimator, std::string> Create(const DemandConfig& config);

  // One tick: counters[i] is tenant i's sample, interval_ns the time since the
  // previous Update. Tenants beyond the previous size start without a
  // baseline; a smaller size forgets the tenants past it. A zero interval
  // carries no rate information and changes nothing.
  void Update(std::span<const DemandCounters> counters, uint64_t interval_ns);

  // Forgets a tenant (its id now names another tenant): no baseline, demand 0.
  void Reset(uint32_t tenant);

  size_t size() const { return states_.size(); }
  const TenantDemand& tenant(uint32_t tenant) const { return states_[tenant].estimate; }
  uint64_t demand_bps(uint32_t tenant) const { return states_[tenant].estimate.demand_bps; }

 private:
  explicit DemandEstimator(const DemandConfig& config) : config_(config) {}

  struct State {
    DemandCounters last;
    TenantDemand estimate;
    bool has_baseline = false;
  };

  DemandConfig config_;
  std::vector<State> states_;
};

}  // namespace shaper::control::alloc
