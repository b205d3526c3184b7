// One test per validation rule, each with the exact position, field path and
// message. kHead (policy_text.h) holds lines 1-10: a 10Gbit link shaped at
// 98% (9.8Gbit), a latency class and a bulk class.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"
#include "tests/unit/config/policy_text.h"

namespace shaper::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::Errors;
using testing::kHead;

TEST(Rules, GuaranteedAboveCeiling) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/8]}
    guaranteed: 2Gbit
    ceiling: 1Gbit
)"),
              ElementsAre("p.yaml:14:17: tenants[0].guaranteed: guaranteed 2Gbit exceeds the ceiling 1Gbit"));
  // Written for both directions, overridden for one: the message names it.
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/8]}
    guaranteed: 200Mbit
    upload: {ceiling: 100Mbit}
)"),
              ElementsAre("p.yaml:14:17: tenants[0].guaranteed: guaranteed 200Mbit exceeds the upload ceiling "
                          "100Mbit"));
}

TEST(Rules, CeilingAboveShapeRate) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/8]}
    download: {ceiling: 10Gbit}
)"),
              ElementsAre("p.yaml:14:25: tenants[0].download.ceiling: ceiling 10Gbit exceeds the link's shape rate "
                          "9.8Gbit"));
  EXPECT_THAT(Errors(kHead + R"(tenants: []
default_tenant: {ceiling: 11Gbit}
)"),
              ElementsAre("p.yaml:12:27: default_tenant.ceiling: ceiling 11Gbit exceeds the link's shape rate "
                          "9.8Gbit"));
  EXPECT_THAT(Errors(kHead + R"(groups:
  - name: g
    ceiling: 20Gbit
tenants: []
)"),
              ElementsAre("p.yaml:13:14: groups[0].ceiling: ceiling 20Gbit exceeds the link's shape rate 9.8Gbit"));
}

TEST(Rules, GuaranteedAboveDefaultCeiling) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/8]}
    download: {guaranteed: 9.9Gbit}
)"),
              ElementsAre("p.yaml:12:3: tenants: the download guarantees of 1 tenants (and the default tenant) "
                          "sum to 9.9Gbit, more than the link's shape rate 9.8Gbit",
                          "p.yaml:14:28: tenants[0].download.guaranteed: guaranteed 9.9Gbit exceeds the link's "
                          "shape rate 9.8Gbit (the default ceiling)"));
}

TEST(Rules, SumOfGuaranteesWithinShapeRate) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: a, match: {prefixes: [10.0.0.0/24]}, guaranteed: 5Gbit}
  - {name: b, match: {prefixes: [10.0.1.0/24]}, guaranteed: 4Gbit, upload: {guaranteed: 1Gbit}}
default_tenant: {guaranteed: 1Gbit}
)"),
              ElementsAre("p.yaml:12:3: tenants: the download guarantees of 2 tenants (and the default tenant) sum "
                          "to 10Gbit, more than the link's shape rate 9.8Gbit"));
  // Exactly the shape rate is fine.
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: a, match: {prefixes: [10.0.0.0/24]}, guaranteed: 5Gbit}
  - {name: b, match: {prefixes: [10.0.1.0/24]}, guaranteed: 4.8Gbit}
)"),
              IsEmpty());
}

TEST(Rules, GroupGuaranteeCoversItsMembers) {
  EXPECT_THAT(Errors(kHead + R"(groups:
  - name: site
    guaranteed: 1Gbit
  - name: rack
    parent: site
    guaranteed: 600Mbit
tenants:
  - {name: a, group: rack, match: {prefixes: [10.0.0.0/24]}, guaranteed: 400Mbit}
  - {name: b, group: rack, match: {prefixes: [10.0.1.0/24]}, download: {guaranteed: 300Mbit}}
  - {name: c, group: site, match: {prefixes: [10.0.2.0/24]}, guaranteed: 500Mbit}
)"),
              ElementsAre("p.yaml:13:17: groups[0].guaranteed: the download guarantees of its members (1 tenant, 1 "
                          "group) sum to 1.1Gbit, more than the group's guaranteed 1Gbit",
                          "p.yaml:13:17: groups[0].guaranteed: the upload guarantees of its members (1 tenant, 1 "
                          "group) sum to 1.1Gbit, more than the group's guaranteed 1Gbit",
                          "p.yaml:16:17: groups[1].guaranteed: the download guarantees of its members (2 tenants, 0 "
                          "groups) sum to 700Mbit, more than the group's guaranteed 600Mbit"));
}

