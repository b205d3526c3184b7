// The read-only half of the scheduler (DPDK rte_sched's split): one Profile
// per direction holds the link, class and tenant parameters of a plan, turned
// into the constants the packet path needs, so that path multiplies and
// shifts and never divides.
//
// Time is the TSC. A rate is stored as "TSC cycles per byte" in 32.32 fixed
// point (`cpb_fp`): the time a packet of L bytes occupies a bucket is
// L * cpb_fp / 2^32 cycles, computed in two 64-bit multiplies (integer and
// fractional halves) so no 128-bit maths reaches the packet path. This form
// keeps sub-cycle precision (a 64-byte packet at 10 Gbit/s on a 2 GHz TSC
// costs 102.4 cycles; truncating to 102 would be a 0.4% rate error) and
// covers rates from ~8 bit/s to far past 100 Gbit/s.
//
// Build() validates its input and allocates; it runs off the packet path.
#pragma once

#include <sys/mman.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

namespace shaper::sched {

// Enqueue result. On a drop verdict the caller frees and counts the packet.
enum class Verdict : uint8_t { kQueued = 0, kDropQueueFull, kDropPoolLow };
// Why a packet was dropped; the order is the metric label order.
enum class DropReason : uint8_t { kQueueLimit, kQueueFull, kPoolLow, kMalformed, kCount };
inline constexpr uint32_t kMaxClasses = 8;

struct LinkParams {
  uint64_t rate_bps;           // shape rate, counting overhead_bytes per packet
  uint32_t overhead_bytes;     // framing added to every packet (preamble, IFG, FCS)
  uint64_t queue_bytes_limit;  // global watermark over all tenants; 0 = none
};
struct ClassParams {
  bool latency;             // strict priority inside the tenant (up to max_share)
  uint32_t weight;          // bulk classes: DRR weight inside the tenant (>= 1)
  uint32_t max_share_ppm;   // latency classes: share of the tenant's sent bytes
  uint64_t queue_limit_ns;  // sojourn limit checked at dequeue; 0 = none
};
struct TenantParams {
  uint64_t assured_bps;        // floor; 0 = no guarantee (borrows only)
  uint64_t ceiling_bps;        // cap (> 0)
  uint32_t weight;             // share of the spare (>= 1)
  uint64_t burst_bytes;        // bytes allowed above the ceiling rate in one go
  uint64_t queue_bytes_limit;  // per tenant, all classes; 0 = none
};

// One token bucket as the packet path sees it (GCRA form, see scheduler.h).
// Allocator for the per-tenant arrays (profile entries, scheduler state,
// counters). At a million tenants they span hundreds of MiB and each packet
// touches one tenant's entries at random: with 4 KiB pages that is far beyond
// what the TLB maps, so such an access pays a page walk (two-dimensional under
// a hypervisor) on top of its cache miss; 1M tenants ran 34% faster with huge
// pages (docs/benchmarks.md, "Dataplane"). So the 2 MiB-
// aligned interior of an array that has one is marked MADV_HUGEPAGE, which
// transparent huge pages honour in their "madvise" and "always" modes (a
// no-op under "never"). The memory is the plain heap's (same size, freed as
// usual); at most the two partial 2 MiB ends stay in 4 KiB pages. Arrays
// also start on a 128-byte boundary, a pair of cache lines, so a 128-byte
// entry (a tenant's scheduler block at 2 classes) is one pair, which the
// adjacent-line prefetcher fetches together: the heap alone gives 16 bytes.
// Off the packet path.
inline constexpr uintptr_t kHugePageBytes = uintptr_t{2} << 20;
inline constexpr std::align_val_t kArrayAlign{128};

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>& /*other*/) noexcept {}

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    T* p = static_cast<T*>(::operator new(n * sizeof(T), kArrayAlign));
    const auto begin = reinterpret_cast<uintptr_t>(p);
    const uintptr_t first = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
    const uintptr_t last = (begin + n * sizeof(T)) & ~(kHugePageBytes - 1);
    if (first < last)  // a hint: on failure the pages stay 4 KiB
      (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
    return p;
  }
  void deallocate(T* p, size_t n) noexcept { ::operator delete(p, n * sizeof(T), kArrayAlign); }
  template <class U>
  bool operator==(const HugePageAllocator<U>& /*other*/) const noexcept {
    return true;
  }
};
template <class T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

struct BucketRate {
  uint64_t cpb_fp = 0;         // TSC cycles per byte, 32.32 fixed point; 0 = rate 0
  uint64_t tolerance_tsc = 0;  // how far the bucket may run ahead of now (its depth)
};

// Cycles for `bytes` at `rate`, split into whole cycles and a 32-bit fraction.
struct Cost {
  uint64_t tsc;
  uint32_t frac;
};
inline Cost CostOf(const BucketRate& rate, uint32_t bytes) {
  const uint64_t lo = static_cast<uint64_t>(bytes) * (rate.cpb_fp & 0xffffffffu);
  return Cost{static_cast<uint64_t>(bytes) * (rate.cpb_fp >> 32) + (lo >> 32),
              static_cast<uint32_t>(lo)};
}

