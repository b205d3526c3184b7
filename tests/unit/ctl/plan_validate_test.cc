// ValidatePlan / ValidateRates: a compiled plan passes and reads back as
// compiled; every corruption is refused with a reason that names the field.
#include "dataplane/ctl/plan_validate.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "tests/unit/ctl/test_policy.h"

namespace shaper::ctl {
namespace {

using namespace shaper::testing;
using abi::PlanSection;

TEST(ValidatePlan, CompiledPlanPassesAndReadsBack) {
  std::vector<std::byte> blob = CompiledTestPlan();
  ASSERT_FALSE(blob.empty());
  auto view = ValidatePlan(blob, Limits{});
  ASSERT_TRUE(view.has_value()) << view.error();
  EXPECT_EQ(view->links().size(), 2u);
  EXPECT_EQ(view->link(abi::kDownload).rate_bps, 9'500'000'000u);
  EXPECT_EQ(view->link(abi::kUpload).overhead_bytes, 24u);
  ASSERT_EQ(view->classes().size(), 2u);
  EXPECT_STREQ(view->classes()[0].name, "realtime");
  EXPECT_EQ(view->classes()[0].latency, 1);
  EXPECT_EQ(view->classes()[0].max_share_ppm, 200'000u);
  EXPECT_EQ(view->classes()[1].max_share_ppm, 0u);
  EXPECT_EQ(view->default_class(), 1);
  EXPECT_EQ(view->dscp_to_class()[46], 0);
  EXPECT_EQ(view->dscp_to_class()[0], 1);
  ASSERT_EQ(view->tenants().size(), 4u);
  EXPECT_STREQ(view->tenants()[0].name, "default");
  EXPECT_EQ(view->tenants()[0].id, 0u);
  EXPECT_EQ(view->tenant_id_limit(), 4u);
  const abi::PlanTenant* globex = view->FindTenant(2);
  ASSERT_NE(globex, nullptr);
  EXPECT_STREQ(globex->name, "globex");
  EXPECT_EQ(globex->rates[abi::kUpload].assured_bps, 100'000'000u);
  EXPECT_EQ(globex->rates[abi::kUpload].ceiling_bps, 500'000'000u);
  // ceiling x longest queue limit (30 ms) = 500e6 / 8 * 0.03.
  EXPECT_EQ(globex->rates[abi::kUpload].queue_bytes_limit, 1'875'000u);
  EXPECT_EQ(view->FindTenant(9), nullptr);
  ASSERT_EQ(view->prefixes().size(), 4u);
  EXPECT_EQ(view->prefixes()[1].is_v6, 1);
  EXPECT_EQ(view->prefixes()[1].length, 48);
  EXPECT_EQ(view->prefixes()[1].tenant_id, 1u);
  EXPECT_NE(view->policy_hash(), 0u);
}

struct Corruption {
  const char* name;
  std::function<void(std::vector<std::byte>&)> mutate;
  const char* expected;  // substring of the error
  Limits limits = {};
};

std::vector<Corruption> Corruptions() {
  Limits two_tenants;
  two_tenants.max_tenants = 2;
  Limits one_prefix;
  one_prefix.max_prefixes = 1;
  Limits small_ids;
  small_ids.max_tenants = 8;
  Limits small_blob;
  small_blob.max_plan_bytes = 300;
  return {
      {"magic", [](auto& b) { Header(b).magic = 0x12345678; }, "header.magic=0x12345678"},
      {"abi_version", [](auto& b) { Header(b).abi_version = 2; }, "header.abi_version=2"},
      {"header_bytes", [](auto& b) { Header(b).header_bytes = 64; }, "header.header_bytes=64"},
      {"total_bytes", [](auto& b) { Header(b).total_bytes += 8; }, "header.total_bytes="},
      {"reserved0", [](auto& b) { Header(b).reserved0[3] = 1; }, "header.reserved"},
      {"reserved1", [](auto& b) { Header(b).reserved1[0] = 1; }, "header.reserved"},
      {"truncated", [](auto& b) { b.resize(b.size() - 24); }, "header.total_bytes="},
      {"truncated_in_header", [](auto& b) { b.resize(100); }, "shorter than the 192-byte header"},
      {"too_big_for_limit", [](auto&) {}, "exceeds the dataplane limit", small_blob},
      {"links_entry_bytes", [](auto& b) { Sec(b, PlanSection::kLinks).entry_bytes = 32; },
       "header.sections.links.entry_bytes=32"},
      {"classes_offset_out", [](auto& b) { Sec(b, PlanSection::kClasses).offset_bytes = 1u << 30; },
       "header.sections.classes.offset_bytes=1073741824"},
      {"tenants_offset_misaligned",
       [](auto& b) { Sec(b, PlanSection::kTenants).offset_bytes += 4; },
       "header.sections.tenants.offset_bytes="},
      {"tenants_offset_in_header", [](auto& b) { Sec(b, PlanSection::kTenants).offset_bytes = 8; },
       "header.sections.tenants.offset_bytes=8"},
      {"prefixes_count_past_end", [](auto& b) { Sec(b, PlanSection::kPrefixes).count = 5; },
       "header.sections.prefixes.count=5"},
      {"prefixes_count_huge", [](auto& b) { Sec(b, PlanSection::kPrefixes).count = UINT32_MAX; },
       "header.sections.prefixes.count=4294967295"},
      {"links_count", [](auto& b) { Sec(b, PlanSection::kLinks).count = 1; },
       "header.sections.links.count=1"},
      {"classes_count_zero", [](auto& b) { Sec(b, PlanSection::kClasses).count = 0; },
       "header.sections.classes.count=0"},
      {"tenants_count_zero", [](auto& b) { Sec(b, PlanSection::kTenants).count = 0; },
       "header.sections.tenants.count=0"},
      {"tenants_over_limit", [](auto&) {}, "header.sections.tenants.count=4", two_tenants},
      {"prefixes_over_limit", [](auto&) {}, "header.sections.prefixes.count=4", one_prefix},
      {"link_rate_zero", [](auto& b) { Link(b, 0).rate_bps = 0; },
       "links[download].rate_bps=0: must be > 0"},
      {"link_rate_huge", [](auto& b) { Link(b, 1).rate_bps = UINT64_MAX; },
       "links[upload].rate_bps=18446744073709551615"},
      {"link_overhead", [](auto& b) { Link(b, 1).overhead_bytes = 1000; },
       "links[upload].overhead_bytes=1000"},
      {"link_queue_zero", [](auto& b) { Link(b, 0).queue_bytes_limit = 0; },
       "links[download].queue_bytes_limit=0"},
      {"class_name_unterminated", [](auto& b) { std::memset(Class(b, 0).name, 'x', 32); },
       "classes[0].name: not NUL-terminated"},
      {"class_name_empty", [](auto& b) { std::memset(Class(b, 1).name, 0, 32); },
       "classes[1].name: must not be empty"},
      {"class_name_duplicate", [](auto& b) { std::strcpy(Class(b, 1).name, "realtime"); },
       "classes[1].name=\"realtime\": duplicate"},
      {"class_latency_flag", [](auto& b) { Class(b, 0).latency = 2; }, "classes[0].latency=2"},
      {"class_weight_zero", [](auto& b) { Class(b, 1).weight = 0; },
       "classes[1].weight=0: must be > 0"},
      {"class_queue_limit_zero", [](auto& b) { Class(b, 1).queue_limit_ns = 0; },
       "classes[1].queue_limit_ns=0"},
      {"class_latency_share_zero", [](auto& b) { Class(b, 0).max_share_ppm = 0; },
       "classes[0].max_share_ppm=0"},
      {"class_latency_share_over", [](auto& b) { Class(b, 0).max_share_ppm = 1'000'001; },
       "classes[0].max_share_ppm=1000001"},
      {"class_bulk_share", [](auto& b) { Class(b, 1).max_share_ppm = 5; },
       "classes[1].max_share_ppm=5: must be 0 for a bulk class"},
      {"no_bulk_class",
       [](auto& b) {
         Class(b, 1).latency = 1;
         Class(b, 1).max_share_ppm = 1000;
       },
       "at least one bulk class"},
      {"dscp_out_of_range", [](auto& b) { Header(b).dscp_to_class[46] = 2; },
       "header.dscp_to_class[46]=2"},
      {"default_class_out_of_range", [](auto& b) { Header(b).default_class = 7; },
       "header.default_class=7"},
      {"first_tenant_not_default", [](auto& b) { Tenant(b, 0).id = 5; }, "tenants[0].id=5"},
      {"tenant_id_duplicate", [](auto& b) { Tenant(b, 2).id = 1; },
       "tenants[2].id=1: ids must be unique and ascending"},
      {"tenant_id_descending", [](auto& b) { std::swap(Tenant(b, 1).id, Tenant(b, 2).id); },
       "tenants[2].id=1"},
      {"tenant_id_over_limit", [](auto& b) { Tenant(b, 3).id = 10; },
       "tenants[3].id=10: must be < max_tenants=8", small_ids},
      {"tenant_name_unterminated", [](auto& b) { std::memset(Tenant(b, 1).name, 'a', 48); },
       "tenants[1].name: not NUL-terminated"},
      {"tenant_name_control_byte", [](auto& b) { Tenant(b, 2).name[1] = '\n'; },
       "tenants[2].name: control byte 0x0a"},
      {"tenant_name_garbage_after_nul", [](auto& b) { Tenant(b, 2).name[40] = 'z'; },
       "tenants[2].name: bytes after the terminating NUL"},
      {"tenant_name_duplicate",
       [](auto& b) {
         std::memset(Tenant(b, 3).name, 0, abi::kTenantNameBytes);
         std::strcpy(Tenant(b, 3).name, "acme");
       },
       "tenants[3].name=\"acme\": duplicate"},
      {"tenant_vlan", [](auto& b) { Tenant(b, 1).vlan = 4095; }, "tenants[1].vlan=4095"},
      {"tenant_reserved", [](auto& b) { Tenant(b, 1).reserved = 1; }, "tenants[1].reserved=1"},
      {"tenant_ceiling_zero", [](auto& b) { Tenant(b, 1).rates[0].ceiling_bps = 0; },
       "tenants[1].download.ceiling_bps=0: must be > 0"},
      {"tenant_assured_over_ceiling",
       [](auto& b) { Tenant(b, 2).rates[1].assured_bps = 600'000'000; },
       "tenants[2].upload.assured_bps=600000000: must be <= ceiling_bps=500000000"},
      {"tenant_weight_zero", [](auto& b) { Tenant(b, 1).rates[0].weight = 0; },
       "tenants[1].download.weight=0: must be > 0"},
      {"tenant_weight_huge", [](auto& b) { Tenant(b, 1).rates[1].weight = 2'000'000; },
       "tenants[1].upload.weight=2000000"},
      {"tenant_burst_small", [](auto& b) { Tenant(b, 3).rates[0].burst_bytes = 100; },
       "tenants[3].download.burst_bytes=100"},
      {"tenant_queue_zero", [](auto& b) { Tenant(b, 3).rates[1].queue_bytes_limit = 0; },
       "tenants[3].upload.queue_bytes_limit=0"},
      {"tenant_queue_over_4g",
       [](auto& b) { Tenant(b, 3).rates[1].queue_bytes_limit = 1ull << 33; },
       "tenants[3].upload.queue_bytes_limit=8589934592"},
      {"default_tenant_ceiling_zero", [](auto& b) { Tenant(b, 0).rates[1].ceiling_bps = 0; },
       "tenants[0].upload.ceiling_bps=0"},
      {"prefix_default_tenant", [](auto& b) { Prefix(b, 0).tenant_id = 0; },
       "prefixes[0].tenant_id=0"},
      {"prefix_unknown_tenant", [](auto& b) { Prefix(b, 2).tenant_id = 999; },
       "prefixes[2].tenant_id=999: no tenant with this id"},
      {"prefix_v4_length_33", [](auto& b) { Prefix(b, 0).length = 33; },
       "prefixes[0].length=33: must be <= 32"},
      {"prefix_v6_length_129", [](auto& b) { Prefix(b, 1).length = 129; },
       "prefixes[1].length=129: must be <= 128"},
      {"prefix_family", [](auto& b) { Prefix(b, 0).is_v6 = 2; }, "prefixes[0].is_v6=2"},
      {"prefix_v4_host_bits", [](auto& b) { Prefix(b, 0).addr[3] = 1; },
       "prefixes[0]=203.0.113.1/24: host bits set"},
      {"prefix_v6_host_bits", [](auto& b) { Prefix(b, 1).addr[15] = 0x80; },
       "prefixes[1]=2001:db8:1::80/48: host bits set"},
      {"prefix_v4_tail_bytes", [](auto& b) { Prefix(b, 3).addr[9] = 1; },
       "prefixes[3].addr: an IPv4 prefix must have addr[4..15] zero"},
      {"prefix_reserved", [](auto& b) { Prefix(b, 3).reserved = 9; }, "prefixes[3].reserved=9"},
      {"prefix_duplicate",
       [](auto& b) {
         // initech's 192.0.2.0/24 becomes globex's 198.51.100.0/25, same VLAN (any).
         std::memcpy(Prefix(b, 3).addr, Prefix(b, 2).addr, 16);
         Prefix(b, 3).length = Prefix(b, 2).length;
       },
       "prefixes[3]=198.51.100.0/25: duplicates prefixes[2]"},
  };
}

class PlanCorruption : public ::testing::TestWithParam<Corruption> {};

TEST_P(PlanCorruption, IsRejectedNamingTheField) {
  std::vector<std::byte> blob = CompiledTestPlan();
  ASSERT_TRUE(ValidatePlan(blob, Limits{}).has_value());
  GetParam().mutate(blob);
  auto view = ValidatePlan(blob, GetParam().limits);
  ASSERT_FALSE(view.has_value()) << GetParam().name << " was accepted";
  EXPECT_NE(view.error().find(GetParam().expected), std::string::npos)
      << "error: " << view.error() << "\nexpected to contain: " << GetParam().expected;
}

INSTANTIATE_TEST_SUITE_P(All, PlanCorruption, ::testing::ValuesIn(Corruptions()),
                         [](const ::testing::TestParamInfo<Corruption>& p) {
                           return std::string(p.param.name);
                         });

TEST(ValidatePlan, SameprefixOnDifferentVlansIsAllowed) {
  std::vector<std::byte> blob = CompiledTestPlan();
  // acme is on VLAN 100; give initech acme's v4 prefix: different VLAN, no clash.
  std::memcpy(Prefix(blob, 3).addr, Prefix(blob, 0).addr, 16);
  Prefix(blob, 3).length = Prefix(blob, 0).length;
  auto view = ValidatePlan(blob, Limits{});
  EXPECT_TRUE(view.has_value()) << view.error();
}

TEST(ValidatePlan, MisalignedBufferIsRejected) {
  std::vector<std::byte> blob = CompiledTestPlan();
  std::vector<std::byte> shifted(blob.size() + 8);
  std::memcpy(shifted.data() + 4, blob.data(), blob.size());
  auto view = ValidatePlan(std::span(shifted.data() + 4, blob.size()), Limits{});
  ASSERT_FALSE(view.has_value());
  EXPECT_NE(view.error().find("aligned"), std::string::npos) << view.error();
}

// Random byte flips (fixed seed): whatever the validator accepts must keep the
// invariants the packet path relies on; everything else is refused without
// crashing (a crash fails the test run).
TEST(ValidatePlan, RandomCorruptionsNeverBreakInvariants) {
  const std::vector<std::byte> good = CompiledTestPlan();
  std::mt19937_64 rng(20261129);
  int accepted = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::vector<std::byte> blob = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      blob[rng() % blob.size()] = static_cast<std::byte>(rng());
    }
    const Limits limits;
    auto view = ValidatePlan(blob, limits);
    if (!view) continue;
    ++accepted;
    const uint32_t num_classes = static_cast<uint32_t>(view->classes().size());
    for (uint8_t c : view->dscp_to_class()) ASSERT_LT(c, num_classes);
    ASSERT_LE(view->tenant_id_limit(), limits.max_tenants);
    for (const abi::PlanTenant& t : view->tenants()) {
      for (const abi::PlanTenantRates& r : t.rates) {
        ASSERT_GT(r.ceiling_bps, 0u);
        ASSERT_LE(r.assured_bps, r.ceiling_bps);
        ASSERT_GT(r.weight, 0u);
      }
    }
    for (const abi::PlanPrefix& p : view->prefixes()) {
      ASSERT_NE(view->FindTenant(p.tenant_id), nullptr);
      ASSERT_LE(p.length, p.is_v6 ? 128 : 32);
    }
  }
  // Flips in don't-care bytes (rates, names) can still be valid plans; most are not.
  EXPECT_LT(accepted, 20'000);
}

// --- Rates ---

class ValidateRatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plan_ = CompiledTestPlan();
    auto view = ValidatePlan(plan_, Limits{});
    ASSERT_TRUE(view.has_value());
    in_force_ = PlanCeilings::From(*view, 7);
  }
  std::expected<RatesView, RatesFailure> Check(std::vector<std::byte>& blob) {
    return ValidateRates(blob, Limits{}, in_force_);
  }
  std::vector<std::byte> plan_;
  PlanCeilings in_force_;
};

TEST_F(ValidateRatesTest, GoodUpdatePasses) {
  const abi::RateEntry entries[] = {{1, abi::kDownload, {}, 2'000'000'000},
                                    {1, abi::kUpload, {}, 0},
                                    {2, abi::kUpload, {}, 500'000'000}};
  auto blob = dpclient::EncodeRates(7, entries);
  auto rates = Check(blob);
  ASSERT_TRUE(rates.has_value()) << rates.error().text;
  ASSERT_EQ(rates->entries.size(), 3u);
  EXPECT_EQ(rates->entries[2].assured_bps, 500'000'000u);
  EXPECT_EQ(rates->plan_generation(), 7u);
}

TEST_F(ValidateRatesTest, StaleGenerationIsRefusedAsStale) {
  const abi::RateEntry entries[] = {{1, abi::kDownload, {}, 1}};
  auto blob = dpclient::EncodeRates(6, entries);
  auto rates = Check(blob);
  ASSERT_FALSE(rates.has_value());
  EXPECT_EQ(rates.error().kind, RatesError::kStale);
  EXPECT_NE(rates.error().text.find("rates.plan_generation=6"), std::string::npos);
}

TEST_F(ValidateRatesTest, NoPlanInForceIsStale) {
  in_force_ = PlanCeilings{};
  auto blob = dpclient::EncodeRates(0, {});
  auto rates = Check(blob);
  ASSERT_FALSE(rates.has_value());
  EXPECT_EQ(rates.error().kind, RatesError::kStale);
}

TEST_F(ValidateRatesTest, BadEntriesAreRejected) {
  struct Case {
    abi::RateEntry entry;
    const char* expected;
  };
  const Case cases[] = {
      {{9, abi::kDownload, {}, 1}, "rates.entries[1].tenant_id=9: no such tenant"},
      {{1, 2, {}, 1}, "rates.entries[1].direction=2"},
      {{2, abi::kUpload, {}, 500'000'001},
       "rates.entries[1].assured_bps=500000001: must be <= the tenant's upload "
       "ceiling_bps=500000000"},
      {{3, abi::kDownload, {0, 1, 0}, 1}, "rates.entries[1].reserved"},
      {{3, abi::kUpload, {}, 1}, "rates.entries[1]: tenant 3 upload given twice"},
  };
  for (const Case& c : cases) {
    const abi::RateEntry entries[] = {{3, abi::kUpload, {}, 1}, c.entry};
    auto blob = dpclient::EncodeRates(7, entries);
    auto rates = Check(blob);
    ASSERT_FALSE(rates.has_value()) << c.expected;
    EXPECT_EQ(rates.error().kind, RatesError::kInvalid);
    EXPECT_NE(rates.error().text.find(c.expected), std::string::npos) << rates.error().text;
  }
}

TEST_F(ValidateRatesTest, BadHeadersAreRejected) {
  const abi::RateEntry entries[] = {{1, abi::kDownload, {}, 1}};
  struct Case {
    std::function<void(std::vector<std::byte>&)> mutate;
    const char* expected;
  };
  auto hdr = [](std::vector<std::byte>& b) -> abi::RatesHeader& {
    return *reinterpret_cast<abi::RatesHeader*>(b.data());
  };
  const Case cases[] = {
      {[&](auto& b) { hdr(b).magic = 1; }, "rates.magic=0x00000001"},
      {[&](auto& b) { hdr(b).abi_version = 9; }, "rates.abi_version=9"},
      {[&](auto& b) { hdr(b).count = 2; }, "rates.count=2"},
      {[&](auto& b) { hdr(b).entries_offset = 4; }, "rates.entries_offset=4"},
      {[&](auto& b) { hdr(b).entry_bytes = 8; }, "rates.entry_bytes=8"},
      {[&](auto& b) { b.resize(b.size() - 8); }, "rates.total_bytes="},
      {[&](auto& b) { b.resize(10); }, "shorter than the 64-byte header"},
  };
  for (const Case& c : cases) {
    auto blob = dpclient::EncodeRates(7, entries);
    c.mutate(blob);
    auto rates = Check(blob);
    ASSERT_FALSE(rates.has_value()) << c.expected;
    EXPECT_NE(rates.error().text.find(c.expected), std::string::npos) << rates.error().text;
  }
}

}  // namespace
}  // namespace shaper::ctl
