// The Prometheus side of shaper-control: a Collectable that asks the core
// for its families at scrape time, and the Exposer that serves it.
//   /metrics          aggregates + the top-N tenants by rate
//   /metrics/tenants  every tenant (can be large: scrape less often)
#pragma once

#include <expected>
#include <memory>
#include <string>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include "control/daemon/core.h"

namespace shaper::control {

class CoreCollector : public prometheus::Collectable {
 public:
  CoreCollector(const ControlCore& core, bool all_tenants) : core_(core), all_tenants_(all_tenants) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return core_.CollectMetrics(all_tenants_); }

 private:
  const ControlCore& core_;
  bool all_tenants_;
};

// Serves the core's metrics on `address` (host:port). Fails with a message
// naming the address when it cannot listen (port taken, bad address).
class MetricsServer {
 public:
  static std::expected<std::unique_ptr<MetricsServer>, std::string> Start(const std::string& address,
                                                                         const ControlCore& core);
  ~MetricsServer();
  // The bound port (useful with port 0).
  int port() const;

 private:
  MetricsServer() = default;
  std::shared_ptr<CoreCollector> top_;
  std::shared_ptr<CoreCollector> all_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace shaper::control
