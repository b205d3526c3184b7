// Profile::Build: validate one direction's parameters and precompute the
// fixed-point constants of scheduler.h. Runs off the packet path; divides
// freely (in 128-bit where a product could overflow 64 bits).
#include "dataplane/sched/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace shaper::sched {
namespace {

__extension__ using U128 = unsigned __int128;

constexpr uint64_t kNsPerSec = 1'000'000'000;
// Frame plus overhead that sizes the link's minimum depth: two of them, so a
// slow link polled in coarse steps still starts the next frame on time.
constexpr uint64_t kMaxFrameBytes = 1538;
// DRR credits are int32: a quantum plus a frame of debt must fit.
constexpr uint32_t kMaxQuantumBytes = 1u << 30;
// The policy's (and the plan ABI's) largest weight.
constexpr uint32_t kMaxWeight = 1'000'000;

// Cycles per byte in 32.32 fixed point, rounded to nearest; 0 for rate 0.
// Rates too slow for 32 integer bits (below ~8 bit/s on a 4 GHz TSC) run at
// that floor; a rate so fast that a byte costs under 2^-32 cycles (beyond
// ~10^19 bit/s) is refused.
std::optional<uint64_t> CyclesPerByte(uint64_t tsc_hz, uint64_t rate_bps) {
  if (rate_bps == 0) return 0;
  const U128 num = (static_cast<U128>(tsc_hz) * 8) << 32;
  const U128 cpb = (num + rate_bps / 2) / rate_bps;
  if (cpb == 0) return std::nullopt;
  return cpb > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(cpb);
}

std::string RateError(const std::string& field, uint64_t rate_bps, uint64_t tsc_hz) {
  return fmt::format("{} = {} bit/s is out of range for a {} Hz TSC", field, rate_bps, tsc_hz);
}

// DRR quantum for a weight: proportional, saturating where int32 credits end
// (weights above ~700k share as if they were ~700k).
uint32_t Quantum(uint32_t weight) {
  const uint64_t q = static_cast<uint64_t>(weight) * Profile::kQuantumBytes;
  return q > kMaxQuantumBytes ? kMaxQuantumBytes : static_cast<uint32_t>(q);
}

uint64_t NsToTsc(uint64_t tsc_hz, uint64_t ns) {
  const U128 tsc = static_cast<U128>(ns) * tsc_hz / kNsPerSec;
  return tsc > UINT64_MAX / 4 ? UINT64_MAX / 4 : static_cast<uint64_t>(tsc);
}

uint64_t BytesToTsc(uint64_t cpb_fp, uint64_t bytes) {
  const U128 tsc = (static_cast<U128>(bytes) * cpb_fp) >> 32;
  return tsc > UINT64_MAX / 4 ? UINT64_MAX / 4 : static_cast<uint64_t>(tsc);
}

}  // namespace

std::unique_ptr<Profile> Profile::Build(uint64_t tsc_hz, const LinkParams& link,
                                        std::span<const ClassParams> classes,
                                        std::span<const TenantParams> tenants) {
  auto built = TryBuild(tsc_hz, link, classes, tenants);
  if (!built) return nullptr;
  return std::move(*built);
}

