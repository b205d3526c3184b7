// The classifier on crafted frames: parsing (Ethernet, VLAN, QinQ, IPv4,
// IPv6), tenant by longest prefix and VLAN, class by DSCP, and malformed
// input. Every frame sits in a GuardedFrame, so a read past data_len faults.
#include "dataplane/classify.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <random>
#include <tuple>

#include "dataplane/abi/plan.h"
#include "dataplane/mbuf_meta.h"
#include "tests/dataplane/dpdk_env.h"
#include "tests/tools/packet_builder.h"

namespace shaper::dataplane {
namespace {

using testing::GuardedFrame;
using testing::Packet;
constexpr uint32_t kUp = abi::kUpload;
constexpr uint32_t kDown = abi::kDownload;
constexpr uint8_t kDefaultClass = 2;

MatchRule Rule(const std::string& prefix, uint32_t tenant, uint16_t vlan = 0) {
  MatchRule r;
  const size_t slash = prefix.find('/');
  const std::string addr = prefix.substr(0, slash);
  r.length = static_cast<uint8_t>(std::stoi(prefix.substr(slash + 1)));
  r.is_v6 = addr.find(':') != std::string::npos;
  EXPECT_EQ(inet_pton(r.is_v6 ? AF_INET6 : AF_INET, addr.c_str(), r.addr.data()), 1) << prefix;
  r.vlan = vlan;
  r.tenant = tenant;
  return r;
}

std::array<uint8_t, 64> DscpMap() {
  std::array<uint8_t, 64> m{};
  // A map where every code point has a distinguishable class: dscp % 8.
  for (uint32_t d = 0; d < 64; ++d) m[d] = static_cast<uint8_t>(d % 8);
  return m;
}

std::unique_ptr<ClassifyTables> Tables(std::vector<MatchRule> rules) {
  auto t = ClassifyTables::Build(rules, DscpMap(), kDefaultClass);
  EXPECT_TRUE(t.has_value()) << (t ? "" : t.error());
  return t ? std::move(*t) : nullptr;
}

MbufMeta Classify(const ClassifyTables& t, uint32_t dir, const std::vector<uint8_t>& frame) {
  GuardedFrame f(frame);
  rte_mbuf* m = f.mbuf();
  t.ClassifyBurst(dir, &m, 1);
  return *Meta(m);
}

class ClassifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_DPDK();
    tables_ = Tables({Rule("10.1.0.0/16", 1), Rule("10.1.2.0/24", 2), Rule("10.1.2.128/25", 3),
                      Rule("2001:db8::/32", 4), Rule("2001:db8:1::/48", 5),
                      Rule("192.168.0.0/16", 6, 100), Rule("192.168.0.0/16", 7, 200),
                      Rule("192.168.5.0/24", 8), Rule("172.16.0.0/12", 9),
                      Rule("172.16.1.0/24", 10, 100), Rule("2001:db8:99::/48", 11, 100)});
    ASSERT_NE(tables_, nullptr);
  }
  std::unique_ptr<ClassifyTables> tables_;
};

TEST_F(ClassifyTest, Ipv4TenantBySourceForUploadAndDestinationForDownload) {
  const auto frame = Packet().eth().ipv4("10.1.9.9", "10.1.2.200").udp(1, 2).payload(20).bytes();
  MbufMeta up = Classify(*tables_, kUp, frame);
  EXPECT_EQ(up.tenant, 1u);  // source 10.1.9.9 -> /16
  EXPECT_EQ(up.flags, 0);
  MbufMeta down = Classify(*tables_, kDown, frame);
  EXPECT_EQ(down.tenant, 3u);  // destination 10.1.2.200 -> /25, the longest of three
}

TEST_F(ClassifyTest, LongestPrefixWins) {
  struct Case {
    const char* addr;
    uint32_t tenant;
  } cases[] = {{"10.1.0.1", 1},   {"10.1.2.1", 2},       {"10.1.2.127", 2}, {"10.1.2.128", 3},
               {"10.1.2.255", 3}, {"10.1.3.0", 1},       {"10.2.0.0", 0},   {"11.0.0.1", 0},
               {"0.0.0.0", 0},    {"255.255.255.255", 0}};
  for (const Case& c : cases) {
    const auto frame = Packet().eth().ipv4(c.addr, "8.8.8.8").tcp(1, 2).bytes();
    EXPECT_EQ(Classify(*tables_, kUp, frame).tenant, c.tenant) << c.addr;
  }
}

