// shaper-control-bench: the control plane at scale (docs/benchmarks.md,
// "Control"). Three measurements, each against a stated baseline:
//
//   allocation  one tick of the hierarchical allocator (control/alloc) over
//               1k, 10k and 100k tenants in 100 groups (10 top groups with 9
//               subgroups each), seeded random guarantees, ceilings, weights
//               and demands, the link at half of what the tenants want (so
//               every node shares, the slow path). Between ticks 10% of the
//               demands move, as they would. Baselines: the same tenants with
//               no groups (flat), and a plain std::sort of the demands.
//   plan        a generated policy with N tenants loaded from a file,
//               compiled with TenantIds, and pushed over a real unix socket to
//               an in-process ctl server that validates it (as the dataplane
//               does) before answering.
//   scrape      a real ControlCore connected to that server, the stats
//               segment holding counters for every tenant, two allocation
//               ticks, then HTTP GETs of /metrics/tenants (every tenant; also
//               with Accept-Encoding: gzip) and /metrics (top-N, the
//               baseline) over 127.0.0.1.
//
// Targets (DESIGN.md) are printed with PASS or SHORT; a miss never fails the
// process: timings depend on the machine, and CI runs only --smoke.
#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <expected>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/loader.h"
#include "control/alloc/allocator.h"
#include "control/daemon/core.h"
#include "control/daemon/metrics.h"
#include "control/dpclient/dataplane_client.h"
#include "control/dpclient/plan_compiler.h"
#include "dataplane/ctl/ctl_server.h"
#include "dataplane/ctl/stats_segment.h"

namespace shaper::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMbit = 1'000'000;
constexpr double kAllocTargetSeconds = 5e-3;  // 100k tenants, one tick
constexpr double kPlanTargetSeconds = 1.0;    // 100k tenants, compile + push

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of this thread: on a shared machine the wall clock also counts
// the time other processes held the core; this does not.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Stats {
  double median = 0;
  double p99 = 0;
  double cpu_median = 0;  // thread CPU time, where measured
};

// Nearest-rank percentiles.
Stats Summarize(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double q) {
    const size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return samples[std::clamp<size_t>(i, 1, samples.size()) - 1];
  };
  return {rank(0.5), rank(0.99)};
}

// "1k", "100k", "1m": the suffix of the JSON keys.
std::string SizeName(size_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return fmt::format("{}m", n / 1'000'000);
  if (n >= 1'000 && n % 1'000 == 0) return fmt::format("{}k", n / 1'000);
  return std::to_string(n);
}

std::string Verdict(double seconds, double target) {
  return seconds <= target ? "PASS" : "SHORT";
}

// ---------------------------------------------------------------- allocation

constexpr uint32_t kTopGroups = 10;
constexpr uint32_t kSubgroupsPerTop = 9;

struct AllocSetup {
  std::vector<control::alloc::GroupSpec> groups;
  std::vector<control::alloc::TenantSpec> tenants;
  uint64_t capacity_bps = 0;
};

// `grouped` false gives the same tenants (same draws) at the link directly.
AllocSetup MakeAllocSetup(size_t tenants, bool grouped) {
  using control::alloc::kNoGroup;
  std::mt19937_64 rng(42);
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  AllocSetup s;
  const uint32_t num_groups = kTopGroups * (1 + kSubgroupsPerTop);
  for (uint32_t g = 0; g < num_groups; ++g) {
    control::alloc::GroupSpec x;
    x.parent = g < kTopGroups ? kNoGroup : g % kTopGroups;
    x.ceiling_bps = uniform(1'000, 100'000) * kMbit;
    x.weight = static_cast<uint32_t>(uniform(1, 10));
    if (grouped) s.groups.push_back(x);
  }
  uint64_t want_bps = 0;
  s.tenants.resize(tenants);
  for (control::alloc::TenantSpec& t : s.tenants) {
    // Tenants sit in the subgroups (the leaves), as operators nest them.
    const auto group = static_cast<uint32_t>(uniform(kTopGroups, num_groups - 1));
    t.group = grouped ? group : kNoGroup;
    t.guaranteed_bps = uniform(0, 10) * kMbit;
    t.ceiling_bps = uniform(10, 1000) * kMbit;
    t.weight = static_cast<uint32_t>(uniform(1, 8));
    t.demand_bps = uniform(0, 3) == 0 ? 0 : uniform(0, 2000) * kMbit;
    want_bps += std::min(t.demand_bps, t.ceiling_bps);
  }
  s.capacity_bps = want_bps / 2;  // congested: every node shares
  return s;
}

struct AllocResult {
  size_t tenants = 0;
  Stats grouped;
  Stats flat;
  Stats sort;
};

// Moves 10% of the demands, as between two ticks (not timed).
void MoveDemands(std::vector<control::alloc::TenantSpec>& tenants, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, tenants.size() - 1);
  std::uniform_int_distribution<uint64_t> demand(0, 2000);
  for (size_t k = 0; k < tenants.size() / 10; ++k)
    tenants[pick(rng)].demand_bps = demand(rng) * kMbit;
}

