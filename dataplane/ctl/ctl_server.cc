// The dataplane's control server (see ctl_server.h for what it promises).
//
// Every socket is non-blocking and every request is answered within the
// Poll() call that read it, so a client that stops reading or sends garbage
// costs the main lcore at most one failed send; it never waits on a peer.
#include "dataplane/ctl/ctl_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>

namespace shaper::ctl {
namespace {

constexpr int kRequiredSeals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
// A request carries at most one fd; room for a few more lets us receive (and
// close) what a confused peer sends instead of leaking them on MSG_CTRUNC.
constexpr int kMaxFdsPerMessage = 4;
// Requests answered per client per Poll(): one client cannot starve the rest
// or hold the main lcore for long.
constexpr int kMaxRequestsPerClient = 16;
// A refused peer is told why, and its socket is kept open until it has read
// that (it sends or hangs up) or this long has passed: closing at once, with
// its request unread, would make the kernel reset the connection and the peer
// would see ECONNRESET instead of the reason.
constexpr uint64_t kRefusedLingerNs = 1'000'000'000;
constexpr size_t kMaxRefusedLingering = 16;

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Errno(const char* what) {
  return fmt::format("{}: {}", what, std::strerror(errno));
}

template <size_t N>
void CopyText(char (&dst)[N], std::string_view src) {
  const size_t n = std::min(src.size(), N - 1);
  std::memcpy(dst, src.data(), n);
  std::memset(dst + n, 0, N - n);
}

abi::MsgHeader MakeHeader(abi::MsgType type, uint32_t bytes, uint32_t seq) {
  return abi::MsgHeader{abi::kMsgMagic, abi::kAbiVersion, static_cast<uint16_t>(type), bytes, seq};
}

// Creates missing parent directories with mode 0755.
std::expected<void, std::string> EnsureParentDir(const std::string& socket_path) {
  const std::filesystem::path parent = std::filesystem::path(socket_path).parent_path();
  if (parent.empty()) return {};
  std::error_code ec;
  if (std::filesystem::is_directory(parent, ec)) return {};
  std::filesystem::path partial;
  for (const auto& part : parent) {
    partial /= part;
    if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return std::unexpected(
          fmt::format("ctl: mkdir {}: {}", partial.string(), std::strerror(errno)));
    }
  }
  return {};
}

// A socket file left by a dataplane that died is removed; one that still
// answers belongs to a running dataplane and is left alone; anything that is
// not a socket is never deleted.
std::expected<void, std::string> RemoveStaleSocket(const std::string& path,
                                                   const sockaddr_un& addr) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return std::unexpected(fmt::format("ctl: stat {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return std::unexpected(
        fmt::format("ctl: {} exists and is not a socket; not removing it", path));
  }
  const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (probe < 0) return std::unexpected(Errno("ctl: socket"));
  const bool alive = connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(probe);
  if (alive) {
    return std::unexpected(
        fmt::format("ctl: {} is in use by a running process (another dataplane?)", path));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return std::unexpected(fmt::format("ctl: remove stale {}: {}", path, std::strerror(errno)));
  }
  return {};
}

// Maps a payload memfd read-only after checking it cannot change under us.
struct Mapping {
  const std::byte* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data != nullptr) munmap(const_cast<std::byte*>(data), size);
  }
};

std::expected<void, std::string> MapSealed(int fd, uint64_t declared_bytes, uint64_t max_bytes,
                                           Mapping& out) {
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    return std::unexpected(
        fmt::format("payload fd: F_GET_SEALS: {} (not a memfd?)", std::strerror(errno)));
  }
  if ((seals & kRequiredSeals) != kRequiredSeals) {
    return std::unexpected(fmt::format(
        "payload fd: seals=0x{:x}: must include F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL "
        "(0x{:x})",
        seals, kRequiredSeals));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) return std::unexpected(Errno("payload fd: fstat"));
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size != declared_bytes) {
    return std::unexpected(
        fmt::format("payload_bytes={}: the memfd is {} bytes", declared_bytes, size));
  }
  if (size == 0 || size > max_bytes) {
    return std::unexpected(fmt::format("payload_bytes={}: must be in [1, {}]", size, max_bytes));
  }
  void* mem = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return std::unexpected(Errno("payload fd: mmap"));
  out.data = static_cast<const std::byte*>(mem);
  out.size = size;
  return {};
}

}  // namespace