TEST_F(ClassifyTest, Ipv6) {
  const auto frame = Packet().eth().ipv6("2001:db8:1::5", "2001:db8:2::5", 46).udp(1, 2).bytes();
  MbufMeta up = Classify(*tables_, kUp, frame);
  EXPECT_EQ(up.tenant, 5u);
  EXPECT_EQ(up.cls, 46 % 8);
  EXPECT_EQ(up.flags, 0);
  EXPECT_EQ(Classify(*tables_, kDown, frame).tenant, 4u);
  const auto other = Packet().eth().ipv6("2001:db9::1", "fe80::1").bytes();
  EXPECT_EQ(Classify(*tables_, kUp, other).tenant, abi::kDefaultTenantId);
  EXPECT_EQ(Classify(*tables_, kDown, other).tenant, abi::kDefaultTenantId);
}

TEST_F(ClassifyTest, EveryDscpMapsToItsClassV4AndV6) {
  for (uint8_t dscp = 0; dscp < 64; ++dscp) {
    const auto v4 = Packet().eth().ipv4("10.1.0.1", "1.1.1.1", dscp).udp(1, 2).bytes();
    EXPECT_EQ(Classify(*tables_, kUp, v4).cls, dscp % 8) << "dscp " << int{dscp};
    const auto v6 = Packet().eth().ipv6("2001:db8::1", "::1", dscp).udp(1, 2).bytes();
    EXPECT_EQ(Classify(*tables_, kUp, v6).cls, dscp % 8) << "dscp " << int{dscp};
  }
}

TEST_F(ClassifyTest, VlanAndQinqAreParsed) {
  const auto tagged = Packet().eth().vlan(300).ipv4("10.1.2.7", "1.1.1.1", 10).bytes();
  MbufMeta m = Classify(*tables_, kUp, tagged);
  EXPECT_EQ(m.tenant, 2u);
  EXPECT_EQ(m.cls, 10 % 8);
  EXPECT_EQ(m.vlan, 300);
  EXPECT_EQ(m.flags, kMetaVlan);

  const auto qinq = Packet().eth().vlan(400).vlan(500).ipv6("2001:db8:1::9", "::1", 3).bytes();
  m = Classify(*tables_, kUp, qinq);
  EXPECT_EQ(m.tenant, 5u);
  EXPECT_EQ(m.cls, 3);
  EXPECT_EQ(m.vlan, 400) << "the outer tag (S-tag) identifies the tenant";

  // 0x8100 outer + 0x8100 inner (old-style QinQ) parses as well.
  const auto double_8100 =
      Packet().eth().vlan(7, 0x8100).vlan(8, 0x8100).ipv4("10.1.0.3", "1.1.1.1").bytes();
  m = Classify(*tables_, kUp, double_8100);
  EXPECT_EQ(m.tenant, 1u);
  EXPECT_EQ(m.vlan, 7);
}

TEST_F(ClassifyTest, VlanQualifiedTenantMatchesOnlyItsVlan) {
  auto tenant_on = [&](int vlan, const char* src) {
    Packet p;
    p.eth();
    if (vlan >= 0) p.vlan(static_cast<uint16_t>(vlan));
    return Classify(*tables_, kUp, p.ipv4(src, "1.1.1.1").bytes()).tenant;
  };
  EXPECT_EQ(tenant_on(100, "192.168.1.1"), 6u);
  EXPECT_EQ(tenant_on(200, "192.168.1.1"), 7u);
  EXPECT_EQ(tenant_on(300, "192.168.1.1"), 0u) << "no tenant owns 192.168/16 on vlan 300";
  EXPECT_EQ(tenant_on(-1, "192.168.1.1"), 0u) << "untagged frames never match a vlan tenant";
  // A longer unqualified prefix inside wins on every VLAN (longest match).
  EXPECT_EQ(tenant_on(100, "192.168.5.1"), 8u);
  EXPECT_EQ(tenant_on(-1, "192.168.5.1"), 8u);
  // A longer VLAN-qualified prefix inside an unqualified one: only on its VLAN.
  EXPECT_EQ(tenant_on(100, "172.16.1.1"), 10u);
  EXPECT_EQ(tenant_on(101, "172.16.1.1"), 9u);
  EXPECT_EQ(tenant_on(-1, "172.16.1.1"), 9u);
  EXPECT_EQ(tenant_on(100, "172.16.2.1"), 9u);
  // IPv6 too.
  const auto v6_100 = Packet().eth().vlan(100).ipv6("2001:db8:99::1", "::1").bytes();
  const auto v6_101 = Packet().eth().vlan(101).ipv6("2001:db8:99::1", "::1").bytes();
  EXPECT_EQ(Classify(*tables_, kUp, v6_100).tenant, 11u);
  EXPECT_EQ(Classify(*tables_, kUp, v6_101).tenant, 4u) << "falls back to the /32";
  // Outer tag decides in QinQ.
  const auto qinq = Packet().eth().vlan(200).vlan(100).ipv4("192.168.1.1", "1.1.1.1").bytes();
  EXPECT_EQ(Classify(*tables_, kUp, qinq).tenant, 7u);
}

