// Verdicts of the XDP steering program on crafted frames, through
// BPF_PROG_TEST_RUN: each case asserts the XDP action and that exactly the
// expected per-CPU counters moved by one.
//
// What BPF_PROG_TEST_RUN does with a redirect (measured on this kernel, and
// asserted below): with no socket in xsks_map at the rx queue (0 under
// test_run), bpf_redirect_map() returns its fallback, XDP_PASS, and the
// program returns XDP_PASS (counted no_socket). With a bound AF_XDP socket
// in slot 0 the program returns XDP_REDIRECT (counted steered); test_run
// reports the action without carrying the redirect out. Frames shorter than
// an Ethernet header are refused by test_run itself (EINVAL), so the
// program's own eth-length check cannot be reached from here.
//
// The last test attaches the program (generic XDP) to the loopback of the
// test's private network namespace and sends real UDP datagrams: unmanaged
// and managed-without-socket traffic reaches the kernel, managed traffic with
// a socket is taken away from it.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>

#include <array>
#include <initializer_list>
#include <memory>
#include <vector>

#include "bpf/steer_loader.h"
#include "tests/bpf/bpf_test_util.h"
#include "tests/tools/packet_builder.h"

namespace shaper::bpf {
namespace {

using shaper::testing::Packet;
using shaper::testing::RunXdp;
using Counter = __u64 steer_counters::*;

constexpr Counter kAllCounters[] = {&steer_counters::steered,   &steer_counters::no_socket,
                                    &steer_counters::passed,    &steer_counters::malformed,
                                    &steer_counters::non_ip,    &steer_counters::nd,
                                    &steer_counters::vlan_match};
constexpr const char* kCounterNames[] = {"steered", "no_socket", "passed",    "malformed",
                                         "non_ip",  "nd",        "vlan_match"};

constexpr uint32_t kDefaultFlags =
    STEER_F_MATCH_SRC | STEER_F_MATCH_DST | STEER_F_NON_IP | STEER_F_ND;
const shaper::testing::Mac kMac = {0x02, 0, 0, 0, 0, 9};

class SteerVerdictTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!shaper::testing::IsRoot()) GTEST_SKIP() << "needs root (CAP_BPF) to load the XDP program";
    const std::string netns = shaper::testing::EnterPrivateNetns();
    ASSERT_EQ(netns, "")
        << "a private network namespace keeps the test's AF_XDP socket off the host";
    LoadOptions options;
    options.pin_dir = "";  // no pinning: every test starts from empty maps
    options.config_flags = kDefaultFlags;
    auto prog = SteerProgram::Load(options);
    ASSERT_TRUE(prog.has_value()) << prog.error().message;
    prog_ = std::move(*prog);
    const ManagedPrefix wanted[] = {
        {shaper::testing::ParsePrefix("203.0.113.0/24"), 1},
        {shaper::testing::ParsePrefix("198.51.100.0/25"), 2},
        {shaper::testing::ParsePrefix("2001:db8:1::/48"), 1},
    };
    auto sync = prog_->SyncPrefixes(wanted);
    ASSERT_TRUE(sync.has_value()) << sync.error().message;
    ASSERT_EQ(sync->added, 3u);
  }

  steer_counters Read() {
    auto c = prog_->Counters();
    EXPECT_TRUE(c.has_value()) << c.error().message;
    return c.value_or(steer_counters{});
  }

  // Runs the frame once; checks the verdict and that the counters in
  // `bumped` rose by exactly one and every other counter stayed.
  void Expect(const std::vector<uint8_t>& frame, uint32_t verdict,
              std::initializer_list<Counter> bumped) {
    const steer_counters before = Read();
    const shaper::testing::XdpRun run = RunXdp(prog_->prog_fd(), frame);
    ASSERT_EQ(run.err, 0) << "bpf_prog_test_run_opts on a " << frame.size() << "-byte frame";
    EXPECT_EQ(run.verdict, verdict)
        << "XDP action (1 drop, 2 pass, 4 redirect) for a " << frame.size() << "-byte frame";
    const steer_counters after = Read();
    for (size_t i = 0; i < std::size(kAllCounters); ++i) {
      const Counter c = kAllCounters[i];
      const uint64_t want = std::find(bumped.begin(), bumped.end(), c) != bumped.end() ? 1 : 0;
      EXPECT_EQ(after.*c - before.*c, want)
          << "counter " << kCounterNames[i] << ", " << frame.size() << "-byte frame";
    }
  }

  void InsertSocket(const shaper::testing::BoundXsk& xsk) {
    ASSERT_EQ(xsk.error(), "");
    const uint32_t queue = 0;
    const uint32_t fd = static_cast<uint32_t>(xsk.fd());
    ASSERT_EQ(bpf_map_update_elem(prog_->xsks_fd(), &queue, &fd, BPF_ANY), 0)
        << std::strerror(errno);
  }

  std::unique_ptr<SteerProgram> prog_;
};

