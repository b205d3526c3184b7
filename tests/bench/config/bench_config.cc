// shaper-bench-config: how fast the policy loader is and how much memory the
// model takes, at 10k, 100k and 1M tenants.
//
// Policies are generated in process (groups, IPv4 and IPv6 prefixes, VLANs,
// per-direction overrides), so the benchmark depends on no script. Each size
// is timed three ways on the same text:
//   load      LoadPolicyText: parse + build the model + validate (the product),
//             wall and CPU time
//   libyaml   libyaml's event parser alone, no model: the floor for any
//             loader that reads YAML with it
//   yaml-cpp  YAML::Load into a node tree, no model: what a Node-based
//             loader would start from (skipped above --yaml-cpp-max tenants:
//             it needs minutes and gigabytes at 1M)
// and the model's heap bytes per tenant are measured with mallinfo2()
// (in-use arena bytes plus mmapped blocks) before and after the load.
//
//   shaper-bench-config [--sizes 10000,100000,1000000] [--json] [--yaml-cpp-max N]
#include <malloc.h>
#include <yaml.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/loader.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// CPU time of this process: on a shared machine (CI, a busy developer box)
// wall time depends on the neighbours; CPU time much less.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

uint64_t HeapBytes() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

constexpr uint32_t kGroups = 100;
constexpr uint64_t kTenantGuaranteeKbit = 50;

// Half of the tenants sit in groups; each group guarantees exactly what its
// tenants do, so the policy is valid at every size.
std::string GeneratePolicy(uint32_t tenants) {
  std::string text;
  text.reserve(static_cast<size_t>(tenants) * 140 + 4096);
  text += R"(version: 1
link:
  capacity: 100Gbit
  shape_at: 98%
  overhead: 24B
classes:
  - {name: realtime, priority: latency, dscp: [EF, CS5], max_share: 20%, queue_limit: 2ms}
  - {name: bulk, priority: bulk, weight: 1, queue_limit: 30ms}
groups:
)";
  std::vector<uint64_t> members(kGroups);
  for (uint32_t i = 0; i < tenants; i += 2) ++members[(i / 2) % kGroups];
  for (uint32_t g = 0; g < kGroups; ++g) {
    fmt::format_to(std::back_inserter(text), "  - {{name: g{}, guaranteed: {}Kbit, ceiling: 50Gbit}}\n", g,
                   members[g] * kTenantGuaranteeKbit);
  }
  text += "tenants:\n";
  for (uint32_t i = 0; i < tenants; ++i) {
    fmt::format_to(std::back_inserter(text), "  - name: tenant-{:07}\n", i);
    if (i % 2 == 0) fmt::format_to(std::back_inserter(text), "    group: g{}\n", (i / 2) % kGroups);
    if (i % 4 == 0) {
      fmt::format_to(std::back_inserter(text), "    match: {{prefixes: [10.{}.{}.{}/32, \"fd00::{:x}:{:x}/128\"], vlan: {}}}\n",
                     (i >> 16) & 255, (i >> 8) & 255, i & 255, i >> 16, i & 0xffff, 1 + i % 4000);
    } else {
      fmt::format_to(std::back_inserter(text), "    match: {{prefixes: [10.{}.{}.{}/32]}}\n", (i >> 16) & 255,
                     (i >> 8) & 255, i & 255);
    }
    fmt::format_to(std::back_inserter(text), "    guaranteed: {}Kbit\n    ceiling: 10Mbit\n    weight: {}\n",
                   kTenantGuaranteeKbit, 1 + i % 4);
    if (i % 8 == 1) text += "    upload: {ceiling: 5Mbit, burst: 64KB}\n";
  }
  return text;
}

double LibyamlScanSeconds(const std::string& text) {
  const auto start = Clock::now();
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  for (bool done = false; !done;) {
    yaml_event_t event;
    if (yaml_parser_parse(&parser, &event) == 0) break;
    done = event.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&event);
  }
  yaml_parser_delete(&parser);
  return Seconds(start, Clock::now());
}

