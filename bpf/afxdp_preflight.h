// shaper-dataplane's checks before DPDK probes net_af_xdp ports that load
// the steering program (devarg xdp_prog=): the PMD would otherwise fail deep
// inside libbpf ("failed to auto-pin ... -22", "XDP program already
// attached") and the dataplane could only report a failed queue setup.
//
// For every --vdev net_af_xdp...,xdp_prog=FILE among the EAL arguments:
//   - FILE must be readable;
//   - BPF must be usable (bpf/availability.h); /sys/fs/bpf, where the PMD
//     pins the shared maps, is mounted (bpffs) when it is not yet;
//   - the interface must exist and run no XDP program: the PMD attaches
//     with XDP_FLAGS_UPDATE_IF_NOEXIST, so a program left by a dataplane
//     that was killed must be detached first (the message says how; it is
//     not done here, it may belong to someone else).
// Vdevs without xdp_prog= (libxdp's default program) are left alone.
#pragma once

#include <expected>
#include <span>
#include <string>
#include <vector>

#include "bpf/availability.h"

namespace shaper::bpf {

struct AfXdpPort {
  std::string vdev;      // as given: net_af_xdp0,iface=eth1,xdp_prog=...
  std::string iface;     // "" when the devarg is missing (the PMD reports it)
  std::string xdp_prog;  // "" without xdp_prog=
};

// The net_af_xdp vdevs among EAL arguments (--vdev X, --vdev=X), up to the
// first "--" (the application's own options follow it).
std::vector<AfXdpPort> FindAfXdpPorts(std::span<char* const> args);

// Runs the checks above; returns notices to print (e.g. "mounted bpffs").
std::expected<std::vector<std::string>, Error> PrepareAfXdpPorts(std::span<const AfXdpPort> ports);

}  // namespace shaper::bpf