// --- IPv4 / IPv6 by address --------------------------------------------------

TEST_F(SteerVerdictTest, Ipv4DestinationInPrefixWithoutSocketIsPassedAsNoSocket) {
  Expect(Packet().eth().ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes(), XDP_PASS,
         {&steer_counters::no_socket});
}

TEST_F(SteerVerdictTest, Ipv4SourceInPrefixWithoutSocketIsPassedAsNoSocket) {
  Expect(Packet().eth().ipv4("198.51.100.5", "192.0.2.1").udp(1, 2).bytes(), XDP_PASS,
         {&steer_counters::no_socket});
}

TEST_F(SteerVerdictTest, Ipv4OutsideEveryPrefixIsPassed) {
  // 198.51.100.200 is outside 198.51.100.0/25: the prefix length counts.
  Expect(Packet().eth().ipv4("198.51.100.200", "192.0.2.1").udp(1, 2).bytes(), XDP_PASS,
         {&steer_counters::passed});
}

TEST_F(SteerVerdictTest, Ipv6SourceOrDestinationInPrefixWithoutSocketIsNoSocket) {
  Expect(Packet().eth().ipv6("2001:db8:1:2::5", "2001:db8:ff::1").udp(1, 2).bytes(), XDP_PASS,
         {&steer_counters::no_socket});
  Expect(Packet().eth().ipv6("2001:db8:ff::1", "2001:db8:1::9").tcp(1, 2).bytes(), XDP_PASS,
         {&steer_counters::no_socket});
}

TEST_F(SteerVerdictTest, Ipv6OutsideEveryPrefixIsPassed) {
  Expect(Packet().eth().ipv6("2001:db8:2::1", "2001:db8:ff::1").udp(1, 2).bytes(), XDP_PASS,
         {&steer_counters::passed});
}

TEST_F(SteerVerdictTest, WithABoundSocketAManagedFrameIsRedirected) {
  InsertSocket(shaper::testing::SharedXsk());
  Expect(Packet().eth().ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes(), XDP_REDIRECT,
         {&steer_counters::steered});
  Expect(Packet().eth().ipv6("2001:db8:1::1", "2001:db8:ff::1").udp(1, 2).bytes(), XDP_REDIRECT,
         {&steer_counters::steered});
  // An unmanaged frame still goes to the kernel.
  Expect(Packet().eth().ipv4("192.0.2.1", "192.0.2.2").udp(1, 2).bytes(), XDP_PASS,
         {&steer_counters::passed});
}

TEST_F(SteerVerdictTest, MatchSideFlagsSelectWhichAddressCounts) {
  const auto to_tenant = Packet().eth().ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes();
  const auto from_tenant = Packet().eth().ipv4("203.0.113.7", "192.0.2.1").udp(1, 2).bytes();
  ASSERT_TRUE(prog_->SetConfigFlags(STEER_F_MATCH_SRC).has_value());
  Expect(to_tenant, XDP_PASS, {&steer_counters::passed});
  Expect(from_tenant, XDP_PASS, {&steer_counters::no_socket});
  ASSERT_TRUE(prog_->SetConfigFlags(STEER_F_MATCH_DST).has_value());
  Expect(to_tenant, XDP_PASS, {&steer_counters::no_socket});
  Expect(from_tenant, XDP_PASS, {&steer_counters::passed});
  // An unconfigured (all-zero) program steers nothing.
  ASSERT_TRUE(prog_->SetConfigFlags(0).has_value());
  Expect(to_tenant, XDP_PASS, {&steer_counters::passed});
  Expect(Packet().eth().arp(kMac, "203.0.113.1", "203.0.113.7").bytes(), XDP_PASS,
         {&steer_counters::passed});
}