TEST_F(ClassifyTest, NonIpIsFlaggedForTheBypassWithDefaultTenantAndClass) {
  const testing::Mac mac{2, 0, 0, 0, 0, 9};
  const auto arp = Packet().eth().arp(mac, "10.1.2.3", "10.1.2.4").bytes();
  MbufMeta m = Classify(*tables_, kUp, arp);
  EXPECT_EQ(m.flags, kMetaNonIp);
  EXPECT_EQ(m.tenant, abi::kDefaultTenantId);
  EXPECT_EQ(m.cls, kDefaultClass);
  const auto lldp = Packet().eth().vlan(5).raw(0x88cc, std::vector<uint8_t>(40, 1)).bytes();
  m = Classify(*tables_, kDown, lldp);
  EXPECT_EQ(m.flags, kMetaNonIp | kMetaVlan);
  EXPECT_EQ(m.tenant, abi::kDefaultTenantId);
}

// Every prefix of a valid frame shorter than its headers is malformed, goes to
// the default tenant and class, and (GuardedFrame) is never read past its end.
TEST_F(ClassifyTest, TruncatedAtEveryLengthIsMalformed) {
  struct Case {
    const char* name;
    std::vector<uint8_t> frame;
    size_t headers;  // bytes up to the end of the IP header
  };
  const Case cases[] = {
      {"ipv4", Packet().eth().ipv4("10.1.2.3", "10.1.2.4", 46).udp(1, 2).payload(10).bytes(), 34},
      {"ipv6", Packet().eth().ipv6("2001:db8::1", "2001:db8::2", 46).udp(1, 2).bytes(), 54},
      {"vlan ipv4", Packet().eth().vlan(100).ipv4("10.1.2.3", "1.1.1.1", 46).bytes(), 38},
      {"qinq ipv6", Packet().eth().vlan(1).vlan(2).ipv6("2001:db8::1", "::2", 46).bytes(), 62},
  };
  for (const Case& c : cases) {
    ASSERT_GE(c.frame.size(), c.headers) << c.name;
    for (size_t len = 0; len < c.frame.size(); ++len) {
      std::vector<uint8_t> cut(c.frame.begin(), c.frame.begin() + static_cast<long>(len));
      const MbufMeta m = Classify(*tables_, kUp, cut);
      // Cut inside the headers, or short of the IP length field's promise.
      EXPECT_TRUE(m.flags & kMetaMalformed) << c.name << " cut to " << len;
      EXPECT_EQ(m.tenant, abi::kDefaultTenantId) << c.name << " cut to " << len;
      EXPECT_EQ(m.cls, kDefaultClass) << c.name << " cut to " << len;
    }
    const MbufMeta whole = Classify(*tables_, kUp, c.frame);
    EXPECT_FALSE(whole.flags & kMetaMalformed) << c.name;
    EXPECT_EQ(whole.cls, 46 % 8) << c.name;
  }
}

TEST_F(ClassifyTest, ImpossibleHeadersAreMalformed) {
  auto poke = [](std::vector<uint8_t> f, size_t at, uint8_t v) {
    f[at] = v;
    return f;
  };
  const auto v4 = Packet().eth().ipv4("10.1.2.3", "1.1.1.1").udp(1, 2).payload(8).bytes();
  const auto v6 = Packet().eth().ipv6("2001:db8::1", "::1").udp(1, 2).payload(8).bytes();
  const std::vector<std::pair<const char*, std::vector<uint8_t>>> bad = {
      {"ipv4 version 6", poke(v4, 14, 0x65)},
      {"ipv4 ihl 4", poke(v4, 14, 0x44)},
      {"ipv4 ihl 15 past the frame", poke(v4, 14, 0x4f)},
      {"ipv4 total length 0", poke(poke(v4, 16, 0), 17, 0)},
      {"ipv4 total length past the frame", poke(v4, 16, 0x40)},
      {"ipv6 version 4", poke(v6, 14, 0x40)},
      {"ipv6 payload length past the frame", poke(v6, 18, 0x10)},
      {"three vlan tags",
       Packet().eth().vlan(1).vlan(2).vlan(3).ipv4("10.1.2.3", "1.1.1.1").bytes()},
  };
  for (const auto& [name, frame] : bad) {
    const MbufMeta m = Classify(*tables_, kUp, frame);
    EXPECT_TRUE(m.flags & kMetaMalformed) << name;
    EXPECT_EQ(m.tenant, abi::kDefaultTenantId) << name;
    EXPECT_EQ(m.cls, kDefaultClass) << name;
  }
}

