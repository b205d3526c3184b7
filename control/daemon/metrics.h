// The Prometheus side of shaper-control: an HTTP server (civetweb) whose
// handlers ask the core for the text at scrape time.
//   /metrics          aggregates + the top-N tenants by rate
//   /metrics/tenants  every tenant (can be large: scrape less often)
//
// Why not prometheus::Exposer: it serializes whatever a Collectable returns,
// so every series must first be a prometheus::ClientMetric; at 100k tenants
// (3M series) building and serializing those was nearly all of a 4.5 s
// scrape. The core writes the text itself (ControlCore::AppendMetricsText,
// byte for byte what TextSerializer would write), and these handlers serve it
// as the Exposer did: the same exposer_* families first, gzip (level 1) when the
// client accepts it. To HTTP/1.1 clients (Prometheus) the body goes out in
// chunked transfer encoding while it is written, in pieces of about
// text_piece_bytes of text (ControlCore::WriteMetricsText), so a scrape of
// every tenant holds a piece, not the whole text (266 MiB at 100k tenants);
// HTTP/1.0 clients get the whole body with its Content-Length.
#pragma once

#include <cstddef>
#include <expected>
#include <memory>
#include <string>

#include "control/daemon/core.h"

class CivetServer;

namespace shaper::control {

class MetricsEndpoint;

// Serves the core's metrics on `address` (host:port). Fails with a message
// naming the address when it cannot listen (port taken, bad address).
class MetricsServer {
 public:
  static constexpr size_t kTextPieceBytes = size_t{1} << 20;

  static std::expected<std::unique_ptr<MetricsServer>, std::string> Start(
      const std::string& address, const ControlCore& core,
      size_t text_piece_bytes = kTextPieceBytes);
  ~MetricsServer();
  // The bound port (useful with port 0).
  int port() const { return port_; }

 private:
  MetricsServer();
  std::unique_ptr<MetricsEndpoint> top_;
  std::unique_ptr<MetricsEndpoint> all_;
  std::unique_ptr<CivetServer> server_;
  int port_ = 0;
};

}  // namespace shaper::control