std::expected<std::unique_ptr<CtlServer>, std::string> CtlServer::Create(CtlServerOptions options,
                                                                         CtlCallbacks callbacks,
                                                                         int stats_fd,
                                                                         uint64_t stats_bytes) {
  if (!callbacks.on_plan || !callbacks.on_rates) {
    return std::unexpected(std::string("ctl: on_plan and on_rates callbacks are required"));
  }
  if (options.port_names.size() > abi::kMaxPorts) {
    return std::unexpected(fmt::format("ctl: {} ports: at most {} are reported",
                                       options.port_names.size(), abi::kMaxPorts));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options.socket_path.empty() || options.socket_path.size() >= sizeof(addr.sun_path)) {
    return std::unexpected(fmt::format("ctl: socket path \"{}\": must be 1..{} bytes",
                                       options.socket_path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, options.socket_path.data(), options.socket_path.size());
  if (auto r = EnsureParentDir(options.socket_path); !r) return std::unexpected(r.error());
  if (auto r = RemoveStaleSocket(options.socket_path, addr); !r) return std::unexpected(r.error());

  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(Errno("ctl: socket"));
  // The umask closes the window between bind() and chmod() in which the
  // socket would carry the default mode.
  const mode_t old_umask = umask(0177);
  const int bound = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  umask(old_umask);
  if (bound != 0) {
    close(fd);
    return std::unexpected(
        fmt::format("ctl: bind {}: {}", options.socket_path, std::strerror(bind_errno)));
  }
  if (chmod(options.socket_path.c_str(), 0600) != 0 || listen(fd, 8) != 0) {
    const std::string err = Errno("ctl: chmod/listen");
    close(fd);
    unlink(options.socket_path.c_str());
    return std::unexpected(err);
  }
  return std::unique_ptr<CtlServer>(
      new CtlServer(std::move(options), std::move(callbacks), fd, stats_fd, stats_bytes));
}

CtlServer::CtlServer(CtlServerOptions options, CtlCallbacks callbacks, int listen_fd, int stats_fd,
                     uint64_t stats_bytes)
    : options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      listen_fd_(listen_fd),
      stats_fd_(stats_fd),
      stats_bytes_(stats_bytes) {}

CtlServer::~CtlServer() {
  for (int fd : clients_) close(fd);
  for (const Refused& r : refused_) close(r.fd);
  close(listen_fd_);
  unlink(options_.socket_path.c_str());
}

void CtlServer::Log(std::string_view text) const {
  if (options_.log) {
    options_.log(text);
  } else {
    fmt::print(stderr, "shaper-dataplane: {}\n", text);
  }
}

void CtlServer::SetPlanInForce(const PlanView& plan, uint64_t generation) {
  in_force_ = PlanCeilings::From(plan, generation);
}

int CtlServer::Poll(int timeout_ms) {
  // Reused across calls: the main lcore polls often and need not allocate.
  std::vector<pollfd>& fds = poll_fds_;
  fds.clear();
  fds.push_back({listen_fd_, POLLIN, 0});
  for (int fd : clients_) fds.push_back({fd, POLLIN, 0});
  const size_t first_refused = fds.size();
  for (const Refused& r : refused_) fds.push_back({r.fd, POLLIN, 0});
  const int ready = poll(fds.data(), fds.size(), timeout_ms);
  ReapRefused(std::span(fds).subspan(first_refused));
  if (ready <= 0) return 0;

  int answered = 0;
  std::vector<int> closed;
  for (size_t i = 1; i < first_refused; ++i) {
    if (fds[i].revents == 0) continue;
    const int fd = fds[i].fd;
    Handled result = Handled::kDrained;
    if (fds[i].revents & POLLIN) {
      for (int n = 0; n < kMaxRequestsPerClient; ++n) {
        result = HandleOne(fd);
        if (result != Handled::kAnswered) break;
        ++answered;
      }
    }
    // POLLHUP with data still queued: the loop above read it first.
    if (result == Handled::kClose ||
        ((fds[i].revents & (POLLHUP | POLLERR)) != 0 && result == Handled::kDrained)) {
      closed.push_back(fd);
    }
  }
  for (int fd : closed) {
    close(fd);
    std::erase(clients_, fd);
  }
  if (fds[0].revents & POLLIN) Accept();
  return answered;
}

void CtlServer::Accept() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) Log(Errno("ctl: accept"));
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      Log(Errno("ctl: SO_PEERCRED"));
      close(fd);
      continue;
    }
    const uid_t own_uid = geteuid();
    if (cred.uid != 0 && cred.uid != own_uid) {
      Log(fmt::format("ctl: refused connection from uid={} pid={} (allowed: root and uid {})",
                      cred.uid, cred.pid, own_uid));
      Refuse(fd, fmt::format("uid {} is not allowed to control this dataplane", cred.uid));
      continue;
    }
    if (clients_.size() >= options_.max_clients) {
      Log(fmt::format("ctl: refused connection from uid={} pid={}: {} clients already connected",
                      cred.uid, cred.pid, clients_.size()));
      Refuse(fd, "too many control connections");
      continue;
    }
    clients_.push_back(fd);
  }
}