TEST_F(SteerVerdictTest, PerPortTenantSideReplacesTheGlobalMatchFlags) {
  // Without a ctx, BPF_PROG_TEST_RUN reports the frame as received on the
  // namespace's loopback, so lo's entry applies.
  const int lo = static_cast<int>(if_nametoindex("lo"));
  ASSERT_GT(lo, 0);
  const auto to_tenant = Packet().eth().ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes();
  const auto from_tenant = Packet().eth().ipv4("203.0.113.7", "192.0.2.1").udp(1, 2).bytes();
  ASSERT_TRUE(prog_->SetTenantSide(lo, TenantSide::kDestination).has_value());
  Expect(to_tenant, XDP_PASS, {&steer_counters::no_socket});
  Expect(from_tenant, XDP_PASS, {&steer_counters::passed});
  ASSERT_TRUE(prog_->SetTenantSide(lo, TenantSide::kSource).has_value());
  Expect(to_tenant, XDP_PASS, {&steer_counters::passed});
  Expect(from_tenant, XDP_PASS, {&steer_counters::no_socket});
  // The global flags keep deciding everything else (non-IP here).
  Expect(Packet().eth().arp(kMac, "192.0.2.1", "192.0.2.2").bytes(), XDP_PASS,
         {&steer_counters::no_socket, &steer_counters::non_ip});
  // A port without an entry uses the global flags (both sides).
  ASSERT_TRUE(prog_->ClearTenantSide(lo).has_value());
  Expect(to_tenant, XDP_PASS, {&steer_counters::no_socket});
  Expect(from_tenant, XDP_PASS, {&steer_counters::no_socket});
}

// --- VLAN and QinQ -------------------------------------------------------------

TEST_F(SteerVerdictTest, VlanAndQinqFramesAreMatchedOnTheInnerAddress) {
  InsertSocket(shaper::testing::SharedXsk());
  Expect(Packet().eth().vlan(100).ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes(), XDP_REDIRECT,
         {&steer_counters::steered});
  Expect(Packet().eth().vlan(100).vlan(200).ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes(),
         XDP_REDIRECT, {&steer_counters::steered});
  Expect(Packet()
             .eth()
             .vlan(100, 0x8100)
             .vlan(200, 0x8100)
             .ipv6("2001:db8:1::1", "2001:db8:ff::1")
             .bytes(),
         XDP_REDIRECT, {&steer_counters::steered});
  Expect(Packet().eth().vlan(100).vlan(200).ipv4("192.0.2.1", "192.0.2.2").udp(1, 2).bytes(),
         XDP_PASS, {&steer_counters::passed});
}

TEST_F(SteerVerdictTest, ThirdVlanTagIsTreatedAsNonIp) {
  const auto frame = Packet()
                         .eth()
                         .vlan(1, 0x88a8)
                         .vlan(2, 0x8100)
                         .vlan(3, 0x8100)
                         .ipv4("192.0.2.1", "203.0.113.7")
                         .bytes();
  Expect(frame, XDP_PASS, {&steer_counters::no_socket, &steer_counters::non_ip});
  ASSERT_TRUE(prog_->SetConfigFlags(kDefaultFlags & ~STEER_F_NON_IP).has_value());
  Expect(frame, XDP_PASS, {&steer_counters::passed});
}

TEST_F(SteerVerdictTest, ManagedVlanIsSteeredWhateverItCarries) {
  const uint16_t vlans[] = {300};
  ASSERT_TRUE(prog_->SetVlans(vlans).has_value());
  const auto outer = Packet().eth().vlan(300).ipv4("192.0.2.1", "192.0.2.2").udp(1, 2).bytes();
  const auto inner =
      Packet().eth().vlan(10).vlan(300).ipv4("192.0.2.1", "192.0.2.2").udp(1, 2).bytes();
  const auto other = Packet().eth().vlan(301).ipv4("192.0.2.1", "192.0.2.2").udp(1, 2).bytes();
  // The VLAN set is only consulted with STEER_F_VLANS.
  Expect(outer, XDP_PASS, {&steer_counters::passed});
  ASSERT_TRUE(prog_->SetConfigFlags(kDefaultFlags | STEER_F_VLANS).has_value());
  Expect(outer, XDP_PASS, {&steer_counters::no_socket, &steer_counters::vlan_match});
  Expect(inner, XDP_PASS, {&steer_counters::no_socket, &steer_counters::vlan_match});
  Expect(other, XDP_PASS, {&steer_counters::passed});
  // A managed VLAN with a truncated IP header is still steered: the tag decides.
  Expect(Packet().eth().vlan(300).ipv4("192.0.2.1", "192.0.2.2").truncate(14 + 4 + 10).bytes(),
         XDP_PASS, {&steer_counters::no_socket, &steer_counters::vlan_match});
  ASSERT_TRUE(prog_->SetVlans({}).has_value());
  Expect(outer, XDP_PASS, {&steer_counters::passed});
  const uint16_t bad[] = {4095};
  auto r = prog_->SetVlans(bad);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("4095"), std::string::npos) << r.error().message;
}

