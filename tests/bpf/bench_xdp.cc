// shaper-bench-xdp: what the steering verdict costs per packet, by number of
// managed IPv4 prefixes (10, 10k, 1M), measured with BPF_PROG_TEST_RUN and
// `repeat`, next to a trivial XDP_PASS program measured in the same run (the
// cost of the test_run loop itself, which a real NIC does not pay).
//
// Frames: "miss" has unmanaged source and destination (two LPM lookups, both
// fail); "hit" has an unmanaged source and a destination inside a managed
// prefix (two lookups, the second finds it), then bpf_redirect_map: with no
// socket bound the verdict is XDP_PASS (no_socket), with one it is
// XDP_REDIRECT. The "1side" columns name the tenant side of the port
// (destination, STEER_F_PER_IFACE): one hash lookup plus one LPM lookup
// instead of two LPM lookups. Each figure is the median of kRounds runs of kRepeat
// repetitions, over kAddresses different addresses (LPM cost depends on the
// path through the trie). Prefixes are random (fixed seed) with lengths
// /20../32, so the trie has realistic depth.
//
// Also prints how long SyncPrefixes takes to load each set and to confirm it
// unchanged (a no-op sync), since the control process runs it on reload.
//
// `--smoke` runs 10 and 10k prefixes with few repetitions (what the meson
// benchmark registration runs). Needs root; exits 77 (meson: skipped)
// without it.
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <unordered_set>
#include <vector>

#include "bpf/steer_loader.h"
#include "tests/bpf/bpf_test_util.h"
#include "tests/tools/packet_builder.h"

