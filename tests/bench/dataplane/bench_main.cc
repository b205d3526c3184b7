// shaper-bench: shaper's packet path against DPDK's rte_sched and plain
// forwarding, in one process, on one core, with the same generator, pool and
// TX port, so the three figures differ only by what each variant does per
// frame. docs/benchmarks.md explains the setup and records results.
//
//   sudo shaper-bench                      # the full table (a few minutes)
//   sudo shaper-bench --smoke              # seconds: what CI runs
//   sudo shaper-bench --accuracy           # per-tenant rate error at a low rate
//   sudo shaper-bench --json               # one JSON object on stdout
//
// Targets are printed with PASS or SHORT; a missed target never fails the
// process (exit 0), because on a shared 2-core machine a figure is a
// measurement, not a verdict. Exit 1 means the bench could not run; exit 77
// (meson's "skipped") means it needs root.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/bench/dataplane/accuracy.h"
#include "tests/bench/dataplane/bench_env.h"
#include "tests/bench/dataplane/generator.h"
#include "tests/bench/dataplane/harness.h"
#include "tests/bench/dataplane/memory_floor.h"
#include "tests/bench/dataplane/rte_sched_variant.h"
#include "tests/bench/dataplane/shaper_variant.h"

namespace shaper::bench {
namespace {

constexpr int kRuns = 3;
constexpr uint32_t kMillion = 1'000'000;

struct Options {
  std::string tenants = "1,1k,4096,100k,1M";
  uint64_t packets = 20'000'000;  // per cell: a tenth warms up, the rest is 3 timed runs
  std::string dist = "both";
  // Above what one core can push at 64 B (40G = 59.5 Mpps), so the figures
  // are the variants' packet rates, not the link's; see docs/benchmarks.md.
  double link_gbps = 40.0;
  uint32_t ceiling_factor = 4;
  uint32_t pool_mbufs = 262'144;
  uint32_t memory_mb = 2048;
  uint16_t rte_qsize = 64;
  uint64_t seed = 1;
  uint32_t max_lpm_rules = 2'000'000;
  bool json = false;
  std::string json_file;
  bool smoke = false;
  bool accuracy = false;
};

std::optional<uint32_t> ParseCount(std::string s) {
  uint64_t mult = 1;
  if (!s.empty() && (s.back() == 'k' || s.back() == 'K'))
    mult = 1000, s.pop_back();
  else if (!s.empty() && (s.back() == 'm' || s.back() == 'M'))
    mult = kMillion, s.pop_back();
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const uint64_t v = std::stoull(s) * mult;
  if (v == 0 || v > (1u << 24)) return std::nullopt;
  return static_cast<uint32_t>(v);
}

struct Cell {
  bool ok = false;
  std::string na;  // why not measured
  RunStats best;
  double mpps = 0;       // frames received (offered and handled) per second on the CPU
  double wall_mpps = 0;  // the same per second of wall time (includes stolen time)
  double tx_mpps = 0;    // frames sent per second on the CPU
};

double Mpps(uint64_t pkts, uint64_t tsc) {
  return tsc == 0 ? 0.0
                  : static_cast<double>(pkts) * static_cast<double>(rte_get_tsc_hz()) /
                        static_cast<double>(tsc) / 1e6;
}

template <class V>
Cell Measure(V& v, Generator& gen, const BenchEnv& env, uint64_t packets) {
  const uint64_t warmup = std::max<uint64_t>(packets / 10, kBurst);
  const uint64_t per_run =
      std::max<uint64_t>((packets - std::min(packets, warmup)) / kRuns, kBurst);
  RunPackets(v, gen, env.pool, warmup);
  Cell c;
  c.ok = true;
  for (int r = 0; r < kRuns; ++r) {
    const RunStats s = RunPackets(v, gen, env.pool, per_run);
    const uint64_t on_cpu_tsc = s.elapsed_tsc - s.stolen_tsc;
    const double mpps = Mpps(s.rx_pkts, on_cpu_tsc);
    if (mpps > c.mpps) {
      c.mpps = mpps;
      c.wall_mpps = Mpps(s.rx_pkts, s.elapsed_tsc);
      c.tx_mpps = Mpps(s.tx_pkts, on_cpu_tsc);
      c.best = s;
    }
  }
  return c;
}

struct Row {
  Dist dist;
  uint32_t tenants;
  Cell plain, rte_sched, shaper;
  Cell shaper_standin;  // same scheduler, stand-in classifier: the scheduler alone
  double classifier_build_s = 0;
};

// The pool must be whole again after each variant is torn down; a leak would
// starve later cells and skew them, so it is reported, not ignored.
void CheckPool(const BenchEnv& env, const char* variant, uint32_t tenants) {
  if (!PoolFull(env)) {
    fmt::print(stderr, "warning: {} at {} tenants left {} mbufs outside the pool\n", variant,
               tenants, env.pool_mbufs - rte_mempool_avail_count(env.pool));
  }
}

Row RunRow(const Options& o, const BenchEnv& env, Dist dist, uint32_t tenants) {
  Row row{dist, tenants, {}, {}, {}, {}, 0};
  StreamParams sp;
  sp.num_tenants = tenants;
  sp.dist = dist;
  sp.seed = o.seed;
  sp.length = o.smoke ? (1u << 16) : (1u << 22);
  Generator gen(sp);
  const uint64_t link_bps = static_cast<uint64_t>(o.link_gbps * 1e9);
  if (!o.json) fmt::print(stderr, "  {} {} tenants: plain", DistName(dist), tenants);

  {
    PlainForward plain(env.null_port);
    row.plain = Measure(plain, gen, env, o.packets);
  }
  CheckPool(env, "plain", tenants);

  if (!o.json) fmt::print(stderr, ", rte_sched");
  {
    RteSchedConfig rc;
    rc.link_bps = link_bps;
    rc.num_tenants = tenants;
    rc.qsize = o.rte_qsize;
    std::string err;
    auto rs = RteSchedVariant::Create(rc, env.null_port, &err);
    if (rs) {
      row.rte_sched = Measure(*rs, gen, env, o.packets);
    } else {
      row.rte_sched.na = err;
    }
  }
  CheckPool(env, "rte_sched", tenants);

  auto run_shaper = [&](bool real_classifier, Cell& cell) {
    ShaperConfig sc;
    sc.link_bps = link_bps;
    sc.num_tenants = tenants;
    sc.ceiling_factor = o.ceiling_factor;
    sc.tenant_queue_bytes = 2ull * o.rte_qsize * kFrameBytes;
    sc.global_queue_bytes = uint64_t{env.pool_mbufs} / 2 * kFrameBytes;
    sc.real_classifier = real_classifier;
    std::string err;
    auto sv = ShaperVariant::Create(sc, env.null_port, &err);
    if (sv) {
      if (real_classifier) row.classifier_build_s = sv->classifier_build_s();
      cell = Measure(*sv, gen, env, o.packets);
    } else {
      cell.na = err;
    }
  };
  if (UsingRealClassifier()) {
    if (!o.json) fmt::print(stderr, ", shaper");
    if (tenants <= o.max_lpm_rules) {
      run_shaper(true, row.shaper);
    } else {
      row.shaper.na = fmt::format(
          "not run: building ClassifyTables with {} /32 rules exceeds --max-lpm-rules {}", tenants,
          o.max_lpm_rules);
    }
    CheckPool(env, "shaper", tenants);
  } else {
    row.shaper.na = "dataplane library not built: no classifier (see the stand-in column)";
  }
  if (!o.json) fmt::print(stderr, ", shaper (stand-in classifier)");
  run_shaper(false, row.shaper_standin);
  CheckPool(env, "shaper (stand-in)", tenants);
  if (!o.json) fmt::print(stderr, "\n");
  return row;
}

std::string Fmt(const Cell& c) {
  return c.ok ? fmt::format("{:.2f}", c.mpps) : "n/a";
}
std::string Ratio(const Cell& a, const Cell& b) {
  return a.ok && b.ok && b.mpps > 0 ? fmt::format("{:.2f}x", a.mpps / b.mpps) : "n/a";
}
double DropPct(const Cell& c) {
  return c.ok && c.best.rx_pkts > 0
             ? 100.0 * static_cast<double>(c.best.drop_pkts) / static_cast<double>(c.best.rx_pkts)
             : 0.0;
}

std::string MachineModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

const Row* Find(const std::vector<Row>& rows, Dist d, uint32_t tenants) {
  for (const Row& r : rows)
    if (r.dist == d && r.tenants == tenants) return &r;
  return nullptr;
}

struct Target {
  std::string name;
  std::optional<double> value;
  double goal;
};

std::string TargetText(const Target& t) {
  if (!t.value) return fmt::format("{}: not measured (goal {:.2f})", t.name, t.goal);
  return fmt::format("{}: {:.2f} (goal >= {:.2f}) {}", t.name, *t.value, t.goal,
                     *t.value >= t.goal ? "PASS" : "SHORT");
}

std::optional<double> RatioOf(const Cell* a, const Cell* b) {
  if (a == nullptr || b == nullptr || !a->ok || !b->ok || b->mpps <= 0) return std::nullopt;
  return a->mpps / b->mpps;
}

nlohmann::json CellJson(const Cell& c) {
  if (!c.ok) return {{"mpps", nullptr}, {"na", c.na}};
  return {{"mpps", c.mpps},
          {"wall_mpps", c.wall_mpps},
          {"core_available", c.best.available()},
          {"tx_mpps", c.tx_mpps},
          {"drop_pct", DropPct(c)},
          {"packets", c.best.rx_pkts},
          {"short_bursts", c.best.short_bursts}};
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "shaper-bench: shaper's scheduler vs DPDK rte_sched vs plain forwarding (needs root)"};
  app.add_option("--tenants", o.tenants, "tenant counts, comma separated (k, M suffixes)");
  app.add_option("--packets", o.packets, "frames per cell: 10% warm-up, then best of 3 runs");
  app.add_option("--dist", o.dist, "tenant distribution: uniform, zipf or both")
      ->check(CLI::IsMember({"uniform", "zipf", "both"}));
  app.add_option("--link-gbps", o.link_gbps, "link shape rate in Gbit/s (with 24 B overhead)");
  app.add_option("--ceiling-factor", o.ceiling_factor, "tenant ceiling = factor x assured");
  app.add_option("--pool-mbufs", o.pool_mbufs, "mbufs in the pool");
  app.add_option("--memory-mb", o.memory_mb, "EAL memory (-m), MiB");
  app.add_option("--rte-qsize", o.rte_qsize, "rte_sched queue size (frames, power of 2)");
  app.add_option("--seed", o.seed, "generator seed");
  app.add_option("--max-lpm-rules", o.max_lpm_rules,
                 "largest tenant count for which shaper's classifier tables are built");
  app.add_flag("--json", o.json, "print one JSON object on stdout (instead of the table)");
  app.add_option("--json-file", o.json_file, "also write the JSON object to this file");
  app.add_flag("--smoke", o.smoke, "tiny run for CI");
  app.add_flag("--accuracy", o.accuracy, "shaping-accuracy mode: per-tenant achieved vs expected");
  CLI11_PARSE(app, argc, argv);