std::expected<Stats, std::string> TimeAllocation(AllocSetup s, int ticks) {
  control::alloc::Allocator allocator;
  control::alloc::Allocation out;
  std::mt19937_64 rng(7);
  std::vector<double> samples;
  std::vector<double> cpu;
  for (int i = -2; i < ticks; ++i) {  // two warm-up ticks size the buffers
    MoveDemands(s.tenants, rng);
    const control::alloc::Problem problem{s.capacity_bps, s.groups, s.tenants};
    const double cpu_start = ThreadCpuSeconds();
    const auto start = Clock::now();
    auto done = allocator.Allocate(problem, out);
    const double seconds = Since(start);
    const double cpu_seconds = ThreadCpuSeconds() - cpu_start;
    if (!done) return std::unexpected("allocation failed: " + done.error());
    if (out.total_bps != std::min(s.capacity_bps, out.link_want_bps)) {
      return std::unexpected(
          fmt::format("allocation not work conserving: total {} bps, capacity {}", out.total_bps,
                      s.capacity_bps));
    }
    if (i >= 0) {
      samples.push_back(seconds);
      cpu.push_back(cpu_seconds);
    }
  }
  Stats stats = Summarize(std::move(samples));
  stats.cpu_median = Summarize(std::move(cpu)).median;
  return stats;
}

Stats TimeSort(const AllocSetup& s, int ticks) {
  std::vector<uint64_t> demands(s.tenants.size());
  std::vector<double> samples;
  for (int i = 0; i < ticks; ++i) {
    for (size_t t = 0; t < s.tenants.size(); ++t)
      demands[t] = s.tenants[t].demand_bps ^ static_cast<uint64_t>(i);
    const auto start = Clock::now();
    std::sort(demands.begin(), demands.end());
    samples.push_back(Since(start));
    if (demands.front() > demands.back()) std::abort();  // keeps the sort observable
  }
  return Summarize(std::move(samples));
}

std::expected<AllocResult, std::string> BenchAllocation(size_t tenants, int ticks) {
  AllocResult r;
  r.tenants = tenants;
  auto grouped = TimeAllocation(MakeAllocSetup(tenants, true), ticks);
  if (!grouped) return std::unexpected(grouped.error());
  auto flat = TimeAllocation(MakeAllocSetup(tenants, false), ticks);
  if (!flat) return std::unexpected(flat.error());
  r.grouped = *grouped;
  r.flat = *flat;
  r.sort = TimeSort(MakeAllocSetup(tenants, false), ticks);
  return r;
}

// ---------------------------------------------------------------- policy

