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

// An HTTP/1.1 reply body in chunked transfer encoding, plain or gzip (zlib
// level 1, as Gzip), sent as the text is written: a scrape of every tenant
// holds about one text piece (MetricsServer::kTextPieceBytes, plus at most
// one tenant's lines) and kOutBytes of gzip at a time.
// After a failed send (the scraper went away) the rest is not sent.
class ChunkedBody {
 public:
  static constexpr size_t kOutBytes = size_t{256} << 10;

  // False when zlib cannot start: send it plain then.
  bool StartGzip() {
    if (deflateInit2(&zs_, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK)
      return false;
    gzip_ = true;
    out_.resize(kOutBytes);
    return true;
  }
  ~ChunkedBody() {
    if (gzip_) deflateEnd(&zs_);
  }

  void Write(mg_connection* conn, std::string_view text) {
    if (!gzip_) {
      Send(conn, text);
      return;
    }
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    zs_.avail_in = static_cast<uInt>(text.size());  // a piece: about 1 MiB
    while (zs_.avail_in > 0 && ok_) Deflate(conn, Z_NO_FLUSH);
  }

  // The gzip trailer, then the last (empty) chunk.
  void Finish(mg_connection* conn) {
    if (gzip_) {
      zs_.next_in = nullptr;
      zs_.avail_in = 0;
      int ret = Z_OK;
      while (ok_ && ret == Z_OK) ret = Deflate(conn, Z_FINISH);
      if (ret != Z_STREAM_END) ok_ = false;
    }
    if (ok_ && mg_send_chunk(conn, "", 0) < 0) ok_ = false;
  }

  uint64_t sent_bytes() const { return sent_; }

 private:
  int Deflate(mg_connection* conn, int flush) {
    zs_.next_out = reinterpret_cast<Bytef*>(out_.data());
    zs_.avail_out = static_cast<uInt>(out_.size());
    const int ret = deflate(&zs_, flush);
    if (ret == Z_STREAM_ERROR) {
      ok_ = false;
      return ret;
    }
    Send(conn, std::string_view(out_.data(), out_.size() - zs_.avail_out));
    return ret;
  }
  void Send(mg_connection* conn, std::string_view data) {
    if (!ok_ || data.empty()) return;  // an empty chunk would end the body
    if (mg_send_chunk(conn, data.data(), static_cast<unsigned>(data.size())) < 0) {
      ok_ = false;
      return;
    }
    sent_ += data.size();
  }

  z_stream zs_{};
  bool gzip_ = false;
  bool ok_ = true;
  std::string out_;
  uint64_t sent_ = 0;
};

bool IsHttp11(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  return info != nullptr && info->http_version != nullptr &&
         std::string_view(info->http_version) == "1.1";
}

}  // namespace

// One path: its own exposer_* families (as prometheus::Exposer keeps per
// endpoint), then the core's text.
class MetricsEndpoint : public CivetHandler {
 public:
  MetricsEndpoint(const ControlCore& core, bool all_tenants, size_t text_piece_bytes)
      : core_(core),
        all_tenants_(all_tenants),
        text_piece_bytes_(text_piece_bytes),
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

  // HTTP/1.1 (Prometheus): the body streams out in chunks as it is written.
  // HTTP/1.0 has no chunks: the whole body, with its length.
  bool handleGet(CivetServer*, mg_connection* conn) override {
    const auto start = std::chrono::steady_clock::now();
    std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
    uint64_t sent_bytes = 0;
    if (IsHttp11(conn)) {
      ChunkedBody body;
      const bool gzip = AcceptsGzip(conn) && body.StartGzip();
      mg_printf(conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n%s"
                "Transfer-Encoding: chunked\r\n\r\n",
                gzip ? "Content-Encoding: gzip\r\n" : "");
      core_.WriteMetricsText(all_tenants_, text, text_piece_bytes_,
                             [&](std::string& piece) { body.Write(conn, piece); });
      body.Finish(conn);
      sent_bytes = body.sent_bytes();
    } else {
      core_.AppendMetricsText(all_tenants_, text);
      std::string gzipped = AcceptsGzip(conn) ? Gzip(text) : std::string();
      const std::string& sent = gzipped.empty() ? text : gzipped;
      mg_printf(conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n%sContent-Length: "
                "%zu\r\n\r\n",
                gzipped.empty() ? "" : "Content-Encoding: gzip\r\n", sent.size());
      mg_write(conn, sent.data(), sent.size());
      sent_bytes = sent.size();
    }

    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    latencies_.Observe(static_cast<double>(us.count()));
    bytes_.Increment(static_cast<double>(sent_bytes));
    scrapes_.Increment();
    return true;
  }

 private:
  const ControlCore& core_;
  const bool all_tenants_;
  const size_t text_piece_bytes_;
  prometheus::Registry registry_;
  prometheus::Counter& bytes_;
  prometheus::Counter& scrapes_;
  prometheus::Summary& latencies_;
};

MetricsServer::MetricsServer() = default;

std::expected<std::unique_ptr<MetricsServer>, std::string> MetricsServer::Start(
    const std::string& address, const ControlCore& core, size_t text_piece_bytes) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->top_ = std::make_unique<MetricsEndpoint>(core, false, text_piece_bytes);
  server->all_ = std::make_unique<MetricsEndpoint>(core, true, text_piece_bytes);
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
