// The plan: everything the dataplane needs to classify and shape, as one
// flat, position-independent blob that control compiles and the dataplane
// validates field by field (dataplane/ctl/plan_validate.h) before use.
//
// Why a flat blob and not a serialisation library: the plan for 100k tenants
// is a few megabytes, travels as a sealed memfd, and is read in place after
// validation, with no parsing step that allocates per field. Fixed-width
// fields, explicit padding and static_asserts pin the layout, so control and
// dataplane built from the same tree agree byte for byte, and a different
// build is caught by the magic/version/entry size checks rather than by a
// crash.
//
// Layout of a plan blob (all offsets from the start of the blob, 8-aligned):
//
//   PlanHeader                 magic, version, sizes, dscp map, section table
//   PlanLink    [kDirections]  index = direction (0 download, 1 upload)
//   PlanClass   [num_classes]  index = class id (what the dscp map points at)
//   PlanTenant  [num_tenants]  sorted by id, strictly ascending; id 0 (the
//                              default tenant: traffic no prefix matches) first.
//                              Ids may have holes (a removed tenant's id is free
//                              until reused); a hole is a tenant with no prefix.
//   PlanPrefix  [num_prefixes] the match rules; any order
//
// A rates blob (the allocation loop's output) is a RatesHeader followed by
// RateEntry[count]; it applies to exactly one plan generation and is refused
// for any other (a stale allocation must not land on a new plan's tenants).
//
// Groups from the policy do not appear here: the packet path knows tenants
// only; control enforces group shares through the assured rates it pushes.
//
// Every reserved field must be zero: a later version may give it a meaning,
// and an old dataplane then refuses the plan instead of misreading it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shaper::abi {

// Bumped whenever any struct in dataplane/abi/ changes incompatibly.
inline constexpr uint16_t kAbiVersion = 1;

inline constexpr uint32_t kPlanMagic = 0x4e4c5053;   // "SPLN" little-endian
inline constexpr uint32_t kRatesMagic = 0x54415253;  // "SRAT" little-endian

inline constexpr uint32_t kDirections = 2;
inline constexpr uint8_t kDownload = 0;  // toward the tenant: matched on destination address
inline constexpr uint8_t kUpload = 1;    // from the tenant: matched on source address
inline constexpr const char* DirectionName(uint32_t direction) {
  return direction == kDownload ? "download" : "upload";
}

inline constexpr uint32_t kMaxClasses = 8;
inline constexpr uint32_t kDscpValues = 64;
inline constexpr uint32_t kDefaultTenantId = 0;
inline constexpr uint32_t kClassNameBytes = 32;
inline constexpr uint32_t kTenantNameBytes = 48;

// Bounds the validator enforces, chosen so that the scheduler's fixed-point
// maths cannot overflow and every bucket can hold at least one frame.
inline constexpr uint64_t kMaxRateBps = 10'000'000'000'000ULL;  // 10 Tbit/s
inline constexpr uint32_t kMaxWeight = 1'000'000;
inline constexpr uint32_t kPpm = 1'000'000;                      // 100%
inline constexpr uint64_t kMaxQueueLimitNs = 10'000'000'000ULL;  // 10 s
inline constexpr uint32_t kMaxOverheadBytes = 256;
// A max-size frame with a VLAN tag and framing overhead (1518 + 4 + 24) fits:
// a burst or queue smaller than this could never pass a full frame.
inline constexpr uint64_t kMinBurstBytes = 1600;
inline constexpr uint64_t kMaxBurstBytes = 1ULL << 30;
inline constexpr uint64_t kMinTenantQueueBytes = 1600;
// The stats segment publishes per-class queued bytes as uint32.
inline constexpr uint64_t kMaxTenantQueueBytes = UINT32_MAX;

enum class PlanSection : uint32_t { kLinks = 0, kClasses, kTenants, kPrefixes, kCount };
inline constexpr uint32_t kPlanSections = static_cast<uint32_t>(PlanSection::kCount);
inline constexpr const char* PlanSectionName(uint32_t s) {
  constexpr const char* kNames[] = {"links", "classes", "tenants", "prefixes"};
  return s < kPlanSections ? kNames[s] : "?";
}

// Where a section lives. entry_bytes must equal sizeof the entry struct of
// this ABI version: it catches a control built from a different tree.
struct SectionRef {
  uint64_t offset_bytes;
  uint32_t count;
  uint32_t entry_bytes;
};
static_assert(sizeof(SectionRef) == 16);