TEST(Rules, TopLevelGroupsWithinShapeRate) {
  EXPECT_THAT(Errors(kHead + R"(groups:
  - {name: east, guaranteed: 6Gbit}
  - {name: west, guaranteed: 4Gbit}
tenants: []
)"),
              ElementsAre("p.yaml:12:3: groups: the download guarantees of the top-level groups and the tenants "
                          "without a group sum to 10Gbit, more than the link's shape rate 9.8Gbit",
                          "p.yaml:12:3: groups: the upload guarantees of the top-level groups and the tenants "
                          "without a group sum to 10Gbit, more than the link's shape rate 9.8Gbit"));
}

TEST(Rules, UniqueNames) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: a, match: {prefixes: [10.0.0.0/24]}}
  - {name: a, match: {prefixes: [10.0.1.0/24]}}
)"),
              ElementsAre("p.yaml:13:12: tenants[1].name: duplicate tenant name 'a' (first at line 12)"));
  EXPECT_THAT(Errors(kHead + R"(groups:
  - name: g
  - name: g
tenants: []
)"),
              ElementsAre("p.yaml:13:11: groups[1].name: duplicate group name 'g' (first at line 12)"));
  EXPECT_THAT(Errors(kHead + R"(  - name: bulk
    priority: bulk
tenants: []
)"),
              ElementsAre("p.yaml:11:11: classes[2].name: duplicate class name 'bulk' (first at line 9)"));
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: "a b", match: {prefixes: [10.0.0.0/24]}}
)"),
              ElementsAre("p.yaml:12:12: tenants[0].name: name \"a b\" must be 1 to 64 letters, digits, '-', '_' "
                          "or '.'"));
}

TEST(Rules, PrefixesParseWithoutHostBits) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match:
      prefixes:
        - 203.0.113.5/24
        - "2001:db8::1/64"
        - 10.0.0.0/33
        - 10.0.0.300/32
        - 10.0.0.1
)"),
              ElementsAre("p.yaml:15:11: tenants[0].match.prefixes[0]: 203.0.113.5/24 has host bits set; did you "
                          "mean 203.0.113.0/24?",
                          "p.yaml:16:11: tenants[0].match.prefixes[1]: 2001:db8::1/64 has host bits set; did you "
                          "mean 2001:db8::/64?",
                          "p.yaml:17:11: tenants[0].match.prefixes[2]: \"10.0.0.0/33\": prefix length \"33\" must "
                          "be 0..32 for IPv4",
                          "p.yaml:18:11: tenants[0].match.prefixes[3]: \"10.0.0.300/32\" is not an IPv4 or IPv6 "
                          "prefix (IPv4 address \"10.0.0.300\" does not parse)",
                          "p.yaml:19:11: tenants[0].match.prefixes[4]: \"10.0.0.1\" has no prefix length; did you "
                          "mean 10.0.0.1/32?"));
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: a, match: {prefixes: []}}
)"),
              ElementsAre("p.yaml:12:33: tenants[0].match.prefixes: a tenant needs at least one prefix"));
}

TEST(Rules, SamePrefixInTwoTenants) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/24, "2001:db8::/32"]}
  - name: b
    match: {prefixes: [10.0.0.0/25, "2001:db8::/32"]}
  - name: c
    match: {prefixes: [10.0.0.0/24], vlan: 7}
  - name: d
    match: {prefixes: [10.0.1.0/24, 10.0.1.0/24]}
)"),
              ElementsAre("p.yaml:15:37: tenants[1].match.prefixes[1]: prefix 2001:db8::/32 is already used by "
                          "tenant 'a' (line 13)",
                          "p.yaml:19:37: tenants[3].match.prefixes[1]: prefix 10.0.1.0/24 is listed twice"));
}

TEST(Rules, Vlan) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: a, match: {prefixes: [10.0.0.0/24], vlan: 0}}
  - {name: b, match: {prefixes: [10.0.1.0/24], vlan: 4095}}
  - {name: c, match: {prefixes: [10.0.2.0/24], vlan: 4094}}
)"),
              ElementsAre("p.yaml:12:54: tenants[0].match.vlan: vlan \"0\" must be a whole number from 1 to 4094",
                          "p.yaml:13:54: tenants[1].match.vlan: vlan \"4095\" must be a whole number from 1 to "
                          "4094"));
}

