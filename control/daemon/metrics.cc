#include "control/daemon/metrics.h"

#include <CivetServer.h>
#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <prometheus/text_serializer.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <string_view>

namespace shaper::control {
namespace {

bool AcceptsGzip(mg_connection* conn) {
  const char* accept = mg_get_header(conn, "Accept-Encoding");
  return accept != nullptr && std::strstr(accept, "gzip") != nullptr;
}

// gzip of the whole body; empty when zlib fails (the caller then sends it
// uncompressed). Level 1: at 100k tenants the body is 266 MiB, and the
// default level would cost more than writing the text. zlib counts in
// 32 bits, so both sides go in pieces of at most 1 GiB.
std::string Gzip(std::string_view body) {
  constexpr size_t kPiece = size_t{1} << 30;
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    return {};
  std::string out(std::max<size_t>(body.size() / 4, 4096), '\0');
  size_t in_pos = 0;
  int ret = Z_OK;
  while (ret == Z_OK) {
    if (zs.avail_in == 0) {
      const size_t n = std::min(body.size() - in_pos, kPiece);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data() + in_pos));
      zs.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (zs.total_out == out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
    zs.avail_out = static_cast<uInt>(std::min(out.size() - zs.total_out, kPiece));
    ret = deflate(&zs, in_pos == body.size() ? Z_FINISH : Z_NO_FLUSH);
  }
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return ret == Z_STREAM_END ? out : std::string();
}

}  // namespace

// One path: its own exposer_* families (as prometheus::Exposer keeps per
// endpoint), then the core's text.
class MetricsEndpoint : public CivetHandler {
 public:
  MetricsEndpoint(const ControlCore& core, bool all_tenants)
      : core_(core),
        all_tenants_(all_tenants),
        bytes_(prometheus::BuildCounter()
                   .Name("exposer_transferred_bytes_total")
                   .Help("Transferred bytes to metrics services")
                   .Register(registry_)
                   .Add({})),
        scrapes_(prometheus::BuildCounter()
                     .Name("exposer_scrapes_total")
                     .Help("Number of times metrics were scraped")
                     .Register(registry_)
                     .Add({})),
        latencies_(
            prometheus::BuildSummary()
                .Name("exposer_request_latencies")
                .Help("Latencies of serving scrape requests, in microseconds")
                .Register(registry_)
                .Add({}, prometheus::Summary::Quantiles{{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}})) {
  }

  bool handleGet(CivetServer*, mg_connection* conn) override {
    const auto start = std::chrono::steady_clock::now();
    std::string body = prometheus::TextSerializer().Serialize(registry_.Collect());
    core_.AppendMetricsText(all_tenants_, body);

    std::string gzipped = AcceptsGzip(conn) ? Gzip(body) : std::string();
    const std::string& sent = gzipped.empty() ? body : gzipped;
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n%sContent-Length: "
              "%zu\r\n\r\n",
              gzipped.empty() ? "" : "Content-Encoding: gzip\r\n", sent.size());
    mg_write(conn, sent.data(), sent.size());

    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    latencies_.Observe(static_cast<double>(us.count()));
    bytes_.Increment(static_cast<double>(sent.size()));
    scrapes_.Increment();
    return true;
  }

 private:
  const ControlCore& core_;
  const bool all_tenants_;
  prometheus::Registry registry_;
  prometheus::Counter& bytes_;
  prometheus::Counter& scrapes_;
  prometheus::Summary& latencies_;
};

MetricsServer::MetricsServer() = default;

std::expected<std::unique_ptr<MetricsServer>, std::string> MetricsServer::Start(
    const std::string& address, const ControlCore& core) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->top_ = std::make_unique<MetricsEndpoint>(core, false);
  server->all_ = std::make_unique<MetricsEndpoint>(core, true);
  try {
    server->server_ = std::make_unique<CivetServer>(
        std::vector<std::string>{"listening_ports", address, "num_threads", "2"});
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format(
        "metrics: cannot listen on '{}' (port in use or bad address?): {}", address, e.what()));
  }
  // civetweb tries exact URI matches before prefix ones, so /metrics does
  // not take /metrics/tenants.
  server->server_->addHandler("/metrics", server->top_.get());
  server->server_->addHandler("/metrics/tenants", server->all_.get());
  const auto ports = server->server_->getListeningPorts();
  server->port_ = ports.empty() ? 0 : ports.front();
  return server;
}

// The server goes first: its threads may be inside a handler.
MetricsServer::~MetricsServer() {
  server_.reset();
}

}  // namespace shaper::control
