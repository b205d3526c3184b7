// The admin socket: how shaperctl talks to a running shaper-control.
//
// A unix stream socket, mode 0600; each peer is checked with SO_PEERCRED and
// only root or shaper-control's own uid is served, so the socket's mode is
// not the only lock. A request is one JSON object on one line
// (`{"cmd":"status"}`, `{"cmd":"reload"}`, `{"cmd":"explain","tenant":"acme"}`);
// the reply is one JSON object, then the server closes the connection. Every
// reply has "ok"; a failed request has "error" naming what was wrong.
//
// The server runs inside the event loop: HandleReady() serves one
// connection, with a short receive timeout so a client that connects and
// says nothing cannot stall the loop for long.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "control/daemon/log.h"

namespace shaper::control {

class ControlCore;

inline constexpr const char* kDefaultAdminSocket = "/run/shaper/control.sock";

class AdminServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  // Fails when another shaper-control answers on `path`; a stale socket file
  // is replaced.
  static std::expected<std::unique_ptr<AdminServer>, std::string> Create(const std::string& path,
                                                                         Handler handler,
                                                                         const Logger& log);
  ~AdminServer();  // closes and removes the socket file
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  int fd() const { return listen_fd_; }
  // Accepts and serves the connections pending on fd(); never blocks on an
  // empty backlog.
  void HandleReady();

 private:
  AdminServer(std::string path, int fd, Handler handler, const Logger& log)
      : path_(std::move(path)), listen_fd_(fd), handler_(std::move(handler)), log_(log) {}
  void Serve(int conn);

  std::string path_;
  int listen_fd_;
  Handler handler_;
  const Logger& log_;
};

// The commands, on a ControlCore: status, reload, explain.
nlohmann::json HandleAdminRequest(ControlCore& core, const nlohmann::json& request);

// Client side (shaperctl, tests): sends one request, returns the reply.
std::expected<nlohmann::json, std::string> AdminCall(
    const std::string& path, const nlohmann::json& request,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

}  // namespace shaper::control