// A valid policy with `tenants` tenants in 100 groups (10 pops with 9 sites
// each, tenants round-robin over the sites), one IPv4 /29 each. Guarantees
// keep 10% spare at every level so the loader's sums always hold.
std::string MakePolicyText(size_t tenants) {
  std::mt19937_64 rng(1);
  constexpr uint64_t kShapeKbit = 98'000'000;  // 100Gbit at 98%
  const uint64_t pop_g_kbit = kShapeKbit * 9 / 10 / kTopGroups;
  const uint64_t site_g_kbit = pop_g_kbit * 9 / 10 / kSubgroupsPerTop;
  const uint32_t sites = kTopGroups * kSubgroupsPerTop;
  const size_t per_site = (tenants + sites - 1) / sites;
  const uint64_t tenant_g_kbit = site_g_kbit * 9 / 10 / std::max<size_t>(per_site, 1);
  constexpr uint64_t kSiteCeilingsGbit[] = {10, 20, 49};
  constexpr uint64_t kTenantCeilingsMbit[] = {10, 100, 1000, 10'000};

  std::string out;
  out.reserve(tenants * 120 + 8192);
  out += "version: 1\nlink: {capacity: 100Gbit, shape_at: 98%}\nclasses:\n";
  out += "  - {name: realtime, priority: latency, dscp: [EF], max_share: 20%, queue_limit: 2ms}\n";
  out += "  - {name: bulk, priority: bulk, queue_limit: 50ms, default: true}\n";
  out += "groups:\n";
  for (uint32_t p = 0; p < kTopGroups; ++p) {
    out += fmt::format("  - {{name: pop{}, guaranteed: {}Kbit, ceiling: 98Gbit}}\n", p, pop_g_kbit);
  }
  for (uint32_t s = 0; s < sites; ++s) {
    out += fmt::format(
        "  - {{name: site{}, parent: pop{}, guaranteed: {}Kbit, ceiling: {}Gbit, weight: {}}}\n", s,
        s % kTopGroups, site_g_kbit, kSiteCeilingsGbit[rng() % 3], 1 + rng() % 4);
  }
  out += "tenants:\n";
  for (size_t t = 0; t < tenants; ++t) {
    // /29 block t of 10.0.0.0/8: 2^21 blocks, disjoint by construction.
    const auto block = static_cast<uint32_t>(t) << 3;
    // Small tenants (few per site) would be guaranteed more than a small
    // ceiling: cap at half the ceiling, which only lowers the sums.
    const uint64_t ceiling_mbit = kTenantCeilingsMbit[rng() % 4];
    const uint64_t guaranteed_kbit = std::min(tenant_g_kbit, ceiling_mbit * 1000 / 2);
    out += fmt::format(
        "  - {{name: t{:07}, group: site{}, match: {{prefixes: [10.{}.{}.{}/29]}}, guaranteed: "
        "{}Kbit, "
        "ceiling: {}Mbit, weight: {}}}\n",
        t, t % sites, (block >> 16) & 255, (block >> 8) & 255, block & 255, guaranteed_kbit,
        ceiling_mbit, 1 + rng() % 8);
  }
  out += "default_tenant: {ceiling: 1Gbit}\nallocation: {mode: dynamic, interval: 100ms}\n";
  return out;
}

// ---------------------------------------------------------------- dataplane

// The dataplane's control server in this process, on its own thread, with a
// stats segment sized for `max_tenants`.
class Dataplane {
 public:
  static std::expected<std::unique_ptr<Dataplane>, std::string> Start(const std::string& path,
                                                                      uint32_t max_tenants) {
    auto dp = std::unique_ptr<Dataplane>(new Dataplane());
    auto seg = ctl::StatsSegment::Create(1, max_tenants, 1, abi::kMaxClasses, 1'000'000'000);
    if (!seg) return std::unexpected("stats segment: " + seg.error());
    dp->segment_ = std::move(*seg);
    ctl::CtlServerOptions options;
    options.socket_path = path;
    options.limits.max_tenants = max_tenants;
    options.dataplane_version = "control-bench";
    options.num_lcores = 1;
    options.port_names = {"p0"};
    options.log = [](std::string_view line) { fmt::print(stderr, "ctl server: {}\n", line); };
    ctl::CtlCallbacks callbacks;
    Dataplane* self = dp.get();
    callbacks.on_plan = [self](const ctl::PlanView& plan) -> std::expected<uint64_t, std::string> {
      self->plan_tenants_ = plan.tenants().size();
      return ++self->generation_;
    };
    callbacks.on_rates = [](const ctl::RatesView&) -> std::expected<void, std::string> {
      return {};
    };
    auto server = ctl::CtlServer::Create(std::move(options), std::move(callbacks),
                                         dp->segment_->fd(), dp->segment_->size_bytes());
    if (!server) return std::unexpected("ctl server: " + server.error());
    dp->server_ = std::move(*server);
    dp->thread_ = std::jthread([self](std::stop_token stop) {
      while (!stop.stop_requested()) self->server_->Poll(5);
    });
    return dp;
  }
  ~Dataplane() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  ctl::StatsSegment& segment() { return *segment_; }
  size_t plan_tenants() const { return plan_tenants_.load(); }

 private:
  Dataplane() = default;
  std::unique_ptr<ctl::StatsSegment> segment_;
  std::unique_ptr<ctl::CtlServer> server_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<size_t> plan_tenants_{0};
  std::jthread thread_;  // last: stops before the server it polls goes away
};

struct PlanResult {
  size_t tenants = 0;
  size_t plan_bytes = 0;
  double load_seconds = 0;
  double compile_seconds = 0;  // TenantIds::Update + CompilePlan (median of reps)
  double push_seconds = 0;     // memfd, send, validate, install callback, reply
  double total_seconds = 0;
};

std::expected<PlanResult, std::string> BenchPlan(const std::string& policy_path, size_t tenants,
                                                 const std::string& socket_path, int reps) {
  PlanResult r;
  r.tenants = tenants;
  auto start = Clock::now();
  auto policy = config::LoadPolicyFile(policy_path);
  r.load_seconds = Since(start);
  if (!policy) {
    // The first few are enough to see what the generator got wrong.
    const config::Diagnostics& all = policy.error();
    const config::Diagnostics first(all.begin(), all.begin() + std::min<size_t>(all.size(), 5));
    return std::unexpected(
        fmt::format("policy ({} errors):\n{}", all.size(), config::FormatDiagnostics(first)));
  }

  auto client = dpclient::DataplaneClient::Connect(socket_path, std::chrono::milliseconds(30'000));
  if (!client) return std::unexpected("connect: " + client.error());
  auto hello = (*client)->Hello("control-bench");
  if (!hello) return std::unexpected("hello: " + hello.error());

  std::vector<double> compile, push, total;
  for (int i = 0; i < reps; ++i) {
    start = Clock::now();
    dpclient::TenantIds ids;  // fresh: the first load of the policy
    ids.Update(*policy);
    auto plan = dpclient::CompilePlan(*policy, ids, {hello->max_tenants});
    compile.push_back(Since(start));
    if (!plan) return std::unexpected("compile: " + plan.error());
    const auto push_start = Clock::now();
    auto reply = (*client)->ApplyPlan(*plan);
    push.push_back(Since(push_start));
    total.push_back(Since(start));
    if (!reply) return std::unexpected("apply-plan: " + reply.error());
    if (!reply->ok()) return std::unexpected("apply-plan refused: " + reply->ToString());
    r.plan_bytes = plan->size();
  }
  r.compile_seconds = Summarize(compile).median;
  r.push_seconds = Summarize(push).median;
  r.total_seconds = Summarize(total).median;
  return r;
}

// ---------------------------------------------------------------- scrape

struct HttpResult {
  double seconds = 0;
  size_t body_bytes = 0;
  size_t series = 0;  // sample lines (not # HELP / # TYPE)
  bool ok = false;
};

// Sends `request` to 127.0.0.1:port and hands what comes back, until the
// server closes, to on_bytes(data, n).
template <class OnBytes>
void HttpExchange(int port, const std::string& request, OnBytes&& on_bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[1 << 16];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) on_bytes(buf, static_cast<size_t>(n));
  }
  close(fd);
}

// GET over HTTP/1.0; timed from connect to the server closing. With `gzip`
// the request accepts a gzip body, and sample lines are not counted.
HttpResult HttpGet(int port, const std::string& path, bool gzip = false) {
  HttpResult r;
  const auto start = Clock::now();
  std::string response;
  HttpExchange(port,
               "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n" +
                   (gzip ? "Accept-Encoding: gzip\r\n" : "") + "\r\n",
               [&](const char* data, size_t n) { response.append(data, n); });
  r.seconds = Since(start);
  const size_t body = response.find("\r\n\r\n");
  r.ok = response.starts_with("HTTP/1.") && response.find(" 200 ") != std::string::npos &&
         body != std::string::npos;
  if (!r.ok) return r;
  r.body_bytes = response.size() - body - 4;
  if (gzip) return r;
  for (size_t line = body + 4; line < response.size();) {
    const size_t end = std::min(response.find('\n', line), response.size());
    if (end > line && response[line] != '#') ++r.series;
    line = end + 1;
  }
  return r;
}

// Memory a scrape costs the process: its peak resident set during one GET
// above the resident set before it (the high-water mark is reset first,
// /proc/self/clear_refs "5"). The client here keeps no body (it counts the
// bytes), so the growth is the server's. HTTP/1.1 gets the chunked reply,
// HTTP/1.0 the whole body with its length.
struct ScrapeMemory {
  double seconds = 0;
  size_t wire_bytes = 0;
  uint64_t peak_growth_bytes = 0;
  bool ok = false;
};

uint64_t StatusKiB(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field))
      return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10);
  }
  return 0;
}