// --- non-IP and neighbour discovery ---------------------------------------------

TEST_F(SteerVerdictTest, ArpFollowsTheNonIpFlag) {
  InsertSocket(shaper::testing::SharedXsk());
  const auto arp = Packet().eth().arp(kMac, "203.0.113.1", "203.0.113.7").bytes();
  Expect(arp, XDP_REDIRECT, {&steer_counters::steered, &steer_counters::non_ip});
  Expect(Packet().eth().vlan(100).arp(kMac, "192.0.2.1", "192.0.2.2").bytes(), XDP_REDIRECT,
         {&steer_counters::steered, &steer_counters::non_ip});
  ASSERT_TRUE(prog_->SetConfigFlags(kDefaultFlags & ~STEER_F_NON_IP).has_value());
  Expect(arp, XDP_PASS, {&steer_counters::passed});
}

TEST_F(SteerVerdictTest, NeighbourDiscoveryFollowsTheNdFlag) {
  // A neighbour solicitation (ICMPv6 type 135) between link-local addresses,
  // which are in no tenant's prefix.
  const auto ns = Packet().eth().ipv6("fe80::1", "ff02::1:ff00:7", 0, 58).payload(24, 135).bytes();
  const auto echo =
      Packet().eth().ipv6("fe80::1", "ff02::1:ff00:7", 0, 58).payload(24, 128).bytes();
  Expect(ns, XDP_PASS, {&steer_counters::no_socket, &steer_counters::nd});
  Expect(echo, XDP_PASS, {&steer_counters::passed});  // echo request: not ND
  // ICMPv6 header cut off right after the IPv6 header: not ND, not malformed.
  Expect(Packet().eth().ipv6("fe80::1", "ff02::1", 0, 58).bytes(), XDP_PASS,
         {&steer_counters::passed});
  ASSERT_TRUE(prog_->SetConfigFlags(kDefaultFlags & ~STEER_F_ND).has_value());
  Expect(ns, XDP_PASS, {&steer_counters::passed});
}

// --- truncated and malformed frames --------------------------------------------

