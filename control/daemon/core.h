// shaper-control's core: everything the daemon does, minus the event loop.
//
// It owns the policy in force, the tenant ids (stable by name across
// reloads), the connection to the dataplane and the mapped stats segment, the
// demand estimators and allocators (one per direction), and what the
// metrics, `status` and `explain` report. The event loop (daemon.h) calls
// Tick() on its timer and Reload() on inotify, SIGHUP or the admin command;
// tests call them directly with an injected clock and a connector to an
// in-process dataplane, so the whole control logic runs without root, DPDK
// or wall-clock waits.
//
// Connection life: Tick() connects when not connected and the backoff allows
// (100 ms, doubling, capped at 2 s), says hello, maps the stats segment and
// pushes the plan compiled from the policy in force. A transport failure on
// any call, or a heartbeat in the stats segment that stood still for longer
// than heartbeat_stall_ns, drops the connection (shaper_dataplane_up 0); the
// next connection pushes the plan again. The dataplane keeps enforcing its
// last plan meanwhile, so a control outage costs only the dynamic shares.
//
// Allocation (allocation.mode): every interval the per-tenant counters are
// sampled into the demand estimators (both modes: `status` shows measured
// rates either way); in dynamic mode the allocator then shares each
// direction's shape rate (link -> groups -> tenants) and the rates that moved
// beyond the hysteresis are pushed. Static mode pushes nothing after the
// plan, whose assured rates are the guarantees.
//
// An apply-plan without a reply (a call timeout, the socket closed mid-call)
// leaves it unknown whether the dataplane applied the reload's plan. The
// policy was valid (it compiled and passed every check here), so it becomes
// the one in force either way: Reload() keeps it, drops the connection and
// pushes it again on a new one at once (or on the next connection, if the
// dataplane is away). Pushing a plan again is harmless: same ids, so queues
// and counters carry over. Only a definite refusal of it (a reply with a
// result other than ok, and its reason) brings the previous policy back:
// it is pushed on the same connection and the reload counts as failed
// (shaper_policy_valid 0, "policy reload failed"). The hello says which
// generation the dataplane runs, not which plan, so it is only logged
// (found_generation=G on "plan applied").
//
// Tenant ids across a control restart: the dataplane keeps its plan, queues
// and counters while the control is down, so a restarted control must number
// the tenants as the running plan does. With state_path set, the id map is
// loaded in Start() before the policy is numbered, and saved (atomically:
// FILE.tmp, fsync, rename) after every plan the dataplane accepted. A file
// that cannot be read or parsed is logged as a warning and the numbering
// starts from scratch (the dataplane then swaps the queues the new ids name,
// as on its own restart); refusing to start would cost more.
//
// Threads: the event loop calls everything except CollectMetrics(),
// AppendMetricsText() and WriteMetricsText(), which the metrics server's
// threads call at scrape time. One mutex guards the state both sides read;
// it is never taken on the packet path (that is another process).
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "control/alloc/allocator.h"
#include "control/alloc/demand.h"
#include "control/daemon/log.h"
#include "control/dpclient/dataplane_client.h"
#include "control/dpclient/plan_compiler.h"
#include "dataplane/ctl/stats_segment.h"

