// shaper-dataplane: the DPDK primary process that bridges port pairs and
// shapes both directions. See --help for the command line, and
// docs/architecture.md for how the pieces fit.
//
// Threads: the main lcore runs the control socket, builds and publishes
// plans, and copies port counters into the stats segment; one worker lcore
// per port pair runs the packet loop (dataplane/worker.h).
#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/afxdp_preflight.h"
#include "dataplane/abi/messages.h"
#include "dataplane/ctl/ctl_server.h"
#include "dataplane/ctl/plan_validate.h"
#include "dataplane/ctl/stats_segment.h"
#include "dataplane/exit_check.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/pool_size.h"
#include "dataplane/port.h"
#include "dataplane/runtime_plan.h"
#include "dataplane/worker.h"

namespace shaper::dataplane {
namespace {

volatile std::sig_atomic_t g_signal = 0;
void OnSignal(int sig) {
  g_signal = sig;
}

constexpr const char* kVersion = "shaper-dataplane 0.1.0";
constexpr uint64_t kPortStatsIntervalNs = 100'000'000;

constexpr const char* kDescription =
    R"(shaper-dataplane: bridges DPDK port pairs transparently and shapes both directions.

Usage: shaper-dataplane [EAL args] -- [options]

Port pairs: for each pair A:B, port A faces the tenants. Traffic received on
A and sent out of B is "upload" (tenant matched on the source address);
traffic received on B and sent out of A is "download" (matched on the
destination address). Port numbers are DPDK port ids, in probe order (PCI
devices, then each --vdev in the order given).

Lcores: the main lcore plus one worker lcore per pair, e.g. `-l 0,1` for one
pair.

Without a plan (no --plan, nothing pushed over the control socket yet) the
dataplane is a transparent bridge: every frame passes at line rate, counted
as the default tenant. A plan pushed later takes over without a restart; a
rejected plan leaves the one in force running.

Non-IP frames (ARP, LLDP, ...) go ahead of tenant traffic within 1% of the
shape rate. Malformed IP frames go to the default tenant and class.

SIGINT/SIGTERM: stop receiving, free every queued frame, close the ports,
print `mbufs in use at exit: N` and exit 0 (1 if mbufs leaked). AF_XDP ports:
DPDK 22.11's PMD keeps 2048 mbufs per port in its fill ring after close; N
may include those, and the line says so.

Example (two veth ends through AF_PACKET, no hugepages):
  shaper-dataplane --no-huge -m 1024 --file-prefix shaper -l 0,1 \
    --vdev net_af_packet0,iface=veth-a --vdev net_af_packet1,iface=veth-b \
    -- --pairs 0:1 --plan policy.plan)";

struct Options {
  std::string pairs = "0:1";
  std::string ctl_socket = abi::kDefaultSocketPath;
  uint32_t max_tenants = 4096;
  uint32_t max_classes = abi::kMaxClasses;
  std::string plan_file;
  uint32_t idle_sleep_us = 0;
  uint32_t mbufs = 0;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
};

// Dataplane state of one tenant in one direction, excluding queued packets:
// its profile entry (one per plan), and per worker its scheduler state and
// class queues and its counters in the stats segment.
uint64_t WorkerStateBytes(uint32_t num_classes) {
  return Worker::Sched::TenantStateBytes(num_classes) + abi::TenantStatsBytes(num_classes);
}
uint64_t StateBytesPerTenant(uint32_t num_classes) {
  return sizeof(sched::TenantProfile) + WorkerStateBytes(num_classes);
}

void AddOptions(CLI::App& app, Options& o) {
  app.description(kDescription);
  app.add_option("--pairs", o.pairs, "port pairs A:B[,C:D]; A faces the tenants")
      ->capture_default_str();
  app.add_option("--ctl-socket", o.ctl_socket,
                 "control socket path (unix SOCK_SEQPACKET, mode 0600); 'none' disables it")
      ->capture_default_str();
  app.add_option("--max-tenants", o.max_tenants,
                 "tenant ids a plan may use (sizes queues and the stats segment)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 22));
  app.add_option("--max-classes", o.max_classes,
                 fmt::format("classes a plan may use, 1..{0}; plans with more are refused. Sizes "
                             "the schedulers and the stats segment: state per tenant and "
                             "direction (excluding queued packets) is {1} B at 2 classes, {2} B "
                             "at 4, {3} B at {0}",
                             abi::kMaxClasses, StateBytesPerTenant(2), StateBytesPerTenant(4),
                             StateBytesPerTenant(abi::kMaxClasses)))
      ->capture_default_str()
      ->check(CLI::Range(1u, abi::kMaxClasses));
  app.add_option("--plan", o.plan_file, "plan file to apply at start (from shaper-plan)");
  app.add_option("--idle-sleep-us", o.idle_sleep_us,
                 "sleep this long after 1024 empty polls with nothing queued; 0 = never "
                 "(dedicated cores)")
      ->capture_default_str();
  app.add_option("--mbufs", o.mbufs, "mbuf pool size; 0 = from the plan's rates and queue limits")
      ->capture_default_str();
  app.add_option("--rx-desc", o.rx_descriptors, "RX descriptors per queue")->capture_default_str();
  app.add_option("--tx-desc", o.tx_descriptors, "TX descriptors per queue")->capture_default_str();
}

struct Pair {
  uint16_t a;
  uint16_t b;
};

std::expected<std::vector<Pair>, std::string> ParsePairs(const std::string& text) {
  std::vector<Pair> pairs;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    unsigned a = 0, b = 0;
    char tail = 0;
    if (std::sscanf(std::string(item).c_str(), "%u:%u%c", &a, &b, &tail) != 2 || a > 65535 ||
        b > 65535 || a == b)
      return std::unexpected(
          fmt::format("--pairs: '{}' is not A:B with two different port ids", item));
    pairs.push_back({static_cast<uint16_t>(a), static_cast<uint16_t>(b)});
  }
  if (pairs.empty()) return std::unexpected("--pairs: no pair given");
  for (size_t i = 0; i < pairs.size(); ++i)
    for (size_t j = 0; j < pairs.size(); ++j)
      for (uint16_t p : {pairs[j].a, pairs[j].b})
        if (i != j && (pairs[i].a == p || pairs[i].b == p))
          return std::unexpected(fmt::format("--pairs: port {} is in two pairs", p));
  return pairs;
}

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int Fail(const std::string& text) {
  fmt::print(stderr, "shaper-dataplane: {}\n", text);
  return 1;
}

int WorkerMain(void* arg) {
  return static_cast<Worker*>(arg)->Run();
}

int Run(const Options& opt) {
  if (std::string err = RegisterMbufMeta(); !err.empty()) return Fail(err);
  auto pairs = ParsePairs(opt.pairs);
  if (!pairs) return Fail(pairs.error());

  const uint32_t need_lcores = 1 + static_cast<uint32_t>(pairs->size());
  if (rte_lcore_count() < need_lcores)
    return Fail(
        fmt::format("{} pair(s) need {} lcores (the main one and one worker per pair), "
                    "EAL has {}: pass e.g. -l 0-{}",
                    pairs->size(), need_lcores, rte_lcore_count(), need_lcores - 1));
  const uint16_t ports_available = Port::Available();
  for (const Pair& p : *pairs)
    for (uint16_t id : {p.a, p.b})
      if (id >= ports_available)
        return Fail(
            fmt::format("--pairs: port {} does not exist: DPDK found {} port(s) (add "
                        "--vdev or bind a NIC)",
                        id, ports_available));

  ctl::Limits limits;
  limits.max_tenants = opt.max_tenants;
  limits.max_classes = opt.max_classes;

  // The plan file, validated before anything is allocated for it.
  std::vector<std::byte> plan_bytes;
  std::optional<ctl::PlanView> start_plan;
  if (!opt.plan_file.empty()) {
    auto bytes = ctl::ReadPlanFile(opt.plan_file, limits);
    if (!bytes) return Fail(fmt::format("--plan {}: {}", opt.plan_file, bytes.error()));
    plan_bytes = std::move(*bytes);
    auto view = ctl::ValidatePlan(plan_bytes, limits);
    if (!view) return Fail(fmt::format("--plan {}: {}", opt.plan_file, view.error()));
    start_plan = *view;
  }

  const uint32_t num_ports = static_cast<uint32_t>(pairs->size() * 2);
  PoolSizing sizing{.num_ports = num_ports,
                    .rx_descriptors = opt.rx_descriptors,
                    .tx_descriptors = opt.tx_descriptors,
                    .num_lcores = need_lcores,
                    .explicit_mbufs = opt.mbufs};
  for (const Pair& p : *pairs) {
    for (uint16_t id : {p.a, p.b}) {
      const uint32_t rx = RxQueueMbufs(id, opt.rx_descriptors);
      if (rx > opt.rx_descriptors) sizing.rx_mbufs_beyond_descriptors += rx - opt.rx_descriptors;
    }
  }
  if (start_plan) {
    for (uint32_t d = 0; d < abi::kDirections; ++d) {
      sizing.link_rate_bps[d] = start_plan->link(d).rate_bps;
      sizing.link_queue_bytes[d] = start_plan->link(d).queue_bytes_limit;
    }
    for (const abi::PlanClass& c : start_plan->classes())
      sizing.max_queue_limit_ns = std::max(sizing.max_queue_limit_ns, c.queue_limit_ns);
  }
  const PoolSize pool_size = ComputePoolSize(sizing, static_cast<uint32_t>(pairs->size()));
  rte_mempool* pool =
      rte_pktmbuf_pool_create("shaper_mbufs", pool_size.mbufs, kPoolCacheSize, 0,
                              RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (!pool)
    return Fail(
        fmt::format("mbuf pool of {} mbufs: {} (give EAL more memory with -m, or "
                    "lower --mbufs)",
                    pool_size.mbufs, rte_strerror(rte_errno)));
  fmt::print("mbuf pool: {} mbufs ({} MiB), low watermark {} ({})\n", pool_size.mbufs,
             uint64_t{pool_size.mbufs} * pool->elt_size >> 20, pool_size.low_watermark,
             pool_size.reason);
  const uint64_t num_workers = pairs->size();
  fmt::print(
      "tenant state: {} B per tenant and direction (--max-classes {}: profile {} + scheduler {} "
      "+ counters {}); {} MiB at most for {} tenants x {} directions x {} worker(s)\n",
      StateBytesPerTenant(opt.max_classes), opt.max_classes, sizeof(sched::TenantProfile),
      Worker::Sched::TenantStateBytes(opt.max_classes), abi::TenantStatsBytes(opt.max_classes),
      uint64_t{opt.max_tenants} * abi::kDirections *
              (sizeof(sched::TenantProfile) + num_workers * WorkerStateBytes(opt.max_classes)) >>
          20,
      opt.max_tenants, abi::kDirections, num_workers);

  std::vector<Port> ports;
  std::vector<std::string> port_names;
  for (const Pair& p : *pairs) {
    for (uint16_t id : {p.a, p.b}) {
      auto port = Port::Configure(id,
                                  PortConfig{.queues = 1,
                                             .rx_descriptors = opt.rx_descriptors,
                                             .tx_descriptors = opt.tx_descriptors},
                                  pool);
      if (!port) return Fail(port.error());
      port_names.push_back(port->name());
      ports.push_back(std::move(*port));
    }
  }

  const uint64_t tsc_hz = rte_get_tsc_hz();
  auto stats = ctl::StatsSegment::Create(static_cast<uint32_t>(pairs->size()), opt.max_tenants,
                                         num_ports, opt.max_classes, tsc_hz);
  if (!stats) return Fail(stats.error());
  auto publisher = PlanPublisher::Create(static_cast<uint32_t>(pairs->size()));
  if (!publisher) return Fail(publisher.error());
  PlanPublisher& plans = **publisher;

  uint64_t generation = 0;
  if (start_plan) {
    auto plan = BuildRuntimePlan(*start_plan, ++generation, tsc_hz, opt.max_classes);
    if (!plan) return Fail(fmt::format("--plan {}: {}", opt.plan_file, plan.error()));
    plans.Publish(std::move(*plan));
    (*stats)->SetPlanGeneration(generation);
    fmt::print("plan {}: {} tenants, {} prefixes, {} classes (generation {})\n", opt.plan_file,
               start_plan->tenants().size(), start_plan->prefixes().size(),
               start_plan->classes().size(), generation);
  } else {
    fmt::print("no plan: bridging unshaped until one is pushed\n");
  }

  std::unique_ptr<ctl::CtlServer> ctl;
  if (opt.ctl_socket != "none") {
    ctl::CtlServerOptions co;
    co.socket_path = opt.ctl_socket;
    co.limits = limits;
    co.dataplane_version = kVersion;
    co.num_lcores = static_cast<uint32_t>(pairs->size());
    co.port_names = port_names;
    ctl::CtlCallbacks cb;
    cb.on_plan = [&](const ctl::PlanView& view) -> std::expected<uint64_t, std::string> {
      auto plan = BuildRuntimePlan(view, generation + 1, tsc_hz, opt.max_classes, &plans);
      if (!plan) return std::unexpected(plan.error());
      ++generation;
      plans.Publish(std::move(*plan));
      (*stats)->SetPlanGeneration(generation);
      fmt::print("plan applied: {} tenants, {} prefixes (generation {})\n", view.tenants().size(),
                 view.prefixes().size(), generation);
      return generation;
    };
    cb.on_rates = [&](const ctl::RatesView& rates) -> std::expected<void, std::string> {
      const RuntimePlan* current = plans.current();
      if (!current) return std::unexpected("no plan in force");
      auto plan = ApplyRates(*current, rates, tsc_hz);
      if (!plan) return std::unexpected(plan.error());
      plans.Publish(std::move(*plan));
      return {};
    };
    auto server = ctl::CtlServer::Create(co, cb, (*stats)->fd(), (*stats)->size_bytes());
    if (!server) return Fail(server.error());
    ctl = std::move(*server);
    if (start_plan) ctl->SetPlanInForce(*start_plan, generation);
    fmt::print("control socket: {}\n", ctl->socket_path());
  }
  // The plan file's bytes are no longer needed: the runtime plan holds copies.
  start_plan.reset();
  plan_bytes = {};

  for (Port& p : ports)
    if (auto ok = p.Start(); !ok) return Fail(ok.error());

  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<Worker>> workers;
  bool launch_failed = false;
  uint32_t index = 0;
  unsigned lcore = 0;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    if (index == pairs->size()) break;
    const Pair& p = (*pairs)[index];
    WorkerConfig wc{.index = index,
                    .port_a = p.a,
                    .port_b = p.b,
                    .queue = 0,
                    .pool = pool,
                    .pool_low_watermark = pool_size.low_watermark,
                    .max_tenants = opt.max_tenants,
                    .idle_sleep_us = opt.idle_sleep_us};
    workers.push_back(std::make_unique<Worker>(
        wc, plans, WorkerStats{(*stats)->base(), &(*stats)->header(), index}, stop));
    if (int rc = rte_eal_remote_launch(WorkerMain, workers.back().get(), lcore); rc != 0) {
      // Workers already running must be stopped before the ports close.
      launch_failed = true;
      Fail(fmt::format("launching the worker on lcore {}: {}", lcore, rte_strerror(-rc)));
      workers.pop_back();
      break;
    }
    fmt::print("worker {} on lcore {}: port {} ({}) <-> port {} ({})\n", index, lcore, p.a,
               ports[2 * index].name(), p.b, ports[2 * index + 1].name());
    ++index;
  }
  if (!launch_failed) fmt::print("running\n");
  std::fflush(stdout);

  uint64_t next_port_stats_ns = 0;
  while (!g_signal && !launch_failed) {
    if (ctl) {
      ctl->Poll(10);
    } else {
      rte_delay_us_sleep(10'000);
    }
    const uint64_t now_ns = MonotonicNs();
    if (now_ns >= next_port_stats_ns) {
      next_port_stats_ns = now_ns + kPortStatsIntervalNs;
      for (uint32_t i = 0; i < ports.size(); ++i) {
        const PortCounters c = ports[i].Counters();
        *(*stats)->port(i) = abi::PortStats{c.rx_packets, c.rx_bytes,  c.tx_packets, c.tx_bytes,
                                            c.imissed,    c.rx_nombuf, c.ierrors,    c.oerrors};
      }
      abi::StatsHeader& h = (*stats)->header();
      const unsigned in_use = rte_mempool_in_use_count(pool);
      h.pool_mbufs = pool_size.mbufs;
      h.pool_low_watermark = pool_size.low_watermark;
      h.pool_in_use = in_use;
      h.pool_in_use_peak = std::max(h.pool_in_use_peak, in_use);
    }
    (*stats)->Heartbeat(now_ns);
  }

  fmt::print("signal {}: stopping\n", static_cast<int>(g_signal));
  stop.store(true, std::memory_order_relaxed);
  rte_eal_mp_wait_lcore();
  uint64_t drained = 0;
  uint64_t malformed = 0;
  for (const auto& w : workers) {
    drained += w->totals().drained_at_exit;
    malformed += w->totals().malformed_packets;
  }
  fmt::print("freed {} queued frames\n", drained);
  // Malformed frames forwarded as the default tenant (runts are dropped and
  // counted in the stats segment under drop reason "malformed" instead).
  fmt::print("malformed frames forwarded: {}\n", malformed);
  for (uint32_t i = 0; i < ports.size(); ++i) {
    const PortCounters c = ports[i].Counters();
    fmt::print("port {} ({}): rx {} tx {} imissed {} rx_nombuf {}\n", ports[i].id(),
               ports[i].name(), c.rx_packets, c.tx_packets, c.imissed, c.rx_nombuf);
  }
  uint64_t kept_by_driver = 0;
  for (const Port& p : ports) {
    if (!p.mbufs_kept_after_close()) continue;
    kept_by_driver += p.mbufs_kept_after_close();
    fmt::print("port {} ({}): {} keeps {} mbufs after close (DPDK 22.11: its fill ring)\n", p.id(),
               p.name(), p.driver(), p.mbufs_kept_after_close());
  }
  for (Port& p : ports) p.Close();
  workers.clear();
  ctl.reset();
  publisher->reset();
  const MbufExitCheck mbufs = CheckMbufsAtExit(rte_mempool_in_use_count(pool), kept_by_driver);
  fmt::print("{}\n", mbufs.line);
  std::fflush(stdout);
  rte_mempool_free(pool);
  return mbufs.ok && !launch_failed ? 0 : 1;
}

// EAL parses (and may exit on) --help itself, so our own help is handled
// before rte_eal_init: `--help` after `--`, or anywhere when there is no `--`.
bool WantsHelp(int argc, char** argv) {
  bool after_dashes = false;
  bool has_dashes = false;
  for (int i = 1; i < argc; ++i) has_dashes = has_dashes || std::string_view(argv[i]) == "--";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") after_dashes = true;
    if ((a == "--help" || a == "-h") && (after_dashes || !has_dashes)) return true;
  }
  return false;
}

}  // namespace
}  // namespace shaper::dataplane

