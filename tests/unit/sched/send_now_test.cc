// Scheduler::SendNow, the idle tenant's fast path: a packet it lets through
// is charged exactly as the Dequeue that would have sent it, so what leaves
// afterwards, and when, is the same as without it.
#include <cstdio>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "tests/unit/sched/sim.h"

namespace shaper::sched::test {
namespace {

struct Departure {
  uint64_t tsc;
  uint32_t tenant, cls;
  uint64_t seq;
  bool operator==(const Departure&) const = default;
};

// Two tenants with guarantees and a third without, a latency class and two
// bulk classes (weights 1 and 2), on a 100 Mbit/s link.
std::unique_ptr<Sim> MakeSim(bool send_now) {
  auto sim = std::make_unique<Sim>(
      LinkParams{100'000'000, kOverhead, 0},
      std::vector<ClassParams>{Latency(200'000), Bulk(1), Bulk(2)},
      std::vector<TenantParams>{Tenant(30, 80, 1, 3000), Tenant(30, 80, 2, 3000), Tenant(0, 50)});
  sim->set_send_now(send_now);
  return sim;
}

// The same offers at the same times into a scheduler with and without
// SendNow, each offer followed by a poll (as the worker dequeues after each
// RX burst, here a burst of one). First each tenant alone below its
// guarantee (every packet leaves at once; with SendNow, nearly all of them
// through it). Then, one tenant at a time, bursts of 30 packets of both
// classes in one instant: SendNow lets the first ones through until a
// bucket stops conforming, the rest queue, and the tenant is throttled, so
// departure times and class order follow from the bucket and class state
// the earlier packets left. Every departure must match: time, tenant, class
// and sequence number, so any difference in what SendNow charged (a bucket,
// a class credit, the bulk cursor) shows. (With several packets offered
// before a poll the order may differ, by design: Dequeue would pick the
// latency class or another tenant first where SendNow sends in arrival
// order, all in the same instant; see SendNow. The promises are checked
// with SendNow by the whole suite, sched_send_now.)
TEST(SendNow, ChargesExactlyAsTheDequeueItReplaces) {
  const auto plain_sim = MakeSim(false);
  const auto fast_sim = MakeSim(true);
  Sim& plain = *plain_sim;
  Sim& fast = *fast_sim;
  std::vector<Departure> got[2];
  plain.set_on_transmit([&](const TestPacket& p) {
    got[0].push_back({plain.now(), p.tenant, p.cls, p.seq});
  });
  fast.set_on_transmit([&](const TestPacket& p) {
    got[1].push_back({fast.now(), p.tenant, p.cls, p.seq});
  });
  std::mt19937_64 rng(11);
  auto both = [&](auto&& fn) {
    fn(plain);
    fn(fast);
  };
  auto random_cls = [&] { return static_cast<uint32_t>(rng() % 4 == 0 ? 0 : 1 + rng() % 2); };
  auto random_len = [&] { return static_cast<uint32_t>(64 + rng() % 1437); };
  // 1. Light: one packet every 100-200 us, random tenant (of the two with a
  // guarantee), class and size: about 16 Mbit/s each on average, under the
  // 30 Mbit/s guarantee.
  constexpr int kLight = 2000;
  for (int i = 0; i < kLight; ++i) {
    const uint64_t step = NsToTsc(100'000 + rng() % 100'000);
    const uint32_t tenant = static_cast<uint32_t>(rng() % 2);
    const uint32_t cls = random_cls();
    const uint32_t len = random_len();
    both([&](Sim& s) {
      s.set_now(s.now() + step);
      EXPECT_EQ(s.Offer(tenant, cls, len), Verdict::kQueued);
      s.Poll();
    });
  }
  EXPECT_EQ(plain.transmitted(), static_cast<uint64_t>(kLight));
  EXPECT_EQ(fast.transmitted(), static_cast<uint64_t>(kLight));
  const uint64_t sent_now_light = fast.sched().counters().sent_now;
  EXPECT_EQ(plain.sched().counters().sent_now, 0u);
  std::printf("light phase: %d packets, %llu through SendNow\n", kLight,
              static_cast<unsigned long long>(sent_now_light));
  // Nearly all: a packet finds its tenant's buckets in debt only after a
  // run of large frames.
  EXPECT_GT(sent_now_light, static_cast<uint64_t>(kLight) * 9 / 10);

  // 2. Bursts, one tenant at a time, each drained before the next.
  for (int burst = 0; burst < 40; ++burst) {
    const uint32_t tenant = static_cast<uint32_t>(burst % 2);
    std::vector<std::pair<uint32_t, uint32_t>> packets(30);
    for (auto& [cls, len] : packets) {
      cls = random_cls();
      len = random_len();
    }
    both([&](Sim& s) {
      s.set_now(s.now() + MsToTsc(1));
      for (const auto& [cls, len] : packets) {
        EXPECT_EQ(s.Offer(tenant, cls, len), Verdict::kQueued);
        s.Poll();
      }
      s.Run(MsToTsc(20), NsToTsc(3000));
    });
  }
  std::printf("after the bursts: %llu through SendNow, %llu packets in all\n",
              static_cast<unsigned long long>(fast.sched().counters().sent_now),
              static_cast<unsigned long long>(fast.transmitted()));
  EXPECT_GT(fast.sched().counters().sent_now, sent_now_light + 40) << "the bursts' first packets";
  EXPECT_EQ(fast.transmitted(), static_cast<uint64_t>(kLight + 40 * 30));
  EXPECT_GT(fast.sched().counters().parks, 0u) << "the bursts were throttled";
  ASSERT_EQ(got[0].size(), got[1].size());
  size_t first_difference = got[0].size();
  for (size_t i = 0; i < got[0].size(); ++i) {
    if (!(got[0][i] == got[1][i])) {
      first_difference = i;
      break;
    }
  }
  ASSERT_EQ(first_difference, got[0].size())
      << "departure " << first_difference << ": without SendNow tenant "
      << got[0][first_difference].tenant << " class " << got[0][first_difference].cls << " seq "
      << got[0][first_difference].seq << " at " << got[0][first_difference].tsc
      << ", with it tenant " << got[1][first_difference].tenant << " class "
      << got[1][first_difference].cls << " seq " << got[1][first_difference].seq << " at "
      << got[1][first_difference].tsc;
  for (uint32_t t = 0; t < 2; ++t) {
    for (uint32_t c = 0; c < 3; ++c) EXPECT_EQ(fast.flow(t, c).reorders, 0u);
  }
}

// The bulk cursor: after packets sent now from bulk class 2, a backlog of
// both bulk classes must start where Dequeue would have left the cursor
// (class 2), in both schedulers.
TEST(SendNow, LeavesTheBulkCursorWhereDequeueWould) {
  const auto plain_sim = MakeSim(false);
  const auto fast_sim = MakeSim(true);
  std::vector<uint32_t> classes[2];
  int i = 0;
  for (Sim* s : {plain_sim.get(), fast_sim.get()}) {
    std::vector<uint32_t>& out = classes[i++];
    s->set_on_transmit([&out](const TestPacket& p) { out.push_back(p.cls); });
    s->set_now(MsToTsc(10));
    // 3 x 1524 wire bytes: past the 3750-byte depth of the assured bucket
    // (1 ms at 30 Mbit/s), so what follows queues.
    for (int k = 0; k < 3; ++k) {
      ASSERT_EQ(s->Offer(0, 2, 1500), Verdict::kQueued);
      s->Poll();
    }
    for (int k = 0; k < 4; ++k) {
      ASSERT_EQ(s->Offer(0, 1, 1500), Verdict::kQueued);
      ASSERT_EQ(s->Offer(0, 2, 1500), Verdict::kQueued);
    }
    s->Run(MsToTsc(20), NsToTsc(3000));
  }
  EXPECT_GE(fast_sim->sched().counters().sent_now, 2u);
  ASSERT_EQ(classes[0].size(), 11u);
  EXPECT_EQ(classes[0], classes[1]);
}

// When SendNow must say no, and that it then changes nothing (the packet is
// enqueued and leaves exactly as in a twin that never asked).
TEST(SendNow, RefusesUnlessIdleWithinGuaranteeAndNothingAssuredWaits) {
  const auto sim_ptr = MakeSim(false);
  const auto twin_ptr = MakeSim(false);
  Sim& sim = *sim_ptr;
  Sim& twin = *twin_ptr;
  TestPacket a{}, b{}, c{}, d{};
  a.len = b.len = c.len = d.len = 1000;
  // The tenant without a guarantee borrows: never sent now.
  EXPECT_FALSE(sim.sched().SendNow(&a, 2, 1, sim.now()));
  // A tenant with something queued is not idle.
  ASSERT_EQ(sim.Offer(0, 1, 1000), Verdict::kQueued);
  ASSERT_EQ(twin.Offer(0, 1, 1000), Verdict::kQueued);
  EXPECT_FALSE(sim.sched().SendNow(&b, 0, 0, sim.now()));
  // ... and while it waits in the assured list nobody else goes first.
  EXPECT_FALSE(sim.sched().SendNow(&c, 1, 1, sim.now()));
  // Out of range.
  EXPECT_FALSE(sim.sched().SendNow(&d, 7, 0, sim.now()));
  EXPECT_FALSE(sim.sched().SendNow(&d, 1, 5, sim.now()));
  EXPECT_EQ(sim.sched().counters().sent_now, 0u);
  // A tenant whose assured bucket is spent: 40 kB at once, past the
  // 3000-byte burst, then it must wait for the assured rate.
  sim.Poll();
  twin.Poll();
  for (int i = 0; i < 40; ++i) {
    for (Sim* s : {&sim, &twin}) ASSERT_EQ(s->Offer(1, 1, 1000), Verdict::kQueued);
  }
  sim.Poll();
  twin.Poll();
  ASSERT_GT(sim.sched().tenant_queued_bytes(1, 1), 0u);
  std::vector<uint64_t> left[2];
  sim.set_on_transmit([&](const TestPacket& p) { left[0].push_back(sim.now() * 4 + p.tenant); });
  twin.set_on_transmit([&](const TestPacket& p) { left[1].push_back(twin.now() * 4 + p.tenant); });
  sim.Run(MsToTsc(20), NsToTsc(5000));
  twin.Run(MsToTsc(20), NsToTsc(5000));
  EXPECT_EQ(left[0], left[1]);
  EXPECT_EQ(sim.transmitted(), twin.transmitted());
  EXPECT_EQ(sim.sched().counters().sent_now, 0u);
}

}  // namespace
}  // namespace shaper::sched::test