ScrapeMemory MeasureScrapeMemory(int port, const std::string& path, bool http11) {
  ScrapeMemory r;
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    if (!clear.flush()) return r;
  }
  const uint64_t before_kib = StatusKiB("VmRSS:");
  const auto start = Clock::now();
  std::string head;
  HttpExchange(port,
               "GET " + path + (http11 ? " HTTP/1.1" : " HTTP/1.0") +
                   "\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\r\n",
               [&](const char* data, size_t n) {
                 if (head.size() < 64) head.append(data, std::min<size_t>(n, 64));
                 r.wire_bytes += n;
               });
  r.seconds = Since(start);
  r.ok = head.starts_with("HTTP/1.") && head.find(" 200 ") != std::string::npos;
  const uint64_t peak_kib = StatusKiB("VmHWM:");
  r.peak_growth_bytes = peak_kib > before_kib ? (peak_kib - before_kib) * 1024 : 0;
  return r;
}

struct ScrapeResult {
  size_t tenants = 0;
  HttpResult all;              // /metrics/tenants, median time of reps
  HttpResult top;              // /metrics
  double collect_seconds = 0;  // CollectMetrics(all) alone: building the families, no text
  // AppendMetricsText(all) alone: the text /metrics/tenants serves, no HTTP.
  double text_seconds = 0;
  // /metrics/tenants asked with Accept-Encoding: gzip, as Prometheus asks
  // (series not counted: the body is compressed).
  HttpResult all_gzip;
  // The slowest allocation tick while a /metrics/tenants scrape runs beside
  // it, against the median tick with no scrape: how long the scrape holds the
  // core's lock over the control loop.
  double tick_max_during_scrape = 0;
  double tick_median_alone = 0;
  // /metrics/tenants with gzip: chunked (HTTP/1.1, as Prometheus) against
  // the whole body (HTTP/1.0), the baseline.
  ScrapeMemory memory_chunked;
  ScrapeMemory memory_whole;
};