int main(int argc, char** argv) {
  using namespace shaper::dataplane;
  Options opt;
  if (WantsHelp(argc, argv)) {
    CLI::App app;
    AddOptions(app, opt);
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  // Line-buffered even into a file or a pipe (journald): the log says when
  // a plan was applied as it happens, not when a 4 KiB buffer fills.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  // AF_XDP ports loading the steering program: say what is missing before
  // the PMD fails inside libbpf (bpf/afxdp_preflight.h).
  const auto afxdp_notices = shaper::bpf::PrepareAfXdpPorts(
      shaper::bpf::FindAfXdpPorts(std::span<char* const>(argv + 1, static_cast<size_t>(argc - 1))));
  if (!afxdp_notices) return Fail(afxdp_notices.error().message);
  for (const std::string& n : *afxdp_notices) fmt::print("{}\n", n);

  // Whether the EAL arguments (before `--`) ask for no hugepages.
  bool no_huge = false;
  for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i)
    no_huge = no_huge || std::string_view(argv[i]) == "--no-huge";
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    // EAL's own lines above say what failed; the usual cause is memory.
    return Fail(fmt::format(
        "EAL init failed: {} (see EAL's messages above{})", rte_strerror(rte_errno),
        no_huge ? ""
                : "; without hugepages reserved and hugetlbfs mounted, reserve them (docs/"
                  "operations.md, \"Hugepages\") or pass --no-huge"));
  }
  CLI::App app;
  AddOptions(app, opt);
  std::vector<std::string> args;
  for (int i = argc - 1; i > eal_args; --i)
    args.emplace_back(argv[i]);  // CLI11 wants them reversed
  int rc = 0;
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    rc = app.exit(e);
    rte_eal_cleanup();
    return rc == 0 ? 0 : 2;
  }
  rc = Run(opt);
  rte_eal_cleanup();
  return rc;
}
