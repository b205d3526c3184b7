// Demand estimation; the formula and the reasons are in demand.h.
#include "control/alloc/demand.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace shaper::control::alloc {
namespace {

__extension__ typedef unsigned __int128 u128;

constexpr uint64_t kNsPerSecond = 1'000'000'000;
constexpr uint64_t kPartsPerBillion = 1'000'000'000;

uint64_t Saturate(u128 value) {
  return value > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(value);
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

// 8 * bytes / (interval_ns / 1e9), saturating. Up to 2.3 GB per interval
// the product fits 64 bits and avoids a 128-bit division (a library call;
// three per tenant per tick add up at a million tenants).
uint64_t BitsPerSecond(uint64_t bytes, uint64_t interval_ns) {
  constexpr uint64_t kFastBytes = UINT64_MAX / (8 * kNsPerSecond);
  if (bytes <= kFastBytes) return bytes * 8 * kNsPerSecond / interval_ns;
  return Saturate(static_cast<u128>(bytes) * 8 * kNsPerSecond / interval_ns);
}

}  // namespace

std::expected<DemandEstimator, std::string> DemandEstimator::Create(const DemandConfig& config) {
  if (config.decay_time_constant_ns == 0) {
    return std::unexpected(std::string("decay_time_constant_ns: 0, must be > 0"));
  }
  if (config.backlog_drain_ns == 0) {
    return std::unexpected(std::string("backlog_drain_ns: 0, must be > 0"));
  }
  // A probe above 100% per tick would make a constrained tenant's demand
  // explode faster than any transport could follow.
  if (config.probe_ppm > 1'000'000) {
    return std::unexpected(
        fmt::format("probe_ppm: {}, must be at most 1000000 (100%)", config.probe_ppm));
  }
  return DemandEstimator(config);
}

void DemandEstimator::Reset(uint32_t tenant) {
  states_[tenant] = State{};
}

void DemandEstimator::Update(std::span<const DemandCounters> counters, uint64_t interval_ns) {
  if (interval_ns == 0) return;
  states_.resize(counters.size());

  // a = 1 - exp(-dt / tau), once per tick, in parts per billion; at least 1
  // so that demand always moves toward the raw estimate.
  const double decay = -std::expm1(-static_cast<double>(interval_ns) /
                                   static_cast<double>(config_.decay_time_constant_ns));
  const uint64_t alpha_ppb = std::clamp<uint64_t>(
      static_cast<uint64_t>(std::llround(decay * static_cast<double>(kPartsPerBillion))), 1,
      kPartsPerBillion);

  for (size_t i = 0; i < counters.size(); ++i) {
    State& s = states_[i];
    const DemandCounters& now = counters[i];
    TenantDemand& e = s.estimate;
    const bool went_back = now.arrival_bytes < s.last.arrival_bytes ||
                           now.tx_bytes < s.last.tx_bytes || now.drop_bytes < s.last.drop_bytes ||
                           now.drop_packets < s.last.drop_packets;
    if (!s.has_baseline || went_back) {
      s.last = now;
      s.has_baseline = true;
      e.arrival_bps = 0;
      e.tx_bps = 0;
      e.raw_bps = e.demand_bps;
      e.constrained = false;
      continue;
    }

    e.arrival_bps = BitsPerSecond(now.arrival_bytes - s.last.arrival_bytes, interval_ns);
    e.tx_bps = BitsPerSecond(now.tx_bytes - s.last.tx_bytes, interval_ns);
    const bool dropped =
        now.drop_bytes > s.last.drop_bytes || now.drop_packets > s.last.drop_packets;
    const bool queue_grew =
        now.queued_bytes > SaturatingAdd(s.last.queued_bytes, config_.queue_slack_bytes);
    e.constrained = dropped || queue_grew;

    const uint64_t base_bps = std::max(e.arrival_bps, e.tx_bps);
    uint64_t raw_bps = base_bps;
    if (now.queued_bytes > config_.queue_slack_bytes) {
      raw_bps = SaturatingAdd(raw_bps, BitsPerSecond(now.queued_bytes, config_.backlog_drain_ns));
    }
    if (e.constrained) {
      raw_bps = SaturatingAdd(raw_bps, static_cast<uint64_t>(static_cast<u128>(base_bps) *
                                                             config_.probe_ppm / 1'000'000));
    }
    e.raw_bps = raw_bps;

    if (raw_bps >= e.demand_bps) {
      e.demand_bps = raw_bps;
    } else {
      const u128 gap_bps = e.demand_bps - raw_bps;
      const uint64_t step_bps =
          static_cast<uint64_t>((gap_bps * alpha_ppb + kPartsPerBillion - 1) / kPartsPerBillion);
      e.demand_bps -= step_bps;  // step <= gap, as alpha <= 1
    }
    s.last = now;
  }
}

}  // namespace shaper::control::alloc