struct PlanHeader {
  uint32_t magic;         // kPlanMagic
  uint16_t abi_version;   // kAbiVersion
  uint16_t header_bytes;  // sizeof(PlanHeader)
  uint64_t total_bytes;   // the whole blob; must equal the memfd / file size
  uint64_t policy_hash;   // opaque to the dataplane: logged, echoed for operators
  uint8_t default_class;  // class for non-IP traffic (IP uses dscp_to_class)
  uint8_t reserved0[7];
  uint8_t dscp_to_class[kDscpValues];  // each < num classes
  SectionRef sections[kPlanSections];  // indexed by PlanSection
  uint8_t reserved1[32];
};
static_assert(sizeof(PlanHeader) == 192);
static_assert(offsetof(PlanHeader, total_bytes) == 8);
static_assert(offsetof(PlanHeader, dscp_to_class) == 32);
static_assert(offsetof(PlanHeader, sections) == 96);

// One bridge direction.
struct PlanLink {
  uint64_t rate_bps;           // the shape rate, > 0
  uint64_t queue_bytes_limit;  // global watermark: bytes queued over all tenants, > 0
  uint32_t overhead_bytes;     // framing bytes added per packet (preamble, IFG, FCS)
  uint32_t reserved;
};
static_assert(sizeof(PlanLink) == 24);

// A traffic class, shared by all tenants and both directions.
struct PlanClass {
  uint64_t queue_limit_ns;  // sojourn limit, (0, kMaxQueueLimitNs]
  uint32_t weight;          // bulk: DRR weight among bulk classes, (0, kMaxWeight]
  uint32_t max_share_ppm;   // latency: share of the tenant's rate, (0, kPpm]; bulk: 0
  uint8_t latency;          // 1 = strict priority class, 0 = bulk
  uint8_t reserved[7];
  char name[kClassNameBytes];  // NUL-terminated, non-empty, unique
};
static_assert(sizeof(PlanClass) == 56);
static_assert(offsetof(PlanClass, name) == 24);

// A tenant's parameters in one direction (sched::TenantParams).
struct PlanTenantRates {
  uint64_t assured_bps;        // <= ceiling_bps; may be 0 (borrows only)
  uint64_t ceiling_bps;        // (0, kMaxRateBps]
  uint64_t burst_bytes;        // [kMinBurstBytes, kMaxBurstBytes]
  uint64_t queue_bytes_limit;  // [kMinTenantQueueBytes, kMaxTenantQueueBytes]
  uint32_t weight;             // (0, kMaxWeight]
  uint32_t reserved;
};
static_assert(sizeof(PlanTenantRates) == 40);

struct PlanTenant {
  uint32_t id;    // < dataplane max_tenants; the stats segment index
  uint16_t vlan;  // 0 = any VLAN, else 1..4094
  uint16_t reserved;
  PlanTenantRates rates[kDirections];  // indexed by direction
  char name[kTenantNameBytes];  // NUL-terminated, non-empty, unique; for logs and stats labels
};
static_assert(sizeof(PlanTenant) == 136);
static_assert(offsetof(PlanTenant, rates) == 8);
static_assert(offsetof(PlanTenant, name) == 88);

// A match rule: packets whose address (destination for download, source for
// upload) falls in the prefix belong to the tenant; longest match wins.
// IPv4 addresses sit in addr[0..3], network byte order, addr[4..15] zero.
// Bits past `length` are zero (no host bits).
struct PlanPrefix {
  uint32_t tenant_id;  // an id present in the tenants section, never 0
  uint8_t is_v6;       // 0 or 1
  uint8_t length;      // <= 32 (v4), <= 128 (v6)
  uint16_t reserved;
  uint8_t addr[16];
};
static_assert(sizeof(PlanPrefix) == 24);

// A rate update: new assured rates for some tenants of one plan generation.
struct RatesHeader {
  uint32_t magic;            // kRatesMagic
  uint16_t abi_version;      // kAbiVersion
  uint16_t header_bytes;     // sizeof(RatesHeader)
  uint64_t total_bytes;      // must equal the memfd size
  uint64_t plan_generation;  // the generation the apply-plan reply returned
  uint64_t entries_offset;   // 8-aligned, >= header_bytes
  uint32_t count;
  uint32_t entry_bytes;  // sizeof(RateEntry)
  uint8_t reserved[24];
};
static_assert(sizeof(RatesHeader) == 64);

struct RateEntry {
  uint32_t tenant_id;  // present in the plan in force
  uint8_t direction;   // kDownload or kUpload
  uint8_t reserved[3];
  uint64_t assured_bps;  // <= the tenant's ceiling in that direction
};
static_assert(sizeof(RateEntry) == 16);

}  // namespace shaper::abi
