// AF_XDP mode: keeps the XDP steering program's pinned maps (bpf/steer.h)
// in step with the policy in force, so exactly the tenants' prefixes are
// steered into the shaper and everything else stays with the kernel.
//
// shaper-control --xdp-maps DIR opens the maps pinned under DIR, or creates
// and pins them when none are there yet: the dataplane's net_af_xdp ports
// load bpf/steer.bpf.o themselves (devarg xdp_prog=) and reuse the same
// pins, so control and dataplane may start in either order. The policy is
// synced at start and after every reload that put a new policy in force,
// through bpf::SyncPrefixes, the idempotent reconciler: it adds before it
// removes, so a prefix that stays managed is never handed to the kernel, and
// a restarted control with an unchanged policy writes nothing. Without
// --xdp-maps nothing here runs and shaper-control needs no BPF at all
// (PCI and af_packet modes).
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "bpf/steer_loader.h"
#include "config/model.h"
#include "control/daemon/log.h"
#include "control/dpclient/plan_compiler.h"

namespace shaper::control {

// What the maps must hold for `policy`: every prefix of every tenant, with
// the tenant's id (the same one the dataplane's plan uses). A tenant's VLAN
// narrows the dataplane's match, not the steering: its prefixes are steered
// whatever the tag, and the dataplane classifies exactly.
std::vector<bpf::ManagedPrefix> ManagedPrefixes(const config::Policy& policy,
                                                const dpclient::TenantIds& ids);

class XdpMapSync {
 public:
  // Checks what BPF needs (capability, bpffs at `pin_dir`, kernel support)
  // and opens or creates the pinned maps; the error says what is missing.
  static std::expected<std::unique_ptr<XdpMapSync>, std::string> Open(const std::string& pin_dir,
                                                                      const Logger& log);

  // Reconciles the prefix maps with `policy`. Remembers the outcome: a
  // failure is logged and retried by the next call (the reconciler starts
  // from what the maps hold, whatever happened before).
  std::expected<bpf::SyncStats, std::string> Sync(const config::Policy& policy,
                                                  const dpclient::TenantIds& ids);
  // The error of the last Sync(), "" when it succeeded (or none ran yet).
  const std::string& last_error() const { return last_error_; }

 private:
  XdpMapSync(std::unique_ptr<bpf::SteerProgram> prog, std::string pin_dir, const Logger& log)
      : prog_(std::move(prog)), pin_dir_(std::move(pin_dir)), log_(log) {}
  std::unique_ptr<bpf::SteerProgram> prog_;
  std::string pin_dir_;
  const Logger& log_;
  std::string last_error_;
};

}  // namespace shaper::control
