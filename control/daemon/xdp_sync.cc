#include "control/daemon/xdp_sync.h"

#include <fmt/format.h>

namespace shaper::control {

std::vector<bpf::ManagedPrefix> ManagedPrefixes(const config::Policy& policy,
                                                const dpclient::TenantIds& ids) {
  std::vector<bpf::ManagedPrefix> out;
  for (const config::Tenant& t : policy.tenants) {
    // Every tenant of a policy in force has an id (TenantIds::Update ran on it).
    const uint32_t id = ids.Find(t.name).value_or(0);
    for (const config::Prefix& p : t.prefixes) out.push_back({p, id});
  }
  return out;
}

std::expected<std::unique_ptr<XdpMapSync>, std::string> XdpMapSync::Open(const std::string& pin_dir,
                                                                         const Logger& log) {
  if (pin_dir.empty()) return std::unexpected(std::string("the pin directory is empty"));
  bpf::LoadOptions options;
  options.pin_dir = pin_dir;
  // Loading the object (never attached here) is how libbpf creates the maps
  // exactly as the dataplane's PMD expects them, or reuses the pinned ones.
  auto prog = bpf::SteerProgram::Load(options);
  if (!prog) return std::unexpected(prog.error().message);
  log.Info("xdp steering maps opened", {{"pin_dir", pin_dir}});
  return std::unique_ptr<XdpMapSync>(new XdpMapSync(std::move(*prog), pin_dir, log));
}

std::expected<bpf::SyncStats, std::string> XdpMapSync::Sync(const config::Policy& policy,
                                                            const dpclient::TenantIds& ids) {
  const std::vector<bpf::ManagedPrefix> wanted = ManagedPrefixes(policy, ids);
  auto stats = prog_->SyncPrefixes(wanted);
  if (!stats) {
    last_error_ = fmt::format("xdp steering maps under {}: {}", pin_dir_, stats.error().message);
    log_.Error("xdp steering maps not in step with the policy", {{"error", last_error_}});
    return std::unexpected(last_error_);
  }
  last_error_.clear();
  log_.Info("xdp steering maps synced", {{"pin_dir", pin_dir_},
                                         {"prefixes", std::to_string(wanted.size())},
                                         {"added", std::to_string(stats->added)},
                                         {"updated", std::to_string(stats->updated)},
                                         {"removed", std::to_string(stats->removed)},
                                         {"unchanged", std::to_string(stats->unchanged)}});
  return *stats;
}

}  // namespace shaper::control