namespace {

using shaper::bpf::ManagedPrefix;
using shaper::bpf::SteerProgram;

constexpr uint32_t kRepeat = 200'000;
constexpr uint32_t kSmokeRepeat = 2'000;
uint32_t g_repeat = kRepeat;
constexpr int kRounds = 5;
constexpr int kAddresses = 8;

std::string V4Text(uint32_t host_order) {
  char buf[INET_ADDRSTRLEN] = {};
  const uint32_t net = htonl(host_order);
  inet_ntop(AF_INET, &net, buf, sizeof(buf));
  return buf;
}

// Median over rounds of the mean ns per repetition, averaged over frames.
double MeasureNs(int prog_fd, const std::vector<std::vector<uint8_t>>& frames,
                 uint32_t want_verdict) {
  double sum = 0;
  for (const auto& frame : frames) {
    std::vector<uint32_t> rounds;
    for (int r = 0; r < kRounds; ++r) {
      const shaper::testing::XdpRun run = shaper::testing::RunXdp(prog_fd, frame, g_repeat);
      if (run.err != 0) {
        std::fprintf(stderr, "bpf_prog_test_run_opts: %s\n", std::strerror(run.err));
        std::exit(1);
      }
      if (run.verdict != want_verdict) {
        std::fprintf(stderr, "verdict %u, expected %u: the benchmark measures the wrong path\n",
                     run.verdict, want_verdict);
        std::exit(1);
      }
      rounds.push_back(run.duration_ns);
    }
    std::nth_element(rounds.begin(), rounds.begin() + kRounds / 2, rounds.end());
    sum += rounds[kRounds / 2];
  }
  return sum / static_cast<double>(frames.size());
}

// A trivial "return XDP_PASS" program, loaded from two raw instructions.
int LoadPassProgram() {
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K,
       .dst_reg = BPF_REG_0,
       .src_reg = 0,
       .off = 0,
       .imm = XDP_PASS},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  const int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "Apache-2.0", insns, 2, nullptr);
  if (fd < 0) {
    std::fprintf(stderr, "loading the baseline XDP_PASS program: %s\n", std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  // --smoke: 10 and 10k prefixes, few repetitions; seconds, for CI's bench suite.
  const bool smoke = argc > 1 && std::string(argv[1]) == "--smoke";
  if (smoke) g_repeat = kSmokeRepeat;
  if (!shaper::testing::IsRoot()) {
    std::puts("shaper-bench-xdp: needs root (CAP_BPF) to load XDP programs; skipped");
    return 77;
  }
  if (std::string err = shaper::testing::EnterPrivateNetns(); !err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  const int pass_fd = LoadPassProgram();

  std::printf(
      "XDP steering verdict, ns/packet (BPF_PROG_TEST_RUN, repeat %u, median of %d, %d "
      "addresses)\n",
      g_repeat, kRounds, kAddresses);
  std::printf("%10s %9s %9s %12s %14s %12s %11s %8s %9s\n", "prefixes", "baseline", "miss",
              "hit(nosock)", "hit(redirect)", "miss(1side)", "hit(1side)", "load s", "resync s");

  std::vector<size_t> counts = {10, 10'000, 1'000'000};
  if (smoke) counts.pop_back();
  for (const size_t count : counts) {
    shaper::bpf::LoadOptions options;
    options.pin_dir = "";
    auto prog = SteerProgram::Load(options);
    if (!prog) {
      std::fprintf(stderr, "%s\n", prog.error().message.c_str());
      return 1;
    }
    // Random distinct prefixes. Seeded: every run measures the same trie.
    std::mt19937 rng(20261129u + static_cast<uint32_t>(count));
    std::uniform_int_distribution<uint32_t> addr_dist;
    std::uniform_int_distribution<int> len_dist(20, 32);
    std::unordered_set<uint64_t> seen;
    std::vector<ManagedPrefix> wanted;
    wanted.reserve(count);
    while (wanted.size() < count) {
      const int len = len_dist(rng);
      const uint32_t addr = addr_dist(rng) & (len == 32 ? ~0u : ~(~0u >> len));
      if (!seen.insert(static_cast<uint64_t>(addr) << 8 | static_cast<uint64_t>(len)).second)
        continue;
      ManagedPrefix mp;
      mp.prefix.length = static_cast<uint8_t>(len);
      const uint32_t net = htonl(addr);
      std::memcpy(mp.prefix.addr.data(), &net, 4);
      mp.tenant_id = static_cast<uint32_t>(wanted.size() % 1000);
      wanted.push_back(mp);
    }
    auto t0 = std::chrono::steady_clock::now();
    auto sync = (*prog)->SyncPrefixes(wanted);
    const double load_s = Seconds(t0);
    t0 = std::chrono::steady_clock::now();
    auto resync = (*prog)->SyncPrefixes(wanted);
    const double resync_s = Seconds(t0);
    if (!sync || !resync || sync->added != count || resync->unchanged != count) {
      std::fprintf(stderr, "loading %zu prefixes failed: %s\n", count,
                   !sync     ? sync.error().message.c_str()
                   : !resync ? resync.error().message.c_str()
                             : "wrong counts");
      return 1;
    }

    // Misses: random addresses that no prefix covers (checked against the
    // loaded trie), so the walk goes as deep as real unmanaged traffic.
    const int v4_fd = (*prog)->v4_fd();
    auto unmanaged = [&] {
      for (;;) {
        const uint32_t addr = addr_dist(rng);
        steer_lpm_v4 key{};
        key.prefixlen = 32;
        const uint32_t net = htonl(addr);
        std::memcpy(key.addr, &net, 4);
        steer_prefix_value value{};
        if (bpf_map_lookup_elem(v4_fd, &key, &value) != 0) return V4Text(addr);
      }
    };
    std::vector<std::vector<uint8_t>> hits, misses;
    for (int i = 0; i < kAddresses; ++i) {
      // Hits: a random host inside a random managed prefix, as destination.
      const shaper::config::Prefix& p =
          wanted[std::uniform_int_distribution<size_t>(0, count - 1)(rng)].prefix;
      uint32_t net = 0;
      std::memcpy(&net, p.addr.data(), 4);
      const uint32_t host_mask = p.length == 32 ? 0u : ~0u >> p.length;
      const std::string tenant = V4Text(ntohl(net) | (addr_dist(rng) & host_mask));
      hits.push_back(
          shaper::testing::Packet().eth().ipv4(unmanaged(), tenant).udp(1, 2).payload(18).bytes());
      misses.push_back(shaper::testing::Packet()
                           .eth()
                           .ipv4(unmanaged(), unmanaged())
                           .udp(1, 2)
                           .payload(18)
                           .bytes());
    }

    const double baseline = MeasureNs(pass_fd, misses, XDP_PASS);
    const double miss = MeasureNs((*prog)->prog_fd(), misses, XDP_PASS);
    const double hit_nosock = MeasureNs((*prog)->prog_fd(), hits, XDP_PASS);
    // The same frames with the tenant side named for the port: one lookup.
    if (auto r = (*prog)->SetTenantSide(static_cast<int>(if_nametoindex("lo")),
                                        shaper::bpf::TenantSide::kDestination);
        !r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    const double miss_one_side = MeasureNs((*prog)->prog_fd(), misses, XDP_PASS);
    const double hit_one_side = MeasureNs((*prog)->prog_fd(), hits, XDP_PASS);
    if (auto r = (*prog)->ClearTenantSide(static_cast<int>(if_nametoindex("lo"))); !r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    const shaper::testing::BoundXsk& xsk = shaper::testing::SharedXsk();
    const uint32_t queue = 0;
    const uint32_t xsk_fd = static_cast<uint32_t>(xsk.fd());
    if (!xsk.error().empty() ||
        bpf_map_update_elem((*prog)->xsks_fd(), &queue, &xsk_fd, BPF_ANY) != 0) {
      std::fprintf(stderr, "binding an AF_XDP socket for the redirect case: %s\n",
                   xsk.error().empty() ? std::strerror(errno) : xsk.error().c_str());
      return 1;
    }
    const double hit_redirect = MeasureNs((*prog)->prog_fd(), hits, XDP_REDIRECT);
    std::printf("%10zu %9.1f %9.1f %12.1f %14.1f %12.1f %11.1f %8.2f %9.2f\n", count, baseline,
                miss, hit_nosock, hit_redirect, miss_one_side, hit_one_side, load_s, resync_s);
    std::fflush(stdout);
  }
  close(pass_fd);
  return 0;
}