void CtlServer::Refuse(int fd, std::string_view reason) {
  SendReply(fd, 0, abi::Result::kBadRequest, reason);
  if (refused_.size() >= kMaxRefusedLingering) {
    close(fd);
    return;
  }
  shutdown(fd, SHUT_WR);
  refused_.push_back({fd, MonotonicNs() + kRefusedLingerNs});
}

void CtlServer::ReapRefused(std::span<const pollfd> polled) {
  const uint64_t now_ns = MonotonicNs();
  std::vector<Refused> keep;
  for (const Refused& r : refused_) {
    auto it =
        std::find_if(polled.begin(), polled.end(), [&](const pollfd& p) { return p.fd == r.fd; });
    bool done = now_ns >= r.deadline_ns;
    if (it != polled.end() && (it->revents & POLLIN) != 0) {
      // Discard what the peer sent: a socket closed with unread data resets
      // the connection, and the peer may not have read our answer yet.
      std::byte sink[256];
      for (int i = 0; i < 8; ++i) {
        const ssize_t n = recv(r.fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0) done = true;  // the peer hung up
        if (n <= 0) break;
      }
    }
    if (it != polled.end() && (it->revents & (POLLHUP | POLLERR)) != 0) done = true;
    if (done) {
      close(r.fd);
    } else {
      keep.push_back(r);
    }
  }
  refused_ = std::move(keep);
}

CtlServer::Handled CtlServer::HandleOne(int fd) {
  alignas(abi::MsgHeader) std::byte buf[abi::kMaxMessageBytes];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  iovec iov{buf, sizeof(buf)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? Handled::kDrained
                                                                       : Handled::kClose;
  }
  if (n == 0) return Handled::kClose;  // peer closed

  // Collect every fd that came with the message; all are closed at the end,
  // whatever happens, so a peer cannot make us leak descriptors.
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.push_back(received);
      }
    }
  }
  struct CloseAll {
    std::vector<int>& fds;
    ~CloseAll() {
      for (int f : fds) close(f);
    }
  } close_all{fds};

  abi::MsgHeader h{};
  if (static_cast<size_t>(n) < sizeof(h)) {
    SendReply(fd, 0, abi::Result::kBadRequest,
              fmt::format("message of {} bytes is shorter than the header", n));
    return Handled::kAnswered;
  }
  std::memcpy(&h, buf, sizeof(h));
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    SendReply(fd, h.seq, abi::Result::kBadRequest, "message or its fds were truncated");
    return Handled::kAnswered;
  }
  if (h.magic != abi::kMsgMagic) {
    SendReply(fd, h.seq, abi::Result::kBadRequest,
              fmt::format("magic=0x{:08x}: not a shaper message", h.magic));
    return Handled::kAnswered;
  }
  if (h.abi_version != abi::kAbiVersion) {
    SendReply(fd, h.seq, abi::Result::kVersion,
              fmt::format("abi_version={}: this dataplane speaks version {}", h.abi_version,
                          abi::kAbiVersion));
    return Handled::kAnswered;
  }
  if (h.bytes != static_cast<uint32_t>(n)) {
    SendReply(fd, h.seq, abi::Result::kBadRequest,
              fmt::format("header.bytes={}: received {} bytes", h.bytes, n));
    return Handled::kAnswered;
  }
  switch (static_cast<abi::MsgType>(h.type)) {
    case abi::MsgType::kHello:
      if (h.bytes != sizeof(abi::HelloRequest) || !fds.empty()) {
        SendReply(fd, h.seq, abi::Result::kBadRequest,
                  fmt::format("hello: {} bytes and {} fds: expected {} bytes, no fd", h.bytes,
                              fds.size(), sizeof(abi::HelloRequest)));
      } else {
        SendHello(fd, h.seq);
      }
      return Handled::kAnswered;
    case abi::MsgType::kApplyPlan:
    case abi::MsgType::kUpdateRates: {
      const bool is_plan = static_cast<abi::MsgType>(h.type) == abi::MsgType::kApplyPlan;
      if (h.bytes != sizeof(abi::PayloadRequest) || fds.size() != 1) {
        SendReply(fd, h.seq, abi::Result::kBadRequest,
                  fmt::format("{}: {} bytes and {} fds: expected {} bytes and one memfd",
                              is_plan ? "apply-plan" : "update-rates", h.bytes, fds.size(),
                              sizeof(abi::PayloadRequest)));
        return Handled::kAnswered;
      }
      abi::PayloadRequest req{};
      std::memcpy(&req, buf, sizeof(req));
      HandlePayload(fd, req, fds[0], is_plan);
      return Handled::kAnswered;
    }
    default:
      SendReply(fd, h.seq, abi::Result::kBadRequest,
                fmt::format("type={}: unknown request", h.type));
      return Handled::kAnswered;
  }
}