TEST(Rules, Dscp) {
  EXPECT_THAT(Errors(R"(version: 1
link: {capacity: 1Gbit}
classes:
  - name: rt
    priority: latency
    dscp: [EF, cs5, 64, XF, AF44]
  - name: bulk
    priority: bulk
    dscp: [AF11, 46, CS5, AF11, be, DF]
tenants: []
)"),
              ElementsAre("p.yaml:6:21: classes[0].dscp[2]: unknown DSCP \"64\": use EF, AF11..AF43, CS0..CS7, LE, "
                          "DF (or BE), or a number 0..63",
                          "p.yaml:6:25: classes[0].dscp[3]: unknown DSCP \"XF\": use EF, AF11..AF43, CS0..CS7, LE, "
                          "DF (or BE), or a number 0..63",
                          "p.yaml:6:29: classes[0].dscp[4]: unknown DSCP \"AF44\": use EF, AF11..AF43, CS0..CS7, "
                          "LE, DF (or BE), or a number 0..63",
                          "p.yaml:9:18: classes[1].dscp[1]: DSCP 46 is already mapped to class 'rt' (line 4)",
                          "p.yaml:9:22: classes[1].dscp[2]: DSCP CS5 (40) is already mapped to class 'rt' (line 4)",
                          "p.yaml:9:27: classes[1].dscp[3]: DSCP AF11 (10) is listed twice in this class",
                          "p.yaml:9:37: classes[1].dscp[5]: DSCP DF (0) is listed twice in this class"));
}

TEST(Rules, AtLeastOneBulkClass) {
  EXPECT_THAT(Errors(R"(version: 1
link: {capacity: 1Gbit}
classes:
  - {name: rt, priority: latency}
tenants: []
)"),
              ElementsAre("p.yaml:4:3: classes: at least one class must have priority bulk"));
  EXPECT_THAT(Errors(R"(version: 1
link: {capacity: 1Gbit}
classes:
  - {name: rt, priority: urgent}
  - {name: bulk, priority: bulk, max_share: 10%}
  - {name: rt2, priority: latency, weight: 2}
tenants: []
)"),
              ElementsAre("p.yaml:4:26: classes[0].priority: priority must be latency or bulk, got \"urgent\"",
                          "p.yaml:5:45: classes[1].max_share: max_share applies to latency classes only",
                          "p.yaml:6:44: classes[2].weight: weight applies to bulk classes only (latency classes go "
                          "first, up to max_share)"));
}

TEST(Rules, WeightsArePositive) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: a, match: {prefixes: [10.0.0.0/24]}, weight: 0}
  - {name: b, match: {prefixes: [10.0.1.0/24]}, upload: {weight: -1}}
)"),
              ElementsAre("p.yaml:12:57: tenants[0].weight: weight \"0\" must be a whole number from 1 to 1000000",
                          "p.yaml:13:66: tenants[1].upload.weight: weight \"-1\" must be a whole number from 1 to "
                          "1000000"));
}

TEST(Rules, UnknownGroup) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - {name: a, group: pop-eats, match: {prefixes: [10.0.0.0/24]}}
  - {name: b, group: zzz, match: {prefixes: [10.0.1.0/24]}}
groups:
  - name: pop-east
)"),
              ElementsAre("p.yaml:12:22: tenants[0].group: unknown group 'pop-eats'; did you mean 'pop-east'?",
                          "p.yaml:13:22: tenants[1].group: unknown group 'zzz'"));
}

TEST(Rules, GroupCyclesAndDepth) {
  EXPECT_THAT(Errors(kHead + R"(groups:
  - {name: a, parent: b}
  - {name: b, parent: a}
  - {name: c, parent: c}
tenants: []
)"),
              ElementsAre("p.yaml:12:23: groups[0].parent: groups form a cycle: a -> b -> a",
                          "p.yaml:14:23: groups[2].parent: group 'c' cannot be its own parent"));
  EXPECT_THAT(Errors(kHead + R"(groups:
  - {name: g1}
  - {name: g2, parent: g1}
  - {name: g3, parent: g2}
  - {name: g4, parent: g3}
  - {name: g5, parent: g4}
tenants: []
)"),
              ElementsAre("p.yaml:16:24: groups[4].parent: groups nest more than 4 deep: g5 -> g4 -> g3 -> g2 -> "
                          "g1"));
}

