// Helpers shared by the bpf tests and the XDP benchmark: running an XDP
// program on a frame with BPF_PROG_TEST_RUN, a private network namespace, and
// an AF_XDP socket to put into xsks_map so a redirect has somewhere to go.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/model.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace shaper::testing {

inline bool IsRoot() {
  return geteuid() == 0;
}

// "203.0.113.0/24" or "2001:db8::/32" as a policy prefix.
inline config::Prefix ParsePrefix(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw std::invalid_argument("prefix without length: " + text);
  config::Prefix p;
  const std::string addr = text.substr(0, slash);
  p.is_v6 = addr.find(':') != std::string::npos;
  p.length = static_cast<uint8_t>(std::stoi(text.substr(slash + 1)));
  if (inet_pton(p.is_v6 ? AF_INET6 : AF_INET, addr.c_str(), p.addr.data()) != 1)
    throw std::invalid_argument("bad prefix address: " + text);
  return p;
}

// Moves this process (its main thread) into a fresh network namespace, once,
// so the AF_XDP socket bound to its loopback and anything attached there
// cannot collide with other tests running in parallel or with the host.
// Returns an empty string or what failed.
inline std::string EnterPrivateNetns() {
  static std::string result = [] {
    if (unshare(CLONE_NEWNET) != 0)
      return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
    return std::string();
  }();
  return result;
}

struct XdpRun {
  int err = 0;               // 0, or the errno of bpf_prog_test_run_opts
  uint32_t verdict = 0;      // XDP_PASS, XDP_REDIRECT, ...
  uint32_t duration_ns = 0;  // mean per repetition, as the kernel measures it
};

inline XdpRun RunXdp(int prog_fd, const std::vector<uint8_t>& frame, uint32_t repeat = 1) {
  std::vector<uint8_t> out(frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()),
              .data_size_out = static_cast<uint32_t>(out.size()),
              .repeat = static_cast<int>(repeat));
  XdpRun run;
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) {
    run.err = errno;
    return run;
  }
  run.verdict = opts.retval;
  run.duration_ns = opts.duration;
  return run;
}

// An AF_XDP socket bound (copy mode) to queue 0 of an interface, the least a
// socket needs before the kernel accepts it in an XSKMAP. It never receives
// anything in the tests: BPF_PROG_TEST_RUN reports the verdict without
// carrying out the redirect.
class BoundXsk {
 public:
  explicit BoundXsk(const char* ifname = "lo") { Open(ifname); }
  ~BoundXsk() {
    if (fd_ >= 0) close(fd_);
    if (umem_ != nullptr) munmap(umem_, kUmemBytes);
  }
  BoundXsk(const BoundXsk&) = delete;
  BoundXsk& operator=(const BoundXsk&) = delete;

  int fd() const { return fd_; }
  const std::string& error() const { return error_; }

 private:
  static constexpr size_t kFrameBytes = 4096;
  static constexpr size_t kUmemBytes = 64 * kFrameBytes;

  void Open(const char* ifname) {
    fd_ = socket(AF_XDP, SOCK_RAW, 0);
    if (fd_ < 0) return Fail("socket(AF_XDP)");
    umem_ = mmap(nullptr, kUmemBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (umem_ == MAP_FAILED) {
      umem_ = nullptr;
      return Fail("mmap(umem)");
    }
    xdp_umem_reg reg{};
    reg.addr = reinterpret_cast<uint64_t>(umem_);
    reg.len = kUmemBytes;
    reg.chunk_size = kFrameBytes;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_REG, &reg, sizeof(reg)) != 0) return Fail("XDP_UMEM_REG");
    const int ring = 64;
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_FILL_RING, &ring, sizeof(ring)) != 0)
      return Fail("XDP_UMEM_FILL_RING");
    if (setsockopt(fd_, SOL_XDP, XDP_UMEM_COMPLETION_RING, &ring, sizeof(ring)) != 0)
      return Fail("XDP_UMEM_COMPLETION_RING");
    if (setsockopt(fd_, SOL_XDP, XDP_RX_RING, &ring, sizeof(ring)) != 0) return Fail("XDP_RX_RING");
    sockaddr_xdp addr{};
    addr.sxdp_family = AF_XDP;
    addr.sxdp_ifindex = if_nametoindex(ifname);
    addr.sxdp_queue_id = 0;
    addr.sxdp_flags = XDP_COPY;
    if (addr.sxdp_ifindex == 0) return Fail(std::string("if_nametoindex(") + ifname + ")");
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return Fail("bind");
  }

  void Fail(const std::string& what) { error_ = what + ": " + std::strerror(errno); }

  int fd_ = -1;
  void* umem_ = nullptr;
  std::string error_;
};

// One socket per process: the kernel releases a socket's claim on the queue
// some time after close(), so binding a fresh one per test would hit EBUSY.
// Each test puts this one into its own program's xsks_map.
inline const BoundXsk& SharedXsk() {
  static BoundXsk xsk("lo");
  return xsk;
}

}  // namespace shaper::testing