  if (geteuid() != 0) {
    fmt::print(stderr, "shaper-bench: needs root (DPDK EAL); skipping\n");
    return 77;
  }
  if (o.smoke) {
    o.tenants = "1,4096";
    o.packets = 400'000;
    o.pool_mbufs = 65'536;
    o.memory_mb = 1024;
  }
  std::vector<uint32_t> tenant_list;
  for (size_t pos = 0; pos <= o.tenants.size();) {
    const size_t comma = std::min(o.tenants.find(',', pos), o.tenants.size());
    const std::string item = o.tenants.substr(pos, comma - pos);
    const auto v = ParseCount(item);
    if (!v) {
      fmt::print(stderr, "--tenants: '{}' is not a count between 1 and 16M (e.g. 4096, 100k, 1M)\n",
                 item);
      return 1;
    }
    tenant_list.push_back(*v);
    pos = comma + 1;
  }
  if (!(o.link_gbps > 0) || o.link_gbps > 1000) {
    fmt::print(stderr, "--link-gbps: {} is not a rate in (0, 1000] Gbit/s\n", o.link_gbps);
    return 1;
  }
  if (o.ceiling_factor == 0) {
    fmt::print(stderr, "--ceiling-factor: 0 would cap every tenant at nothing; use >= 1\n");
    return 1;
  }
  if (o.packets < 10u * kBurst) {
    fmt::print(stderr, "--packets: {} is too few for a warm-up and 3 runs (>= {})\n", o.packets,
               10u * kBurst);
    return 1;
  }
  if (o.rte_qsize == 0 || (o.rte_qsize & (o.rte_qsize - 1)) != 0) {
    fmt::print(stderr, "--rte-qsize: {} is not a power of two\n", o.rte_qsize);
    return 1;
  }

