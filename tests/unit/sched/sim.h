// A simulated world for the scheduler tests: a fake TSC advanced by the test,
// a preallocated packet pool, traffic sources (greedy or constant-rate, with
// seeded random sizes) and a recorder of what leaves. No wall time; all
// randomness from explicit seeds.
#pragma once

#include "control/alloc/allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string_view>
#include <vector>

#include "dataplane/sched/scheduler.h"

namespace shaper::sched::test {

inline constexpr uint64_t kTscHz = 2'000'000'000;  // the fake TSC runs at 2 GHz
inline constexpr uint32_t kOverhead = 24;

inline uint64_t NsToTsc(uint64_t ns) {
  return ns * (kTscHz / 1'000'000'000);
}
inline uint64_t MsToTsc(double ms) {
  return static_cast<uint64_t>(ms * 1e-3 * kTscHz);
}

struct TestPacket {
  TestPacket* next = nullptr;
  uint64_t arrival_tsc = 0;  // written by the scheduler through the traits
  uint64_t enqueued_tsc = 0;
  uint64_t seq = 0;  // per (tenant, class), to check FIFO order
  uint32_t len = 0;
  uint32_t tenant = 0;
  uint32_t cls = 0;
};

struct TestTraits {
  using Packet = TestPacket;
  static uint32_t WireLength(const Packet* p) { return p->len; }
  static Packet* Next(const Packet* p) { return p->next; }
  static void SetNext(Packet* p, Packet* n) { p->next = n; }
  static uint64_t ArrivalTsc(const Packet* p) { return p->arrival_tsc; }
  static void SetArrivalTsc(Packet* p, uint64_t tsc) { p->arrival_tsc = tsc; }
};

using TestScheduler = Scheduler<TestTraits>;

inline ClassParams Bulk(uint32_t weight = 1, uint64_t queue_limit_ns = 0) {
  return ClassParams{false, weight, 0, queue_limit_ns};
}
inline ClassParams Latency(uint32_t max_share_ppm, uint64_t queue_limit_ns = 0) {
  return ClassParams{true, 1, max_share_ppm, queue_limit_ns};
}
inline TenantParams Tenant(double assured_mbps, double ceiling_mbps, uint32_t weight = 1,
                           uint64_t burst_bytes = 0, uint64_t queue_bytes_limit = 0) {
  return TenantParams{static_cast<uint64_t>(assured_mbps * 1e6),
                      static_cast<uint64_t>(ceiling_mbps * 1e6), weight, burst_bytes,
                      queue_bytes_limit};
}

// Wire bits of a packet as the scheduler counts them (frame + overhead).
inline uint64_t WireBits(uint32_t len) {
  return 8ull * (len + kOverhead);
}

class Sim {
 public:
  struct Source {
    uint32_t tenant = 0;
    uint32_t cls = 0;
    double rate_bps = 0;  // offered wire rate; 0 = greedy (keeps a backlog)
    uint32_t min_len = 64;
    uint32_t max_len = 1500;
    bool active = true;
    double credit_bits = 0;
  };
  struct Flow {             // per (tenant, class)
    uint64_t tx_bytes = 0;  // frame + overhead
    uint64_t tx_packets = 0;
    uint64_t drops_queue_limit = 0;
    uint64_t next_seq = 0;
    uint64_t next_tx_seq = 0;  // FIFO check: packets leave in seq order
    uint64_t max_sojourn_tsc = 0;
    uint64_t reorders = 0;
  };

  Sim(const LinkParams& link, std::vector<ClassParams> classes, std::vector<TenantParams> tenants,
      uint32_t max_tenants = 0, uint32_t pool_packets = 1 << 17, uint64_t seed = 1)
      : link_(link),
        classes_(std::move(classes)),
        num_tenants_(static_cast<uint32_t>(tenants.size())),
        sched_(max_tenants ? max_tenants : num_tenants_, static_cast<uint32_t>(classes_.size())),
        flows_(static_cast<size_t>(max_tenants ? max_tenants : num_tenants_) * classes_.size()),
        pool_(pool_packets),
        rng_(seed) {
    // SHAPER_SIM_SEND_NOW=1: offers go through Scheduler::SendNow first, as
    // the dataplane's worker does (meson runs the tests both ways).
    const char* send_now = std::getenv("SHAPER_SIM_SEND_NOW");
    send_now_ = send_now != nullptr && std::string_view(send_now) == "1";
    for (auto& p : pool_) free_.push_back(&p);
    SetTenants(tenants);
  }

  // Builds and installs a new profile (the old one is kept alive).
  void SetTenants(const std::vector<TenantParams>& tenants) {
    auto built = Profile::TryBuild(kTscHz, link_, classes_, tenants);
    ASSERT_TRUE(built.has_value()) << built.error();
    profiles_.push_back(std::move(*built));
    ASSERT_TRUE(sched_.SetProfile(profiles_.back().get(), now_));
  }

  Source& AddGreedy(uint32_t tenant, uint32_t cls = 0, uint32_t min_len = 64,
                    uint32_t max_len = 1500) {
    sources_.push_back(Source{tenant, cls, 0, min_len, max_len, true, 0});
    return sources_.back();
  }
  Source& AddRate(uint32_t tenant, uint32_t cls, double rate_bps, uint32_t min_len = 64,
                  uint32_t max_len = 1500) {
    sources_.push_back(Source{tenant, cls, rate_bps, min_len, max_len, true, 0});
    return sources_.back();
  }
  std::vector<Source>& sources() { return sources_; }

  // Enqueues one packet now; returns the verdict (the packet is freed on a drop).
  Verdict Offer(uint32_t tenant, uint32_t cls, uint32_t len) {
    if (free_.empty()) {
      ADD_FAILURE() << "test packet pool exhausted";
      return Verdict::kDropPoolLow;
    }
    TestPacket* p = free_.back();
    free_.pop_back();
    Flow& f = flow(tenant, cls);
    *p = TestPacket{nullptr, 0, now_, f.next_seq, len, tenant, cls};
    if (send_now_ && sched_.SendNow(p, tenant, cls, now_)) {
      ++f.next_seq;
      ++enqueued_;
      Transmit(p);
      return Verdict::kQueued;
    }
    const Verdict v = sched_.Enqueue(p, tenant, cls, now_);
    if (v == Verdict::kQueued) {
      ++f.next_seq;
      ++enqueued_;
    } else {
      free_.push_back(p);
    }
    return v;
  }

  // Advances time in steps of step_tsc for duration_tsc, feeding the sources
  // and draining everything the scheduler releases.
  void Run(uint64_t duration_tsc, uint64_t step_tsc) {
    const uint64_t end = now_ + duration_tsc;
    while (now_ < end) {
      now_ += std::min(step_tsc, end - now_);
      Feed(step_tsc);
      Poll();
    }
  }

  void Poll() {
    TestPacket* out[64];
    for (;;) {
      const uint32_t n = sched_.Dequeue(
          now_, out, 64, [this](TestPacket* p, uint32_t tenant, uint32_t cls, DropReason why) {
            EXPECT_EQ(why, DropReason::kQueueLimit);
            EXPECT_EQ(p->tenant, tenant);
            EXPECT_EQ(p->cls, cls);
            Flow& f = flow(tenant, cls);
            ++f.drops_queue_limit;
            CheckOrder(f, p);
            ++dropped_;
            free_.push_back(p);
          });
      for (uint32_t i = 0; i < n; ++i) Transmit(out[i]);
      if (n < 64) break;
    }
  }

  // Offers try Scheduler::SendNow first (as the worker does); also set by
  // SHAPER_SIM_SEND_NOW=1 at construction.
  void set_send_now(bool on) { send_now_ = on; }
  uint64_t now() const { return now_; }
  void set_now(uint64_t now) { now_ = now; }
  TestScheduler& sched() { return sched_; }
  Flow& flow(uint32_t tenant, uint32_t cls) { return flows_[tenant * classes_.size() + cls]; }
  uint64_t tenant_tx_bytes(uint32_t tenant) {
    uint64_t sum = 0;
    for (uint32_t c = 0; c < classes_.size(); ++c) sum += flow(tenant, c).tx_bytes;
    return sum;
  }
  uint64_t enqueued() const { return enqueued_; }
  uint64_t transmitted() const { return transmitted_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t total_tx_bytes() const { return total_tx_bytes_; }
  void set_on_transmit(std::function<void(const TestPacket&)> fn) { on_transmit_ = std::move(fn); }

  // Returns every queued packet to the pool through DrainAll; the count.
  uint64_t DrainAll() {
    uint64_t n = 0;
    sched_.DrainAll([&](TestPacket* p) {
      ++n;
      free_.push_back(p);
    });
    return n;
  }

 private:
  void Feed(uint64_t step_tsc) {
    for (Source& s : sources_) {
      if (!s.active) continue;
      std::uniform_int_distribution<uint32_t> size(s.min_len, s.max_len);
      if (s.rate_bps == 0) {  // greedy: keep at least 48 KB queued
        while (sched_.tenant_queued_bytes(s.tenant, s.cls) < 48 * 1024 && !free_.empty()) {
          if (Offer(s.tenant, s.cls, size(rng_)) != Verdict::kQueued) break;
        }
        continue;
      }
      s.credit_bits += s.rate_bps * static_cast<double>(step_tsc) / kTscHz;
      for (;;) {
        const uint32_t len = size(rng_);
        const double bits = static_cast<double>(WireBits(len));
        if (s.credit_bits < bits) break;
        s.credit_bits -= bits;
        Offer(s.tenant, s.cls, len);
      }
    }
  }

  void CheckOrder(Flow& f, const TestPacket* p) {
    if (p->seq != f.next_tx_seq) ++f.reorders;
    f.next_tx_seq = p->seq + 1;
  }

  void Transmit(TestPacket* p) {
    Flow& f = flow(p->tenant, p->cls);
    f.tx_bytes += p->len + kOverhead;
    ++f.tx_packets;
    f.max_sojourn_tsc = std::max(f.max_sojourn_tsc, now_ - p->enqueued_tsc);
    CheckOrder(f, p);
    total_tx_bytes_ += p->len + kOverhead;
    ++transmitted_;
    if (on_transmit_) on_transmit_(*p);
    free_.push_back(p);
  }

  bool send_now_ = false;
  LinkParams link_;
  std::vector<ClassParams> classes_;
  uint32_t num_tenants_;
  std::vector<std::unique_ptr<Profile>> profiles_;
  TestScheduler sched_;
  std::vector<Flow> flows_;
  std::vector<Source> sources_;
  std::vector<TestPacket> pool_;
  std::vector<TestPacket*> free_;
  std::mt19937_64 rng_;
  uint64_t now_ = 1'000'000'000;  // an arbitrary non-zero start
  uint64_t enqueued_ = 0, transmitted_ = 0, dropped_ = 0, total_tx_bytes_ = 0;
  std::function<void(const TestPacket&)> on_transmit_;
};

// Rate in bit/s of `bytes` over `tsc` cycles.
inline double RateBps(uint64_t bytes, uint64_t tsc) {
  return static_cast<double>(bytes) * 8.0 * kTscHz / static_cast<double>(tsc);
}

// The sharing rule of DESIGN.md, from the control process's allocator
// (control/alloc): independent of the scheduler, and checked by its own tests
// against an exact reference on thousands of random instances. Each tenant
// gets min(demand, floor); the rest of the link is shared among tenants that
// want more in proportion to weight, none above min(demand, cap). Rates in
// Mbit/s (converted to whole bit/s for the allocator).
struct RefTenant {
  double floor, cap, weight, demand;  // demand: +inf for greedy
};
inline std::vector<double> WeightedMaxMin(double link, const std::vector<RefTenant>& t) {
  namespace alloc = shaper::control::alloc;
  constexpr double kBitsPerUnit = 1e6;
  auto bits = [](double v) {
    if (v >= 1.8e19 / kBitsPerUnit) return UINT64_MAX;  // greedy
    return v <= 0 ? uint64_t{0} : static_cast<uint64_t>(std::llround(v * kBitsPerUnit));
  };
  std::vector<alloc::TenantSpec> specs(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    specs[i].guaranteed_bps = bits(t[i].floor);
    specs[i].ceiling_bps = bits(t[i].cap);
    specs[i].demand_bps = bits(t[i].demand);
    specs[i].weight = static_cast<uint32_t>(std::llround(t[i].weight));
  }
  auto result = alloc::Allocate(alloc::Problem{bits(link), {}, specs});
  std::vector<double> out(t.size(), 0.0);
  if (result) {
    for (size_t i = 0; i < t.size(); ++i) out[i] = static_cast<double>(result->rate_bps[i]) / kBitsPerUnit;
  }
  return out;
}

}  // namespace shaper::sched::test
