// A helper for the program tests (program_test.py): writes test plans and
// talks to a running shaper-dataplane over its control socket.
//
//   dp_test_tool write-plan FILE [--bad] [--classes N]
//                                           a small valid plan (or one the validator refuses);
//                                           N >= 2 classes (default 2: extra ones are bulk)
//   dp_test_tool push SOCKET FILE           apply a plan; exit 0 if applied, 3 if refused
//   dp_test_tool stats SOCKET               hello, then the stats segment as JSON
//   dp_test_tool push-rates SOCKET GEN TENANT upload|download BPS
//                                           one assured rate; exit 0 if applied, 3 if refused
//
// The plan: tenant 1 "alpha" 10.0.1.0/24 + 2001:db8:1::/48, tenant 2 "beta"
// 10.0.2.0/24 on VLAN 100; classes rt (latency, DSCP 46) and bulk (default);
// link 1 Gbit/s both ways.
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "control/dpclient/dataplane_client.h"
#include "dataplane/ctl/stats_segment.h"
#include "tests/dataplane/plan_blob.h"

namespace {

using shaper::testing::PlanBlob;

std::vector<std::byte> TestPlan(bool bad, uint32_t num_classes) {
  std::vector<shaper::testing::TestClass> classes = {
      {.name = "rt", .latency = true, .max_share_ppm = 300'000, .queue_limit_ns = 5'000'000},
      {.name = "bulk", .queue_limit_ns = 50'000'000}};
  while (classes.size() < num_classes)
    classes.push_back(
        {.name = fmt::format("extra{}", classes.size()), .queue_limit_ns = 50'000'000});
  PlanBlob b;
  b.link(1'000'000'000)
      .classes(std::move(classes))
      .dscp(46, 0)
      .default_class(1)
      .tenant({.id = 1,
               .name = "alpha",
               .assured_bps = 100'000'000,
               .ceiling_bps = 900'000'000,
               .prefixes = {"10.0.1.0/24", "2001:db8:1::/48"}})
      .tenant({.id = 2,
               .name = "beta",
               .vlan = 100,
               .ceiling_bps = 900'000'000,
               .prefixes = {"10.0.2.0/24"}});
  for (uint8_t d = 0; d < 64; ++d)
    if (d != 46) b.dscp(d, 1);
  // Refused: a ceiling of 0 (the validator names tenants[..].ceiling_bps).
  if (bad) b.tenant({.id = 3, .name = "broken", .ceiling_bps = 0, .prefixes = {"10.0.3.0/24"}});
  return b.bytes();
}

int WritePlan(const std::string& path, bool bad, uint32_t num_classes) {
  const auto bytes = TestPlan(bad, num_classes);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return out ? 0 : 1;
}

int Push(const std::string& socket, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(raw.size());
  std::memcpy(bytes.data(), raw.data(), raw.size());
  auto client = shaper::dpclient::DataplaneClient::Connect(socket);
  if (!client) return fmt::print(stderr, "connect: {}\n", client.error()), 1;
  auto reply = (*client)->ApplyPlan(bytes);
  if (!reply) return fmt::print(stderr, "apply: {}\n", reply.error()), 1;
  fmt::print("{}\n", reply->ToString());
  return reply->ok() ? 0 : 3;
}

int PushRates(const std::string& socket, uint64_t generation, uint32_t tenant, uint8_t direction,
              uint64_t assured_bps) {
  namespace abi = shaper::abi;
  std::vector<std::byte> blob(sizeof(abi::RatesHeader) + sizeof(abi::RateEntry));
  abi::RatesHeader h{};
  h.magic = abi::kRatesMagic;
  h.abi_version = abi::kAbiVersion;
  h.header_bytes = sizeof(h);
  h.total_bytes = blob.size();
  h.plan_generation = generation;
  h.entries_offset = sizeof(h);
  h.count = 1;
  h.entry_bytes = sizeof(abi::RateEntry);
  abi::RateEntry e{};
  e.tenant_id = tenant;
  e.direction = direction;
  e.assured_bps = assured_bps;
  std::memcpy(blob.data(), &h, sizeof(h));
  std::memcpy(blob.data() + sizeof(h), &e, sizeof(e));
  auto client = shaper::dpclient::DataplaneClient::Connect(socket);
  if (!client) return fmt::print(stderr, "connect: {}\n", client.error()), 1;
  auto reply = (*client)->UpdateRates(blob);
  if (!reply) return fmt::print(stderr, "rates: {}\n", reply.error()), 1;
  fmt::print("{}\n", reply->ToString());
  return reply->ok() ? 0 : 3;
}

int Stats(const std::string& socket) {
  auto client = shaper::dpclient::DataplaneClient::Connect(socket);
  if (!client) return fmt::print(stderr, "connect: {}\n", client.error()), 1;
  auto hello = (*client)->Hello("dp_test_tool");
  if (!hello) return fmt::print(stderr, "hello: {}\n", hello.error()), 1;
  auto reader = shaper::ctl::StatsReader::Map(hello->stats_fd.get());
  if (!reader) return fmt::print(stderr, "stats: {}\n", reader.error()), 1;
  nlohmann::json j;
  j["generation"] = hello->plan_generation;
  j["num_classes"] = reader->num_classes();
  j["max_classes"] = hello->max_classes;
  j["heartbeat"] = reader->heartbeat();
  j["ports"] = hello->port_names;
  for (uint32_t t = 0; t < 4; ++t) {
    for (uint32_t d = 0; d < shaper::abi::kDirections; ++d) {
      const auto s = reader->SumTenant(t, d);
      nlohmann::json& o = j["tenants"][std::to_string(t)][shaper::abi::DirectionName(d)];
      o["arrival_packets"] = s.arrival_packets;
      o["tx_packets"] = s.tx_packets();
      o["drops"] = s.drops();
      for (uint32_t c = 0; c < 2; ++c) o["tx_class"].push_back(s.tx[c].tx_packets);
    }
  }
  for (uint32_t d = 0; d < shaper::abi::kDirections; ++d) {
    for (uint32_t c = 0; c < 2; ++c) {
      const auto cs = reader->SumClass(d, c);
      j["classes"][shaper::abi::DirectionName(d)].push_back(
          {{"sojourn_count", cs.sojourn_count}, {"sojourn_sum_ns", cs.sojourn_sum_ns}});
    }
  }
  for (uint32_t p = 0; p < reader->num_ports(); ++p) {
    const auto ps = reader->Port(p);
    j["port_stats"].push_back(
        {{"rx", ps.rx_packets}, {"tx", ps.tx_packets}, {"imissed", ps.imissed}});
  }
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() >= 2 && a[0] == "write-plan") {
    bool bad = false;
    uint32_t classes = 2;
    for (size_t i = 2; i < a.size(); ++i) {
      if (a[i] == "--bad") {
        bad = true;
      } else if (a[i] == "--classes" && i + 1 < a.size()) {
        classes = static_cast<uint32_t>(std::stoul(a[++i]));
      } else {
        return fmt::print(stderr, "write-plan: unknown argument '{}'\n", a[i]), 2;
      }
    }
    return WritePlan(a[1], bad, classes);
  }
  if (a.size() == 3 && a[0] == "push") return Push(a[1], a[2]);
  if (a.size() == 2 && a[0] == "stats") return Stats(a[1]);
  if (a.size() == 6 && a[0] == "push-rates")
    return PushRates(a[1], std::stoull(a[2]), static_cast<uint32_t>(std::stoul(a[3])),
                     a[4] == "upload" ? shaper::abi::kUpload : shaper::abi::kDownload,
                     std::stoull(a[5]));
  fmt::print(stderr,
             "usage: dp_test_tool write-plan FILE [--bad] [--classes N] | push SOCKET FILE | "
             "stats SOCKET | "
             "push-rates SOCKET GENERATION TENANT upload|download BPS\n");
  return 2;
}