// Every tenant offers traffic in both directions for one interval.
void AddTraffic(ctl::StatsSegment& segment, size_t tenants, uint64_t round) {
  for (uint32_t id = 1; id <= tenants; ++id) {
    for (uint32_t d = 0; d < abi::kDirections; ++d) {
      abi::TenantStats* t = segment.tenant(0, id, d);
      const uint64_t bytes = (1 + (id * 7 + round) % 97) * 10'000;
      t->arrival_bytes += bytes;
      t->arrival_packets += bytes / 1000;
      abi::ClassTx* tx = abi::TxOf(t, 1);
      tx->tx_bytes += bytes - bytes / 10;
      tx->tx_packets += bytes / 1000;
      t->drop_packets[0] += bytes / 10'000;
    }
  }
}

std::expected<ScrapeResult, std::string> BenchScrape(const std::string& policy_path, size_t tenants,
                                                     const std::string& socket_path, Dataplane& dp,
                                                     int reps) {
  ScrapeResult r;
  r.tenants = tenants;
  std::atomic<uint64_t> now_ns{1'000'000'000};
  control::Logger log(control::LogLevel::kWarn,
                      [](std::string_view line) { fmt::print(stderr, "{}", line); });
  control::CoreOptions options;
  options.policy_path = policy_path;
  control::ControlCore core(
      options, control::SocketConnector(socket_path, std::chrono::milliseconds(30'000)),
      [&] { return now_ns.load(); }, [] { return 1'800'000'000.0; }, log);
  if (auto started = core.Start(); !started)
    return std::unexpected("core start: " + started.error());
  core.Tick();
  if (!core.dataplane_up())
    return std::unexpected("core did not connect to the in-process dataplane");
  if (dp.plan_tenants() < tenants) {
    return std::unexpected(
        fmt::format("dataplane got {} tenants, want {}", dp.plan_tenants(), tenants));
  }
  for (uint64_t round = 0; round < 3; ++round) {  // first sample, then two allocations
    AddTraffic(dp.segment(), tenants, round);
    now_ns += 100'000'000;
    dp.segment().Heartbeat(now_ns);
    core.Tick();
  }
  if (!core.dataplane_up()) return std::unexpected("core lost the dataplane while ticking");

  std::vector<double> collect;
  for (int i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    const auto families = core.CollectMetrics(true);
    collect.push_back(Since(start));
    if (families.empty()) return std::unexpected("CollectMetrics returned no families");
  }
  r.collect_seconds = Summarize(std::move(collect)).median;
  std::vector<double> text;
  for (int i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    std::string body;
    core.AppendMetricsText(true, body);
    text.push_back(Since(start));
    if (body.empty()) return std::unexpected("AppendMetricsText wrote nothing");
  }
  r.text_seconds = Summarize(std::move(text)).median;

  auto server = control::MetricsServer::Start("127.0.0.1:0", core);
  if (!server) return std::unexpected("metrics server: " + server.error());
  const int port = (*server)->port();
  auto time_path = [&](const std::string& path,
                       bool gzip = false) -> std::expected<HttpResult, std::string> {
    std::vector<double> seconds;
    HttpResult last;
    for (int i = 0; i < reps; ++i) {
      last = HttpGet(port, path, gzip);
      if (!last.ok) return std::unexpected(fmt::format("GET {} on port {} failed", path, port));
      seconds.push_back(last.seconds);
    }
    last.seconds = Summarize(std::move(seconds)).median;
    return last;
  };
  auto all = time_path("/metrics/tenants");
  if (!all) return std::unexpected(all.error());
  auto top = time_path("/metrics");
  if (!top) return std::unexpected(top.error());
  auto all_gzip = time_path("/metrics/tenants", true);
  if (!all_gzip) return std::unexpected(all_gzip.error());
  r.all = *all;
  r.top = *top;
  r.all_gzip = *all_gzip;
  r.memory_whole = MeasureScrapeMemory(port, "/metrics/tenants", false);
  r.memory_chunked = MeasureScrapeMemory(port, "/metrics/tenants", true);
  if (!r.memory_whole.ok || !r.memory_chunked.ok)
    return std::unexpected("GET /metrics/tenants for the memory figures failed");

  auto tick = [&] {
    const auto start = Clock::now();
    AddTraffic(dp.segment(), tenants, 3);
    now_ns += 100'000'000;
    dp.segment().Heartbeat(now_ns);
    core.Tick();
    return Since(start);
  };
  std::vector<double> alone;
  for (int i = 0; i < 5; ++i) alone.push_back(tick());
  r.tick_median_alone = Summarize(std::move(alone)).median;
  std::atomic<bool> done{false};
  HttpResult during;
  std::thread scraper([&] {
    during = HttpGet(port, "/metrics/tenants");
    done = true;
  });
  while (!done) r.tick_max_during_scrape = std::max(r.tick_max_during_scrape, tick());
  scraper.join();
  if (!during.ok) return std::unexpected("GET /metrics/tenants beside the ticks failed");
  if (r.all.body_bytes <= r.top.body_bytes) {
    return std::unexpected(fmt::format("/metrics/tenants ({} B) not larger than /metrics ({} B)",
                                       r.all.body_bytes, r.top.body_bytes));
  }
  return r;
}

// ---------------------------------------------------------------- main

constexpr const char* kUsage =
    R"(shaper-control-bench: allocation, plan compile+push and /metrics scrape at scale

  shaper-control-bench            1k/10k/100k allocation, 100k plan and scrape (about a minute)
  shaper-control-bench --smoke    tiny sizes (what CI runs)
  shaper-control-bench --json     one JSON object on stdout instead of the table
  shaper-control-bench --help

Targets are printed with PASS or SHORT; a missed target does not fail the process.
)";

std::string Ms(double seconds) {
  return fmt::format("{:.3f} ms", seconds * 1e3);
}

int Run(bool smoke, bool json_out) {
  const std::vector<size_t> alloc_sizes =
      smoke ? std::vector<size_t>{1'000} : std::vector<size_t>{1'000, 10'000, 100'000};
  const int ticks = smoke ? 5 : 50;
  const size_t big = smoke ? 1'000 : 100'000;
  const int reps = smoke ? 1 : 3;
  const std::string big_name = SizeName(big);
  nlohmann::json j;
  j["smoke"] = smoke;
  j["ticks"] = ticks;

  auto say = [&](const std::string& line) {
    if (!json_out) fmt::print("{}\n", line);
  };
  say("== allocation: one tick, 100 groups in two levels, link at 50% of wants, 10% of demands "
      "move per tick");
  say(fmt::format("{:>9} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9}", "tenants", "grouped p50",
                  "grouped p99", "grouped cpu", "flat p50", "flat p99", "sort p50", "vs flat"));
  for (size_t n : alloc_sizes) {
    auto r = BenchAllocation(n, ticks);
    if (!r) {
      fmt::print(stderr, "allocation {}: {}\n", n, r.error());
      return 1;
    }
    const std::string k = SizeName(n);
    j["allocation_seconds_" + k] = r->grouped.median;
    j["allocation_p99_seconds_" + k] = r->grouped.p99;
    j["allocation_cpu_seconds_" + k] = r->grouped.cpu_median;
    j["allocation_flat_seconds_" + k] = r->flat.median;
    j["allocation_flat_p99_seconds_" + k] = r->flat.p99;
    j["sort_seconds_" + k] = r->sort.median;
    j["allocation_vs_flat_" + k] = r->grouped.median / r->flat.median;
    std::string verdict;
    if (n == 100'000) {
      j["allocation_target_seconds_100k"] = kAllocTargetSeconds;
      j["allocation_pass_100k"] = r->grouped.median <= kAllocTargetSeconds;
      verdict = fmt::format("  target < 5 ms: {}", Verdict(r->grouped.median, kAllocTargetSeconds));
    }
    say(fmt::format("{:>9} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8.2f}x{}", n,
                    Ms(r->grouped.median), Ms(r->grouped.p99), Ms(r->grouped.cpu_median),
                    Ms(r->flat.median), Ms(r->flat.p99), Ms(r->sort.median),
                    r->grouped.median / r->flat.median, verdict));
  }

  char tmpl[] = "/tmp/shaper-control-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    fmt::print(stderr, "mkdtemp {}: {}\n", tmpl, std::strerror(errno));
    return 1;
  }
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  const std::string policy_path = dir + "/policy.yaml";
  const std::string socket_path = dir + "/dp.sock";
  {
    std::ofstream out(policy_path, std::ios::trunc);
    out << MakePolicyText(big);
    if (!out) {
      fmt::print(stderr, "writing {} failed\n", policy_path);
      return 1;
    }
  }
  auto dp = Dataplane::Start(socket_path, static_cast<uint32_t>(big + 1024));
  if (!dp) {
    fmt::print(stderr, "{}\n", dp.error());
    return 1;
  }

  auto plan = BenchPlan(policy_path, big, socket_path, reps);
  if (!plan) {
    fmt::print(stderr, "plan: {}\n", plan.error());
    return 1;
  }
  j["policy_load_seconds_" + big_name] = plan->load_seconds;
  j["plan_compile_seconds_" + big_name] = plan->compile_seconds;
  j["plan_push_seconds_" + big_name] = plan->push_seconds;
  j["plan_total_seconds_" + big_name] = plan->total_seconds;
  j["plan_bytes_" + big_name] = plan->plan_bytes;
  if (big == 100'000) {
    j["plan_target_seconds_100k"] = kPlanTargetSeconds;
    j["plan_pass_100k"] = plan->total_seconds <= kPlanTargetSeconds;
  }
  say("");
  say(fmt::format(
      "== plan: {} tenants in 100 groups, unix socket to an in-process ctl server (median of {})",
      big, reps));
  say(fmt::format("  policy load (YAML, not in total) {:>12}", Ms(plan->load_seconds)));
  say(fmt::format("  compile (TenantIds + CompilePlan) {:>11}", Ms(plan->compile_seconds)));
  say(fmt::format("  push + validate + reply          {:>12}", Ms(plan->push_seconds)));
  // The target is stated for 100k tenants; smaller runs show the time only.
  say(fmt::format(
      "  total                            {:>12}{}", Ms(plan->total_seconds),
      big == 100'000 ? "  target < 1 s: " + Verdict(plan->total_seconds, kPlanTargetSeconds) : ""));
  say(fmt::format("  plan size                        {:>9.1f} MiB",
                  static_cast<double>(plan->plan_bytes) / (1 << 20)));

  auto scrape = BenchScrape(policy_path, big, socket_path, **dp, reps);
  if (!scrape) {
    fmt::print(stderr, "scrape: {}\n", scrape.error());
    return 1;
  }
  j["scrape_seconds_" + big_name] = scrape->all.seconds;
  j["scrape_bytes_" + big_name] = scrape->all.body_bytes;
  j["scrape_series_" + big_name] = scrape->all.series;
  j["scrape_collect_seconds_" + big_name] = scrape->collect_seconds;
  j["scrape_text_seconds_" + big_name] = scrape->text_seconds;
  j["scrape_gzip_seconds_" + big_name] = scrape->all_gzip.seconds;
  j["scrape_gzip_bytes_" + big_name] = scrape->all_gzip.body_bytes;
  j["scrape_top_seconds_" + big_name] = scrape->top.seconds;
  j["scrape_top_bytes_" + big_name] = scrape->top.body_bytes;
  j["tick_max_during_scrape_seconds_" + big_name] = scrape->tick_max_during_scrape;
  j["tick_median_seconds_" + big_name] = scrape->tick_median_alone;
  say("");
  say(fmt::format(
      "== scrape: ControlCore over a stats segment with {} tenants, HTTP/1.0 GET on 127.0.0.1 "
      "(median of {})",
      big, reps));
  say(fmt::format("  /metrics/tenants (all)  {:>12}  {:>9.1f} MiB  {:>9} series",
                  Ms(scrape->all.seconds), static_cast<double>(scrape->all.body_bytes) / (1 << 20),
                  scrape->all.series));
  say(fmt::format("    of which the text alone (AppendMetricsText)  {}", Ms(scrape->text_seconds)));
  say(fmt::format("    CollectMetrics alone (families, not served)  {}",
                  Ms(scrape->collect_seconds)));
  say(fmt::format(
      "  /metrics/tenants, gzip  {:>12}  {:>9.1f} MiB  (Accept-Encoding: gzip, as Prometheus)",
      Ms(scrape->all_gzip.seconds), static_cast<double>(scrape->all_gzip.body_bytes) / (1 << 20)));
  say(fmt::format("  /metrics (top-N)        {:>12}  {:>9.1f} KiB  {:>9} series",
                  Ms(scrape->top.seconds), static_cast<double>(scrape->top.body_bytes) / 1024,
                  scrape->top.series));
  say(
      fmt::format("  allocation tick: median {} alone, slowest {} beside a /metrics/tenants scrape"
                  " ({:.1f}x)",
                  Ms(scrape->tick_median_alone), Ms(scrape->tick_max_during_scrape),
                  scrape->tick_max_during_scrape / std::max(scrape->tick_median_alone, 1e-9)));
  j["scrape_memory_chunked_bytes_" + big_name] = scrape->memory_chunked.peak_growth_bytes;
  j["scrape_memory_whole_bytes_" + big_name] = scrape->memory_whole.peak_growth_bytes;
  auto mib = [](uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  say(fmt::format(
      "  scrape memory, /metrics/tenants gzip (peak RSS growth of one GET): HTTP/1.1 chunked "
      "{:.1f} MiB in {} ({:.1f} MiB sent), HTTP/1.0 whole body (baseline) {:.1f} MiB in {}: "
      "{:.3f}x",
      mib(scrape->memory_chunked.peak_growth_bytes), Ms(scrape->memory_chunked.seconds),
      mib(scrape->memory_chunked.wire_bytes), mib(scrape->memory_whole.peak_growth_bytes),
      Ms(scrape->memory_whole.seconds),
      static_cast<double>(scrape->memory_chunked.peak_growth_bytes) /
          static_cast<double>(std::max<uint64_t>(scrape->memory_whole.peak_growth_bytes, 1))));
  if (json_out) fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace
}  // namespace shaper::bench

int main(int argc, char** argv) {
  bool smoke = false;
  bool json_out = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--smoke") {
      smoke = true;
    } else if (arg == "--json") {
      json_out = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(shaper::bench::kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument '%s'\n%s", argv[i], shaper::bench::kUsage);
      return 2;
    }
  }
  return shaper::bench::Run(smoke, json_out);
}
