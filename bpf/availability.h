// What loading the XDP steering program needs, checked up front so that
// both shaper-control (--xdp-maps) and shaper-dataplane (net_af_xdp ports
// with xdp_prog=) say exactly what is missing instead of passing on a bare
// errno from deep inside libbpf. No skeleton and no policy types here: the
// dataplane links this file too.
#pragma once

#include <expected>
#include <string>

namespace shaper::bpf {

struct Error {
  std::string message;
};

// Checks CAP_BPF or CAP_SYS_ADMIN, bpffs at `pin_dir` (when not empty; the
// directory itself may not exist yet) and kernel support for XDP programs,
// LPM tries and XSKMAPs. The error names the missing piece and the fix.
std::expected<void, Error> CheckBpfAvailable(const std::string& pin_dir);

// "Invalid argument (errno 22)"; accepts negative libbpf-style codes.
std::string ErrnoText(int err);

}  // namespace shaper::bpf
