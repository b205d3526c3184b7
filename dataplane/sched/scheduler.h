// The packet scheduler: one per bridge direction, owned by one lcore.
//
// What it promises (DESIGN.md, "Scheduling model"), per direction:
//  1. a backlogged tenant gets its assured rate, whatever the others do;
//  2. no tenant exceeds its ceiling beyond its burst;
//  3. spare link capacity goes at once to backlogged tenants below their
//     ceiling, in proportion to weight (floors first, then the spare by
//     weight, what a capped tenant cannot take shared again) — no control loop;
//  4. inside a tenant, latency classes go first, up to their max_share; bulk
//     classes share by weight and are never starved;
//  5. queues are bounded in time (sojourn, at dequeue) and bytes (per tenant
//     and global, at enqueue), and every drop has a reason;
//  6. the work per packet does not depend on the number of tenants.
//
// How. Every rate is a bucket in GCRA form ("virtual scheduling"): a bucket
// is one timestamp, `tat` (theoretical arrival time, in TSC cycles plus a
// 32-bit fraction), and it conforms while tat <= now + tolerance. Sending L
// bytes moves tat to max(tat, now) + L * cycles_per_byte. The tolerance is
// the bucket depth expressed in time; max(tat, now) clamps the credit to that
// depth and, because a bucket is only charged while it conforms, the debt is
// at most one packet. A bucket that does not conform becomes eligible at
// exactly tat - tolerance, whatever packet comes next: that instant is where
// a throttled tenant is parked in the timing wheel. Rates are precomputed in
// Profile::Build as cycles per byte in 32.32 fixed point, so the packet path
// multiplies and shifts and never divides; no clock is read (now is passed).
//
// Buckets: the link (shape rate, overhead counted per packet), and per tenant
// an *assured* bucket (its guarantee) and a *ceiling* bucket (its cap and
// burst). All byte counts include the link overhead, so tenant rates are wire
// rates and add up to the link rate. Each Dequeue step, while the link
// conforms:
//  (1) the head of the ASSURED list — tenants whose ceiling and assured
//      buckets both conform — sends one packet, charged to link, ceiling and
//      assured buckets, and goes to the tail (round robin);
//  (2) when no tenant is within its guarantee, the head of the BORROW list —
//      tenants whose ceiling conforms — sends by deficit round robin (sch_fq
//      style: send while credit > 0, else add a quantum and go to the tail),
//      quantum = weight * 1538 bytes (saturating at 1 GiB), charged to link
//      and ceiling only. Borrowing does not consume the guarantee, so each
//      tenant gets min(demand, assured) plus a weight-proportional part of
//      what is left: exactly the sharing rule of DESIGN.md, with no
//      allocation loop. (A guarantee above the ceiling is cut to it.)
// A tenant whose ceiling stops conforming leaves both lists and is parked in
// the wheel at tat - tolerance; a tenant whose assured bucket stops
// conforming leaves the assured list (it may still borrow) and is parked at
// its assured instant. A parked tenant has one wheel entry, at its earliest
// wake; on wake it is placed again by the same rule (Place()).
//
// Inside a tenant the class is picked by: (a) the first backlogged latency
// class within its share, (b) the bulk classes by DRR on their weights,
// (c) a latency class above its share, only when bulk is empty (work
// conserving, but bulk is never starved). "Within its share" is a token
// bucket filled by the tenant's own sent bytes: every byte the tenant sends
// earns max_share bytes of credit, every latency byte spends one. So the
// "tenant's rate" of max_share is the rate the tenant is actually sending at
// (between its assured rate and its ceiling), which is what the operator
// means by "20% of what the tenant gets"; with bulk backlogged latency gets
// exactly max_share of it. Credit is clamped to +/- kLatencyBurstBytes.
// Across tenants there is no separate latency phase (DESIGN.md sketched one):
// a latency packet rides its tenant's turn, which is the assured phase, ahead
// of every borrowing tenant, as long as the tenant is within its guarantee —
// so a guarantee that covers a tenant's latency traffic keeps that traffic
// about one frame time from the wire (tested); beyond it, the packet waits
// for its tenant's DRR turn.
//
// Why not scan: the assured and borrow lists hold only backlogged tenants;
// throttled tenants sit in a single-level timing wheel (Carousel, SIGCOMM'17;
// Eiffel, NSDI'19) of kWheelSlots slots of 2^kSlotShift cycles; a wake past
// the horizon goes into the farthest slot and is re-parked when reached. A
// slot is processed once its whole time span is past, so a wake is late by
// at most one slot plus the polling gap; every bucket's tolerance is at least
// Profile::kMinToleranceNs (1 ms) so that lateness costs no throughput: on a
// core the lcore shares with the kernel, preemptions of about a millisecond
// are common, and a shallower bucket loses that time for good.
// One Dequeue visits at most kMaxWheelSlotsPerDequeue slots, wakes at most
// 64 + 2 * max tenants and takes at most 64 + 4 * max steps (a send, a drop,
// a park or a DRR rotation each), and the wheel cursor jumps when nothing is
// parked, so the cost is bounded per call and constant per packet whatever
// max_tenants is; work left over (a burst of expired packets, a slot with
// many wakes) is resumed by the next call. counters() exposes the work done,
// for tests.
//
// Queues: one intrusive FIFO per (tenant, class), kept as a circular list
// through Traits::Next/SetNext so only its tail is stored (head =
// Next(tail)). Byte limits are checked at Enqueue (the caller frees on a drop
// verdict); sojourn (now - arrival) is checked at the head at Dequeue and
// expired packets go to the sink with DropReason::kQueueLimit. Packets of
// tenants that a new profile no longer has are drained the same way, lazily,
// when the tenant comes up in a list or the wheel.
//
// The idle tenant's fast path: when the next Dequeue would send a packet
// first (its tenant idle and within its guarantee, nothing in the assured
// list, the link conforming), SendNow charges it as that Dequeue would and
// the caller sends it without queueing it (see SendNow for what differs).
//
// Rate changes: SetProfile swaps a pointer. Bucket timestamps survive; since
// they are times, a rate change applies from the next packet, and a bucket in
// debt under the old rate waits at most its old tolerance plus one packet.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "dataplane/sched/profile.h"

