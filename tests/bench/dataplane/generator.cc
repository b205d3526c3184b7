#include "tests/bench/dataplane/generator.h"

#include <rte_byteorder.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

namespace shaper::bench {
namespace {

constexpr uint32_t kEthBytes = 14;
constexpr uint32_t kIpBytes = 20;
constexpr uint32_t kTosOffset = kEthBytes + 1;
constexpr uint32_t kCsumOffset = kEthBytes + 10;
constexpr uint32_t kSrcOffset = kEthBytes + 12;
constexpr uint32_t kDstAddr = 0xc0a8ff01;  // 192.168.255.1: the far side of the link

// The frame every entry starts from: Ethernet, IPv4 (DF, TTL 64, UDP), UDP
// 1024 -> 5001, zero payload. Source, TOS and checksum are patched per entry.
void BuildTemplate(uint8_t* f) {
  std::memset(f, 0, 64);
  const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
  const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::memcpy(f, dst_mac, 6);
  std::memcpy(f + 6, src_mac, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = f + kEthBytes;
  ip[0] = 0x45;
  const uint16_t total = kFrameBytes - kEthBytes;
  ip[2] = static_cast<uint8_t>(total >> 8);
  ip[3] = static_cast<uint8_t>(total);
  ip[6] = 0x40;  // DF
  ip[8] = 64;    // TTL
  ip[9] = 17;    // UDP
  ip[16] = static_cast<uint8_t>(kDstAddr >> 24);
  ip[17] = static_cast<uint8_t>(kDstAddr >> 16);
  ip[18] = static_cast<uint8_t>(kDstAddr >> 8);
  ip[19] = static_cast<uint8_t>(kDstAddr);
  uint8_t* udp = ip + kIpBytes;
  udp[0] = 1024 >> 8;
  udp[2] = 5001 >> 8;
  udp[3] = 5001 & 0xff;
  const uint16_t udp_len = total - kIpBytes;
  udp[4] = static_cast<uint8_t>(udp_len >> 8);
  udp[5] = static_cast<uint8_t>(udp_len);
}

uint16_t Ipv4Checksum(const uint8_t* ip) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i < kIpBytes; i += 2) {
    if (i == 10) continue;  // the checksum field itself
    sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

const char* DistName(Dist d) { return d == Dist::kUniform ? "uniform" : "zipf"; }

void WriteFrame(const StreamEntry& entry, uint8_t* out) {
  uint8_t tmpl[64];
  BuildTemplate(tmpl);
  std::memcpy(out, tmpl, kFrameBytes);
  out[kTosOffset] = entry.tos;
  std::memcpy(out + kCsumOffset, &entry.ip_csum_be, 2);
  std::memcpy(out + kSrcOffset, &entry.src_addr_be, 4);
}

Generator::Generator(const StreamParams& params) {
  BuildTemplate(template_);
  std::mt19937_64 rng(params.seed);
  const uint32_t n = std::max<uint32_t>(params.num_tenants, 1);

  // Zipf: rank k (0-based) has weight 1/(k+1)^s. Ranks are mapped to tenant
  // ids through a seeded permutation so the popular tenants are not all
  // neighbours (rte_sched would otherwise find them all in subport 0).
  std::vector<double> cdf;
  std::vector<uint32_t> rank_to_tenant;
  if (!params.tenant_weights.empty()) {
    cdf.resize(n);
    double acc = 0;
    for (uint32_t k = 0; k < n; ++k) {
      acc += k < params.tenant_weights.size() ? params.tenant_weights[k] : 0.0;
      cdf[k] = acc;
    }
    for (double& c : cdf) c /= acc;
    rank_to_tenant.resize(n);
    std::iota(rank_to_tenant.begin(), rank_to_tenant.end(), 0u);
  } else if (params.dist == Dist::kZipf && n > 1) {
    cdf.resize(n);
    double acc = 0;
    for (uint32_t k = 0; k < n; ++k) {
      acc += 1.0 / std::pow(static_cast<double>(k + 1), params.zipf_s);
      cdf[k] = acc;
    }
    for (double& c : cdf) c /= acc;
    rank_to_tenant.resize(n);
    std::iota(rank_to_tenant.begin(), rank_to_tenant.end(), 0u);
    std::shuffle(rank_to_tenant.begin(), rank_to_tenant.end(), rng);
  }

  std::uniform_int_distribution<uint32_t> pick_tenant(0, n - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<uint32_t> permille(0, 999);
  uint8_t ip[kIpBytes];
  std::memcpy(ip, template_ + kEthBytes, kIpBytes);

  stream_.resize(params.length);
  for (StreamEntry& e : stream_) {
    uint32_t tenant;
    if (cdf.empty()) {
      tenant = pick_tenant(rng);
    } else {
      const auto it = std::lower_bound(cdf.begin(), cdf.end(), unit(rng));
      const auto rank = static_cast<uint32_t>(std::min<ptrdiff_t>(it - cdf.begin(), n - 1));
      tenant = rank_to_tenant[rank];
    }
    const bool latency = permille(rng) < params.latency_permille;
    e.tenant = tenant;
    e.cls = static_cast<uint8_t>(latency ? kLatencyClass : kBulkClass);
    e.tos = static_cast<uint8_t>(latency ? kDscpEf << 2 : 0);
    const uint32_t src = kTenantBaseAddr + tenant;
    e.src_addr_be = rte_cpu_to_be_32(src);
    ip[1] = e.tos;
    std::memcpy(ip + 12, &e.src_addr_be, 4);
    e.ip_csum_be = rte_cpu_to_be_16(Ipv4Checksum(ip));
  }
}

std::vector<uint64_t> Generator::TenantCounts() const {
  uint32_t max_tenant = 0;
  for (const StreamEntry& e : stream_) max_tenant = std::max(max_tenant, e.tenant);
  std::vector<uint64_t> counts(static_cast<size_t>(max_tenant) + 1, 0);
  for (const StreamEntry& e : stream_) ++counts[e.tenant];
  return counts;
}

uint16_t Generator::Burst(rte_mempool* pool, rte_mbuf** pkts, const StreamEntry** meta,
                          uint16_t n) {
  if (rte_pktmbuf_alloc_bulk(pool, pkts, n) != 0) {
    // Pool low: take what a smaller burst can get, like a NIC ring that
    // could only refill part of its descriptors.
    n = static_cast<uint16_t>(std::min<unsigned>(n, 4));
    if (rte_pktmbuf_alloc_bulk(pool, pkts, n) != 0) return 0;
  }
  const uint32_t len = static_cast<uint32_t>(stream_.size());
  for (uint16_t i = 0; i < n; ++i) {
    const StreamEntry& e = stream_[pos_];
    pos_ = pos_ + 1 == len ? 0 : pos_ + 1;
    rte_mbuf* m = pkts[i];
    uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(d, template_, 64);
    d[kTosOffset] = e.tos;
    std::memcpy(d + kCsumOffset, &e.ip_csum_be, 2);
    std::memcpy(d + kSrcOffset, &e.src_addr_be, 4);
    m->data_len = kFrameBytes;
    m->pkt_len = kFrameBytes;
    meta[i] = &e;
  }
  return n;
}

}  // namespace shaper::bench
