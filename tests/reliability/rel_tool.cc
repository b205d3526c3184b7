// The reliability tests' window on a running shaper-dataplane: says hello on
// its control socket, maps the stats segment read-only and prints one JSON
// object, then exits (each call is a stats reader starting and stopping).
//
//   rel_tool stats SOCKET [--tenants N]
//
// Output: plan generation, heartbeat, the mbuf pool (size, in use, peak,
// low watermark), port counters, totals per direction over every tenant id
// (arrivals, tx, drops by reason, queued bytes), and per tenant for ids < N
// (default 8).
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/dpclient/dataplane_client.h"
#include "dataplane/ctl/stats_segment.h"

namespace {

namespace abi = shaper::abi;

int Stats(const std::string& socket, uint32_t show_tenants) {
  auto client = shaper::dpclient::DataplaneClient::Connect(socket);
  if (!client) return fmt::print(stderr, "connect: {}\n", client.error()), 1;
  auto hello = (*client)->Hello("rel_tool");
  if (!hello) return fmt::print(stderr, "hello: {}\n", hello.error()), 1;
  auto reader = shaper::ctl::StatsReader::Map(hello->stats_fd.get());
  if (!reader) return fmt::print(stderr, "stats: {}\n", reader.error()), 1;
  const abi::StatsHeader& h = reader->header();
  using R = shaper::ctl::StatsReader;
  nlohmann::json j;
  j["generation"] = reader->plan_generation();
  j["heartbeat"] = reader->heartbeat();
  j["max_tenants"] = reader->max_tenants();
  j["pool"] = {{"mbufs", R::Load(h.pool_mbufs)},
               {"in_use", R::Load(h.pool_in_use)},
               {"in_use_peak", R::Load(h.pool_in_use_peak)},
               {"low_watermark", R::Load(h.pool_low_watermark)}};
  for (uint32_t p = 0; p < reader->num_ports(); ++p) {
    const auto ps = reader->Port(p);
    j["ports"].push_back({{"rx", ps.rx_packets},
                          {"tx", ps.tx_packets},
                          {"imissed", ps.imissed},
                          {"rx_nombuf", ps.rx_nombuf}});
  }
  for (uint32_t d = 0; d < abi::kDirections; ++d) {
    uint64_t arrivals = 0, tx = 0, queued = 0, active = 0;
    std::vector<uint64_t> drops(abi::kDropReasons, 0);
    for (uint32_t t = 0; t < reader->max_tenants(); ++t) {
      const auto s = reader->SumTenant(t, d);
      arrivals += s.arrival_packets;
      tx += s.tx_packets();
      for (uint32_t r = 0; r < abi::kDropReasons; ++r) drops[r] += s.drop_packets[r];
      for (uint64_t q : s.queued_bytes) queued += q;
      if (s.arrival_packets) ++active;
      if (t < show_tenants) {
        j["tenants"][std::to_string(t)][abi::DirectionName(d)] = {
            {"arrivals", s.arrival_packets}, {"tx", s.tx_packets()}, {"drops", s.drops()}};
      }
    }
    nlohmann::json dj = {{"arrivals", arrivals},
                         {"tx", tx},
                         {"queued_bytes", queued},
                         {"tenants_with_traffic", active}};
    for (uint32_t r = 0; r < abi::kDropReasons; ++r) dj["drops"][abi::DropReasonName(r)] = drops[r];
    j["totals"][abi::DirectionName(d)] = dj;
  }
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 2 && a[0] == "stats") return Stats(a[1], 8);
  if (a.size() == 4 && a[0] == "stats" && a[2] == "--tenants")
    return Stats(a[1], static_cast<uint32_t>(std::stoul(a[3])));
  fmt::print(stderr, "usage: rel_tool stats SOCKET [--tenants N]\n");
  return 2;
}