// Random bytes behind an IP or VLAN EtherType, at random lengths: whatever
// the verdict, the classifier stays inside the frame and answers a valid
// tenant and class.
TEST_F(ClassifyTest, GarbageNeverReadsPastTheFrame) {
  std::mt19937 rng(42);
  const uint16_t types[] = {0x0800, 0x86dd, 0x8100, 0x88a8, 0x9100, 0x0806};
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> f(rng() % 100);
    for (auto& b : f) b = static_cast<uint8_t>(rng());
    if (f.size() >= 14) {
      const uint16_t t = types[rng() % std::size(types)];
      f[12] = static_cast<uint8_t>(t >> 8);
      f[13] = static_cast<uint8_t>(t);
    }
    const MbufMeta m = Classify(*tables_, kDown, f);
    EXPECT_LT(m.cls, 8);
    EXPECT_LE(m.tenant, 11u);
    if (f.size() < 14) {
      EXPECT_TRUE(m.flags & kMetaMalformed);
    }
  }
}

TEST(ClassifyBuild, ConflictingRulesAreRefusedNamingThePrefix) {
  REQUIRE_DPDK();
  std::vector<MatchRule> rules = {Rule("10.0.0.0/8", 1), Rule("10.0.0.0/8", 2)};
  auto t = ClassifyTables::Build(rules, DscpMap(), 0);
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().find("10.0.0.0/8"), std::string::npos) << t.error();
  // The same prefix for two tenants on different VLANs is fine.
  rules = {Rule("10.0.0.0/8", 1, 10), Rule("10.0.0.0/8", 2, 20)};
  EXPECT_TRUE(ClassifyTables::Build(rules, DscpMap(), 0).has_value());
}

TEST(ClassifyBuild, HostBitsAreMaskedAndLookupsAgree) {
  REQUIRE_DPDK();
  auto t = ClassifyTables::Build(std::vector<MatchRule>{Rule("10.9.8.7/16", 3)}, DscpMap(), 0);
  ASSERT_TRUE(t.has_value()) << t.error();
  EXPECT_EQ((*t)->LookupV4(0x0a090001, 0), 3u);
  EXPECT_EQ((*t)->LookupV4(0x0a0a0001, 0), 0u);
  EXPECT_EQ((*t)->num_rows(), 1u);
}

// Update(): unchanged rules keep the tables; changed rules rewrite the spare
// with the difference, and the rewritten tables answer exactly like tables
// built from scratch, over many rounds of random changes (with VLANs, nested
// prefixes, IPv4 and IPv6).
TEST(ClassifyUpdate, SameRulesInAnotherOrderKeepTheTables) {
  REQUIRE_DPDK();
  std::vector<MatchRule> rules = {Rule("10.0.0.0/8", 1), Rule("10.1.0.0/16", 2),
                                  Rule("10.1.2.3/32", 3), Rule("2001:db8::/32", 4)};
  auto first = ClassifyTables::Update(rules, DscpMap(), 0, nullptr, nullptr);
  ASSERT_TRUE(first.has_value()) << first.error();
  EXPECT_EQ((*first)->origin(), ClassifyTables::Origin::kFresh);
  std::vector<MatchRule> shuffled = {rules[3], rules[1], rules[0], rules[2], rules[1]};
  std::shared_ptr<ClassifyTables> spare;
  auto again = ClassifyTables::Update(shuffled, DscpMap(), 0, *first, &spare);
  ASSERT_TRUE(again.has_value()) << again.error();
  EXPECT_EQ(again->get(), first->get()) << "same rules must not rebuild the tables";
  // A different DSCP map or default class is a different classifier.
  auto other_class = ClassifyTables::Update(rules, DscpMap(), 1, *first, &spare);
  ASSERT_TRUE(other_class.has_value());
  EXPECT_NE(other_class->get(), first->get());
  EXPECT_EQ((*other_class)->LookupV4(0x0a010203, 0), 3u);
}

