// Test scaffolding for shaper-control's core: a REAL in-process dataplane
// control server (dataplane/ctl/ctl_server.h) over a unix socket in a temp
// directory, polled by a thread, with a stats segment the test writes
// counters into; a fake monotonic clock; a tiny HTTP client for /metrics.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dataplane/ctl/ctl_server.h"
#include "dataplane/ctl/stats_segment.h"

namespace shaper::testing {

inline std::string MakeTempDir() {
  char tmpl[] = "/tmp/shaper-control-test-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  return dir ? dir : "";
}

// Writes `text` to `path` the way editors save: a temp file renamed over it.
inline void WriteByRename(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp~";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

// What the dataplane received.
struct Received {
  uint64_t plans = 0;
  uint64_t generation = 0;
  std::map<std::string, uint32_t> ids;  // tenant name -> id in the last plan
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> assured_bps;  // (id, direction) -> last pushed
  uint64_t rate_updates = 0;
};

// Everything the dataplane received is the same in `now` as in `before`.
inline void ExpectSameReceived(const Received& now, const Received& before) {
  EXPECT_EQ(now.plans, before.plans);
  EXPECT_EQ(now.generation, before.generation);
  EXPECT_EQ(now.ids, before.ids);
  EXPECT_EQ(now.assured_bps, before.assured_bps);
  EXPECT_EQ(now.rate_updates, before.rate_updates);
}

class InProcessDataplane {
 public:
  static constexpr uint32_t kMaxTenants = 64;

  // auto_heartbeat: the poll thread bumps the heartbeat like the real main
  // lcore does (for a shaper-control on the real clock); otherwise the test
  // bumps it, in step with its fake clock.
  // max_classes: as shaper-dataplane --max-classes, the limit the validator
  // applies and the class count of the stats segment.
  explicit InProcessDataplane(std::string socket_path, bool auto_heartbeat = false,
                              uint32_t max_classes = abi::kMaxClasses)
      : path_(std::move(socket_path)), auto_heartbeat_(auto_heartbeat), max_classes_(max_classes) {
    auto seg = ctl::StatsSegment::Create(1, kMaxTenants, 1, max_classes, 1'000'000'000);
    if (seg) segment_ = std::move(*seg);
  }
  ~InProcessDataplane() { Stop(); }

  bool Start() {
    ctl::CtlServerOptions options;
    options.socket_path = path_;
    options.limits.max_tenants = kMaxTenants;
    options.limits.max_classes = max_classes_;
    options.dataplane_version = "test-dp";
    options.num_lcores = 1;
    options.port_names = {"p0"};
    options.log = [](std::string_view) {};
    ctl::CtlCallbacks callbacks;
    callbacks.on_plan = [this](const ctl::PlanView& plan) -> std::expected<uint64_t, std::string> {
      std::lock_guard lock(mu_);
      ++received_.plans;
      received_.generation += 1;
      received_.ids.clear();
      received_.assured_bps.clear();
      for (const abi::PlanTenant& t : plan.tenants()) {
        received_.ids[t.name] = t.id;
        for (uint32_t d = 0; d < abi::kDirections; ++d)
          received_.assured_bps[{t.id, d}] = t.rates[d].assured_bps;
      }
      return received_.generation;
    };
    callbacks.on_rates = [this](const ctl::RatesView& rates) -> std::expected<void, std::string> {
      std::lock_guard lock(mu_);
      ++received_.rate_updates;
      for (const abi::RateEntry& e : rates.entries)
        received_.assured_bps[{e.tenant_id, e.direction}] = e.assured_bps;
      return {};
    };
    auto server =
        ctl::CtlServer::Create(options, callbacks, segment_->fd(), segment_->size_bytes());
    if (!server) {
      ADD_FAILURE() << server.error();
      return false;
    }
    server_ = std::move(*server);
    stop_ = false;
    thread_ = std::thread([this] {
      while (!stop_) {
        server_->Poll(10);
        if (auto_heartbeat_) segment_->Heartbeat(0);
      }
    });
    return true;
  }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  Received received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  ctl::StatsSegment& segment() { return *segment_; }

  // One tick's worth of traffic for a tenant in one direction (lcore 0, class 1).
  void AddTraffic(uint32_t id, uint32_t direction, uint64_t bytes) {
    abi::TenantStats* t = segment_->tenant(0, id, direction);
    t->arrival_bytes += bytes;
    t->arrival_packets += bytes / 1000;
    abi::ClassTx* tx = abi::TxOf(t, 1);
    tx->tx_bytes += bytes;
    tx->tx_packets += bytes / 1000;
  }

 private:
  std::string path_;
  bool auto_heartbeat_;
  uint32_t max_classes_;
  std::unique_ptr<ctl::StatsSegment> segment_;
  std::unique_ptr<ctl::CtlServer> server_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  Received received_;
};

// A port on 127.0.0.1 that was free a moment ago.
inline int FreeTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Sends `request` to 127.0.0.1:port and returns everything the server sends
// until it closes ("" when the connection fails).
inline std::string HttpExchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) >= 0) {
    char buf[1 << 16];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return response;
}

// GET over HTTP/1.0 (the server closes after the reply); returns the body.
inline std::string HttpGet(int port, const std::string& path,
                           const std::string& extra_headers = "") {
  const std::string response = HttpExchange(
      port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n");
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// GET over HTTP/1.1, as Prometheus asks: the reply's header block, and its
// body decoded from chunked transfer encoding with the size of every chunk
// (`chunks` empty and `error` set when the reply is not chunked or a chunk
// is malformed).
struct ChunkedReply {
  std::string headers;
  std::string body;
  std::vector<size_t> chunks;  // data chunks, in order (the final empty one not counted)
  std::string error;
};
inline ChunkedReply HttpGetChunked(int port, const std::string& path,
                                   const std::string& extra_headers = "") {
  ChunkedReply r;
  const std::string response =
      HttpExchange(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                             extra_headers + "\r\n");
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    r.error = "no header block";
    return r;
  }
  r.headers = response.substr(0, head_end + 2);
  if (r.headers.find("\r\nTransfer-Encoding: chunked\r\n") == std::string::npos) {
    r.error = "not chunked";
    return r;
  }
  size_t pos = head_end + 4;
  for (;;) {
    const size_t line_end = response.find("\r\n", pos);
    if (line_end == std::string::npos) {
      r.error = "chunk size line cut short";
      break;
    }
    char* end = nullptr;
    const std::string size_text = response.substr(pos, line_end - pos);
    const unsigned long long size = std::strtoull(size_text.c_str(), &end, 16);
    if (size_text.empty() || end != size_text.c_str() + size_text.size()) {
      r.error = "bad chunk size '" + size_text + "'";
      break;
    }
    pos = line_end + 2;
    if (response.size() < pos + size + 2 || response.compare(pos + size, 2, "\r\n") != 0) {
      r.error = "chunk of " + std::to_string(size) + " bytes cut short";
      break;
    }
    if (size == 0) {
      if (pos + 2 != response.size()) r.error = "bytes after the last chunk";
      return r;
    }
    r.body.append(response, pos, size);
    r.chunks.push_back(size);
    pos += size + 2;
  }
  r.chunks.clear();
  return r;
}

// The value of the sample whose line starts with `series` + ' ', or -1.
inline double SampleValue(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n')
      return std::strtod(text.c_str() + pos + series.size() + 1, nullptr);
    pos += series.size();
  }
  return -1;
}

}  // namespace shaper::testing