// Parents may be defined after their children; a walk that runs into a
// cycle from outside it reports the cycle once, where it closes.
TEST(Rules, GroupsInAnyOrder) {
  EXPECT_THAT(Errors(kHead + R"(groups:
  - {name: leaf, parent: mid}
  - {name: mid, parent: top}
  - {name: top}
  - {name: x, parent: a}
  - {name: a, parent: b}
  - {name: b, parent: a}
tenants: []
)"),
              ElementsAre("p.yaml:16:23: groups[4].parent: groups form a cycle: a -> b -> a"));
}

TEST(Rules, Version) {
  EXPECT_THAT(Errors("version: 2\n" + kHead.substr(11) + "tenants: []\n"),
              ElementsAre("p.yaml:1:10: version: unsupported version 2: this shaper reads version 1"));
}

TEST(Rules, AllocationInterval) {
  EXPECT_THAT(Errors(kHead + R"(tenants: []
allocation: {mode: fast, interval: 5ms, hysteresis: 2%}
)"),
              ElementsAre("p.yaml:12:20: allocation.mode: mode must be dynamic or static, got \"fast\"",
                          "p.yaml:12:36: allocation.interval: interval 5ms is outside 10ms..10s"));
  EXPECT_THAT(Errors(kHead + "tenants: []\nallocation: {interval: 11s}\n"),
              ElementsAre("p.yaml:12:24: allocation.interval: interval 11s is outside 10ms..10s"));
  EXPECT_THAT(Errors(kHead + "tenants: []\nallocation: {interval: 10s}\n"), IsEmpty());
}

TEST(Rules, UnknownKeys) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match: {prefixes: [10.0.0.0/24], vlna: 3}
    download: {ceilng: 1Gbit}
    colour: red
)"),
              ElementsAre("p.yaml:13:38: tenants[0].match.vlna: unknown key 'vlna'; did you mean 'vlan'?",
                          "p.yaml:14:16: tenants[0].download.ceilng: unknown key 'ceilng'; did you mean 'ceiling'?",
                          "p.yaml:15:5: tenants[0].colour: unknown key 'colour'; expected one of: name, group, "
                          "match, guaranteed, ceiling, weight, burst, download, upload"));
}

TEST(Rules, MissingRequiredKeys) {
  EXPECT_THAT(Errors(R"(version: 1
link:
  shape_at: 98%
classes:
  - priority: bulk
tenants:
  - name: a
  - match: {vlan: 3}
)"),
              ElementsAre("p.yaml:3:3: link: missing required key 'capacity'",
                          "p.yaml:5:5: classes[0]: missing required key 'name'",
                          "p.yaml:7:5: tenants[0]: missing required key 'match'",
                          "p.yaml:8:5: tenants[1]: missing required key 'name'",
                          "p.yaml:8:12: tenants[1].match: missing required key 'prefixes'"));
  EXPECT_THAT(Errors("version: 1\n"),
              ElementsAre("p.yaml:1:1: missing required key 'link'", "p.yaml:1:1: missing required key 'classes'",
                          "p.yaml:1:1: missing required key 'tenants'"));
}

TEST(Rules, WrongShapesAndDuplicateKeys) {
  EXPECT_THAT(Errors(kHead + R"(tenants:
  - name: a
    match: 10.0.0.0/24
    ceiling: 1Gbit
    ceiling: 2Gbit
    download: [1Gbit]
)"),
              ElementsAre("p.yaml:13:12: tenants[0].match: expected a mapping (key: value), got \"10.0.0.0/24\"",
                          "p.yaml:15:5: tenants[0].ceiling: duplicate key 'ceiling'",
                          "p.yaml:16:15: tenants[0].download: expected a mapping (key: value), got a list"));
}

TEST(Rules, LinkShapeAt) {
  EXPECT_THAT(Errors(R"(version: 1
link: {capacity: 1Gbit, shape_at: 2Gbit, overhead: 24}
classes: [{name: bulk, priority: bulk}]
tenants: []
)"),
              ElementsAre("p.yaml:2:35: link.shape_at: shape_at 2Gbit exceeds the capacity 1Gbit",
                          "p.yaml:2:52: link.overhead: bare number \"24\": add a unit: B, KB, MB, GB (decimal) or "
                          "KiB, MiB, GiB (binary)"));
}

}  // namespace
}  // namespace shaper::config