double YamlCppLoadSeconds(const std::string& text) {
  const auto start = Clock::now();
  const YAML::Node root = YAML::Load(text);
  const double s = Seconds(start, Clock::now());
  if (!root["tenants"]) std::fputs("yaml-cpp: no tenants?\n", stderr);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shaper-bench-config: policy load time and model memory at 10k..1M tenants"};
  std::vector<uint32_t> sizes{10'000, 100'000, 1'000'000};
  bool json = false;
  uint32_t yaml_cpp_max = 100'000;
  app.add_option("--sizes", sizes, "tenant counts")->delimiter(',')->capture_default_str();
  app.add_flag("--json", json, "print JSON instead of a table");
  app.add_option("--yaml-cpp-max", yaml_cpp_max, "largest size to time yaml-cpp's YAML::Load at")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  nlohmann::json results = nlohmann::json::array();
  if (!json) {
    fmt::print("{:>9}  {:>8}  {:>9}  {:>9}  {:>12}  {:>9}  {:>10}  {:>10}  {:>12}\n", "tenants", "MB", "load s",
               "load cpu", "tenants/s", "B/tenant", "libyaml s", "yaml-cpp s", "load/libyaml");
  }
  for (uint32_t n : sizes) {
    const std::string text = GeneratePolicy(n);
    const double scan_s = LibyamlScanSeconds(text);
    const double yaml_cpp_s = n <= yaml_cpp_max ? YamlCppLoadSeconds(text) : -1.0;

    const uint64_t heap_before = HeapBytes();
    const auto start = Clock::now();
    const double cpu_start = CpuSeconds();
    auto policy = shaper::config::LoadPolicyText(text, "generated.yaml");
    const double load_cpu_s = CpuSeconds() - cpu_start;
    const double load_s = Seconds(start, Clock::now());
    const uint64_t heap_after = HeapBytes();
    if (!policy) {  // a generator bug: show the first few errors only
      policy.error().resize(std::min<size_t>(policy.error().size(), 5));
      std::fputs(shaper::config::FormatDiagnostics(policy.error()).c_str(), stderr);
      return 1;
    }
    if (policy->tenants.size() != n) {
      fmt::print(stderr, "loaded {} tenants, expected {}\n", policy->tenants.size(), n);
      return 1;
    }
    const double bytes_per_tenant =
        static_cast<double>(heap_after > heap_before ? heap_after - heap_before : 0) / static_cast<double>(n);
    const double mb = static_cast<double>(text.size()) / 1e6;
    nlohmann::json r = {{"tenants", n},
                        {"text_bytes", text.size()},
                        {"load_seconds", load_s},
                        {"load_cpu_seconds", load_cpu_s},
                        {"tenants_per_second", static_cast<double>(n) / load_s},
                        {"model_bytes_per_tenant", bytes_per_tenant},
                        {"libyaml_scan_seconds", scan_s},
                        {"load_over_libyaml", load_s / scan_s}};
    if (yaml_cpp_s >= 0) {
      r["yaml_cpp_load_seconds"] = yaml_cpp_s;
      r["load_over_yaml_cpp"] = load_s / yaml_cpp_s;
    }
    if (json) {
      results.push_back(std::move(r));
    } else {
      fmt::print("{:>9}  {:>8.1f}  {:>9.3f}  {:>9.3f}  {:>12.0f}  {:>9.1f}  {:>10.3f}  {:>10}  {:>11.2f}x\n", n, mb,
                 load_s, load_cpu_s, static_cast<double>(n) / load_s, bytes_per_tenant, scan_s,
                 yaml_cpp_s >= 0 ? fmt::format("{:.3f}", yaml_cpp_s) : std::string("-"), load_s / scan_s);
    }
    policy = std::unexpected(shaper::config::Diagnostics{});  // free the model before the next size
  }
  if (json) fmt::print("{}\n", nlohmann::json{{"benchmark", "config_load"}, {"results", std::move(results)}}.dump(2));
  return 0;
}