namespace shaper::sched {

template <class Traits>
class Scheduler {
 public:
  using Packet = typename Traits::Packet;

  static constexpr uint32_t kSlotShift = 13;         // 8192 cycles: 4 us at 2 GHz
  static constexpr uint32_t kWheelSlots = 1u << 14;  // horizon 67 ms at 2 GHz
  static constexpr uint32_t kMaxWheelSlotsPerDequeue = 1024;
  static constexpr int32_t kLatencyBurstBytes = 4 * 1538;

  // Work counters, for tests and benchmarks (not on any metric).
  struct Counters {
    uint64_t dequeue_calls = 0;
    uint64_t steps = 0;                // loop steps: sends, drops, parks, DRR rotations
    uint64_t tenant_visits = 0;        // tenant states touched by Dequeue steps and wakes
    uint64_t wheel_slots_visited = 0;  // slots the wheel cursor processed
    uint64_t wheel_wakeups = 0;
    uint64_t parks = 0;
    uint64_t budget_exhausted = 0;  // calls that stopped on their step budget
    uint64_t sent_now = 0;          // packets SendNow let through
  };

  // Allocates all per-tenant state up front; nothing allocates afterwards.
  Scheduler(uint32_t max_tenants, uint32_t num_classes)
      : max_tenants_(max_tenants < kNil ? max_tenants : kNil - 1),  // kNil marks list ends
        num_classes_(num_classes < kMaxClasses ? num_classes : kMaxClasses),
        block_bytes_(TenantStateBytes(num_classes_)),
        blocks_(static_cast<size_t>(max_tenants_) * block_bytes_ / sizeof(Line)),
        wheel_(kWheelSlots) {
    static_assert(TenantStateBytes(kMaxClasses) <= 256, "per-tenant state must stay compact");
    for (uint32_t t = 0; t < max_tenants_; ++t) {
      std::byte* block = BlockOf(t);
      new (block) TenantState();
      for (uint32_t c = 0; c < num_classes_; ++c)
        new (block + sizeof(TenantState) + c * sizeof(ClassQueue)) ClassQueue();
    }
  }

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Installs `profile` (kept alive by the caller while installed). Queues,
  // bucket states and counters survive. Returns false, keeping the old
  // profile, when the class count differs from the constructor's.
  bool SetProfile(const Profile* profile, uint64_t now_tsc) {
    (void)now_tsc;  // bucket times are absolute; nothing to rebase
    if (profile != nullptr && profile->num_classes() != num_classes_) return false;
    profile_ = profile;
    return true;
  }