  auto env = InitEnv(argv[0], o.memory_mb, o.pool_mbufs);
  if (!env) {
    fmt::print(stderr, "shaper-bench: {}\n", env.error());
    return 1;
  }
  const std::string classifier =
      UsingRealClassifier()
          ? "'shaper' = shaper ClassifyTables (rte_lpm on the source address, one /32 per "
            "tenant) + scheduler; 'sched-only' = the same with a STAND-IN classifier (array "
            "lookup of the generator's precomputed tenant)"
          : "dataplane library not built: only 'sched-only', which uses a STAND-IN classifier "
            "(array lookup of the generator's precomputed tenant) and excludes the LPM lookup";

  if (o.accuracy) {
    const int rc = RunAccuracy(*env, o.json, o.seed);
    CloseEnv(*env);
    return rc;
  }

  std::vector<Dist> dists;
  if (o.dist != "zipf") dists.push_back(Dist::kUniform);
  if (o.dist != "uniform") dists.push_back(Dist::kZipf);
  std::vector<Row> rows;
  if (!o.json)
    fmt::print(stderr, "measuring ({} frames per cell, best of {} runs):\n", o.packets, kRuns);
  for (Dist d : dists)
    for (uint32_t n : tenant_list) rows.push_back(RunRow(o, *env, d, n));

