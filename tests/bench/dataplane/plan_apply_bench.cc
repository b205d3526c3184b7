// plan-apply-bench: how long the dataplane's main lcore takes to put a new
// plan in force (docs/benchmarks.md, "Dataplane", plan changes).
//
// For each tenant count it builds a plan of N tenants (one /32 each, like
// shaper-bench), then times, on the main lcore, what the control socket's
// on_plan callback does (dataplane/main.cc): BuildRuntimePlan from a
// validated view, then PlanPublisher::Publish, with one reader thread
// standing in for the worker (online, reading the plan and passing
// quiescent states in a tight loop). Changes timed:
//   first      the first plan (no previous one)
//   rates      the same prefixes, one tenant's ceiling changed
//   prefix     one tenant added (a new /32)
//   prefix2    another tenant added (the spare table, if any, is reused)
// Each change is repeated and the median reported; `--json` prints one object.
//
// Needs root (EAL --no-huge); exits 77 otherwise.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_pause.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/ctl/plan_validate.h"
#include "dataplane/runtime_plan.h"
#include "tests/dataplane/plan_blob.h"

namespace {

using shaper::dataplane::BuildRuntimePlan;
using shaper::dataplane::PlanPublisher;
using shaper::testing::PlanBlob;
using shaper::testing::TestTenant;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string V4(uint32_t t) {
  const uint32_t a = (10u << 24) + t;
  return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." +
         std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255) + "/32";
}

std::vector<std::byte> MakePlan(uint32_t tenants, uint32_t extra, uint64_t ceiling_of_1) {
  PlanBlob b;
  b.link(10'000'000'000);
  for (uint32_t t = 1; t <= tenants + extra; ++t) {
    TestTenant tt{.id = t, .name = "t" + std::to_string(t), .assured_bps = 1'000'000};
    tt.ceiling_bps = t == 1 ? ceiling_of_1 : 1'000'000'000;
    tt.prefixes.push_back(V4(t));
    b.tenant(std::move(tt));
  }
  return b.bytes();
}

struct Timing {
  double build_s = 0;
  double publish_s = 0;
  double build_cpu_s = 0;  // the main thread's CPU time in the build (load-independent)
};

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  std::vector<uint32_t> counts{3, 10'000, 100'000};
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--tenants" && i + 1 < argc) {
      counts.clear();
      std::string s = argv[++i];
      size_t pos = 0;
      while (pos <= s.size()) {
        const size_t comma = std::min(s.find(',', pos), s.size());
        counts.push_back(static_cast<uint32_t>(std::stoul(s.substr(pos, comma - pos))));
        pos = comma + 1;
      }
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: plan-apply-bench [--tenants 3,10000,100000] [--reps 5] [--json]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::printf("plan-apply-bench: DPDK needs root (even with --no-huge); skipped\n");
    return 77;
  }
  const std::string prefix = "--file-prefix=planbench-" + std::to_string(getpid());
  std::vector<std::string> eal{argv[0], "--no-huge", "-m",
                               "3072",  prefix,      "--no-pci",
                               "-l",    "0",         "--log-level=lib.eal:error"};
  std::vector<char*> eal_argv;
  for (auto& s : eal) eal_argv.push_back(s.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "plan-apply-bench: rte_eal_init failed\n");
    return 1;
  }
  const uint64_t hz = rte_get_tsc_hz();

  std::string out = "{";
  for (uint32_t n : counts) {
    auto pub = PlanPublisher::Create(1);
    if (!pub) {
      std::fprintf(stderr, "PlanPublisher: %s\n", pub.error().c_str());
      return 1;
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> reads{0};
    std::thread reader([&] {
      (*pub)->Online(0);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto* p = (*pub)->Acquire();
        if (p) reads.fetch_add(p->generation & 1, std::memory_order_relaxed);
        (*pub)->Quiescent(0);
        rte_pause();
      }
      (*pub)->Offline(0);
    });

    shaper::ctl::Limits limits;
    limits.max_tenants = n + 64;
    uint64_t generation = 0;
    auto apply = [&](const std::vector<std::byte>& bytes) -> Timing {
      auto view = shaper::ctl::ValidatePlan(bytes, limits);
      if (!view) {
        std::fprintf(stderr, "plan rejected: %s\n", view.error().c_str());
        std::exit(1);
      }
      const double c0 = ThreadCpuSeconds();
      const auto t0 = Clock::now();
      auto plan = BuildRuntimePlan(*view, ++generation, hz, shaper::abi::kMaxClasses, pub->get());
      if (!plan) {
        std::fprintf(stderr, "BuildRuntimePlan: %s\n", plan.error().c_str());
        std::exit(1);
      }
      const auto t1 = Clock::now();
      const double c1 = ThreadCpuSeconds();
      (*pub)->Publish(std::move(*plan));
      const auto t2 = Clock::now();
      return {Seconds(t0, t1), Seconds(t1, t2), c1 - c0};
    };

    const auto base = MakePlan(n, 0, 1'000'000'000);
    const Timing first = apply(base);
    struct Case {
      const char* name;
      std::vector<Timing> t;
    };
    Case cases[] = {{"rates", {}}, {"prefix", {}}, {"prefix2", {}}};
    for (int r = 0; r < reps; ++r) {
      // rates: tenant 1's ceiling alternates; prefixes stay.
      apply(base);
      cases[0].t.push_back(apply(MakePlan(n, 0, 500'000'000 + r)));
      apply(base);
      cases[1].t.push_back(apply(MakePlan(n, 1, 1'000'000'000)));
      cases[2].t.push_back(apply(MakePlan(n, 2, 1'000'000'000)));
    }
    auto median = [](std::vector<Timing> v, int what) {
      std::vector<double> x;
      for (const Timing& t : v)
        x.push_back(what == 0 ? t.build_s : what == 1 ? t.publish_s : t.build_cpu_s);
      std::sort(x.begin(), x.end());
      return x[x.size() / 2];
    };
    if (!json) {
      std::printf("%7u tenants: first    build %.4f s (cpu %.4f s) publish %.4f s\n", n,
                  first.build_s, first.build_cpu_s, first.publish_s);
      for (const Case& c : cases)
        std::printf("%7u tenants: %-8s build %.4f s (cpu %.4f s) publish %.4f s (median of %d)\n",
                    n, c.name, median(c.t, 0), median(c.t, 2), median(c.t, 1), reps);
      std::fflush(stdout);
    }
    if (out.size() > 1) out += ",";
    out += "\"" + std::to_string(n) + "\":{\"first_build_s\":" + std::to_string(first.build_s) +
           ",\"first_build_cpu_s\":" + std::to_string(first.build_cpu_s);
    for (const Case& c : cases) {
      out += std::string(",\"") + c.name + "_build_s\":" + std::to_string(median(c.t, 0));
      out += std::string(",\"") + c.name + "_build_cpu_s\":" + std::to_string(median(c.t, 2));
      out += std::string(",\"") + c.name + "_publish_s\":" + std::to_string(median(c.t, 1));
    }
    out += "}";
    stop = true;
    reader.join();
    pub->reset();
  }
  out += "}";
  if (json) std::printf("%s\n", out.c_str());
  rte_eal_cleanup();
  return 0;
}