  // The fast path of an idle tenant. When no tenant waits in the assured
  // list, the tenant has nothing queued (so it is in no list and not
  // parked), has a guarantee, and the link, its ceiling and its assured
  // bucket all conform, Enqueue would put the packet at the head of the
  // assured list and the next Dequeue would send it first. SendNow charges
  // it exactly as that Dequeue would (link, ceiling and assured buckets,
  // class credits, the bulk cursor where PickClass leaves it), stamps its
  // arrival, and returns true: the caller sends it now, and no queue or list
  // is touched. Otherwise it returns false, changes nothing, and the caller
  // enqueues the packet. What differs, within one poll only: packets sent
  // now leave in arrival order, where one Dequeue after several arrivals
  // would send the tenant's latency class first, and would first send the
  // tenants it wakes from the wheel. Packets sent now are within their
  // tenant's guarantee and burst, which come before any borrowing anyway,
  // and FIFO order per (tenant, class) holds: the tenant had nothing queued.
  bool SendNow(Packet* pkt, uint32_t tenant, uint32_t cls, uint64_t now_tsc) {
    if (profile_ == nullptr || assured_list_.head != kNil || tenant >= max_tenants_ ||
        tenant >= profile_->num_tenants() || cls >= num_classes_)
      return false;
    const Profile& p = *profile_;
    if (link_tat_tsc_ > now_tsc + p.link_rate().tolerance_tsc) return false;
    TenantState& s = state(tenant);
    if (s.backlog_mask != 0 || s.flags != 0) return false;
    const TenantProfile& tp = p.tenant(tenant);
    if (tp.assured_cpb_fp == 0 || !CeilingConforms(s, tp, now_tsc) ||
        !AssuredConforms(s, tp, now_tsc))
      return false;
    Traits::SetArrivalTsc(pkt, now_tsc);
    if (!p.cls(cls).latency) s.bulk_cursor = static_cast<uint8_t>(cls);  // as PickClass
    ChargeSend(tenant, s, tp, cls, Traits::WireLength(pkt) + p.overhead_bytes(), true, now_tsc);
    ++counters_.sent_now;
    return true;
  }

  Verdict Enqueue(Packet* pkt, uint32_t tenant, uint32_t cls, uint64_t now_tsc) {
    if (profile_ == nullptr || tenant >= max_tenants_ || tenant >= profile_->num_tenants() ||
        cls >= num_classes_)
      return Verdict::kDropQueueFull;
    const uint32_t len = Traits::WireLength(pkt);
    if (queued_bytes_ + len > profile_->queue_bytes_limit()) return Verdict::kDropPoolLow;
    TenantState& s = state(tenant);
    if (static_cast<uint64_t>(s.queued_bytes) + len > profile_->tenant(tenant).queue_bytes_limit)
      return Verdict::kDropQueueFull;

    Traits::SetArrivalTsc(pkt, now_tsc);
    ClassQueue& q = queue(tenant, cls);
    if (q.tail == nullptr) {
      Traits::SetNext(pkt, pkt);
    } else {
      Traits::SetNext(pkt, Traits::Next(q.tail));
      Traits::SetNext(q.tail, pkt);
    }
    q.tail = pkt;
    q.bytes += len;
    s.queued_bytes += len;
    queued_bytes_ += len;
    const bool was_idle = s.backlog_mask == 0;
    s.backlog_mask |= static_cast<uint8_t>(1u << cls);
    if (was_idle) {
      // An empty wheel's cursor may be stale (no Dequeue yet, or a long idle
      // spell): bring it to now before parking relative to it. Only here and
      // in AdvanceWheel, never while AdvanceWheel walks a slot.
      if (parked_ == 0 && cursor_slot_ < (now_tsc >> kSlotShift))
        cursor_slot_ = now_tsc >> kSlotShift;
      Place(tenant, now_tsc);
    }
    return Verdict::kQueued;
  }