TEST(ClassifyUpdate, RewrittenSpareAnswersLikeAFreshBuild) {
  REQUIRE_DPDK();
  std::mt19937 rng(20261130);
  // A pool of candidate rules: nested v4 prefixes in 10.0.0.0/16 and
  // 10.1.0.0/16, some VLAN-qualified, and v6 ones.
  std::vector<MatchRule> pool;
  for (uint32_t i = 0; i < 400; ++i) {
    const uint8_t lengths[] = {16, 20, 24, 25, 28, 30, 32, 32, 32};
    const uint8_t len = lengths[rng() % std::size(lengths)];
    const uint32_t mask = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
    const uint32_t a = ((10u << 24) | ((i & 1) << 16) | (rng() & 0xffff)) & mask;
    const std::string text = std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." +
                             std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255) + "/" +
                             std::to_string(len);
    pool.push_back(Rule(text, 1 + i % 50, rng() % 8 == 0 ? static_cast<uint16_t>(100 + i % 3) : 0));
  }
  for (uint32_t i = 0; i < 60; ++i)
    pool.push_back(
        Rule(i % 2 ? "2001:db8:" + std::to_string(i % 7) + "::" + std::to_string(i) + "/128"
                   : "2001:db8:" + std::to_string(i) + "::/48",
             60 + i));
  std::shared_ptr<const ClassifyTables> current;
  std::shared_ptr<ClassifyTables> spare;
  uint32_t rewrites = 0;
  for (int round = 0; round < 12; ++round) {
    // Each round keeps most of the previous set and swaps some rules.
    std::vector<MatchRule> rules;
    for (size_t i = 0; i < pool.size(); ++i)
      if ((rng() % 100) < 70) rules.push_back(pool[i]);
    // Conflicts (same prefix and VLAN, two tenants) are refused; drop them.
    auto fresh = ClassifyTables::Build(rules, DscpMap(), 0);
    if (!fresh) {
      std::sort(rules.begin(), rules.end(), [](const MatchRule& a, const MatchRule& b) {
        return std::tie(a.is_v6, a.addr, a.length, a.vlan) <
               std::tie(b.is_v6, b.addr, b.length, b.vlan);
      });
      rules.erase(std::unique(rules.begin(), rules.end(),
                              [](const MatchRule& a, const MatchRule& b) {
                                return a.is_v6 == b.is_v6 && a.addr == b.addr &&
                                       a.length == b.length && a.vlan == b.vlan;
                              }),
                  rules.end());
      fresh = ClassifyTables::Build(rules, DscpMap(), 0);
    }
    ASSERT_TRUE(fresh.has_value()) << fresh.error();
    const ClassifyTables* spare_before = spare.get();
    auto next = ClassifyTables::Update(rules, DscpMap(), 0, current, &spare);
    ASSERT_TRUE(next.has_value()) << next.error();
    if ((*next)->origin() == ClassifyTables::Origin::kRewritten) {
      ++rewrites;
      EXPECT_EQ(next->get(), spare_before) << "only the spare is ever rewritten";
    }
    // Compare on addresses around every rule of the pool, on VLANs 0, 100-102, 7.
    for (const MatchRule& r : pool) {
      for (uint32_t delta : {0u, 1u, 255u, 256u}) {
        for (uint16_t vlan : {0, 100, 101, 102, 7}) {
          if (r.is_v6) {
            std::array<uint8_t, 16> a = r.addr;
            a[15] = static_cast<uint8_t>(a[15] + delta);
            ASSERT_EQ((*next)->LookupV6(a.data(), vlan), (*fresh)->LookupV6(a.data(), vlan))
                << "round " << round;
          } else {
            const uint32_t a = (uint32_t{r.addr[0]} << 24 | uint32_t{r.addr[1]} << 16 |
                                uint32_t{r.addr[2]} << 8 | r.addr[3]) +
                               delta;
            ASSERT_EQ((*next)->LookupV4(a, vlan), (*fresh)->LookupV4(a, vlan))
                << "round " << round << " addr " << std::hex << a << " vlan " << std::dec << vlan;
          }
        }
      }
    }
    // Retire the previous tables into the spare slot, as PlanPublisher does
    // once no worker can read them.
    if (current && current.get() != next->get()) {
      auto retired = std::const_pointer_cast<ClassifyTables>(std::move(current));
      ASSERT_EQ(retired.use_count(), 1);
      spare = std::move(retired);
    }
    current = *next;
  }
  EXPECT_GE(rewrites, 8u) << "the spare should have been reused in most rounds";
}