// A tenant's two buckets and limits, read on every packet of the tenant: 32
// bytes, so an entry never straddles two cache lines (40 did, every other
// one, and at a million tenants each line is a miss). The bucket depths are
// kept in units of 2^kToleranceShift TSC cycles (about 0.1 us), rounded up,
// in 32 bits: at most 2^40 cycles (7 minutes at 2.6 GHz), which only a burst
// of minutes at its rate would exceed (such a depth is cut to it).
struct TenantProfile {
  static constexpr uint32_t kToleranceShift = 8;
  static constexpr uint64_t kMaxToleranceTsc = uint64_t{UINT32_MAX} << kToleranceShift;
  static uint32_t ToleranceUnits(uint64_t tolerance_tsc) {
    if (tolerance_tsc >= kMaxToleranceTsc) return UINT32_MAX;
    return static_cast<uint32_t>((tolerance_tsc + (uint64_t{1} << kToleranceShift) - 1) >>
                                 kToleranceShift);
  }

  uint64_t ceiling_cpb_fp;     // BucketRate::cpb_fp of the ceiling
  uint64_t assured_cpb_fp;     // of the guarantee; 0 = none
  uint32_t ceiling_tolerance;  // depths, in units of 2^kToleranceShift cycles
  uint32_t assured_tolerance;
  uint32_t quantum_bytes;      // DRR quantum for borrowing, proportional to weight
  uint32_t queue_bytes_limit;  // clamped to 4 GiB - 1; 0 means none -> stored as max

  uint64_t ceiling_tolerance_tsc() const { return uint64_t{ceiling_tolerance} << kToleranceShift; }
  uint64_t assured_tolerance_tsc() const { return uint64_t{assured_tolerance} << kToleranceShift; }
  BucketRate ceiling() const { return {ceiling_cpb_fp, ceiling_tolerance_tsc()}; }
  BucketRate assured() const { return {assured_cpb_fp, assured_tolerance_tsc()}; }
};
static_assert(sizeof(TenantProfile) == 32);

struct ClassProfile {
  uint64_t queue_limit_tsc;  // UINT64_MAX = none
  uint32_t quantum_bytes;    // bulk: DRR quantum inside the tenant
  int32_t share_q12;         // latency: credit earned per byte sent, 4096 = 100%
  bool latency;
};

class Profile {
 public:
  // Latency credit is kept in bytes * 2^12 (see scheduler.h).
  static constexpr int kShareShift = 12;
  // Per unit of weight; >= one full-size frame so each DRR turn sends one.
  static constexpr uint32_t kQuantumBytes = 1538;
  // Smallest bucket depth: covers wheel slot lateness and polling gaps, so a
  // bucket woken a little late does not lose its tokens (see scheduler.h).
  // A poll-mode lcore that shares its core (no isolcpus: the testbed, a
  // small edge box) is preempted for a millisecond or so now and then. With
  // 100 us depths that time was lost for good: on the veth testbed the link
  // carried 97.5% of the shape rate and the biggest tenants were 4% under
  // their share; with the link alone at 1 ms, ceiling-bound tenants lost
  // what the others caught up (4.5% under). With every bucket at least 1 ms
  // deep the link carries 99.8% and shares hold; HTB's default burst
  // (rate / HZ plus a frame) is of the same order.
  static constexpr uint64_t kMinToleranceNs = 1'000'000;
  // The link bucket's depth (the same reasoning).
  static constexpr uint64_t kLinkToleranceNs = 1'000'000;

  // nullptr when the input is invalid; TryBuild says why (field and value).
  static std::unique_ptr<Profile> Build(uint64_t tsc_hz, const LinkParams& link,
                                        std::span<const ClassParams> classes,
                                        std::span<const TenantParams> tenants);
  static std::expected<std::unique_ptr<Profile>, std::string> TryBuild(
      uint64_t tsc_hz, const LinkParams& link, std::span<const ClassParams> classes,
      std::span<const TenantParams> tenants);

  uint32_t num_tenants() const { return static_cast<uint32_t>(tenants_.size()); }
  uint32_t num_classes() const { return num_classes_; }
  uint64_t tsc_hz() const { return tsc_hz_; }
  const BucketRate& link_rate() const { return link_rate_; }
  uint32_t overhead_bytes() const { return overhead_bytes_; }
  uint64_t queue_bytes_limit() const { return queue_bytes_limit_; }
  const ClassProfile& cls(uint32_t c) const { return classes_[c]; }
  uint8_t latency_mask() const { return latency_mask_; }
  uint8_t bulk_mask() const { return bulk_mask_; }
  const TenantProfile& tenant(uint32_t t) const { return tenants_[t]; }

 private:
  Profile() = default;

  uint64_t tsc_hz_ = 0;
  BucketRate link_rate_;
  uint32_t overhead_bytes_ = 0;
  uint64_t queue_bytes_limit_ = UINT64_MAX;
  uint32_t num_classes_ = 0;
  uint8_t latency_mask_ = 0;
  uint8_t bulk_mask_ = 0;
  ClassProfile classes_[kMaxClasses]{};
  HugePageVector<TenantProfile> tenants_;  // hundreds of MiB at 1M tenants
};

}  // namespace shaper::sched