  // Dataplane state per tenant and direction, from an instance at 1M
  // tenants (the largest count measured in --smoke, to keep it quick).
  const uint32_t state_tenants =
      o.smoke ? *std::max_element(tenant_list.begin(), tenant_list.end()) : kMillion;
  StateBytes state;
  ShaperVariant::TouchedLines touched;
  {
    ShaperConfig sc;
    sc.link_bps = static_cast<uint64_t>(o.link_gbps * 1e9);
    sc.num_tenants = state_tenants;
    sc.real_classifier = false;  // the classifier's tables are shared, not per direction
    std::string err;
    if (auto sv = ShaperVariant::Create(sc, env->null_port, &err)) {
      state = sv->state_bytes();
      touched = sv->CountTouchedLines(StreamParams{}.latency_permille / 1000.0);
    }
  }
  // The memory floor at 1M tenants (memory_floor.h): lines per frame (plus
  // one for the classifier's tbl8 entry) times the cost of a random line
  // over a buffer as large as the state.
  std::optional<RandomLineCost> line_cost;
  double floor_lines = 0;
  double floor_mpps = 0;
  if (state_tenants == kMillion && state.heap_bytes > 0) {
    line_cost = MeasureRandomLineCost(state.heap_bytes, 1u << 23, rte_get_tsc_hz());
    floor_lines = touched.total() + 1;
    floor_mpps = 1e3 / (floor_lines * line_cost->ns_per_line);
  }
  const uint64_t state_sizeof = state.profile_bytes + state.sched_bytes + state.stats_bytes;
  const double state_alloc =
      state.tenants ? static_cast<double>(state.heap_bytes) / static_cast<double>(state.tenants)
                    : 0;

  const Dist main_dist = dists.front();
  const Row* r4096 = Find(rows, main_dist, 4096);
  const Row* r1k = Find(rows, main_dist, 1000);
  if (r1k == nullptr) r1k = Find(rows, main_dist, 1024);
  const Row* r1m = Find(rows, main_dist, kMillion);
  // 1M vs 1k: with the real classifier when both cells have it, else the
  // scheduler alone (stand-in classifier) for both, and the basis says so.
  std::string basis_1m = "shaper (classifier + scheduler)";
  std::optional<double> ratio_1m = r1m && r1k ? RatioOf(&r1m->shaper, &r1k->shaper) : std::nullopt;
  if (!ratio_1m && r1m && r1k) {
    ratio_1m = RatioOf(&r1m->shaper_standin, &r1k->shaper_standin);
    basis_1m = "sched-only (stand-in classifier at both counts)";
  }
  std::vector<Target> targets = {
      {fmt::format("shaper / rte_sched at 4096 tenants ({})", DistName(main_dist)),
       r4096 ? RatioOf(&r4096->shaper, &r4096->rte_sched) : std::nullopt, 1.5},
      {fmt::format("shaper at 1M / at 1k tenants ({}, {})", DistName(main_dist), basis_1m),
       ratio_1m, 0.8},
      {fmt::format("shaper / plain at 4096 tenants ({})", DistName(main_dist)),
       r4096 ? RatioOf(&r4096->shaper, &r4096->plain) : std::nullopt, 0.5},
  };