  // Fills out[] with up to max packets that may leave now. Expired packets
  // go to sink(pkt, tenant, cls, DropReason::kQueueLimit), which frees them.
  template <class Sink>
  uint32_t Dequeue(uint64_t now_tsc, Packet** out, uint32_t max, Sink&& sink) {
    if (profile_ == nullptr) return 0;
    const Profile& p = *profile_;
    ++counters_.dequeue_calls;
    AdvanceWheel(now_tsc, 64 + 2 * max, sink);
    uint32_t n = 0;
    uint32_t budget = 64 + 4 * max;
    const uint64_t link_limit_tsc = now_tsc + p.link_rate().tolerance_tsc;
    while (n < max) {
      if (budget-- == 0) {
        ++counters_.budget_exhausted;
        break;
      }
      if (link_tat_tsc_ > link_limit_tsc) break;
      const bool assured_phase = assured_list_.head != kNil;
      const uint32_t t = assured_phase ? assured_list_.head : borrow_list_.head;
      if (t == kNil) break;
      ++counters_.steps;
      ++counters_.tenant_visits;
      if (t >= p.num_tenants()) {
        DrainRemovedTenant(t, sink, budget);  // stays at the head if the budget ran out
        continue;
      }
      TenantState& s = state(t);
      const TenantProfile& tp = p.tenant(t);
      if (!assured_phase && s.borrow_credit <= 0) {
        s.borrow_credit += static_cast<int32_t>(tp.quantum_bytes);
        MoveToBack<&TenantState::borrow_link>(borrow_list_, t);
        continue;
      }
      if (!CeilingConforms(s, tp, now_tsc)) {
        Place(t, now_tsc);  // parks it until its ceiling conforms
        continue;
      }
      if (assured_phase && !AssuredConforms(s, tp, now_tsc)) {
        Unlink<&TenantState::assured_link>(assured_list_, t, kInAssured);
        Park(t, s.assured_tat_tsc - tp.assured_tolerance_tsc());
        continue;
      }
      uint32_t cls = 0;
      Packet* pkt = PopNext(t, now_tsc, sink, cls, budget);
      if (pkt == nullptr) continue;  // only expired packets were left, or the budget ran out
      ChargeSend(t, s, tp, cls, Traits::WireLength(pkt) + p.overhead_bytes(), assured_phase,
                 now_tsc);
      out[n++] = pkt;
      if (s.backlog_mask == 0) {
        Deactivate(t);
      } else if (assured_phase) {
        MoveToBack<&TenantState::assured_link>(assured_list_, t);
      } else if (tp.assured_cpb_fp != 0 && (s.flags & (kInAssured | kInWheel)) == 0) {
        Place(t, now_tsc);  // got a guarantee from a new profile while borrowing
      }
    }
    return n;
  }

  uint64_t queued_bytes() const { return queued_bytes_; }
  // Whether `tenant`'s backlog plus `bytes` drains at its assured rate
  // within `window_tsc`: true for a tenant sending within its guarantee
  // (its queue stays short), false for one with no guarantee or a standing
  // backlog. The worker admits such packets while the mbuf pool is low, so
  // a flood that fills the pool cannot take a guarantee away.
  bool FitsAssuredBacklog(uint32_t tenant, uint32_t bytes, uint64_t window_tsc) const {
    if (profile_ == nullptr || tenant >= max_tenants_ || tenant >= profile_->num_tenants())
      return false;
    const BucketRate assured = profile_->tenant(tenant).assured();
    if (assured.cpb_fp == 0) return false;
    return CostOf(assured, state(tenant).queued_bytes + bytes).tsc <= window_tsc;
  }
  uint64_t tenant_queued_bytes(uint32_t tenant, uint32_t cls) const {
    if (tenant >= max_tenants_ || cls >= num_classes_) return 0;
    return queue(tenant, cls).bytes;
  }

  // Shutdown: hands back every queued packet, as free_pkt(pkt) or
  // free_pkt(pkt, tenant, cls). Every backlogged tenant is in the borrow list
  // or the wheel (Place() keeps that true), so walking those finds them all.
  template <class Fn>
  void DrainAll(Fn&& free_pkt) {
    auto drain_list = [&](ListHead& list, Link TenantState::*member) {
      while (list.head != kNil) {
        const uint32_t t = list.head;
        uint32_t unlimited = UINT32_MAX;
        DrainTenant(
            t,
            [&](Packet* pkt, uint32_t tenant, uint32_t cls) {
              if constexpr (std::is_invocable_v<Fn&, Packet*, uint32_t, uint32_t>) {
                free_pkt(pkt, tenant, cls);
              } else {
                free_pkt(pkt);
              }
            },
            unlimited);
        if (list.head == t) {  // an empty tenant left in a list: unlink it
          list.head = (state(t).*member).next;
          if (list.head == kNil) list.tail = kNil;
        }
      }
    };
    drain_list(borrow_list_, &TenantState::borrow_link);
    for (ListHead& slot : wheel_) drain_list(slot, &TenantState::wheel_link);
    drain_list(assured_list_, &TenantState::assured_link);
  }