void CtlServer::HandlePayload(int fd, const abi::PayloadRequest& req, int payload_fd,
                              bool is_plan) {
  const char* what = is_plan ? "plan" : "rates";
  Mapping map;
  if (auto r = MapSealed(payload_fd, req.payload_bytes, options_.limits.max_plan_bytes, map); !r) {
    Log(fmt::format("ctl: {} refused: {}", what, r.error()));
    SendReply(fd, req.header.seq, abi::Result::kBadRequest, r.error());
    return;
  }
  const std::span<const std::byte> blob(map.data, map.size);
  if (is_plan) {
    auto view = ValidatePlan(blob, options_.limits);
    if (!view) {
      Log(fmt::format("ctl: plan rejected: {}", view.error()));
      SendReply(fd, req.header.seq, abi::Result::kInvalid, view.error());
      return;
    }
    auto generation = CallPlan(*view);
    if (!generation) {
      Log(fmt::format("ctl: plan not applied: {}", generation.error()));
      SendReply(fd, req.header.seq, abi::Result::kRejected, generation.error());
      return;
    }
    in_force_ = PlanCeilings::From(*view, *generation);
    SendReply(fd, req.header.seq, abi::Result::kOk, "");
    return;
  }
  auto rates = ValidateRates(blob, options_.limits, in_force_);
  if (!rates) {
    const bool stale = rates.error().kind == RatesError::kStale;
    SendReply(fd, req.header.seq, stale ? abi::Result::kStale : abi::Result::kInvalid,
              rates.error().text);
    return;
  }
  if (auto r = CallRates(*rates); !r) {
    SendReply(fd, req.header.seq, abi::Result::kRejected, r.error());
    return;
  }
  SendReply(fd, req.header.seq, abi::Result::kOk, "");
}

// The callbacks build tables and may allocate: an exception must become a
// refusal, not unwind through the dataplane's main loop.
std::expected<uint64_t, std::string> CtlServer::CallPlan(const PlanView& plan) {
  try {
    return callbacks_.on_plan(plan);
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format("applying the plan failed: {}", e.what()));
  }
}

std::expected<void, std::string> CtlServer::CallRates(const RatesView& rates) {
  try {
    return callbacks_.on_rates(rates);
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format("applying the rates failed: {}", e.what()));
  }
}

void CtlServer::SendReply(int fd, uint32_t seq, abi::Result result, std::string_view error) {
  abi::Reply reply{};
  reply.header = MakeHeader(abi::MsgType::kReply, sizeof(reply), seq);
  reply.result = static_cast<int32_t>(result);
  reply.generation = in_force_.generation;
  CopyText(reply.error, error);
  if (send(fd, &reply, sizeof(reply), MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(reply)) {
    Log(Errno("ctl: send reply"));
  }
}

void CtlServer::SendHello(int fd, uint32_t seq) {
  abi::HelloReply reply{};
  reply.header = MakeHeader(abi::MsgType::kHelloReply, sizeof(reply), seq);
  reply.abi_version = abi::kAbiVersion;
  reply.num_ports = static_cast<uint32_t>(options_.port_names.size());
  reply.max_tenants = options_.limits.max_tenants;
  reply.max_classes = std::min(options_.limits.max_classes, abi::kMaxClasses);
  reply.max_prefixes = options_.limits.max_prefixes;
  reply.num_lcores = options_.num_lcores;
  reply.max_plan_bytes = options_.limits.max_plan_bytes;
  reply.plan_generation = in_force_.generation;
  reply.stats_bytes = stats_fd_ >= 0 ? stats_bytes_ : 0;
  CopyText(reply.dataplane_version, options_.dataplane_version);
  for (size_t i = 0; i < options_.port_names.size(); ++i) {
    CopyText(reply.port_names[i], options_.port_names[i]);
  }

  iovec iov{&reply, sizeof(reply)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (stats_fd_ >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &stats_fd_, sizeof(int));
  }
  if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(reply)) {
    Log(Errno("ctl: send hello reply"));
  }
}

}  // namespace shaper::ctl
