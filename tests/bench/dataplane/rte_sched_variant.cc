#include "tests/bench/dataplane/rte_sched_variant.h"

#include <rte_errno.h>
#include <rte_lcore.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace shaper::bench {
namespace {

constexpr uint32_t kMaxPipesPerSubport = 4096;
constexpr uint32_t kMtuBytes = 1500;
constexpr uint32_t kMinTcPeriodMs = 10;
constexpr int32_t kDrainProfile = 1;
constexpr double kDrainQuietS = 0.05;
constexpr double kDrainMaxS = 5.0;

uint32_t NextPow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// rte_sched refills a traffic class's credits once per tc_period and does not
// carry them over, so a period must hold at least two minimum frames at the
// slowest class rate, or that class would never send.
uint64_t TcPeriodMs(uint64_t slowest_tc_rate_bytes_per_s) {
  const uint64_t need_bytes = 2ull * (kFrameBytes + kWireOverheadBytes);
  const uint64_t ms = (need_bytes * 1000 + slowest_tc_rate_bytes_per_s - 1) /
                      std::max<uint64_t>(slowest_tc_rate_bytes_per_s, 1);
  return std::max<uint64_t>(ms, kMinTcPeriodMs);
}

}  // namespace

std::unique_ptr<RteSchedVariant> RteSchedVariant::Create(const RteSchedConfig& config, uint16_t tx_port,
                                         std::string* error) {
  const uint32_t n = std::max<uint32_t>(config.num_tenants, 1);
  const uint32_t pipes_per_subport = std::min(NextPow2(n), kMaxPipesPerSubport);
  const uint32_t used_subports = (n + pipes_per_subport - 1) / pipes_per_subport;
  const uint32_t subports = NextPow2(used_subports);
  if (subports > (1u << 16)) {
    *error = "rte_sched takes at most 65536 subports of 4096 pipes";
    return nullptr;
  }
  const uint64_t port_rate = config.link_bps / 8;  // rte_sched counts bytes per second
  const uint64_t pipe_rate = std::max<uint64_t>(port_rate / n, 1);
  const uint64_t tc0_rate = std::max<uint64_t>(pipe_rate * config.latency_share_pct / 100, 1);

  rte_sched_subport_profile_params subport_profile{};
  subport_profile.tb_rate = port_rate;
  subport_profile.tb_size = 1'000'000;
  // rte_sched wants every subport TC rate set, used or not.
  for (uint64_t& r : subport_profile.tc_rate) r = port_rate;
  subport_profile.tc_period = kMinTcPeriodMs;

  rte_sched_port_params port_params{};
  port_params.name = "bench_sched";
  port_params.socket = static_cast<int>(rte_socket_id());
  port_params.rate = port_rate;
  port_params.mtu = kMtuBytes;
  port_params.frame_overhead = kWireOverheadBytes;
  port_params.n_subports_per_port = subports;
  port_params.subport_profiles = &subport_profile;
  port_params.n_subport_profiles = 1;
  port_params.n_max_subport_profiles = 1;
  port_params.n_pipes_per_subport = pipes_per_subport;

  rte_sched_pipe_params pipe{};
  pipe.tb_rate = pipe_rate;
  pipe.tb_size = config.burst_bytes;
  pipe.tc_rate[0] = tc0_rate;
  pipe.tc_rate[RTE_SCHED_TRAFFIC_CLASS_BE] = pipe_rate;
  pipe.tc_period = TcPeriodMs(tc0_rate);
  pipe.tc_ov_weight = 1;
  for (uint8_t& w : pipe.wrr_weights) w = 1;

  // Profile 1 drains: at teardown every pipe is switched to the port rate so
  // the queues empty quickly (rte_sched_port_free misses the mbufs of a
  // queue that is exactly full, and the pool is reused by the next cell).
  rte_sched_pipe_params profiles[2] = {pipe, pipe};
  profiles[kDrainProfile].tb_rate = port_rate;
  profiles[kDrainProfile].tc_rate[0] = port_rate;
  profiles[kDrainProfile].tc_rate[RTE_SCHED_TRAFFIC_CLASS_BE] = port_rate;
  profiles[kDrainProfile].tc_period = kMinTcPeriodMs;

  rte_sched_subport_params subport{};
  subport.n_pipes_per_subport_enabled = pipes_per_subport;
  subport.qsize[0] = config.qsize;
  subport.qsize[RTE_SCHED_TRAFFIC_CLASS_BE] = config.qsize;
  subport.pipe_profiles = profiles;
  subport.n_pipe_profiles = 2;
  subport.n_max_pipe_profiles = 2;
  // The spare subports (power-of-two rounding) get one pipe: never fed.
  rte_sched_subport_params spare = subport;
  spare.n_pipes_per_subport_enabled = 1;

  std::unique_ptr<RteSchedVariant> v(new RteSchedVariant());
  v->tx_port_ = tx_port;
  v->num_tenants_ = n;
  v->pipes_per_subport_ = pipes_per_subport;
  v->pipes_log2_ = static_cast<uint32_t>(__builtin_ctz(pipes_per_subport));
  v->subports_ = subports;
  {
    // The footprint function sums in 32 bits: ask for one subport and scale.
    rte_sched_port_params one = port_params;
    one.n_subports_per_port = 1;
    rte_sched_subport_params* one_subport[1] = {&subport};
    const uint64_t one_bytes = rte_sched_port_get_memory_footprint(&one, one_subport);
    v->footprint_bytes_ = one_bytes * used_subports;
  }
  v->port_ = rte_sched_port_config(&port_params);
  if (v->port_ == nullptr) {
    *error = "rte_sched_port_config failed";
    return nullptr;
  }
  for (uint32_t s = 0; s < subports; ++s) {
    const int rc = rte_sched_subport_config(v->port_, s, s < used_subports ? &subport : &spare, 0);
    if (rc != 0) {
      *error = "rte_sched_subport_config(subport " + std::to_string(s) + " of " +
               std::to_string(subports) + ") failed: " + std::strerror(-rc) +
               " (needs about " + std::to_string(v->footprint_bytes_ >> 20) + " MiB)";
        return nullptr;
    }
  }
  v->pipes_configured_ = true;
  for (uint32_t t = 0; t < n; ++t) {
    const int rc = rte_sched_pipe_config(v->port_, t / pipes_per_subport, t % pipes_per_subport, 0);
    if (rc != 0) {
      *error = "rte_sched_pipe_config(tenant " + std::to_string(t) + ") failed: " +
               std::strerror(-rc);
        return nullptr;
    }
  }
  return v;
}

