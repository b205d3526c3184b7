#include "control/daemon/metrics.h"

#include <exception>

#include <fmt/format.h>

namespace shaper::control {

std::expected<std::unique_ptr<MetricsServer>, std::string> MetricsServer::Start(const std::string& address,
                                                                               const ControlCore& core) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format("metrics: cannot listen on '{}' (port in use or bad address?): {}",
                                       address, e.what()));
  }
  server->top_ = std::make_shared<CoreCollector>(core, false);
  server->all_ = std::make_shared<CoreCollector>(core, true);
  server->exposer_->RegisterCollectable(server->top_, "/metrics");
  server->exposer_->RegisterCollectable(server->all_, "/metrics/tenants");
  return server;
}

// The Exposer goes first: its threads may be inside a collector's Collect().
MetricsServer::~MetricsServer() { exposer_.reset(); }

int MetricsServer::port() const {
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace shaper::control