namespace shaper::control {

struct CoreOptions {
  std::string policy_path;
  uint32_t metrics_top_n = 20;                  // tenants on /metrics (all on /metrics/tenants)
  uint64_t heartbeat_stall_ns = 2'000'000'000;  // dataplane counted as gone after this
  uint64_t backoff_initial_ns = 100'000'000;
  uint64_t backoff_max_ns = 2'000'000'000;
  alloc::DemandConfig demand;
  // Where the tenant id map persists; "" keeps it in memory only (tests).
  std::string state_path;
  // Called under the core's lock each time a policy is put in force: in
  // Start() and after every successful Reload(). AF_XDP mode keeps the
  // steering maps in step here (control/daemon/xdp_sync.h).
  std::function<void(const config::Policy&, const dpclient::TenantIds&)> on_policy_installed;
};

using DataplaneConnector =
    std::function<std::expected<std::unique_ptr<dpclient::DataplaneApi>, std::string>()>;
using MonotonicClock = std::function<uint64_t()>;  // ns, CLOCK_MONOTONIC or a test's
using WallClock = std::function<double()>;         // seconds since the epoch

// The default connector: DataplaneClient on `socket_path`, calls bounded by `timeout`.
DataplaneConnector SocketConnector(
    std::string socket_path, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
uint64_t MonotonicNowNs();
double WallNowSeconds();

// Upper bounds (seconds) of shaper_allocation_duration_seconds.
inline constexpr std::array<double, 12> kAllocationBuckets = {
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 1e-1};

struct ReloadOutcome {
  bool ok = false;
  std::string error;  // diagnostics or the dataplane's reason
  uint32_t tenants = 0;
};

class ControlCore {
 public:
  ControlCore(CoreOptions options, DataplaneConnector connector, MonotonicClock clock,
              WallClock wall_clock, const Logger& log);
  ~ControlCore();
  ControlCore(const ControlCore&) = delete;
  ControlCore& operator=(const ControlCore&) = delete;

  // Loads the policy; on error every diagnostic, one per line.
  std::expected<void, std::string> Start();

  // One step: liveness check, (re)connection when due, sampling and
  // allocation when an interval has passed. Never blocks longer than the
  // connector's timeout.
  void Tick();

  // Re-reads the policy file. An invalid file (or a plan the dataplane
  // refuses) changes nothing in force. `trigger` is logged (inotify, sighup, admin).
  ReloadOutcome Reload(std::string_view trigger);

  // How often the event loop should call Tick().
  uint64_t tick_period_ns() const;
  bool dataplane_up() const;
  uint64_t plan_generation() const;

  // Admin replies.
  nlohmann::json Status() const;
  nlohmann::json Explain(std::string_view tenant) const;

  // Scrape time (any thread): aggregates plus the top-N tenants, or every tenant.
  std::vector<prometheus::MetricFamily> CollectMetrics(bool all_tenants) const;
  // The same, as Prometheus text format 0.0.4 appended to `out`: byte for byte
  // what prometheus::TextSerializer makes of CollectMetrics(all_tenants), at
  // a fraction of the cost (no MetricFamily per tenant series).
  void AppendMetricsText(bool all_tenants, std::string& out) const;
  // The same text in pieces: appended to `out`, which is handed to `flush`
  // and cleared whenever it holds at least `flush_bytes` at the end of a
  // tenant, and handed to `flush` once more at the end (not cleared). A
  // scrape of every tenant then holds about flush_bytes of text at a time
  // instead of all of it (266 MiB at 100k tenants).
  void WriteMetricsText(bool all_tenants, std::string& out, size_t flush_bytes,
                        const std::function<void(std::string&)>& flush) const;

 private:
  struct MetricsSnapshot;  // core_metrics.cc
  // Copies, under the lock, what a scrape needs; the rest runs without it.
  MetricsSnapshot SnapshotMetrics(bool all_tenants) const;

  struct Direction {
    std::vector<alloc::GroupSpec> groups;
    std::vector<alloc::TenantSpec> tenants;  // index = tenant id; holes have ceiling 0
    std::vector<uint64_t> guaranteed_bps;    // index = tenant id
    std::vector<uint64_t> pushed_bps;        // assured rate the dataplane enforces
    alloc::Allocator allocator;
    alloc::Allocation allocation;
    bool has_allocation = false;
    std::optional<alloc::DemandEstimator> demand;
  };

  void InstallPolicyLocked(config::Policy&& policy, const std::vector<std::string>& old_names);
  void ReplacePolicyLocked(config::Policy&& policy);
  void ResetPushedLocked();
  // Returns the dataplane's reason when it refused an unconfirmed reload's
  // policy and the previous one went back in force (FallBackLocked).
  std::optional<std::string> ConnectLocked(uint64_t now_ns);
  void FallBackLocked(const std::string& reason);
  ReloadOutcome ReloadFailedLocked(std::string_view trigger, std::string error);
  ReloadOutcome ReloadSucceededLocked(std::string_view trigger);
  void DisconnectLocked(std::string_view reason);
  void SampleAndAllocateLocked(uint64_t now_ns, bool allocate);
  void PushRatesLocked();
  uint32_t IdLimitLocked() const { return static_cast<uint32_t>(names_.size()); }
  void ObserveAllocationLocked(double seconds);
  void LoadIdsLocked();
  void SaveIdsLocked();

  CoreOptions options_;
  DataplaneConnector connector_;
  MonotonicClock clock_;
  WallClock wall_clock_;
  const Logger& log_;

  mutable std::mutex mu_;
  config::Policy policy_;
  dpclient::TenantIds ids_;
  std::vector<std::string> names_;  // index = tenant id; "" for a hole
  std::array<Direction, config::kDirections> dirs_;

  std::unique_ptr<dpclient::DataplaneApi> api_;
  std::optional<ctl::StatsReader> stats_;
  uint32_t dp_max_tenants_ = UINT32_MAX;
  std::vector<std::string> port_names_;  // from the hello, for the port label
  uint64_t generation_ = 0;              // plan in force at the dataplane; 0 = none pushed

  // Set while policy_ comes from a reload whose apply-plan went unanswered
  // and no connection has confirmed it yet: what the dataplane last accepted,
  // to fall back to if it refuses policy_ outright.
  struct Unconfirmed {
    config::Policy previous;
    dpclient::TenantIds previous_ids;
    std::string trigger;  // of the latest reload, for its failure log
  };
  std::optional<Unconfirmed> unconfirmed_;
  uint64_t next_connect_ns_ = 0;
  uint64_t backoff_ns_ = 0;
  uint32_t connect_failures_ = 0;
  uint64_t last_heartbeat_ = 0;
  uint64_t heartbeat_seen_ns_ = 0;
  uint64_t last_sample_ns_ = 0;
  bool sampled_ = false;

  // Metrics state.
  bool policy_valid_ = false;
  uint64_t reloads_success_ = 0;
  uint64_t reloads_error_ = 0;
  double last_reload_seconds_ = 0;
  std::array<uint64_t, kAllocationBuckets.size()> alloc_bucket_counts_{};
  uint64_t alloc_count_ = 0;
  double alloc_sum_seconds_ = 0;
};

}  // namespace shaper::control
