#include "bpf/afxdp_preflight.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "bpf/steer.h"

namespace shaper::bpf {
namespace {

std::unexpected<Error> Fail(std::string message) {
  return std::unexpected(Error{std::move(message)});
}

// The value of `key=` in a comma-separated devargs string, or "".
std::string DevArg(std::string_view vdev, std::string_view key) {
  size_t at = 0;
  while (at <= vdev.size()) {
    size_t end = vdev.find(',', at);
    if (end == std::string_view::npos) end = vdev.size();
    const std::string_view item = vdev.substr(at, end - at);
    if (item.size() > key.size() && item.substr(0, key.size()) == key && item[key.size()] == '=')
      return std::string(item.substr(key.size() + 1));
    at = end + 1;
  }
  return {};
}

bool OnBpffs(const char* path) {
  struct statfs fs {};
  return statfs(path, &fs) == 0 && static_cast<unsigned long>(fs.f_type) == BPF_FS_MAGIC;
}

}  // namespace

std::vector<AfXdpPort> FindAfXdpPorts(std::span<char* const> args) {
  std::vector<AfXdpPort> out;
  for (size_t i = 0; i < args.size() && args[i] != nullptr; ++i) {
    const std::string_view a = args[i];
    if (a == "--") break;
    std::string_view vdev;
    if (a == "--vdev" && i + 1 < args.size() && args[i + 1] != nullptr)
      vdev = args[++i];
    else if (a.starts_with("--vdev="))
      vdev = a.substr(7);
    else
      continue;
    if (!vdev.starts_with("net_af_xdp")) continue;
    out.push_back({std::string(vdev), DevArg(vdev, "iface"), DevArg(vdev, "xdp_prog")});
  }
  return out;
}

std::expected<std::vector<std::string>, Error> PrepareAfXdpPorts(std::span<const AfXdpPort> ports) {
  std::vector<std::string> notices;
  bool checked_bpf = false;
  for (const AfXdpPort& port : ports) {
    if (port.xdp_prog.empty()) continue;
    const std::string where = "--vdev " + port.vdev + ": ";
    if (access(port.xdp_prog.c_str(), R_OK) != 0)
      return Fail(where + "xdp_prog " + port.xdp_prog + ": " + ErrnoText(errno));
    if (!checked_bpf) {
      // The PMD pins the shared maps under libbpf's default root.
      if (!OnBpffs(STEER_PIN_DIR)) {
        if (mount("bpf", STEER_PIN_DIR, "bpf", 0, "mode=0700") != 0)
          return Fail(where +
                      STEER_PIN_DIR " is not a bpf filesystem and mounting one there failed: " +
                      ErrnoText(errno) + " (mount it: mount -t bpf bpf " STEER_PIN_DIR ")");
        notices.push_back("mounted a bpf filesystem on " STEER_PIN_DIR
                          " (the steering program's maps are pinned there)");
      }
      if (auto ok = CheckBpfAvailable(STEER_PIN_DIR); !ok) return Fail(where + ok.error().message);
      checked_bpf = true;
    }
    if (port.iface.empty()) continue;  // the PMD says "Network interface must be specified"
    const unsigned ifindex = if_nametoindex(port.iface.c_str());
    if (ifindex == 0) return Fail(where + "interface " + port.iface + ": " + ErrnoText(errno));
    uint32_t prog_id = 0;
    if (int err = bpf_xdp_query_id(static_cast<int>(ifindex), 0, &prog_id); err != 0)
      return Fail(where + "querying the XDP program of " + port.iface + ": " + ErrnoText(err));
    if (prog_id == 0) continue;
    std::string name = "?";
    if (const int fd = bpf_prog_get_fd_by_id(prog_id); fd >= 0) {
      bpf_prog_info info{};
      uint32_t len = sizeof(info);
      if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
      close(fd);
    }
    std::string hint = " (detach it first: ip link set dev " + port.iface + " xdp off)";
    if (name == STEER_NAME(STEER_PROG))
      hint =
          " (a steering program left attached by a dataplane that did not stop cleanly; "
          "until it is detached, tenant traffic goes to the kernel. Detach it: ip link set dev " +
          port.iface + " xdp off)";
    return Fail(where + "interface " + port.iface + " already runs XDP program " + name + " (id " +
                std::to_string(prog_id) + "), and the PMD attaches only where none is" + hint);
  }
  return notices;
}

}  // namespace shaper::bpf