  const Counters& counters() const { return counters_; }
  // Loads one word of every cache line of `tenant`'s block and of its
  // profile entry, and returns them summed (the caller keeps the sum alive,
  // so the loads happen). A pass of these over a burst before the burst is
  // scheduled overlaps the burst's cache misses: at 1M tenants nearly every
  // line is a miss, and independent loads in a tight loop run at the
  // memory's random-line rate, where the scheduler's dependent steps take
  // them one or two at a time. Loads, not prefetches: on the development VM
  // software prefetches of the same lines measured nothing issued just
  // before, lost when spread over the work, and gained at most 9% with every
  // burst held back one iteration; these loads measured +26% at 1M tenants
  // (docs/benchmarks.md). 0 for a tenant the profile does not have.
  uint64_t WarmTenant(uint32_t tenant) const {
    if (profile_ == nullptr || tenant >= max_tenants_ || tenant >= profile_->num_tenants())
      return 0;
    const std::byte* block = BlockOf(tenant);
    uint64_t sum = 0;
    for (size_t offset = 0; offset < block_bytes_; offset += kLineBytes) {
      uint64_t word;  // one load; memcpy, as the bytes belong to other types
      std::memcpy(&word, block + offset, sizeof(word));
      sum += word;
    }
    static_assert(sizeof(TenantProfile) <= kLineBytes);
    return sum + profile_->tenant(tenant).ceiling_cpb_fp;
  }
  // Where `tenant`'s block (state and class queues, TenantStateBytes long)
  // is: for benches that count the cache lines a frame touches.
  const void* TenantBlock(uint32_t tenant) const { return BlockOf(tenant); }
  const Profile* profile() const { return profile_; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  static constexpr uint8_t kInAssured = 1, kInBorrow = 2, kInWheel = 4;
  static constexpr size_t kLineBytes = 64;

  struct Link {
    uint32_t next = kNil;
    uint32_t prev = kNil;
  };
  struct ListHead {
    uint32_t head = kNil;
    uint32_t tail = kNil;
  };

  // Mutable per-tenant state, laid out by access: list links and the fields
  // of the send decision first, bucket times after. 72 bytes. A tenant's
  // block is this followed by its class queues (TenantStateBytes).
  struct TenantState {
    Link assured_link;
    Link borrow_link;
    Link wheel_link;
    int32_t borrow_credit = 0;  // DRR deficit for borrowing, bytes
    uint8_t flags = 0;          // kInAssured | kInBorrow | kInWheel
    uint8_t backlog_mask = 0;   // classes with queued packets
    uint8_t bulk_cursor = 0;    // DRR position among the bulk classes
    uint8_t pad = 0;
    uint32_t wheel_slot = 0;    // valid while kInWheel
    uint32_t queued_bytes = 0;  // all classes, bounded by the tenant's limit
    uint32_t ceiling_frac = 0;  // sub-cycle parts of the bucket times
    uint32_t assured_frac = 0;
    uint64_t ceiling_tat_tsc = 0;
    uint64_t assured_tat_tsc = 0;
    uint64_t wake_tsc = 0;  // valid while kInWheel
  };
  // One (tenant, class) queue. 16 bytes.
  struct ClassQueue {
    Packet* tail = nullptr;  // circular FIFO: Next(tail) is the head
    uint32_t bytes = 0;
    // Bulk: DRR deficit in bytes. Latency: share credit in bytes << kShareShift.
    int32_t credit = 0;
  };

 public:
  // Mutable bytes per tenant per direction, excluding queued packets: one
  // block of the state and the class queues, rounded up to whole cache
  // lines (128 bytes at 2 classes, 256 at 8). One block instead of two
  // arrays: at a million tenants every packet misses the cache on its
  // tenant's state and queue, and a 128-byte block on a 128-byte boundary is
  // the line pair the adjacent-line prefetcher fetches together, where two
  // arrays cost three lines (docs/benchmarks.md, "Dataplane").
  static constexpr size_t TenantStateBytes(uint32_t num_classes) {
    return (sizeof(TenantState) + num_classes * sizeof(ClassQueue) + kLineBytes - 1) / kLineBytes *
           kLineBytes;
  }
  static_assert(sizeof(TenantState) == 72);
  static_assert(sizeof(ClassQueue) == 16);

 private:
  std::byte* BlockOf(uint32_t t) {
    return reinterpret_cast<std::byte*>(blocks_.data()) + static_cast<size_t>(t) * block_bytes_;
  }
  const std::byte* BlockOf(uint32_t t) const {
    return reinterpret_cast<const std::byte*>(blocks_.data()) +
           static_cast<size_t>(t) * block_bytes_;
  }
  TenantState& state(uint32_t t) {
    return *std::launder(reinterpret_cast<TenantState*>(BlockOf(t)));
  }
  const TenantState& state(uint32_t t) const {
    return *std::launder(reinterpret_cast<const TenantState*>(BlockOf(t)));
  }
  ClassQueue& queue(uint32_t t, uint32_t c) {
    return *std::launder(
        reinterpret_cast<ClassQueue*>(BlockOf(t) + sizeof(TenantState) + c * sizeof(ClassQueue)));
  }
  const ClassQueue& queue(uint32_t t, uint32_t c) const {
    return *std::launder(reinterpret_cast<const ClassQueue*>(BlockOf(t) + sizeof(TenantState) +
                                                             c * sizeof(ClassQueue)));
  }

  // ---- GCRA buckets -------------------------------------------------------
  static void Charge(uint64_t& tat_tsc, uint32_t& frac, const BucketRate& rate, uint32_t bytes,
                     uint64_t now_tsc) {
    if (tat_tsc < now_tsc) {  // idle: the credit is capped at the tolerance
      tat_tsc = now_tsc;
      frac = 0;
    }
    const Cost cost = CostOf(rate, bytes);
    const uint64_t sum = static_cast<uint64_t>(frac) + cost.frac;
    frac = static_cast<uint32_t>(sum);
    tat_tsc += cost.tsc + (sum >> 32);
  }
  static bool CeilingConforms(const TenantState& s, const TenantProfile& tp, uint64_t now_tsc) {
    return s.ceiling_tat_tsc <= now_tsc + tp.ceiling_tolerance_tsc();
  }
  static bool AssuredConforms(const TenantState& s, const TenantProfile& tp, uint64_t now_tsc) {
    return s.assured_tat_tsc <= now_tsc + tp.assured_tolerance_tsc();
  }
  // What tenant t pays for sending `bytes` (overhead included) of class
  // `cls`: the link and its ceiling, then its guarantee in the assured phase
  // or its DRR credit when borrowing, then the class credits. The one place
  // Dequeue and SendNow charge a send.
  void ChargeSend(uint32_t t, TenantState& s, const TenantProfile& tp, uint32_t cls, uint32_t bytes,
                  bool assured_phase, uint64_t now_tsc) {
    Charge(link_tat_tsc_, link_frac_, profile_->link_rate(), bytes, now_tsc);
    Charge(s.ceiling_tat_tsc, s.ceiling_frac, tp.ceiling(), bytes, now_tsc);
    if (assured_phase) {
      Charge(s.assured_tat_tsc, s.assured_frac, tp.assured(), bytes, now_tsc);
    } else {
      s.borrow_credit -= static_cast<int32_t>(bytes);
    }
    ChargeClasses(t, cls, bytes);
  }

  // ---- intrusive index lists ----------------------------------------------
  template <Link TenantState::*M>
  void PushBack(ListHead& list, uint32_t t) {
    Link& l = state(t).*M;
    l.next = kNil;
    l.prev = list.tail;
    if (list.tail == kNil) {
      list.head = t;
    } else {
      (state(list.tail).*M).next = t;
    }
    list.tail = t;
  }
  template <Link TenantState::*M>
  void Remove(ListHead& list, uint32_t t) {
    Link& l = state(t).*M;
    if (l.prev == kNil) {
      list.head = l.next;
    } else {
      (state(l.prev).*M).next = l.next;
    }
    if (l.next == kNil) {
      list.tail = l.prev;
    } else {
      (state(l.next).*M).prev = l.prev;
    }
    l = Link{};
  }
  template <Link TenantState::*M>
  void MoveToBack(ListHead& list, uint32_t t) {
    if (list.tail == t) return;
    Remove<M>(list, t);
    PushBack<M>(list, t);
  }
  template <Link TenantState::*M>
  void Unlink(ListHead& list, uint32_t t, uint8_t flag) {
    TenantState& s = state(t);
    if ((s.flags & flag) == 0) return;
    Remove<M>(list, t);
    s.flags &= static_cast<uint8_t>(~flag);
  }

  // ---- placement ------------------------------------------------------------
  // Puts a backlogged tenant where its buckets say: parked when its ceiling
  // does not conform; otherwise in the borrow list, and in the assured list
  // while its guarantee conforms (parked at its assured instant if not).
  void Place(uint32_t t, uint64_t now_tsc) {
    TenantState& s = state(t);
    const TenantProfile& tp = profile_->tenant(t);
    if (!CeilingConforms(s, tp, now_tsc)) {
      Unlink<&TenantState::assured_link>(assured_list_, t, kInAssured);
      Unlink<&TenantState::borrow_link>(borrow_list_, t, kInBorrow);
      Park(t, s.ceiling_tat_tsc - tp.ceiling_tolerance_tsc());
      return;
    }
    if ((s.flags & kInBorrow) == 0) {
      PushBack<&TenantState::borrow_link>(borrow_list_, t);
      s.flags |= kInBorrow;
    }
    if (tp.assured_cpb_fp == 0) return;
    if (!AssuredConforms(s, tp, now_tsc)) {
      Park(t, s.assured_tat_tsc - tp.assured_tolerance_tsc());
    } else if ((s.flags & kInAssured) == 0) {
      PushBack<&TenantState::assured_link>(assured_list_, t);
      s.flags |= kInAssured;
    }
  }

  // A tenant that ran empty leaves every list and the wheel.
  void Deactivate(uint32_t t) {
    Unlink<&TenantState::assured_link>(assured_list_, t, kInAssured);
    Unlink<&TenantState::borrow_link>(borrow_list_, t, kInBorrow);
    Unpark(t);
  }

  // ---- timing wheel ---------------------------------------------------------
  void Park(uint32_t t, uint64_t wake_tsc) {
    TenantState& s = state(t);
    if (s.flags & kInWheel) {
      if (wake_tsc >= s.wake_tsc) return;  // the earlier wake re-places it anyway
      Remove<&TenantState::wheel_link>(wheel_[s.wheel_slot], t);
    } else {
      s.flags |= kInWheel;
      ++parked_;
    }
    ++counters_.parks;
    s.wake_tsc = wake_tsc;
    uint64_t slot = wake_tsc >> kSlotShift;
    if (slot < cursor_slot_) slot = cursor_slot_;
    // Past the horizon: the farthest slot, re-parked from there when reached.
    if (slot >= cursor_slot_ + kWheelSlots) slot = cursor_slot_ + kWheelSlots - 1;
    s.wheel_slot = static_cast<uint32_t>(slot & (kWheelSlots - 1));
    PushBack<&TenantState::wheel_link>(wheel_[s.wheel_slot], t);
  }

  void Unpark(uint32_t t) {
    TenantState& s = state(t);
    if ((s.flags & kInWheel) == 0) return;
    Remove<&TenantState::wheel_link>(wheel_[s.wheel_slot], t);
    s.flags &= static_cast<uint8_t>(~kInWheel);
    --parked_;
  }

  // Processes the slots whose time span is wholly past, a bounded number per
  // call; a slot left half done is resumed by the next call.
  template <class Sink>
  void AdvanceWheel(uint64_t now_tsc, uint32_t max_wakeups, Sink& sink) {
    const uint64_t now_slot = now_tsc >> kSlotShift;
    uint32_t slots = 0;
    while (cursor_slot_ < now_slot) {
      if (parked_ == 0) {
        cursor_slot_ = now_slot;
        return;
      }
      if (slots++ == kMaxWheelSlotsPerDequeue) return;
      ++counters_.wheel_slots_visited;
      ListHead& slot = wheel_[cursor_slot_ & (kWheelSlots - 1)];
      while (slot.head != kNil) {
        if (max_wakeups == 0) return;
        --max_wakeups;
        const uint32_t t = slot.head;
        Unpark(t);
        ++counters_.wheel_wakeups;
        ++counters_.tenant_visits;
        if (t >= profile_->num_tenants()) {
          // Drained in bounded bites; what is left waits for the next slot.
          if (!DrainRemovedTenant(t, sink, max_wakeups)) Park(t, now_tsc);
        } else if (state(t).backlog_mask != 0) {
          Place(t, now_tsc);  // may park again, always in a later slot
        }
      }
      ++cursor_slot_;
    }
  }

  // ---- classes --------------------------------------------------------------
  // Picks the class to serve (see the essay), drops expired heads (each one
  // spends a unit of budget), pops and returns the packet; nullptr when the
  // tenant ran empty (and is deactivated) or the budget ran out.
  template <class Sink>
  Packet* PopNext(uint32_t t, uint64_t now_tsc, Sink& sink, uint32_t& cls_out, uint32_t& budget) {
    TenantState& s = state(t);
    const Profile& p = *profile_;
    for (;;) {
      if (s.backlog_mask == 0) {
        Deactivate(t);
        return nullptr;
      }
      if (budget == 0) return nullptr;
      const uint32_t c = PickClass(t, s);
      Packet* head = PopHead(t, c);
      const uint64_t arrival_tsc = Traits::ArrivalTsc(head);
      if (now_tsc > arrival_tsc && now_tsc - arrival_tsc > p.cls(c).queue_limit_tsc) {
        ++counters_.steps;
        --budget;
        sink(head, t, c, DropReason::kQueueLimit);
        continue;
      }
      cls_out = c;
      return head;
    }
  }

  uint32_t PickClass(uint32_t t, TenantState& s) {
    const Profile& p = *profile_;
    const uint32_t latency = s.backlog_mask & p.latency_mask();
    for (uint32_t m = latency; m != 0; m &= m - 1) {
      const uint32_t c = static_cast<uint32_t>(std::countr_zero(m));
      if (queue(t, c).credit >= 0) return c;  // within its share: strict priority
    }
    const uint32_t bulk = s.backlog_mask & p.bulk_mask();
    if (bulk == 0) return static_cast<uint32_t>(std::countr_zero(latency));  // above share, alone
    for (;;) {  // DRR over the backlogged bulk classes; ends: every pass adds credit
      const uint32_t c = s.bulk_cursor < num_classes_ ? s.bulk_cursor : 0;
      s.bulk_cursor = static_cast<uint8_t>(c);
      if (bulk & (1u << c)) {
        ClassQueue& q = queue(t, c);
        if (q.credit > 0) return c;
        q.credit += static_cast<int32_t>(p.cls(c).quantum_bytes);
      }
      s.bulk_cursor = static_cast<uint8_t>(c + 1 < num_classes_ ? c + 1 : 0);
    }
  }

  // Latency credit: every byte the tenant sends earns share_q12 / 4096 bytes
  // for each latency class; a latency byte spends one. Bulk: DRR deficit.
  void ChargeClasses(uint32_t t, uint32_t cls, uint32_t bytes) {
    const Profile& p = *profile_;
    constexpr int64_t kCap = static_cast<int64_t>(kLatencyBurstBytes) << Profile::kShareShift;
    for (uint32_t m = p.latency_mask(); m != 0; m &= m - 1) {
      const uint32_t c = static_cast<uint32_t>(std::countr_zero(m));
      ClassQueue& q = queue(t, c);
      int64_t credit = q.credit + static_cast<int64_t>(bytes) * p.cls(c).share_q12;
      if (c == cls) credit -= static_cast<int64_t>(bytes) << Profile::kShareShift;
      q.credit = static_cast<int32_t>(credit > kCap ? kCap : (credit < -kCap ? -kCap : credit));
    }
    if (!p.cls(cls).latency) {
      ClassQueue& q = queue(t, cls);
      q.credit -= static_cast<int32_t>(bytes);
      if (q.tail == nullptr) q.credit = 0;  // an emptied bulk class keeps no deficit
    }
  }

  Packet* PopHead(uint32_t t, uint32_t c) {
    ClassQueue& q = queue(t, c);
    TenantState& s = state(t);
    Packet* head = Traits::Next(q.tail);
    if (head == q.tail) {
      q.tail = nullptr;
      s.backlog_mask &= static_cast<uint8_t>(~(1u << c));
    } else {
      Traits::SetNext(q.tail, Traits::Next(head));
    }
    Traits::SetNext(head, nullptr);
    const uint32_t len = Traits::WireLength(head);
    q.bytes -= len;
    s.queued_bytes -= len;
    queued_bytes_ -= len;
    return head;
  }

  // Hands up to `budget` packets of tenant t to fn(pkt, tenant, cls);
  // deactivates it and returns true once it is empty.
  template <class Fn>
  bool DrainTenant(uint32_t t, Fn&& fn, uint32_t& budget) {
    TenantState& s = state(t);
    while (s.backlog_mask != 0) {
      if (budget == 0) return false;
      --budget;
      const uint32_t c = static_cast<uint32_t>(std::countr_zero(s.backlog_mask));
      Packet* pkt = PopHead(t, c);
      fn(pkt, t, c);
    }
    Deactivate(t);
    return true;
  }

  // A tenant the installed profile no longer has: its packets are over limit.
  template <class Sink>
  bool DrainRemovedTenant(uint32_t t, Sink& sink, uint32_t& budget) {
    return DrainTenant(
        t,
        [&](Packet* pkt, uint32_t tenant, uint32_t cls) {
          ++counters_.steps;
          sink(pkt, tenant, cls, DropReason::kQueueLimit);
        },
        budget);
  }

  const uint32_t max_tenants_;
  const uint32_t num_classes_;
  const Profile* profile_ = nullptr;
  // Hot, touched by every packet.
  uint64_t link_tat_tsc_ = 0;
  uint32_t link_frac_ = 0;
  uint32_t parked_ = 0;
  uint64_t queued_bytes_ = 0;
  ListHead assured_list_;
  ListHead borrow_list_;
  uint64_t cursor_slot_ = 0;  // next wheel slot (absolute number) to process
  Counters counters_;
  // The tenants' blocks (TenantStateBytes apart), on huge pages: they are
  // touched at random (profile.h).
  struct alignas(kLineBytes) Line {
    std::byte bytes[kLineBytes];
  };
  const size_t block_bytes_;
  HugePageVector<Line> blocks_;
  std::vector<ListHead> wheel_;
};

}  // namespace shaper::sched
