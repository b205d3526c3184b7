#include "dataplane/classify.h"

#include <fmt/format.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <atomic>
#include <compare>
#include <map>
#include <set>

#include "dataplane/abi/plan.h"
#include "dataplane/mbuf_meta.h"

namespace shaper::dataplane {
namespace {

// rte_lpm keeps 24 bits of next hop, rte_lpm6 21: the smaller bounds the rows.
constexpr uint32_t kMaxRows = (1u << 21) - 1;
constexpr uint32_t kMaxVlanTags = 2;
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr size_t kEtherHeaderBytes = 14;

bool IsVlanTpid(uint16_t type) {
  return type == 0x8100 || type == 0x88a8 || type == 0x9100;
}

uint16_t Load16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

struct PrefixKey {
  std::array<uint8_t, 16> addr;
  uint8_t length;
  auto operator<=>(const PrefixKey&) const = default;
};

PrefixKey MaskTo(const std::array<uint8_t, 16>& addr, uint8_t length) {
  PrefixKey k{{}, length};
  for (uint32_t i = 0; i < 16; ++i) {
    const int bits = std::clamp(static_cast<int>(length) - static_cast<int>(i * 8), 0, 8);
    k.addr[i] = static_cast<uint8_t>(addr[i] & static_cast<uint8_t>(0xff00u >> bits));
  }
  return k;
}

std::string KeyText(const PrefixKey& k, bool is_v6) {
  if (!is_v6)
    return fmt::format("{}.{}.{}.{}/{}", k.addr[0], k.addr[1], k.addr[2], k.addr[3], k.length);
  std::string s;
  for (int i = 0; i < 16; i += 2) s += fmt::format("{}{:x}", i ? ":" : "", Load16(&k.addr[i]));
  return s + fmt::format("/{}", k.length);
}

// The rules of one address family, keyed by prefix: vlan -> tenant.
using FamilyRules = std::map<PrefixKey, std::map<uint16_t, uint32_t>>;

// Number of tbl8 groups the family's prefixes can need: one per distinct
// 8-bit-aligned parent (at depth 24, 32, ...) below a prefix's length.
uint32_t CountTbl8(const FamilyRules& rules) {
  std::set<PrefixKey> parents;
  for (const auto& [key, vlans] : rules) {
    for (uint8_t d = 24; d < key.length; d = static_cast<uint8_t>(d + 8))
      parents.insert(MaskTo(key.addr, d));
  }
  return static_cast<uint32_t>(parents.size());
}

}  // namespace

std::expected<std::unique_ptr<ClassifyTables>, std::string> ClassifyTables::Build(
    std::span<const MatchRule> rules, const std::array<uint8_t, 64>& dscp_to_class,
    uint8_t default_class) {
  // DPDK object names are global: a counter keeps an old and a new plan's apart.
  static std::atomic<uint64_t> next_name{0};
  std::unique_ptr<ClassifyTables> t(new ClassifyTables());
  t->dscp_to_class_ = dscp_to_class;
  t->default_class_ = default_class;

  FamilyRules family[2];  // [0] IPv4, [1] IPv6
  for (const MatchRule& r : rules) {
    if (r.length > (r.is_v6 ? 128 : 32))
      return std::unexpected(
          fmt::format("prefix length {} is too long for IPv{}", r.length, r.is_v6 ? 6 : 4));
    const PrefixKey key = MaskTo(r.addr, r.length);
    auto [it, inserted] =
        family[r.is_v6].try_emplace(key).first->second.try_emplace(r.vlan, r.tenant);
    if (!inserted && it->second != r.tenant)
      return std::unexpected(fmt::format("prefix {} on vlan {} belongs to tenants {} and {}",
                                         KeyText(key, r.is_v6), r.vlan, it->second, r.tenant));
  }

  for (int v6 = 0; v6 < 2; ++v6) {
    const FamilyRules& fam = family[v6];
    if (fam.empty()) continue;
    if (t->rows_.size() + fam.size() > kMaxRows)
      return std::unexpected(fmt::format("{} prefixes exceed the classifier's limit of {}",
                                         t->rows_.size() + fam.size(), kMaxRows));
    std::set<uint8_t, std::greater<>> lengths;
    bool any_vlan = false;
    for (const auto& [key, vlans] : fam) {
      lengths.insert(key.length);
      any_vlan = any_vlan || vlans.rbegin()->first != 0;
    }

    const std::string name = fmt::format("shaper_lpm{}_{}", v6 ? 6 : 4, next_name++);
    const uint32_t tbl8 = std::max<uint32_t>(CountTbl8(fam) + 16, 256);
    if (v6) {
      rte_lpm6_config cfg{static_cast<uint32_t>(fam.size()), tbl8, 0};
      t->v6_ = rte_lpm6_create(name.c_str(), SOCKET_ID_ANY, &cfg);
      if (!t->v6_)
        return std::unexpected(fmt::format("rte_lpm6_create({} rules, {} tbl8s): {}", fam.size(),
                                           tbl8, rte_strerror(rte_errno)));
    } else {
      rte_lpm_config cfg{static_cast<uint32_t>(fam.size()), tbl8, 0};
      t->v4_ = rte_lpm_create(name.c_str(), SOCKET_ID_ANY, &cfg);
      if (!t->v4_)
        return std::unexpected(fmt::format("rte_lpm_create({} rules, {} tbl8s): {}", fam.size(),
                                           tbl8, rte_strerror(rte_errno)));
    }

    std::vector<const std::map<uint16_t, uint32_t>*> chain;
    for (const auto& [key, vlans] : fam) {
      MatchRow row{kNoTenant, static_cast<uint32_t>(t->choices_.size()), 0};
      if (!any_vlan) {
        row.any_tenant = vlans.begin()->second;
      } else {
        // The covering prefixes, longest first (the prefix itself included).
        chain.clear();
        for (uint8_t len : lengths) {
          if (len > key.length) continue;
          auto it = fam.find(MaskTo(key.addr, len));
          if (it != fam.end()) chain.push_back(&it->second);
        }
        for (const auto* node : chain) {
          if (auto it = node->find(0); it != node->end()) {
            row.any_tenant = it->second;
            break;
          }
        }
        std::set<uint16_t> chain_vlans;
        for (const auto* node : chain)
          for (const auto& [vlan, tenant] : *node)
            if (vlan != 0) chain_vlans.insert(vlan);
        for (uint16_t vlan : chain_vlans) {
          uint32_t answer = kNoTenant;
          for (const auto* node : chain) {
            auto it = node->find(vlan);
            if (it == node->end()) it = node->find(0);
            if (it != node->end()) {
              answer = it->second;
              break;
            }
          }
          if (answer != row.any_tenant) {
            t->choices_.push_back({vlan, answer});
            ++row.num_choices;
          }
        }
      }
      const auto row_index = static_cast<uint32_t>(t->rows_.size());
      t->rows_.push_back(row);
      const int rc = v6 ? rte_lpm6_add(t->v6_, key.addr.data(), key.length, row_index)
                        : rte_lpm_add(t->v4_, Load32(key.addr.data()), key.length, row_index);
      if (rc < 0)
        return std::unexpected(fmt::format("adding prefix {} to the LPM table: {}",
                                           KeyText(key, v6), rte_strerror(-rc)));
    }
  }
  return t;
}

ClassifyTables::~ClassifyTables() {
  rte_lpm_free(v4_);
  rte_lpm6_free(v6_);
}

uint32_t ClassifyTables::Resolve(uint32_t row_index, uint16_t vlan) const {
  const MatchRow& row = rows_[row_index];
  uint32_t tenant = row.any_tenant;
  if (vlan != 0) {
    for (uint32_t i = 0; i < row.num_choices; ++i) {
      const VlanChoice& c = choices_[row.first_choice + i];
      if (c.vlan == vlan) {
        tenant = c.tenant;
        break;
      }
    }
  }
  return tenant == kNoTenant ? abi::kDefaultTenantId : tenant;
}

uint32_t ClassifyTables::LookupV4(uint32_t addr, uint16_t vlan) const {
  uint32_t row = 0;
  if (!v4_ || rte_lpm_lookup(v4_, addr, &row) != 0) return abi::kDefaultTenantId;
  return Resolve(row, vlan);
}

uint32_t ClassifyTables::LookupV6(const uint8_t* addr, uint16_t vlan) const {
  uint32_t row = 0;
  if (!v6_ || rte_lpm6_lookup(v6_, addr, &row) != 0) return abi::kDefaultTenantId;
  return Resolve(row, vlan);
}

void ClassifyTables::ClassifyBurst(uint32_t direction, rte_mbuf* const* pkts, uint32_t n) const {
  const bool upload = direction == abi::kUpload;
  for (uint32_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    MbufMeta* meta = Meta(m);
    meta->next = nullptr;
    meta->tenant = abi::kDefaultTenantId;
    meta->cls = default_class_;
    meta->flags = 0;
    meta->vlan = 0;

    const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
    const uint32_t len = m->data_len;  // the first segment: headers must sit in it
    if (len < kEtherHeaderBytes) {
      meta->flags = kMetaMalformed;
      continue;
    }
    uint16_t type = Load16(p + 12);
    uint32_t off = kEtherHeaderBytes;
    uint32_t tags = 0;
    bool malformed = false;
    while (IsVlanTpid(type)) {
      if (tags == kMaxVlanTags || off + 4 > len) {
        malformed = true;
        break;
      }
      if (tags == 0) meta->vlan = Load16(p + off) & 0x0fff;
      type = Load16(p + off + 2);
      off += 4;
      ++tags;
    }
    if (tags) meta->flags |= kMetaVlan;
    if (malformed) {
      meta->flags |= kMetaMalformed;
      continue;
    }

    if (type == kEtherIpv4) {
      const uint8_t* ip = p + off;
      if (off + 20 > len) {
        meta->flags |= kMetaMalformed;
        continue;
      }
      const uint32_t ihl_bytes = (ip[0] & 0x0f) * 4u;
      if ((ip[0] >> 4) != 4 || ihl_bytes < 20 || off + ihl_bytes > len) {
        meta->flags |= kMetaMalformed;
        continue;
      }
      const uint32_t total = Load16(ip + 2);
      if (total < ihl_bytes || off + total > m->pkt_len) {
        meta->flags |= kMetaMalformed;
        continue;
      }
      meta->cls = dscp_to_class_[ip[1] >> 2];
      meta->tenant = LookupV4(Load32(ip + (upload ? 12 : 16)), meta->vlan);
    } else if (type == kEtherIpv6) {
      const uint8_t* ip = p + off;
      if (off + 40 > len || (ip[0] >> 4) != 6 || off + 40u + Load16(ip + 4) > m->pkt_len) {
        meta->flags |= kMetaMalformed;
        continue;
      }
      meta->cls = dscp_to_class_[((ip[0] & 0x0f) << 2) | (ip[1] >> 6)];
      meta->tenant = LookupV6(ip + (upload ? 8 : 24), meta->vlan);
    } else {
      meta->flags |= kMetaNonIp;
    }
  }
}

}  // namespace shaper::dataplane