// Tenants 1..n, one /32 each: tenant t is 10.0.(t / 256).(t % 256).
std::vector<MatchRule> HostRules(uint32_t n) {
  std::vector<MatchRule> rules;
  for (uint32_t t = 1; t <= n; ++t)
    rules.push_back(
        Rule("10.0." + std::to_string(t / 256) + "." + std::to_string(t % 256) + "/32", t));
  return rules;
}

// Tables no worker reads any more, handed over as the spare (as
// PlanPublisher does after the grace periods); `tables` is left empty.
std::shared_ptr<ClassifyTables> Retire(std::shared_ptr<const ClassifyTables>& tables) {
  auto spare = std::const_pointer_cast<ClassifyTables>(std::move(tables));
  EXPECT_EQ(spare.use_count(), 1);
  return spare;
}

// Tables for `rules`, retired as the spare, then rewritten in place for
// `rules` plus `added` (appended to `rules`).
std::expected<std::shared_ptr<const ClassifyTables>, std::string> RewrittenWithOneMore(
    std::vector<MatchRule>& rules, const MatchRule& added) {
  auto a = ClassifyTables::Update(rules, DscpMap(), 0, nullptr, nullptr);
  if (!a) return a;
  std::shared_ptr<ClassifyTables> spare = Retire(*a);
  rules.push_back(added);
  return ClassifyTables::Update(rules, DscpMap(), 0, nullptr, &spare);
}

TEST(ClassifyUpdate, OnePrefixAddedWritesOnlyTheDifference) {
  REQUIRE_DPDK();
  // Append a tenant at the end of the sort order: no row index moves.
  std::vector<MatchRule> rules = HostRules(2000);
  auto b = RewrittenWithOneMore(rules, Rule("10.9.0.1/32", 2001));
  ASSERT_TRUE(b.has_value()) << b.error();
  EXPECT_EQ((*b)->origin(), ClassifyTables::Origin::kRewritten);
  EXPECT_EQ((*b)->prefix_writes(), 1u);
  EXPECT_EQ((*b)->LookupV4(0x0a090001, 0), 2001u);
  EXPECT_EQ((*b)->LookupV4(0x0a000101, 0), 257u);
  EXPECT_EQ((*b)->LookupV4(0x0a090002, 0), 0u);
}

// An IPv4 prefix without VLAN exceptions carries its tenant in the LPM next
// hop, not a row index: a prefix added at the front of the sort order moves
// every row index after it but re-points none of those prefixes.
TEST(ClassifyUpdate, PrefixAddedInFrontRepointsNoUnqualifiedPrefix) {
  REQUIRE_DPDK();
  std::vector<MatchRule> rules = HostRules(2000);
  auto b = RewrittenWithOneMore(rules, Rule("9.0.0.1/32", 2001));
  ASSERT_TRUE(b.has_value()) << b.error();
  EXPECT_EQ((*b)->origin(), ClassifyTables::Origin::kRewritten);
  EXPECT_EQ((*b)->prefix_writes(), 1u);
  EXPECT_EQ((*b)->LookupV4(0x09000001, 0), 2001u);
  EXPECT_EQ((*b)->LookupV4(0x0a000101, 0), 257u);
  EXPECT_EQ((*b)->LookupV4(0x0a000101, 7), 257u) << "no VLAN exception: any VLAN";

  // With a VLAN exception the prefix needs its row, and the answer depends
  // on the VLAN: the same table holds both kinds.
  std::shared_ptr<ClassifyTables> spare2 = Retire(*b);
  rules.push_back(Rule("10.0.1.1/32", 3000, 7));
  auto c = ClassifyTables::Update(rules, DscpMap(), 0, nullptr, &spare2);
  ASSERT_TRUE(c.has_value()) << c.error();
  EXPECT_EQ((*c)->LookupV4(0x0a000101, 7), 3000u);
  EXPECT_EQ((*c)->LookupV4(0x0a000101, 0), 257u);
  EXPECT_EQ((*c)->LookupV4(0x0a000102, 7), 258u);
  EXPECT_EQ((*c)->LookupV4(0x09000001, 7), 2001u);
}

}  // namespace
}  // namespace shaper::dataplane
