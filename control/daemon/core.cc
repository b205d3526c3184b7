// ControlCore: connection, allocation loop and reload (core.h explains the
// model). Metrics live in core_metrics.cc, admin replies in core_admin.cc.
#include "control/daemon/core.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include <fmt/format.h>

#include "config/loader.h"

namespace shaper::control {

DataplaneConnector SocketConnector(std::string socket_path, std::chrono::milliseconds timeout) {
  return [path = std::move(socket_path),
          timeout]() -> std::expected<std::unique_ptr<dpclient::DataplaneApi>, std::string> {
    auto client = dpclient::DataplaneClient::Connect(path, timeout);
    if (!client) return std::unexpected(client.error());
    return std::unique_ptr<dpclient::DataplaneApi>(std::move(*client));
  };
}

uint64_t MonotonicNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

double WallNowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ControlCore::ControlCore(CoreOptions options, DataplaneConnector connector, MonotonicClock clock,
                         WallClock wall_clock, const Logger& log)
    : options_(std::move(options)),
      connector_(std::move(connector)),
      clock_(std::move(clock)),
      wall_clock_(std::move(wall_clock)),
      log_(log) {}

ControlCore::~ControlCore() = default;

std::expected<void, std::string> ControlCore::Start() {
  auto policy = config::LoadPolicyFile(options_.policy_path);
  if (!policy) return std::unexpected(config::FormatDiagnostics(policy.error()));
  std::lock_guard lock(mu_);
  LoadIdsLocked();  // before numbering: the running dataplane's ids come first
  ids_.Update(*policy);
  InstallPolicyLocked(std::move(*policy), {});
  if (options_.on_policy_installed) options_.on_policy_installed(policy_, ids_);
  policy_valid_ = true;
  last_reload_seconds_ = wall_clock_();
  log_.Info("policy loaded", {{"file", options_.policy_path},
                              {"tenants", std::to_string(policy_.tenants.size())},
                              {"mode", policy_.allocation.mode == config::Allocation::Mode::kDynamic
                                           ? "dynamic"
                                           : "static"}});
  return {};
}

namespace {

// By member name: the allocator orders its fields for cache size, not for us.
alloc::TenantSpec TenantSpecFor(uint32_t group, const config::DirectionRates& r) {
  alloc::TenantSpec spec;
  spec.group = group;
  spec.guaranteed_bps = r.guaranteed_bps;
  spec.ceiling_bps = r.ceiling_bps;
  spec.weight = r.weight;
  spec.demand_bps = 0;
  return spec;
}

}  // namespace

// Rebuilds the per-direction problems for `policy` under the ids in ids_.
// Tenants whose id now names someone else (or no one) lose their demand
// history: it was another tenant's.
void ControlCore::InstallPolicyLocked(config::Policy&& policy,
                                      const std::vector<std::string>& old_names) {
  policy_ = std::move(policy);
  const uint32_t limit = ids_.id_limit();
  names_.assign(limit, std::string());
  names_[abi::kDefaultTenantId] = std::string(dpclient::kDefaultTenantName);
  for (const config::Tenant& t : policy_.tenants) names_[*ids_.Find(t.name)] = t.name;

  for (int d = 0; d < config::kDirections; ++d) {
    Direction& dir = dirs_[d];
    dir.groups.clear();
    for (const config::Group& g : policy_.groups) {
      const config::DirectionRates& r = g.rates[d];
      alloc::GroupSpec& spec = dir.groups.emplace_back();
      spec.parent = g.parent;
      spec.guaranteed_bps = r.guaranteed_bps;
      spec.ceiling_bps = r.ceiling_bps;
      spec.weight = r.weight;
    }
    // Holes (ids of removed tenants) can take nothing: ceiling 0.
    alloc::TenantSpec hole;
    hole.ceiling_bps = 0;
    dir.tenants.assign(limit, hole);
    dir.tenants[abi::kDefaultTenantId] = TenantSpecFor(alloc::kNoGroup, policy_.default_tenant[d]);
    for (const config::Tenant& t : policy_.tenants) {
      dir.tenants[*ids_.Find(t.name)] = TenantSpecFor(t.group, t.rates[d]);
    }
    dir.guaranteed_bps.assign(limit, 0);
    for (uint32_t id = 0; id < limit; ++id) dir.guaranteed_bps[id] = dir.tenants[id].guaranteed_bps;
    dir.has_allocation = false;
    if (!dir.demand) {
      auto est = alloc::DemandEstimator::Create(options_.demand);
      if (est) dir.demand.emplace(std::move(*est));
    }
    if (dir.demand) {
      for (uint32_t id = 0; id < limit && id < old_names.size(); ++id) {
        if (old_names[id] != names_[id] && id < dir.demand->size()) dir.demand->Reset(id);
      }
    }
  }
}

// `policy` in force in place of policy_, under the ids in ids_ (already
// updated for it); what is pushed next is its plan.
void ControlCore::ReplacePolicyLocked(config::Policy&& policy) {
  const std::vector<std::string> old_names = names_;
  InstallPolicyLocked(std::move(policy), old_names);
  if (options_.on_policy_installed) options_.on_policy_installed(policy_, ids_);
  ResetPushedLocked();
}

// After a plan push the dataplane's assured rates are the guarantees.
void ControlCore::ResetPushedLocked() {
  for (Direction& dir : dirs_) dir.pushed_bps = dir.guaranteed_bps;
}

uint64_t ControlCore::tick_period_ns() const {
  std::lock_guard lock(mu_);
  // Fine enough for the reconnect backoff even when the interval is long.
  return std::min<uint64_t>(policy_.allocation.interval_ns, options_.backoff_initial_ns);
}

bool ControlCore::dataplane_up() const {
  std::lock_guard lock(mu_);
  return api_ != nullptr;
}

uint64_t ControlCore::plan_generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

void ControlCore::Tick() {
  const uint64_t now_ns = clock_();
  std::lock_guard lock(mu_);
  if (api_ && stats_) {
    const uint64_t hb = stats_->heartbeat();
    if (hb != last_heartbeat_) {
      last_heartbeat_ = hb;
      heartbeat_seen_ns_ = now_ns;
    } else if (now_ns - heartbeat_seen_ns_ > options_.heartbeat_stall_ns) {
      DisconnectLocked(fmt::format("heartbeat stalled at {} for {} ms", hb,
                                   (now_ns - heartbeat_seen_ns_) / 1'000'000));
    }
  }
  if (!api_ && now_ns >= next_connect_ns_) ConnectLocked(now_ns);
  if (api_ && stats_) {
    const uint64_t interval_ns = policy_.allocation.interval_ns;
    // Half a timer period of slack, so timer jitter never skips an interval.
    const uint64_t slack_ns = std::min(interval_ns, options_.backoff_initial_ns) / 2;
    if (now_ns - last_sample_ns_ + slack_ns >= interval_ns) {
      SampleAndAllocateLocked(now_ns, /*allocate=*/true);
    }
  }
}

std::optional<std::string> ControlCore::ConnectLocked(uint64_t now_ns) {
  std::optional<std::string> refused;
  auto fail = [&](std::string_view what, const std::string& error) -> std::optional<std::string> {
    ++connect_failures_;
    backoff_ns_ = backoff_ns_ == 0 ? options_.backoff_initial_ns
                                   : std::min(backoff_ns_ * 2, options_.backoff_max_ns);
    next_connect_ns_ = now_ns + backoff_ns_;
    // The first failure in a row is worth a warning; the retries are noise.
    log_.Log(connect_failures_ == 1 ? LogLevel::kWarn : LogLevel::kDebug, "dataplane connect failed",
             {{"step", std::string(what)},
              {"error", error},
              {"retry_ms", std::to_string(backoff_ns_ / 1'000'000)}});
    api_.reset();
    stats_.reset();
    return refused;
  };
  auto api = connector_();
  if (!api) return fail("connect", api.error());
  auto hello = (*api)->Hello("shaper-control");
  if (!hello) return fail("hello", hello.error());
  auto reader = ctl::StatsReader::Map(hello->stats_fd.get());
  if (!reader) return fail("stats segment", reader.error());
  auto plan = dpclient::CompilePlan(policy_, ids_, {hello->max_tenants});
  if (!plan) return fail("compile plan", plan.error());
  auto reply = (*api)->ApplyPlan(*plan);
  if (!reply) return fail("apply plan", reply.error());
  if (!reply->ok() && unconfirmed_) {
    // The unconfirmed reload's policy, refused outright: the previous one
    // goes back, on this connection.
    refused = reply->ToString();
    FallBackLocked(*refused);
    plan = dpclient::CompilePlan(policy_, ids_, {hello->max_tenants});
    if (!plan) return fail("compile plan", plan.error());
    reply = (*api)->ApplyPlan(*plan);
    if (!reply) return fail("apply plan", reply.error());
  }
  if (!reply->ok()) return fail("apply plan", reply->ToString());

  const bool unconfirmed = unconfirmed_.has_value();
  unconfirmed_.reset();
  api_ = std::move(*api);
  ids_.Settle();  // the dataplane now holds exactly these ids
  SaveIdsLocked();
  stats_.emplace(std::move(*reader));
  dp_max_tenants_ = hello->max_tenants;
  port_names_ = hello->port_names;
  generation_ = reply->generation;
  connect_failures_ = 0;
  backoff_ns_ = 0;
  last_heartbeat_ = stats_->heartbeat();
  heartbeat_seen_ns_ = now_ns;
  // A new segment (maybe a restarted dataplane): the old baselines mean nothing.
  for (Direction& dir : dirs_) {
    auto est = alloc::DemandEstimator::Create(options_.demand);
    if (est) dir.demand.emplace(std::move(*est));
    dir.has_allocation = false;
  }
  ResetPushedLocked();
  // The first sample only sets the baselines; it is taken at once. No
  // allocation yet: with no demand known it would take every tenant's
  // assured rate from its guarantee to 0 for one interval.
  last_sample_ns_ = now_ns;
  sampled_ = false;
  SampleAndAllocateLocked(now_ns, /*allocate=*/false);
  // found_generation: what the dataplane ran before this push. After an
  // unanswered reload, one above the generation_before its warning logged
  // means the dataplane had most likely applied the reload's plan (the hello
  // names no plan, so this is a hint for the operator, not a decision).
  const std::string_view pushed = unconfirmed ? "unanswered reload, pushed again"
                                  : refused   ? "previous, the reload's was refused"
                                              : "in force";
  log_.Info("plan applied", {{"generation", std::to_string(generation_)},
                             {"tenants", std::to_string(policy_.tenants.size())},
                             {"dataplane", hello->dataplane_version},
                             {"max_tenants", std::to_string(hello->max_tenants)},
                             {"found_generation", std::to_string(hello->plan_generation)},
                             {"policy", std::string(pushed)}});
  return refused;
}

void ControlCore::DisconnectLocked(std::string_view reason) {
  if (!api_) return;
  log_.Warn("dataplane lost", {{"reason", std::string(reason)}});
  api_.reset();
  stats_.reset();
  generation_ = 0;
  next_connect_ns_ = 0;  // try again at once, then back off
}

void ControlCore::SampleAndAllocateLocked(uint64_t now_ns, bool allocate) {
  const uint32_t limit = IdLimitLocked();
  const uint64_t interval_ns = sampled_ ? now_ns - last_sample_ns_ : 0;
  std::vector<alloc::DemandCounters> counters(limit);
  for (uint32_t d = 0; d < config::kDirections; ++d) {
    Direction& dir = dirs_[d];
    for (uint32_t id = 0; id < limit; ++id) {
      const ctl::TenantTotals t = stats_->SumTenant(id, d);
      alloc::DemandCounters& c = counters[id];
      c.arrival_bytes = t.arrival_bytes;
      c.tx_bytes = t.tx_bytes();
      c.drop_packets = t.drops();
      c.drop_bytes = 0;  // the stats segment counts dropped packets only
      c.queued_bytes = 0;
      for (uint64_t q : t.queued_bytes) c.queued_bytes += q;
    }
    if (!dir.demand) continue;
    // The estimator treats a zero interval as "no information": the very
    // first sample must still set the baselines, so give it 1 ns.
    dir.demand->Update(counters, sampled_ ? interval_ns : 1);
  }
  sampled_ = true;
  last_sample_ns_ = now_ns;
  if (!allocate || policy_.allocation.mode != config::Allocation::Mode::kDynamic) return;

  const auto started = std::chrono::steady_clock::now();
  for (uint32_t d = 0; d < config::kDirections; ++d) {
    Direction& dir = dirs_[d];
    for (uint32_t id = 0; id < limit; ++id) {
      dir.tenants[id].demand_bps = dir.demand ? dir.demand->demand_bps(id) : 0;
    }
    const alloc::Problem problem{policy_.link.shape_rate_bps, dir.groups, dir.tenants};
    auto ok = dir.allocator.Allocate(problem, dir.allocation);
    dir.has_allocation = ok.has_value();
    if (!ok) log_.Error("allocation failed", {{"direction", config::DirectionName(
                                                                static_cast<config::Direction>(d))},
                                              {"error", ok.error()}});
  }
  ObserveAllocationLocked(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  PushRatesLocked();
}

void ControlCore::ObserveAllocationLocked(double seconds) {
  ++alloc_count_;
  alloc_sum_seconds_ += seconds;
  for (size_t b = 0; b < kAllocationBuckets.size(); ++b) {
    if (seconds <= kAllocationBuckets[b]) ++alloc_bucket_counts_[b];
  }
}

void ControlCore::PushRatesLocked() {
  const alloc::Hysteresis hysteresis(policy_.allocation.hysteresis_ppm);
  std::vector<abi::RateEntry> entries;
  std::vector<uint32_t> changed;
  std::vector<uint64_t> assured;
  for (uint32_t d = 0; d < config::kDirections; ++d) {
    Direction& dir = dirs_[d];
    if (!dir.has_allocation) continue;
    // The dataplane's assured rate never drops below the guarantee: an idle
    // tenant allocated 0 must get its guarantee the moment it sends again
    // (promise 1), not one allocation interval later. The sum may then
    // exceed the link while some tenants are idle; the link bucket bounds
    // what leaves and the next tick lowers the others' allocations.
    assured.resize(dir.allocation.rate_bps.size());
    for (size_t id = 0; id < assured.size(); ++id) {
      const uint64_t floor_bps = id < dir.guaranteed_bps.size() ? dir.guaranteed_bps[id] : 0;
      assured[id] = std::max(dir.allocation.rate_bps[id], floor_bps);
    }
    changed.clear();
    hysteresis.Select(dir.pushed_bps, assured, dir.guaranteed_bps, changed);
    for (uint32_t id : changed) {
      if (names_[id].empty()) continue;  // a hole: not in the plan
      abi::RateEntry e{};
      e.tenant_id = id;
      e.direction = static_cast<uint8_t>(d);
      e.assured_bps = assured[id];
      entries.push_back(e);
    }
  }
  if (entries.empty() || generation_ == 0) return;
  const auto blob = dpclient::EncodeRates(generation_, entries);
  auto reply = api_->UpdateRates(blob);
  if (!reply) return DisconnectLocked(fmt::format("update-rates: {}", reply.error()));
  if (!reply->ok()) {
    log_.Error("rates refused", {{"reply", reply->ToString()},
                                 {"entries", std::to_string(entries.size())}});
    return;
  }
  for (const abi::RateEntry& e : entries) dirs_[e.direction].pushed_bps[e.tenant_id] = e.assured_bps;
  log_.Debug("rates pushed", {{"generation", std::to_string(generation_)},
                              {"entries", std::to_string(entries.size())}});
}

ReloadOutcome ControlCore::ReloadFailedLocked(std::string_view trigger, std::string error) {
  // The file on disk is not what is in force: say so until a good reload.
  policy_valid_ = false;
  ++reloads_error_;
  log_.Error("policy reload failed",
             {{"trigger", std::string(trigger)}, {"file", options_.policy_path}, {"error", error}});
  ReloadOutcome out;
  out.error = std::move(error);
  return out;
}

ReloadOutcome ControlCore::ReloadSucceededLocked(std::string_view trigger) {
  policy_valid_ = true;
  ++reloads_success_;
  last_reload_seconds_ = wall_clock_();
  ReloadOutcome out;
  out.ok = true;
  out.tenants = static_cast<uint32_t>(policy_.tenants.size());
  log_.Info("policy reloaded", {{"trigger", std::string(trigger)},
                                {"tenants", std::to_string(out.tenants)},
                                {"generation", std::to_string(generation_)},
                                {"pushed", api_ ? "true" : "false"}});
  return out;
}

// The dataplane refused the unconfirmed reload's policy outright: the policy
// and ids it last accepted go back in force, and the reload counts as failed.
void ControlCore::FallBackLocked(const std::string& reason) {
  Unconfirmed back = std::move(*unconfirmed_);
  unconfirmed_.reset();
  ids_ = std::move(back.previous_ids);
  ReplacePolicyLocked(std::move(back.previous));
  ReloadFailedLocked(back.trigger, reason);
}

ReloadOutcome ControlCore::Reload(std::string_view trigger) {
  auto policy = config::LoadPolicyFile(options_.policy_path);
  std::lock_guard lock(mu_);
  if (!policy) return ReloadFailedLocked(trigger, config::FormatDiagnostics(policy.error()));

  const dpclient::TenantIds saved_ids = ids_;
  ids_.Update(*policy);
  if (api_) {
    auto plan = dpclient::CompilePlan(*policy, ids_, {dp_max_tenants_});
    if (!plan) {
      ids_ = saved_ids;
      return ReloadFailedLocked(trigger, plan.error());
    }
    auto reply = api_->ApplyPlan(*plan);
    if (reply && !reply->ok()) {
      // Refused, with a reason: the running plan stays in force.
      ids_ = saved_ids;
      return ReloadFailedLocked(trigger, reply->ToString());
    }
    if (!reply) {
      // No reply: the dataplane may run either plan. This one is valid, so
      // make it the one in force either way: push it again on a new
      // connection, now if the dataplane answers; ConnectLocked falls back
      // to the previous policy only if the dataplane refuses it outright.
      log_.Warn("apply-plan unanswered; pushing the reloaded policy again",
                {{"trigger", std::string(trigger)},
                 {"generation_before", std::to_string(generation_)},
                 {"error", reply.error()}});
      unconfirmed_.emplace(Unconfirmed{std::move(policy_), saved_ids, std::string(trigger)});
      DisconnectLocked(fmt::format("apply-plan: {}", reply.error()));
      ReplacePolicyLocked(std::move(*policy));
      if (auto refused = ConnectLocked(clock_()); refused) {
        ReloadOutcome out;  // FallBackLocked counted and logged the failure
        out.error = std::move(*refused);
        return out;
      }
      // Confirmed (pushed again), or the dataplane is away and the next
      // connection pushes it: like a reload made while it is away.
      return ReloadSucceededLocked(trigger);
    }
    generation_ = reply->generation;
    ids_.Settle();
    SaveIdsLocked();
  } else if (auto plan = dpclient::CompilePlan(*policy, ids_); !plan) {
    ids_ = saved_ids;
    return ReloadFailedLocked(trigger, plan.error());
  } else if (unconfirmed_) {
    // Still unconfirmed: the fallback stays what the dataplane last accepted.
    unconfirmed_->trigger = std::string(trigger);
  }
  ReplacePolicyLocked(std::move(*policy));
  return ReloadSucceededLocked(trigger);
}

namespace {

// Creates the missing directories of `dir`, each 0755 (whatever the umask).
std::expected<void, std::string> MakeDirs(const std::filesystem::path& dir) {
  std::filesystem::path at;
  for (const auto& part : dir) {
    at /= part;
    if (mkdir(at.c_str(), 0755) == 0) {
      chmod(at.c_str(), 0755);  // mkdir's mode went through the umask
    } else if (errno != EEXIST) {
      return std::unexpected(fmt::format("mkdir '{}': {}", at.string(), std::strerror(errno)));
    }
  }
  return {};
}

std::expected<void, std::string> WriteFileAtomically(const std::string& path,
                                                     const std::string& text) {
  const std::filesystem::path target(path);
  if (target.has_parent_path()) {
    if (auto made = MakeDirs(target.parent_path()); !made) return made;
  }
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(fmt::format("open '{}': {}", tmp, std::strerror(errno)));
  auto fail = [&](std::string_view what) {
    const std::string error = fmt::format("{} '{}': {}", what, tmp, std::strerror(errno));
    close(fd);
    unlink(tmp.c_str());
    return std::unexpected(error);
  };
  // O_TRUNC keeps the mode of a leftover tmp file: set it.
  if (fchmod(fd, 0600) != 0) return fail("fchmod");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("fsync");
  if (close(fd) != 0) {
    const std::string error = fmt::format("close '{}': {}", tmp, std::strerror(errno));
    unlink(tmp.c_str());
    return std::unexpected(error);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string error =
        fmt::format("rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
    unlink(tmp.c_str());
    return std::unexpected(error);
  }
  return {};
}

}  // namespace

void ControlCore::LoadIdsLocked() {
  if (options_.state_path.empty()) return;
  std::error_code ec;
  if (!std::filesystem::exists(options_.state_path, ec) && !ec) {
    // First start since boot: nothing runs that could hold other ids.
    log_.Info("no saved tenant ids; numbering from 1", {{"state", options_.state_path}});
    return;
  }
  std::ifstream in(options_.state_path, std::ios::binary);
  if (!in) {
    log_.Warn("cannot read the saved tenant ids; numbering from 1",
              {{"state", options_.state_path},
               {"error", ec ? ec.message() : std::string(std::strerror(errno))}});
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto ids = dpclient::ParseTenantIds(text.str());
  if (!ids) {
    log_.Warn("saved tenant ids are malformed; numbering from 1",
              {{"state", options_.state_path}, {"error", ids.error()}});
    return;
  }
  ids_ = std::move(*ids);
  log_.Info("tenant ids restored", {{"state", options_.state_path},
                                    {"tenants", std::to_string(ids_.size())},
                                    {"id_limit", std::to_string(ids_.id_limit())}});
}

// Called only once the dataplane accepted a plan numbered by ids_: the file
// always describes the plan that runs. A failure is logged, not fatal: the
// control keeps working and only a restart before the next save is exposed.
void ControlCore::SaveIdsLocked() {
  if (options_.state_path.empty()) return;
  auto saved = WriteFileAtomically(options_.state_path, dpclient::FormatTenantIds(ids_.state()));
  if (!saved) {
    log_.Error("cannot save the tenant ids", {{"state", options_.state_path},
                                              {"error", saved.error()}});
  }
}

}  // namespace shaper::control