std::expected<std::unique_ptr<Profile>, std::string> Profile::TryBuild(
    uint64_t tsc_hz, const LinkParams& link, std::span<const ClassParams> classes,
    std::span<const TenantParams> tenants) {
  if (tsc_hz == 0) return std::unexpected(std::string("tsc_hz = 0: the TSC frequency is unknown"));
  if (link.rate_bps == 0) return std::unexpected(std::string("link.rate_bps = 0: must be > 0"));
  if (classes.empty() || classes.size() > kMaxClasses)
    return std::unexpected(
        fmt::format("classes: {} classes, must be 1..{}", classes.size(), kMaxClasses));
  if (tenants.size() >= UINT32_MAX)
    return std::unexpected(fmt::format("tenants: {} tenants is too many", tenants.size()));

  std::unique_ptr<Profile> p(new Profile());
  p->tsc_hz_ = tsc_hz;
  p->overhead_bytes_ = link.overhead_bytes;
  p->queue_bytes_limit_ = link.queue_bytes_limit == 0 ? UINT64_MAX : link.queue_bytes_limit;
  const auto link_cpb = CyclesPerByte(tsc_hz, link.rate_bps);
  if (!link_cpb) return std::unexpected(RateError("link.rate_bps", link.rate_bps, tsc_hz));
  const uint64_t min_tolerance_tsc = NsToTsc(tsc_hz, kMinToleranceNs);
  p->link_rate_.cpb_fp = *link_cpb;
  p->link_rate_.tolerance_tsc =
      std::max(NsToTsc(tsc_hz, kLinkToleranceNs), BytesToTsc(*link_cpb, 2 * kMaxFrameBytes));

  p->num_classes_ = static_cast<uint32_t>(classes.size());
  for (size_t c = 0; c < classes.size(); ++c) {
    const ClassParams& in = classes[c];
    ClassProfile& out = p->classes_[c];
    out.latency = in.latency;
    out.queue_limit_tsc = in.queue_limit_ns == 0 ? UINT64_MAX : NsToTsc(tsc_hz, in.queue_limit_ns);
    if (in.latency) {
      if (in.max_share_ppm > 1'000'000)
        return std::unexpected(
            fmt::format("classes[{}].max_share_ppm = {}: must be <= 1000000", c, in.max_share_ppm));
      out.share_q12 = static_cast<int32_t>(
          (static_cast<uint64_t>(in.max_share_ppm) * (1u << kShareShift) + 500'000) / 1'000'000);
      p->latency_mask_ |= static_cast<uint8_t>(1u << c);
    } else {
      if (in.weight == 0 || in.weight > kMaxWeight)
        return std::unexpected(
            fmt::format("classes[{}].weight = {}: must be 1..{}", c, in.weight, kMaxWeight));
      out.quantum_bytes = Quantum(in.weight);
      p->bulk_mask_ |= static_cast<uint8_t>(1u << c);
    }
  }

  p->tenants_.resize(tenants.size());
  for (size_t t = 0; t < tenants.size(); ++t) {
    const TenantParams& in = tenants[t];
    TenantProfile& out = p->tenants_[t];
    if (in.ceiling_bps == 0)
      return std::unexpected(fmt::format("tenants[{}].ceiling_bps = 0: must be > 0", t));
    // A guarantee above the cap cannot be delivered: the cap wins (promise 2).
    const uint64_t assured_bps = std::min(in.assured_bps, in.ceiling_bps);
    if (in.weight == 0 || in.weight > kMaxWeight)
      return std::unexpected(
          fmt::format("tenants[{}].weight = {}: must be 1..{}", t, in.weight, kMaxWeight));
    const auto ceil_cpb = CyclesPerByte(tsc_hz, in.ceiling_bps);
    if (!ceil_cpb)
      return std::unexpected(
          RateError(fmt::format("tenants[{}].ceiling_bps", t), in.ceiling_bps, tsc_hz));
    const auto assured_cpb = CyclesPerByte(tsc_hz, assured_bps);
    if (!assured_cpb)
      return std::unexpected(
          RateError(fmt::format("tenants[{}].assured_bps", t), assured_bps, tsc_hz));
    out.ceiling_cpb_fp = *ceil_cpb;
    // Depth: the burst, but at least two frames at the rate (so a tenant
    // waiting its round-robin turn behind others keeps its pace) and at least
    // kMinToleranceNs (wheel and polling lateness).
    const uint64_t ceil_floor_tsc =
        std::max(min_tolerance_tsc, BytesToTsc(*ceil_cpb, 2 * kMaxFrameBytes));
    out.ceiling_tolerance = TenantProfile::ToleranceUnits(
        std::max(ceil_floor_tsc, BytesToTsc(*ceil_cpb, in.burst_bytes)));
    out.assured_cpb_fp = *assured_cpb;
    // The guarantee gets no burst of its own: an idle tenant's burst is taken
    // at the priority of borrowing, so it cannot eat into others' floors.
    out.assured_tolerance = TenantProfile::ToleranceUnits(
        assured_bps == 0
            ? 0
            : std::max(min_tolerance_tsc, BytesToTsc(*assured_cpb, 2 * kMaxFrameBytes)));
    out.quantum_bytes = Quantum(in.weight);
    out.queue_bytes_limit = in.queue_bytes_limit == 0 || in.queue_bytes_limit >= UINT32_MAX
                                ? UINT32_MAX
                                : static_cast<uint32_t>(in.queue_bytes_limit);
  }
  return p;
}

}  // namespace shaper::sched