RteSchedVariant::~RteSchedVariant() {
  if (port_ == nullptr) return;
  bool configured = pipes_configured_;  // a failed Create has nothing queued
  for (uint32_t t = 0; t < num_tenants_ && configured; ++t) {
    configured = rte_sched_pipe_config(port_, t >> pipes_log2_, t & (pipes_per_subport_ - 1),
                                       kDrainProfile) == 0;
  }
  if (configured) {
    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t deadline = rte_rdtsc() + static_cast<uint64_t>(kDrainMaxS * static_cast<double>(hz));
    const auto quiet_tsc = static_cast<uint64_t>(kDrainQuietS * static_cast<double>(hz));
    uint64_t last_out = rte_rdtsc();
    rte_mbuf* out[2 * kBurst];
    for (uint64_t now = last_out; now < deadline && now - last_out < quiet_tsc; now = rte_rdtsc()) {
      const int got = rte_sched_port_dequeue(port_, out, 2 * kBurst);
      if (got > 0) {
        rte_pktmbuf_free_bulk(out, static_cast<unsigned>(got));
        last_out = now;
      }
    }
  }
  rte_sched_port_free(port_);  // frees what is still queued (except full queues)
}

void RteSchedVariant::Process(rte_mbuf** pkts, const StreamEntry** meta, uint16_t n,
                              uint64_t /*now_tsc: rte_sched reads the TSC itself*/,
                              RunStats& stats) {
  for (uint16_t i = 0; i < n; ++i) {
    const uint32_t tenant = meta[i]->tenant;
    const uint32_t tc = meta[i]->cls == kLatencyClass ? 0 : RTE_SCHED_TRAFFIC_CLASS_BE;
    rte_sched_port_pkt_write(port_, pkts[i], tenant >> pipes_log2_,
                             tenant & (pipes_per_subport_ - 1), tc, 0, RTE_COLOR_GREEN);
  }
  if (n > 0) {
    const int queued = rte_sched_port_enqueue(port_, pkts, n);
    stats.drop_pkts += n - static_cast<uint32_t>(queued);  // rte_sched freed them
  }
  rte_mbuf* out[2 * kBurst];
  const int got = rte_sched_port_dequeue(port_, out, 2 * kBurst);
  if (tx_per_tenant_ != nullptr) {
    for (int i = 0; i < got; ++i) {
      uint32_t subport, pipe, tc, queue;
      rte_sched_port_pkt_read_tree_path(port_, out[i], &subport, &pipe, &tc, &queue);
      ++(*tx_per_tenant_)[subport << pipes_log2_ | pipe];
    }
  }
  SendToNull(tx_port_, out, static_cast<uint16_t>(got), stats);
}

}  // namespace shaper::bench
