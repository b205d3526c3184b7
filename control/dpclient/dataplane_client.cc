// Dataplane socket client (see dataplane_client.h).
#include "control/dpclient/dataplane_client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace shaper::dpclient {
namespace {

std::unexpected<std::string> Err(std::string text) {
  return std::unexpected(std::move(text));
}

template <size_t N>
std::string TextField(const char (&field)[N]) {
  return std::string(field, strnlen(field, N));
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

std::string DpReply::ToString() const {
  if (ok()) return fmt::format("ok (generation {})", generation);
  return fmt::format("{}: {} (generation in force: {})", abi::ResultName(result), error,
                     generation);
}

std::expected<UniqueFd, std::string> MakeSealedMemfd(const char* name,
                                                     std::span<const std::byte> bytes) {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return Err(fmt::format("memfd_create: {}", std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Err(fmt::format("write memfd: {}", std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Err(fmt::format("seal memfd: {}", std::strerror(errno)));
  }
  return fd;
}

std::expected<std::unique_ptr<DataplaneClient>, std::string> DataplaneClient::Connect(
    const std::string& socket_path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return Err(fmt::format("dataplane socket path \"{}\": must be 1..{} bytes", socket_path,
                           sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return Err(fmt::format("socket: {}", std::strerror(errno)));
  // Timeouts on every send and receive: a stuck dataplane fails the call.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return Err(fmt::format("setsockopt timeout: {}", std::strerror(errno)));
  }
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    const char* hint = err == ENOENT || err == ECONNREFUSED ? " (is shaper-dataplane running?)"
                       : err == EACCES ? " (run as root or the dataplane's user)"
                                       : "";
    return Err(fmt::format("connect {}: {}{}", socket_path, std::strerror(err), hint));
  }
  return std::unique_ptr<DataplaneClient>(new DataplaneClient(std::move(fd), socket_path));
}

std::expected<size_t, std::string> DataplaneClient::Receive(const char* what, void* buf,
                                                            size_t size, UniqueFd* fd_out,
                                                            uint32_t periods) {
  // A reply to an earlier request that timed out may still arrive: skip
  // replies whose seq is older than the current request (seq 0 is the
  // dataplane speaking for itself, e.g. refusing the connection: keep it).
  for (;;) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    iovec iov{buf, size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n;
    do {
      n = recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && --periods > 0) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Err(
            fmt::format("{}: no reply from the dataplane at {} within the timeout", what, path_));
      }
      return Err(fmt::format("{}: receive from {}: {}", what, path_, std::strerror(errno)));
    }
    if (n == 0) {
      return Err(fmt::format("{}: the dataplane at {} closed the connection", what, path_));
    }
    UniqueFd received_fd;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int raw;
        std::memcpy(&raw, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        UniqueFd owned(raw);  // extra fds are closed here
        if (!received_fd) received_fd = std::move(owned);
      }
    }
    if (msg.msg_flags & MSG_TRUNC) return Err(fmt::format("{}: reply truncated", what));
    abi::MsgHeader h{};
    if (static_cast<size_t>(n) >= sizeof(h)) {
      std::memcpy(&h, buf, sizeof(h));
      if (h.seq != 0 && h.seq < seq_) continue;  // stale
    }
    if (fd_out != nullptr) *fd_out = std::move(received_fd);
    return static_cast<size_t>(n);
  }
}

std::expected<HelloInfo, std::string> DataplaneClient::Hello(std::string_view client_name) {
  abi::HelloRequest req{};
  req.header = abi::MsgHeader{abi::kMsgMagic, abi::kAbiVersion,
                              static_cast<uint16_t>(abi::MsgType::kHello), sizeof(req), ++seq_};
  std::memcpy(req.client_name, client_name.data(),
              std::min(client_name.size(), sizeof(req.client_name) - 1));
  if (send(fd_.get(), &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req)) {
    return Err(fmt::format("hello: send to {}: {}", path_, std::strerror(errno)));
  }
  alignas(abi::HelloReply) std::byte buf[abi::kMaxMessageBytes];
  HelloInfo info;
  auto n = Receive("hello", buf, sizeof(buf), &info.stats_fd);
  if (!n) return Err(n.error());
  abi::MsgHeader h{};
  if (*n < sizeof(h)) return Err(fmt::format("hello: reply of {} bytes is too short", *n));
  std::memcpy(&h, buf, sizeof(h));
  if (h.type == static_cast<uint16_t>(abi::MsgType::kReply) && *n == sizeof(abi::Reply)) {
    abi::Reply r{};
    std::memcpy(&r, buf, sizeof(r));
    return Err(fmt::format("hello: dataplane refused: {}: {}",
                           abi::ResultName(static_cast<abi::Result>(r.result)),
                           TextField(r.error)));
  }
  if (h.magic != abi::kMsgMagic || h.type != static_cast<uint16_t>(abi::MsgType::kHelloReply) ||
      *n != sizeof(abi::HelloReply) || h.seq != seq_) {
    return Err(fmt::format("hello: unexpected reply (type {}, {} bytes, seq {} for {})", h.type, *n,
                           h.seq, seq_));
  }
  abi::HelloReply r{};
  std::memcpy(&r, buf, sizeof(r));
  if (r.abi_version != abi::kAbiVersion) {
    return Err(fmt::format("hello: dataplane speaks ABI version {}, this control speaks {}",
                           r.abi_version, abi::kAbiVersion));
  }
  info.abi_version = r.abi_version;
  info.dataplane_version = TextField(r.dataplane_version);
  for (uint32_t i = 0; i < std::min(r.num_ports, abi::kMaxPorts); ++i) {
    info.port_names.push_back(TextField(r.port_names[i]));
  }
  info.max_tenants = r.max_tenants;
  info.max_classes = r.max_classes;
  info.max_prefixes = r.max_prefixes;
  info.num_lcores = r.num_lcores;
  info.max_plan_bytes = r.max_plan_bytes;
  info.plan_generation = r.plan_generation;
  info.stats_bytes = r.stats_bytes;
  if (r.stats_bytes != 0 && !info.stats_fd) {
    return Err("hello: the reply announced a stats segment but carried no fd");
  }
  return info;
}

std::expected<DpReply, std::string> DataplaneClient::ApplyPlan(std::span<const std::byte> plan) {
  return SendPayload(abi::MsgType::kApplyPlan, "apply-plan", plan);
}

std::expected<DpReply, std::string> DataplaneClient::UpdateRates(std::span<const std::byte> rates) {
  return SendPayload(abi::MsgType::kUpdateRates, "update-rates", rates);
}

std::expected<DpReply, std::string> DataplaneClient::SendPayload(
    abi::MsgType type, const char* what, std::span<const std::byte> payload) {
  auto memfd = MakeSealedMemfd(what, payload);
  if (!memfd) return Err(fmt::format("{}: {}", what, memfd.error()));

  abi::PayloadRequest req{};
  req.header = abi::MsgHeader{abi::kMsgMagic, abi::kAbiVersion, static_cast<uint16_t>(type),
                              sizeof(req), ++seq_};
  req.payload_bytes = payload.size();
  iovec iov{&req, sizeof(req)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int raw = memfd->get();
  std::memcpy(CMSG_DATA(c), &raw, sizeof(int));
  if (sendmsg(fd_.get(), &msg, MSG_NOSIGNAL) != sizeof(req)) {
    return Err(fmt::format("{}: send to {}: {}", what, path_, std::strerror(errno)));
  }

  // The dataplane replies to a plan after building its tables, in time that
  // grows with the plan (seconds for 100k tenants on a loaded machine). Give
  // up too early and the dataplane applies the plan anyway while the control,
  // taking it for lost, reconnects and pushes the previous policy back.
  // So a plan gets one more timeout period per kPlanBytesPerPeriod.
  constexpr size_t kPlanBytesPerPeriod = 512 * 1024;
  const uint32_t periods =
      type == abi::MsgType::kApplyPlan
          ? 1 + static_cast<uint32_t>(std::min<size_t>(payload.size() / kPlanBytesPerPeriod, 600))
          : 1;
  alignas(abi::Reply) std::byte buf[abi::kMaxMessageBytes];
  auto n = Receive(what, buf, sizeof(buf), nullptr, periods);
  if (!n) return Err(n.error());
  abi::Reply r{};
  if (*n != sizeof(r))
    return Err(fmt::format("{}: reply of {} bytes, expected {}", what, *n, sizeof(r)));
  std::memcpy(&r, buf, sizeof(r));
  if (r.header.magic != abi::kMsgMagic ||
      r.header.type != static_cast<uint16_t>(abi::MsgType::kReply)) {
    return Err(fmt::format("{}: unexpected reply type {}", what, r.header.type));
  }
  if (r.header.seq != seq_) {
    return Err(fmt::format("{}: reply for request {}, expected {}", what, r.header.seq, seq_));
  }
  DpReply out;
  out.result = static_cast<abi::Result>(r.result);
  out.generation = r.generation;
  out.error = TextField(r.error);
  return out;
}

}  // namespace shaper::dpclient