TEST_F(SteerVerdictTest, TestRunRefusesFramesShorterThanEthernet) {
  const auto frame = Packet().eth().ipv4("192.0.2.1", "203.0.113.7").bytes();
  for (size_t len : {0, 1, 13}) {
    const std::vector<uint8_t> cut(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_EQ(RunXdp(prog_->prog_fd(), cut).err, EINVAL) << len << " bytes";
  }
}

TEST_F(SteerVerdictTest, EveryTruncationInsideAHeaderIsMalformed) {
  struct Frame {
    const char* what;
    std::vector<uint8_t> bytes;
    size_t headers_end;  // bytes up to the end of the last header the program reads
  };
  const Frame frames[] = {
      {"vlan+ipv4", Packet().eth().vlan(100).ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes(),
       14 + 4 + 20},
      {"qinq+ipv4",
       Packet().eth().vlan(100).vlan(200).ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes(),
       14 + 8 + 20},
      {"ipv4", Packet().eth().ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes(), 14 + 20},
      {"ipv6", Packet().eth().ipv6("2001:db8:1::1", "2001:db8:ff::1").udp(1, 2).bytes(), 14 + 40},
      {"vlan+ipv6",
       Packet().eth().vlan(7).ipv6("2001:db8:1::1", "2001:db8:ff::1").udp(1, 2).bytes(),
       14 + 4 + 40},
  };
  for (const Frame& f : frames) {
    SCOPED_TRACE(f.what);
    // 14 bytes is the shortest frame test_run accepts; every cut from there
    // to one byte short of the last header leaves some header incomplete.
    for (size_t len = 14; len < f.headers_end; ++len) {
      const std::vector<uint8_t> cut(f.bytes.begin(),
                                     f.bytes.begin() + static_cast<std::ptrdiff_t>(len));
      Expect(cut, XDP_PASS, {&steer_counters::malformed});
    }
    // Exactly the headers (no payload) is enough for a verdict.
    const std::vector<uint8_t> whole(f.bytes.begin(),
                                     f.bytes.begin() + static_cast<std::ptrdiff_t>(f.headers_end));
    Expect(whole, XDP_PASS, {&steer_counters::no_socket});
  }
}

TEST_F(SteerVerdictTest, WrongIpVersionOrHeaderLengthIsMalformed) {
  auto v4 = Packet().eth().ipv4("192.0.2.1", "203.0.113.7").udp(1, 2).bytes();
  v4[14] = 0x44;  // IHL 4: shorter than the fixed header
  Expect(v4, XDP_PASS, {&steer_counters::malformed});
  v4[14] = 0x65;  // version 6 under EtherType IPv4
  Expect(v4, XDP_PASS, {&steer_counters::malformed});
  auto v6 = Packet().eth().ipv6("2001:db8:1::1", "2001:db8:ff::1").bytes();
  v6[14] = 0x40;  // version 4 under EtherType IPv6
  Expect(v6, XDP_PASS, {&steer_counters::malformed});
}

// --- attached to a live interface ------------------------------------------------

// Sets the private namespace's loopback up (it starts down).
void LoopbackUp() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ASSERT_EQ(ioctl(fd, SIOCGIFFLAGS, &ifr), 0) << std::strerror(errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  ASSERT_EQ(ioctl(fd, SIOCSIFFLAGS, &ifr), 0) << std::strerror(errno);
  close(fd);
}

uint32_t AttachedProgId(int ifindex) {
  uint32_t id = 0;
  EXPECT_EQ(bpf_xdp_query_id(ifindex, XDP_FLAGS_SKB_MODE, &id), 0) << std::strerror(errno);
  return id;
}

// Sends one UDP datagram over loopback; true if it arrived.
bool UdpCrossesLoopback() {
  const int rx = socket(AF_INET, SOCK_DGRAM, 0);
  const int tx = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  // Loopback delivers in microseconds; 2 s leaves room for a loaded CI host.
  const timeval timeout{2, 0};
  setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  bool arrived = false;
  if (bind(rx, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(rx, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
      sendto(tx, "x", 1, 0, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 1) {
    char buf[8];
    arrived = recv(rx, buf, sizeof(buf), 0) == 1;
  }
  close(rx);
  close(tx);
  return arrived;
}

TEST_F(SteerVerdictTest, AttachedToLoopbackItSteersAndFallsBackToTheKernel) {
  LoopbackUp();
  const int lo = static_cast<int>(if_nametoindex("lo"));
  ASSERT_GT(lo, 0);
  ASSERT_TRUE(prog_->Attach(lo, XdpMode::kGeneric).has_value());
  bpf_prog_info info{};
  uint32_t info_len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(prog_->prog_fd(), &info, &info_len), 0);
  EXPECT_EQ(AttachedProgId(lo), info.id);
  auto again = prog_->Attach(lo, XdpMode::kGeneric);
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().message.find("another XDP program"), std::string::npos)
      << again.error().message;

  // 127.0.0.0/8 is not managed: the datagram reaches the kernel.
  steer_counters before = Read();
  EXPECT_TRUE(UdpCrossesLoopback());
  EXPECT_EQ(Read().passed - before.passed, 1u);

  // Managed, but no socket in xsks_map (the shaper is down): still delivered.
  const ManagedPrefix managed[] = {{shaper::testing::ParsePrefix("127.0.0.0/8"), 7}};
  ASSERT_TRUE(prog_->SyncPrefixes(managed).has_value());
  before = Read();
  EXPECT_TRUE(UdpCrossesLoopback());
  EXPECT_EQ(Read().no_socket - before.no_socket, 1u);

  // Managed with a socket: redirected to it, so the kernel never sees it
  // (the test's socket has no fill-ring buffers and drops it).
  InsertSocket(shaper::testing::SharedXsk());
  before = Read();
  EXPECT_FALSE(UdpCrossesLoopback());
  EXPECT_EQ(Read().steered - before.steered, 1u);

  ASSERT_TRUE(prog_->Detach(lo).has_value());
  EXPECT_EQ(AttachedProgId(lo), 0u);
  const uint32_t queue = 0;
  bpf_map_delete_elem(prog_->xsks_fd(), &queue);
}

}  // namespace
}  // namespace shaper::bpf