  const std::string command = [&] {
    std::string c;
    for (int i = 0; i < argc; ++i) c += (i ? " " : "") + std::string(argv[i]);
    return c;
  }();

  if (o.json || !o.json_file.empty()) {
    nlohmann::json j;
    j["date"] = UtcNow();
    j["machine"] = {{"cpu", MachineModel()}, {"cores_online", sysconf(_SC_NPROCESSORS_ONLN)}};
    j["command"] = command;
    j["classifier"] = classifier;
    j["link_bps"] = static_cast<uint64_t>(o.link_gbps * 1e9);
    j["frame_bytes"] = kFrameBytes + 4;
    j["packets_per_cell"] = o.packets;
    j["tsc_hz"] = rte_get_tsc_hz();
    for (const Row& r : rows) {
      j["cells"].push_back({{"dist", DistName(r.dist)},
                            {"tenants", r.tenants},
                            {"plain", CellJson(r.plain)},
                            {"rte_sched", CellJson(r.rte_sched)},
                            {"shaper", CellJson(r.shaper)},
                            {"shaper_sched_only", CellJson(r.shaper_standin)},
                            {"classifier_build_s", r.classifier_build_s}});
    }
    auto opt = [](const std::optional<double>& v) {
      return v ? nlohmann::json(*v) : nlohmann::json();
    };
    j["ratio_vs_rte_sched_4096"] = opt(targets[0].value);
    j["ratio_1m_vs_1k"] = opt(targets[1].value);
    j["ratio_1m_vs_1k_basis"] = basis_1m;
    j["ratio_vs_plain_4096"] = opt(targets[2].value);
    if (line_cost) {
      j["memory_floor_1m"] = {{"lines_per_frame", floor_lines},
                              {"lines_profile", touched.profile},
                              {"lines_scheduler", touched.scheduler},
                              {"lines_counters", touched.counters},
                              {"lines_classifier", 1},
                              {"ns_per_random_line", line_cost->ns_per_line},
                              {"buffer_bytes", line_cost->buffer_bytes},
                              {"max_mpps", floor_mpps},
                              {"max_ratio_1m_vs_1k",
                               r1k && r1k->shaper.ok ? nlohmann::json(floor_mpps / r1k->shaper.mpps)
                                                     : nlohmann::json()}};
    }
    j["state_bytes_per_tenant_direction"] = {
        {"from_sizeof", state_sizeof},
        {"profile_bytes", state.profile_bytes},
        {"scheduler_bytes", state.sched_bytes},
        {"scheduler_bytes_from_allocation", state.sched_alloc_bytes},
        {"stats_bytes", state.stats_bytes},
        {"stats_bytes_from_allocation", state.stats_alloc_bytes},
        {"from_allocation", state_alloc},
        {"allocation_tenants", state.tenants}};
    for (const Target& t : targets)
      j["targets"].push_back(
          {{"name", t.name},
           {"value", opt(t.value)},
           {"goal", t.goal},
           {"result", t.value ? (*t.value >= t.goal ? "PASS" : "SHORT") : "n/a"}});
    if (o.json) fmt::print("{}\n", j.dump(2));
    if (!o.json_file.empty()) {
      std::ofstream out(o.json_file);
      out << j.dump(2) << "\n";
      if (!out) fmt::print(stderr, "--json-file: cannot write {}\n", o.json_file);
    }
  }
  if (!o.json) {
    fmt::print("shaper-bench  {}  {}  TSC {:.2f} GHz\n", UtcNow(), MachineModel(),
               static_cast<double>(rte_get_tsc_hz()) / 1e9);
    fmt::print(
        "64 B frames, 1 core, link {} Gbit/s (24 B overhead), tenant assured = link/N, "
        "ceiling = {}x; rte_sched pipe = link/N, qsize {}\n",
        o.link_gbps, o.ceiling_factor, o.rte_qsize);
    fmt::print("classifier: {}\n", classifier);
    fmt::print(
        "Mpps = frames received and handled (sent or dropped) per second the loop was on "
        "the CPU (gaps > {} us, when the shared core ran something else, excluded); best "
        "of {} runs; drop% of sched-only in the last column\n\n",
        kStolenGapNs / 1000, kRuns);
    fmt::print("{:<8} {:>8} | {:>7} {:>9} {:>7} {:>10} | {:>10} {:>12} {:>10} | {:>6}\n", "dist",
               "tenants", "plain", "rte_sched", "shaper", "sched-only", "shaper/rte",
               "shaper/plain", "sched/rte", "drop%");
    for (const Row& r : rows) {
      fmt::print("{:<8} {:>8} | {:>7} {:>9} {:>7} {:>10} | {:>10} {:>12} {:>10} | {:>5.1f}%\n",
                 DistName(r.dist), r.tenants, Fmt(r.plain), Fmt(r.rte_sched), Fmt(r.shaper),
                 Fmt(r.shaper_standin), Ratio(r.shaper, r.rte_sched), Ratio(r.shaper, r.plain),
                 Ratio(r.shaper_standin, r.rte_sched), DropPct(r.shaper_standin));
    }
    fmt::print(
        "\nper cell (best run): wall-clock Mpps / core available / tx Mpps / drop% / "
        "RX bursts the pool could not fill\n");
    for (const Row& r : rows) {
      auto detail = [](const Cell& c) {
        return c.ok ? fmt::format("{:.2f} / {:.0f}% / {:.2f} / {:.1f}% / {}", c.wall_mpps,
                                  100 * c.best.available(), c.tx_mpps, DropPct(c),
                                  c.best.short_bursts)
                    : std::string("n/a");
      };
      fmt::print("  {:<8} {:>8}: plain {} | rte_sched {} | shaper {} | sched-only {}\n",
                 DistName(r.dist), r.tenants, detail(r.plain), detail(r.rte_sched),
                 detail(r.shaper), detail(r.shaper_standin));
      if (r.classifier_build_s > 0)
        fmt::print("  {:<8} {:>8}: ClassifyTables::Build took {:.2f} s\n", DistName(r.dist),
                   r.tenants, r.classifier_build_s);
    }
    for (const Row& r : rows) {
      if (!r.rte_sched.ok)
        fmt::print("rte_sched n/a at {} tenants: {}\n", r.tenants, r.rte_sched.na);
      if (!r.shaper.ok) fmt::print("shaper n/a at {} tenants: {}\n", r.tenants, r.shaper.na);
      if (!r.shaper_standin.ok)
        fmt::print("sched-only n/a at {} tenants: {}\n", r.tenants, r.shaper_standin.na);
    }
    fmt::print(
        "\nstate per tenant and direction (excluding queued packets): {} B by sizeof "
        "and stride (TenantProfile {} + Scheduler::TenantStateBytes(2) {} + "
        "abi::TenantStatsBytes(2) {}); {:.1f} B by allocation at {} tenants (scheduler "
        "alone {} B, counters {} B per tenant)\n",
        state_sizeof, state.profile_bytes, state.sched_bytes, state.stats_bytes, state_alloc,
        state.tenants, state.sched_alloc_bytes, state.stats_alloc_bytes);
    if (line_cost) {
      fmt::print(
          "\nmemory floor at 1M tenants: a frame touches {:.2f} distinct cache lines of per-tenant "
          "state at random (profile {:.2f}, scheduler {:.2f}, counters {:.2f}, classifier 1); "
          "this machine serves a random line in {:.1f} ns at best (independent loads over {} "
          "MiB, measured now), so memory alone allows at most {:.2f} Mpps",
          floor_lines, touched.profile, touched.scheduler, touched.counters, line_cost->ns_per_line,
          line_cost->buffer_bytes >> 20, floor_mpps);
      if (r1k && r1k->shaper.ok)
        fmt::print(", i.e. 1M / 1k at most {:.2f} against shaper's {:.2f} Mpps at {}",
                   floor_mpps / r1k->shaper.mpps, r1k->shaper.mpps, r1k->tenants);
      fmt::print("\n");
    }
    fmt::print("\ntargets:\n");
    for (const Target& t : targets) fmt::print("  {}\n", TargetText(t));
  }
  CloseEnv(*env);
  return 0;
}

}  // namespace
}  // namespace shaper::bench

int main(int argc, char** argv) {
  return shaper::bench::Main(argc, argv);
}
