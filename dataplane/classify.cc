#include "dataplane/classify.h"

#include <fmt/format.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_lpm6.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <atomic>
#include <compare>
#include <set>
#include <tuple>

#include "dataplane/abi/plan.h"
#include "dataplane/frame_headers.h"
#include "dataplane/mbuf_meta.h"

namespace shaper::dataplane {
namespace {

// rte_fib keeps 31 bits of next hop, rte_lpm6 21: the smaller bounds the rows.
constexpr uint32_t kMaxRows = (1u << 21) - 1;
// An IPv4 next hop with this bit set is the tenant itself, for a prefix with
// no VLAN exceptions (every prefix of a plan without VLANs): the lookup then
// reads no row, which at a million tenants is one cache miss less per frame.
// rte_fib's 31 bits hold it; plan tenant ids are below 2^22.
constexpr uint32_t kDirectTenant = 1u << 30;

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

PrefixKey KeyOf(const MatchRule& r) {
  return PrefixKey{r.addr, r.length};
}
PrefixKey KeyOf(const ClassifyTables::Installed& e) {
  return PrefixKey{e.addr, e.length};
}

// Rules per family, masked, sorted by (prefix, vlan), duplicates removed; a
// prefix claimed by two tenants on the same VLAN is an error.
std::expected<std::array<std::vector<MatchRule>, 2>, std::string> Normalise(
    std::span<const MatchRule> rules) {
  std::array<std::vector<MatchRule>, 2> fam;
  for (const MatchRule& r : rules) {
    if (r.length > (r.is_v6 ? 128 : 32))
      return std::unexpected(
          fmt::format("prefix length {} is too long for IPv{}", r.length, r.is_v6 ? 6 : 4));
    MatchRule m = r;
    m.addr = MaskTo(r.addr, r.length).addr;
    fam[r.is_v6].push_back(m);
  }
  for (int v6 = 0; v6 < 2; ++v6) {
    auto& f = fam[v6];
    // Stable: of two conflicting rules the error names the plan's order.
    std::stable_sort(f.begin(), f.end(), [](const MatchRule& a, const MatchRule& b) {
      return std::tie(a.addr, a.length, a.vlan) < std::tie(b.addr, b.length, b.vlan);
    });
    size_t out = 0;
    for (size_t i = 0; i < f.size(); ++i) {
      if (out > 0 && KeyOf(f[out - 1]) == KeyOf(f[i]) && f[out - 1].vlan == f[i].vlan) {
        if (f[out - 1].tenant != f[i].tenant)
          return std::unexpected(fmt::format("prefix {} on vlan {} belongs to tenants {} and {}",
                                             KeyText(KeyOf(f[i]), v6 != 0), f[i].vlan,
                                             f[out - 1].tenant, f[i].tenant));
        continue;
      }
      f[out++] = f[i];
    }
    f.resize(out);
  }
  return fam;
}

// Number of tbl8 groups the family's prefixes can need: one per distinct
// 8-bit-aligned parent (at depth 24, 32, ...) below a prefix's length.
uint32_t CountTbl8(const std::vector<ClassifyTables::Installed>& want) {
  std::vector<PrefixKey> parents;
  for (const auto& e : want) {
    for (uint8_t d = 24; d < e.length; d = static_cast<uint8_t>(d + 8))
      parents.push_back(MaskTo(e.addr, d));
  }
  std::sort(parents.begin(), parents.end());
  return static_cast<uint32_t>(std::unique(parents.begin(), parents.end()) - parents.begin());
}

// Capacity to create a table with, so that a spare can take a plan that grew
// a little.
uint32_t WithHeadroom(uint64_t need, uint32_t floor) {
  return static_cast<uint32_t>(
      std::min<uint64_t>(std::max<uint64_t>(need + need / 4 + 16, floor), UINT32_MAX / 2));
}

// rte_fib's next hop is row + 1, and 0 means "no prefix matched": with a
// default next hop of 0, rte_fib_create leaves tbl24 as the allocator gave it
// (zeroed) instead of writing all 64 MiB.
constexpr uint64_t kFibMiss = 0;

}  // namespace

std::expected<void, std::string> ClassifyTables::Install(int v6, const std::vector<Installed>& want,
                                                         bool fresh) {
  static std::atomic<uint64_t> next_name{0};
  std::vector<Installed>& have = installed_[v6];
  const bool exists = v6 ? v6_ != nullptr : v4_ != nullptr;
  if (!exists && want.empty()) return {};
  const uint32_t need_rules = static_cast<uint32_t>(want.size());
  const uint32_t need_tbl8 = CountTbl8(want);
  if (fresh || !exists || need_rules > cap_rules_[v6] || need_tbl8 > cap_tbl8_[v6]) {
    // A new table: DPDK object names are global, a counter keeps them apart.
    const std::string name = fmt::format("shcls{}_{}", v6 ? 6 : 4, next_name++);
    const uint32_t rules = WithHeadroom(need_rules, 1024);
    const uint32_t tbl8 = WithHeadroom(need_tbl8, 256);
    if (v6) {
      rte_lpm6_free(v6_);
      v6_ = nullptr;
      rte_lpm6_config cfg{rules, tbl8, 0};
      v6_ = rte_lpm6_create(name.c_str(), SOCKET_ID_ANY, &cfg);
      if (!v6_)
        return std::unexpected(fmt::format("rte_lpm6_create({} rules, {} tbl8s): {}", rules, tbl8,
                                           rte_strerror(rte_errno)));
    } else {
      rte_fib_free(v4_);
      v4_ = nullptr;
      rte_fib_conf cfg{};
      cfg.type = RTE_FIB_DIR24_8;
      cfg.default_nh = kFibMiss;
      cfg.max_routes = static_cast<int>(rules);
      cfg.rib_ext_sz = 0;
      cfg.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
      cfg.dir24_8.num_tbl8 = tbl8;
      v4_ = rte_fib_create(name.c_str(), SOCKET_ID_ANY, &cfg);
      if (!v4_)
        return std::unexpected(fmt::format("rte_fib_create({} rules, {} tbl8s): {}", rules, tbl8,
                                           rte_strerror(rte_errno)));
    }
    cap_rules_[v6] = rules;
    cap_tbl8_[v6] = tbl8;
    have.clear();
    origin_ = Origin::kFresh;
  }

  auto remove = [&](const Installed& e) {
    ++prefix_writes_;
    return v6 ? rte_lpm6_delete(v6_, e.addr.data(), e.length)
              : rte_fib_delete(v4_, Load32(e.addr.data()), e.length);
  };
  auto add = [&](const Installed& e) {
    ++prefix_writes_;
    return v6 ? rte_lpm6_add(v6_, e.addr.data(), e.length, e.next_hop)
              : rte_fib_add(v4_, Load32(e.addr.data()), e.length, uint64_t{e.next_hop} + 1);
  };
  // Merge the two sorted lists: deletions first (they free tbl8 groups),
  // then additions and re-pointed prefixes (an add of an existing prefix
  // replaces its next hop).
  std::vector<const Installed*> adds;
  size_t i = 0;
  size_t j = 0;
  while (i < have.size() || j < want.size()) {
    const int cmp = i == have.size()   ? 1
                    : j == want.size() ? -1
                                       : (KeyOf(have[i]) < KeyOf(want[j])   ? -1
                                          : KeyOf(want[j]) < KeyOf(have[i]) ? 1
                                                                            : 0);
    if (cmp < 0) {
      if (const int rc = remove(have[i]); rc < 0)
        return std::unexpected(fmt::format("removing prefix {} from the LPM table: {}",
                                           KeyText(KeyOf(have[i]), v6 != 0), rte_strerror(-rc)));
      ++i;
    } else if (cmp > 0) {
      adds.push_back(&want[j++]);
    } else {
      if (have[i].next_hop != want[j].next_hop) adds.push_back(&want[j]);
      ++i;
      ++j;
    }
  }
  for (const Installed* e : adds) {
    if (const int rc = add(*e); rc < 0)
      return std::unexpected(fmt::format("adding prefix {} to the LPM table: {}",
                                         KeyText(KeyOf(*e), v6 != 0), rte_strerror(-rc)));
  }
  have = want;
  return {};
}

std::expected<void, std::string> ClassifyTables::BuildInto(
    ClassifyTables& t, std::array<std::vector<MatchRule>, 2>&& family,
    const std::array<uint8_t, 64>& dscp_to_class, uint8_t default_class, bool fresh) {
  t.dscp_to_class_ = dscp_to_class;
  t.default_class_ = default_class;
  t.rows_.clear();
  t.choices_.clear();
  t.prefix_writes_ = 0;
  t.origin_ = Origin::kRewritten;
  if (family[0].size() + family[1].size() > kMaxRows)
    return std::unexpected(fmt::format("{} prefixes exceed the classifier's limit of {}",
                                       family[0].size() + family[1].size(), kMaxRows));

  for (int v6 = 0; v6 < 2; ++v6) {
    const std::vector<MatchRule>& fam = family[v6];
    // Groups of rules with one prefix: [first, next group's first).
    std::vector<uint32_t> group_start;
    std::set<uint8_t, std::greater<>> lengths;
    bool any_vlan = false;
    for (uint32_t i = 0; i < fam.size(); ++i) {
      if (i == 0 || KeyOf(fam[i - 1]) != KeyOf(fam[i])) group_start.push_back(i);
      lengths.insert(fam[i].length);
      any_vlan = any_vlan || fam[i].vlan != 0;
    }
    group_start.push_back(static_cast<uint32_t>(fam.size()));
    const size_t groups = group_start.size() - 1;
    // The group with prefix `k`, or groups.
    auto find_group = [&](const PrefixKey& k) -> size_t {
      auto it =
          std::lower_bound(group_start.begin(), group_start.end() - 1, k,
                           [&](uint32_t g, const PrefixKey& key) { return KeyOf(fam[g]) < key; });
      if (it == group_start.end() - 1 || KeyOf(fam[*it]) != k) return groups;
      return static_cast<size_t>(it - group_start.begin());
    };
    // The tenant of group g for `vlan`, or kNoTenant when it has no such rule.
    auto tenant_in = [&](size_t g, uint16_t vlan) -> uint32_t {
      for (uint32_t i = group_start[g]; i < group_start[g + 1]; ++i)
        if (fam[i].vlan == vlan) return fam[i].tenant;
      return kNoTenant;
    };

    std::vector<Installed> want;
    want.reserve(groups);
    std::vector<size_t> chain;
    for (size_t g = 0; g < groups; ++g) {
      const MatchRule& first = fam[group_start[g]];
      MatchRow row{kNoTenant, static_cast<uint32_t>(t.choices_.size()), 0};
      if (!any_vlan) {
        row.any_tenant = first.tenant;
      } else {
        // The covering prefixes, longest first (the prefix itself included).
        chain.clear();
        for (uint8_t len : lengths) {
          if (len > first.length) continue;
          if (const size_t c = find_group(MaskTo(first.addr, len)); c != groups) chain.push_back(c);
        }
        for (size_t c : chain) {
          if (const uint32_t any = tenant_in(c, 0); any != kNoTenant) {
            row.any_tenant = any;
            break;
          }
        }
        std::set<uint16_t> chain_vlans;
        for (size_t c : chain)
          for (uint32_t i = group_start[c]; i < group_start[c + 1]; ++i)
            if (fam[i].vlan != 0) chain_vlans.insert(fam[i].vlan);
        for (uint16_t vlan : chain_vlans) {
          uint32_t answer = kNoTenant;
          for (size_t c : chain) {
            answer = tenant_in(c, vlan);
            if (answer == kNoTenant) answer = tenant_in(c, 0);
            if (answer != kNoTenant) break;
          }
          if (answer != row.any_tenant) {
            t.choices_.push_back({vlan, answer});
            ++row.num_choices;
          }
        }
      }
      const auto row_index = static_cast<uint32_t>(t.rows_.size());
      t.rows_.push_back(row);
      const bool direct = v6 == 0 && row.num_choices == 0 && row.any_tenant < kDirectTenant;
      want.push_back(
          Installed{first.addr, first.length, direct ? kDirectTenant | row.any_tenant : row_index});
    }
    if (auto ok = t.Install(v6, want, fresh); !ok) return ok;
  }
  t.rules_ = std::move(family);
  return {};
}

std::expected<std::unique_ptr<ClassifyTables>, std::string> ClassifyTables::Build(
    std::span<const MatchRule> rules, const std::array<uint8_t, 64>& dscp_to_class,
    uint8_t default_class) {
  auto family = Normalise(rules);
  if (!family) return std::unexpected(family.error());
  std::unique_ptr<ClassifyTables> t(new ClassifyTables());
  if (auto ok = BuildInto(*t, std::move(*family), dscp_to_class, default_class, true); !ok)
    return std::unexpected(ok.error());
  return t;
}

std::expected<std::shared_ptr<const ClassifyTables>, std::string> ClassifyTables::Update(
    std::span<const MatchRule> rules, const std::array<uint8_t, 64>& dscp_to_class,
    uint8_t default_class, const std::shared_ptr<const ClassifyTables>& current,
    std::shared_ptr<ClassifyTables>* spare_slot) {
  auto family = Normalise(rules);
  if (!family) return std::unexpected(family.error());
  if (current && current->rules_ == *family && current->dscp_to_class_ == dscp_to_class &&
      current->default_class_ == default_class)
    return current;  // origin() stays what it was: nothing was done
  if (spare_slot && *spare_slot && spare_slot->use_count() == 1 &&
      spare_slot->get() != current.get()) {
    std::shared_ptr<ClassifyTables> spare = std::move(*spare_slot);
    auto copy = *family;  // kept for a fresh build if the spare cannot take it
    if (BuildInto(*spare, std::move(copy), dscp_to_class, default_class, false))
      return std::shared_ptr<const ClassifyTables>(std::move(spare));
    // Out of capacity half way (the spare is dropped): fresh tables.
  }
  std::shared_ptr<ClassifyTables> t(new ClassifyTables());
  if (auto ok = BuildInto(*t, std::move(*family), dscp_to_class, default_class, true); !ok)
    return std::unexpected(ok.error());
  return std::shared_ptr<const ClassifyTables>(std::move(t));
}

ClassifyTables::~ClassifyTables() {
  rte_fib_free(v4_);
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

uint32_t ClassifyTables::TenantOfV4(uint64_t fib_next_hop, uint16_t vlan) const {
  if (fib_next_hop == kFibMiss) return abi::kDefaultTenantId;
  const auto next_hop = static_cast<uint32_t>(fib_next_hop - 1);
  if (next_hop & kDirectTenant) return next_hop & ~kDirectTenant;
  return Resolve(next_hop, vlan);
}

uint32_t ClassifyTables::LookupV4(uint32_t addr, uint16_t vlan) const {
  if (!v4_) return abi::kDefaultTenantId;
  uint64_t next_hop = kFibMiss;
  rte_fib_lookup_bulk(v4_, &addr, &next_hop, 1);
  return TenantOfV4(next_hop, vlan);
}

uint32_t ClassifyTables::LookupV6(const uint8_t* addr, uint16_t vlan) const {
  uint32_t row = 0;
  if (!v6_ || rte_lpm6_lookup(v6_, addr, &row) != 0) return abi::kDefaultTenantId;
  return Resolve(row, vlan);
}

void ClassifyTables::ClassifyBurst(uint32_t direction, rte_mbuf* const* pkts, uint32_t n) const {
  // IPv4 addresses are gathered and looked up in one rte_fib bulk call per
  // chunk (it prefetches the tbl24 entries of the whole chunk).
  constexpr uint32_t kChunk = 64;
  uint32_t v4_addr[kChunk];
  uint64_t v4_next_hop[kChunk];
  MbufMeta* v4_meta[kChunk];
  uint32_t v4_count = 0;
  auto flush_v4 = [&] {
    if (!v4_count) return;
    if (v4_) {
      rte_fib_lookup_bulk(v4_, v4_addr, v4_next_hop, static_cast<int>(v4_count));
      for (uint32_t k = 0; k < v4_count; ++k)
        v4_meta[k]->tenant = TenantOfV4(v4_next_hop[k], v4_meta[k]->vlan);
    }
    v4_count = 0;
  };
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
    // The first segment: headers must sit in it.
    const FrameHeaders h = ParseFrameHeaders(p, m->data_len, m->pkt_len, upload);
    meta->vlan = h.vlan;
    meta->flags =
        static_cast<uint8_t>((h.malformed ? kMetaMalformed : 0) | (h.non_ip ? kMetaNonIp : 0) |
                             (h.vlan_tagged ? kMetaVlan : 0));
    if (h.family == FrameHeaders::Family::kIpv4) {
      meta->cls = dscp_to_class_[h.dscp];
      v4_addr[v4_count] = Load32(p + h.addr_offset);
      v4_meta[v4_count] = meta;
      if (++v4_count == kChunk) flush_v4();
    } else if (h.family == FrameHeaders::Family::kIpv6) {
      meta->cls = dscp_to_class_[h.dscp];
      meta->tenant = LookupV6(p + h.addr_offset, meta->vlan);
    }
  }
  flush_v4();
}

}  // namespace shaper::dataplane
