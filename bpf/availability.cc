#include "bpf/availability.h"

#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shaper::bpf {
namespace {

std::unexpected<Error> Fail(std::string message) {
  return std::unexpected(Error{std::move(message)});
}

bool HasCapability(int cap) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

}  // namespace

std::string ErrnoText(int err) {
  if (err < 0) err = -err;
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

std::expected<void, Error> CheckBpfAvailable(const std::string& pin_dir) {
#ifndef CAP_BPF
  constexpr int CAP_BPF = 39;  // Linux 5.8; older uapi headers lack the name
#endif
  if (!HasCapability(CAP_BPF) && !HasCapability(CAP_SYS_ADMIN)) {
    return Fail(
        "loading the XDP steering program needs CAP_BPF (Linux >= 5.8, with CAP_NET_ADMIN to "
        "attach) or CAP_SYS_ADMIN; this process has neither (run as root or grant the "
        "capabilities)");
  }
  if (!pin_dir.empty()) {
    // The pin directory may not exist yet: its parent must be on bpffs.
    std::string probe = pin_dir;
    struct statfs fs {};
    while (statfs(probe.c_str(), &fs) != 0) {
      const auto slash = probe.find_last_of('/');
      if (errno != ENOENT || slash == std::string::npos || slash == 0)
        return Fail("pin directory " + pin_dir + ": cannot stat it: " + ErrnoText(errno));
      probe.resize(slash);
    }
    if (static_cast<unsigned long>(fs.f_type) != BPF_FS_MAGIC) {
      return Fail("pin directory " + pin_dir + ": " + probe +
                  " is not on a bpf filesystem (mount it: mount -t bpf bpf /sys/fs/bpf)");
    }
  }
  struct Need {
    const char* what;
    int supported;
  };
  const Need needs[] = {
      {"XDP programs (Linux >= 4.8)", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr)},
      {"LPM trie maps (Linux >= 4.11)", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, nullptr)},
      {"XSKMAP maps for AF_XDP (Linux >= 4.18)",
       libbpf_probe_bpf_map_type(BPF_MAP_TYPE_XSKMAP, nullptr)},
  };
  for (const Need& n : needs) {
    if (n.supported == 0) return Fail(std::string("this kernel does not support ") + n.what);
    if (n.supported < 0)
      return Fail(std::string("probing kernel support for ") + n.what +
                  " failed: " + ErrnoText(n.supported));
  }
  return {};
}

}  // namespace shaper::bpf
