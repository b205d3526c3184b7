#include "control/daemon/admin.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "control/daemon/core.h"

namespace shaper::control {
namespace {

constexpr size_t kMaxRequestBytes = 64 * 1024;
constexpr int kServeTimeoutMs = 500;

std::expected<sockaddr_un, std::string> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return std::unexpected(fmt::format("admin socket path '{}': must be 1..{} bytes", path,
                                       sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

void SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads up to the first newline (or EOF); false on timeout, error or a line too long.
bool ReadLine(int fd, std::string& line) {
  char buf[4096];
  while (line.find('\n') == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return !line.empty();
    line.append(buf, static_cast<size_t>(n));
    if (line.size() > kMaxRequestBytes) return false;
  }
  line.resize(line.find('\n'));
  return true;
}

nlohmann::json Error(std::string text) { return {{"ok", false}, {"error", std::move(text)}}; }

}  // namespace

std::expected<std::unique_ptr<AdminServer>, std::string> AdminServer::Create(const std::string& path,
                                                                             Handler handler,
                                                                             const Logger& log) {
  auto addr = Address(path);
  if (!addr) return std::unexpected(addr.error());
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return std::unexpected(fmt::format("admin socket directory '{}': {}", parent.string(), ec.message()));
    std::filesystem::permissions(parent, std::filesystem::perms(0755), ec);
  }
  // A socket file nobody answers on is left over from a crash: replace it.
  // One that answers belongs to a running shaper-control: refuse.
  struct stat st{};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return std::unexpected(fmt::format("admin socket '{}': exists and is not a socket", path));
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool alive = probe >= 0 && connect(probe, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0;
    if (probe >= 0) close(probe);
    if (alive) return std::unexpected(fmt::format("admin socket '{}': another shaper-control is running", path));
    unlink(path.c_str());
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::unexpected(fmt::format("admin socket: socket(): {}", std::strerror(errno)));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int err = errno;
    close(fd);
    return std::unexpected(fmt::format("admin socket '{}': bind: {}", path, std::strerror(err)));
  }
  // Before listen(): nobody can connect while the mode is still the umask's.
  if (chmod(path.c_str(), 0600) != 0 || listen(fd, 16) != 0) {
    const int err = errno;
    close(fd);
    unlink(path.c_str());
    return std::unexpected(fmt::format("admin socket '{}': {}", path, std::strerror(err)));
  }
  return std::unique_ptr<AdminServer>(new AdminServer(path, fd, std::move(handler), log));
}

AdminServer::~AdminServer() {
  close(listen_fd_);
  unlink(path_.c_str());
}

void AdminServer::HandleReady() {
  for (;;) {
    const int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return;  // EAGAIN: backlog empty (or a transient error, retried on the next poll)
    Serve(conn);
    close(conn);
  }
}

void AdminServer::Serve(int conn) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  SetTimeouts(conn, std::chrono::milliseconds(kServeTimeoutMs));
  std::string line;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != 0 && cred.uid != getuid())) {
    log_.Warn("admin peer refused", {{"uid", std::to_string(cred.uid)}, {"pid", std::to_string(cred.pid)}});
    // Take the request first: answering and closing before the peer has sent
    // it fails the peer's send (EPIPE), and it never reads why it was refused.
    ReadLine(conn, line);
    WriteAll(conn, Error("permission denied: only root or the uid of shaper-control may use this socket").dump() + "\n");
    return;
  }
  nlohmann::json reply;
  if (!ReadLine(conn, line)) {
    reply = Error("no request: send one JSON object on one line");
  } else {
    nlohmann::json request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    reply = request.is_discarded() ? Error(fmt::format("request is not JSON: '{}'", line.substr(0, 80)))
                                   : handler_(request);
  }
  WriteAll(conn, reply.dump() + "\n");
}

nlohmann::json HandleAdminRequest(ControlCore& core, const nlohmann::json& request) {
  if (!request.is_object() || !request.contains("cmd") || !request["cmd"].is_string()) {
    return Error("request needs a string field 'cmd' (status, reload, explain)");
  }
  const std::string cmd = request["cmd"].get<std::string>();
  if (cmd == "status") return core.Status();
  if (cmd == "reload") {
    const ReloadOutcome r = core.Reload("admin");
    if (!r.ok) return Error(r.error);
    return {{"ok", true}, {"tenants", r.tenants}, {"plan_generation", core.plan_generation()},
            {"dataplane_up", core.dataplane_up()}};
  }
  if (cmd == "explain") {
    if (!request.contains("tenant") || !request["tenant"].is_string()) {
      return Error("explain needs a string field 'tenant'");
    }
    return core.Explain(request["tenant"].get<std::string>());
  }
  return Error(fmt::format("cmd='{}': unknown (status, reload, explain)", cmd));
}

std::expected<nlohmann::json, std::string> AdminCall(const std::string& path, const nlohmann::json& request,
                                                     std::chrono::milliseconds timeout) {
  auto addr = Address(path);
  if (!addr) return std::unexpected(addr.error());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(fmt::format("socket(): {}", std::strerror(errno)));
  SetTimeouts(fd, timeout);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int err = errno;
    close(fd);
    return std::unexpected(fmt::format("cannot reach shaper-control at '{}': {}{}", path, std::strerror(err),
                                       err == ENOENT || err == ECONNREFUSED ? " (is shaper-control running?)" : ""));
  }
  std::string line;
  const bool ok = WriteAll(fd, request.dump() + "\n") && ReadLine(fd, line);
  close(fd);
  if (!ok) return std::unexpected(fmt::format("admin socket '{}': no reply (timeout or closed)", path));
  nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
  if (reply.is_discarded()) return std::unexpected(fmt::format("admin socket '{}': reply is not JSON", path));
  return reply;
}

}  // namespace shaper::control
