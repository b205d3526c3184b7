// The prefix reconciler (SyncPrefixes) on the real, loaded LPM maps: it must
// write only the difference, add before it removes, refuse a bad wanted set
// without touching the maps, and a pinned map set must survive a reload so
// the next sync is a no-op. The ordering and failure rules are also checked
// on in-memory maps (no root needed). Also the loader's availability checks.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf/steer_loader.h"
#include "tests/bpf/bpf_test_util.h"

namespace shaper::bpf {
namespace {

using shaper::testing::ParsePrefix;

// Wraps the real maps and records every write, in order: "put P" / "erase P".
class RecordingMaps final : public PrefixMaps {
 public:
  explicit RecordingMaps(PrefixMaps& real) : real_(real) {}
  std::expected<std::vector<PrefixEntry>, Error> Dump() override { return real_.Dump(); }
  std::expected<void, Error> Put(const PrefixEntry& e) override {
    ops.push_back("put " + Text(e.prefix));
    return real_.Put(e);
  }
  std::expected<void, Error> Erase(const config::Prefix& p) override {
    ops.push_back("erase " + Text(p));
    return real_.Erase(p);
  }
  std::vector<std::string> ops;

 private:
  static std::string Text(const config::Prefix& p) {
    char buf[64] = {};
    inet_ntop(p.is_v6 ? AF_INET6 : AF_INET, p.addr.data(), buf, sizeof(buf));
    return std::string(buf) + "/" + std::to_string(p.length);
  }
  PrefixMaps& real_;
};

// The tenant the kernel's LPM lookup finds for one address, read with raw
// libbpf calls (not through the code under test); nullopt when unmanaged.
std::optional<uint32_t> LookupV4(int fd, const char* addr) {
  steer_lpm_v4 key{};
  key.prefixlen = 32;
  inet_pton(AF_INET, addr, key.addr);
  steer_prefix_value v{};
  if (bpf_map_lookup_elem(fd, &key, &v) != 0) return std::nullopt;
  return v.tenant_id;
}
std::optional<uint32_t> LookupV6(int fd, const char* addr) {
  steer_lpm_v6 key{};
  key.prefixlen = 128;
  inet_pton(AF_INET6, addr, key.addr);
  steer_prefix_value v{};
  if (bpf_map_lookup_elem(fd, &key, &v) != 0) return std::nullopt;
  return v.tenant_id;
}

size_t CountKeys(int fd, size_t key_bytes) {
  std::vector<uint8_t> key(key_bytes), next(key_bytes);
  size_t n = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    ++n;
    key = next;
    prev = key.data();
  }
  return n;
}

class SteerSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!shaper::testing::IsRoot())
      GTEST_SKIP() << "needs root (CAP_BPF) to load the XDP program's maps";
    LoadOptions options;
    options.pin_dir = "";
    auto prog = SteerProgram::Load(options);
    ASSERT_TRUE(prog.has_value()) << prog.error().message;
    prog_ = std::move(*prog);
    real_ = std::make_unique<BpfPrefixMaps>(prog_->v4_fd(), prog_->v6_fd());
  }

  std::expected<SyncStats, Error> Sync(const std::vector<ManagedPrefix>& wanted,
                                       std::vector<std::string>* ops) {
    RecordingMaps rec(*real_);
    auto r = SyncPrefixes(rec, wanted);
    *ops = rec.ops;
    return r;
  }

  std::unique_ptr<SteerProgram> prog_;
  std::unique_ptr<BpfPrefixMaps> real_;
};

TEST_F(SteerSyncTest, AddsThenIsANoOpWhenNothingChanged) {
  const std::vector<ManagedPrefix> wanted = {
      {ParsePrefix("203.0.113.0/24"), 1},
      {ParsePrefix("198.51.100.0/25"), 2},
      {ParsePrefix("2001:db8:1::/48"), 1},
  };
  std::vector<std::string> ops;
  auto first = Sync(wanted, &ops);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(*first, (SyncStats{.added = 3, .updated = 0, .removed = 0, .unchanged = 0}));
  EXPECT_EQ(ops.size(), 3u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "203.0.113.200"), 1u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "198.51.100.127"), 2u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "198.51.100.128"), std::nullopt);
  EXPECT_EQ(LookupV6(prog_->v6_fd(), "2001:db8:1:ffff::1"), 1u);
  EXPECT_EQ(LookupV6(prog_->v6_fd(), "2001:db8:2::1"), std::nullopt);

  auto second = Sync(wanted, &ops);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(*second, (SyncStats{.added = 0, .updated = 0, .removed = 0, .unchanged = 3}));
  EXPECT_TRUE(ops.empty()) << "a sync with nothing to change wrote " << ops.size()
                           << " times, first: " << ops[0];
  // The same set in another order with a duplicate is still no change.
  const std::vector<ManagedPrefix> shuffled = {wanted[2], wanted[0], wanted[1], wanted[0]};
  auto third = Sync(shuffled, &ops);
  ASSERT_TRUE(third.has_value()) << third.error().message;
  EXPECT_TRUE(ops.empty());
}

TEST_F(SteerSyncTest, ChangesOnlyTheDifferenceAddingBeforeRemoving) {
  std::vector<std::string> ops;
  ASSERT_TRUE(Sync({{ParsePrefix("203.0.113.0/24"), 1},
                    {ParsePrefix("198.51.100.0/25"), 2},
                    {ParsePrefix("2001:db8:1::/48"), 1}},
                   &ops)
                  .has_value());
  // Drop 198.51.100.0/25, move 2001:db8:1::/48 to tenant 3, add 192.0.2.0/28;
  // 203.0.113.0/24 stays as it is.
  auto r = Sync({{ParsePrefix("203.0.113.0/24"), 1},
                 {ParsePrefix("2001:db8:1::/48"), 3},
                 {ParsePrefix("192.0.2.0/28"), 4}},
                &ops);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, (SyncStats{.added = 1, .updated = 1, .removed = 1, .unchanged = 1}));
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_TRUE(ops[0].starts_with("put ")) << ops[0];
  EXPECT_TRUE(ops[1].starts_with("put ")) << ops[1];
  EXPECT_EQ(ops[2], "erase 198.51.100.0/25");
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "198.51.100.1"), std::nullopt);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "192.0.2.15"), 4u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "192.0.2.16"), std::nullopt);
  EXPECT_EQ(LookupV6(prog_->v6_fd(), "2001:db8:1::1"), 3u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "203.0.113.1"), 1u);
  EXPECT_EQ(CountKeys(prog_->v4_fd(), sizeof(steer_lpm_v4)), 2u);
  EXPECT_EQ(CountKeys(prog_->v6_fd(), sizeof(steer_lpm_v6)), 1u);

  // Wanting nothing empties both maps.
  auto empty = Sync({}, &ops);
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_EQ(empty->removed, 3u);
  EXPECT_EQ(CountKeys(prog_->v4_fd(), sizeof(steer_lpm_v4)), 0u);
  EXPECT_EQ(CountKeys(prog_->v6_fd(), sizeof(steer_lpm_v6)), 0u);
}

TEST_F(SteerSyncTest, NestedPrefixesAreKeptApartAndLongestMatchWins) {
  std::vector<std::string> ops;
  auto r = Sync({{ParsePrefix("10.0.0.0/8"), 1},
                 {ParsePrefix("10.1.0.0/16"), 2},
                 {ParsePrefix("10.1.2.3/32"), 3}},
                &ops);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->added, 3u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "10.9.9.9"), 1u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "10.1.9.9"), 2u);
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "10.1.2.3"), 3u);
}

TEST_F(SteerSyncTest, ABadWantedSetChangesNothing) {
  std::vector<std::string> ops;
  ASSERT_TRUE(Sync({{ParsePrefix("203.0.113.0/24"), 1}}, &ops).has_value());

  auto host_bits =
      Sync({{ParsePrefix("192.0.2.0/24"), 1}, {ParsePrefix("198.51.100.1/24"), 2}}, &ops);
  ASSERT_FALSE(host_bits.has_value());
  EXPECT_NE(host_bits.error().message.find("prefixes[1]: 198.51.100.1/24 has host bits set"),
            std::string::npos)
      << host_bits.error().message;
  EXPECT_TRUE(ops.empty());

  config::Prefix too_long = ParsePrefix("192.0.2.0/24");
  too_long.length = 33;
  auto length = Sync({{too_long, 1}}, &ops);
  ASSERT_FALSE(length.has_value());
  EXPECT_NE(length.error().message.find("length 33"), std::string::npos) << length.error().message;
  EXPECT_TRUE(ops.empty());

  auto twice = Sync({{ParsePrefix("2001:db8::/32"), 1}, {ParsePrefix("2001:db8::/32"), 2}}, &ops);
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().message.find("2001:db8::/32 is wanted for tenant 2 and for tenant 1"),
            std::string::npos)
      << twice.error().message;
  EXPECT_TRUE(ops.empty());
  EXPECT_EQ(LookupV4(prog_->v4_fd(), "203.0.113.1"), 1u);
}

TEST_F(SteerSyncTest, PinnedMapsSurviveAReloadAndTheNextSyncIsANoOp) {
  const std::string pin_dir = "/sys/fs/bpf/shaper-test-" + std::to_string(getpid());
  const std::vector<ManagedPrefix> wanted = {{ParsePrefix("203.0.113.0/24"), 1},
                                             {ParsePrefix("2001:db8:1::/48"), 2}};
  LoadOptions options;
  options.pin_dir = pin_dir;
  {
    auto first = SteerProgram::Load(options);
    ASSERT_TRUE(first.has_value()) << first.error().message;
    auto r = (*first)->SyncPrefixes(wanted);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->added, 2u);
  }
  {
    auto again = SteerProgram::Load(options);
    ASSERT_TRUE(again.has_value()) << again.error().message;
    auto r = (*again)->SyncPrefixes(wanted);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(*r, (SyncStats{.added = 0, .updated = 0, .removed = 0, .unchanged = 2}));
  }
  std::error_code ec;
  std::filesystem::remove_all(pin_dir, ec);
  EXPECT_FALSE(ec) << "cleaning up " << pin_dir << ": " << ec.message();
}

// In memory, so the reconciler's ordering and failure rules are checked
// without privileges. Put fails for one chosen prefix, like a full map.
class FakePrefixMaps final : public PrefixMaps {
 public:
  std::expected<std::vector<PrefixEntry>, Error> Dump() override { return entries; }
  std::expected<void, Error> Put(const PrefixEntry& e) override {
    if (e.prefix == fail_put) return std::unexpected(Error{"map full"});
    ops.push_back("put");
    for (PrefixEntry& have : entries) {
      if (have.prefix == e.prefix) {
        have = e;
        return {};
      }
    }
    entries.push_back(e);
    return {};
  }
  std::expected<void, Error> Erase(const config::Prefix& p) override {
    ops.push_back("erase");
    std::erase_if(entries, [&](const PrefixEntry& e) { return e.prefix == p; });
    return {};
  }
  std::vector<PrefixEntry> entries;
  std::vector<std::string> ops;
  config::Prefix fail_put{};
};

TEST(SteerSyncFakeTest, AFailedAddRemovesNothing) {
  FakePrefixMaps maps;
  const std::vector<ManagedPrefix> before = {{ParsePrefix("203.0.113.0/24"), 1},
                                             {ParsePrefix("198.51.100.0/24"), 2}};
  ASSERT_TRUE(SyncPrefixes(maps, before).has_value());
  maps.ops.clear();
  // Replace 198.51.100.0/24 by 192.0.2.0/24, but the add fails: the prefix
  // on its way out must stay managed, or its traffic would leak to the kernel.
  maps.fail_put = ParsePrefix("192.0.2.0/24");
  auto r = SyncPrefixes(maps, std::vector<ManagedPrefix>{{ParsePrefix("203.0.113.0/24"), 1},
                                                         {ParsePrefix("192.0.2.0/24"), 3}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "map full");
  EXPECT_TRUE(std::find(maps.ops.begin(), maps.ops.end(), "erase") == maps.ops.end());
  EXPECT_EQ(maps.entries.size(), 2u);
}

TEST(SteerSyncFakeTest, WritesOnlyTheDifferenceInAddThenRemoveOrder) {
  FakePrefixMaps maps;
  ASSERT_TRUE(SyncPrefixes(maps, std::vector<ManagedPrefix>{{ParsePrefix("10.0.0.0/8"), 1},
                                                            {ParsePrefix("10.1.0.0/16"), 2},
                                                            {ParsePrefix("fd00::/8"), 3}})
                  .has_value());
  maps.ops.clear();
  auto r = SyncPrefixes(maps, std::vector<ManagedPrefix>{{ParsePrefix("10.0.0.0/8"), 1},
                                                         {ParsePrefix("fd00::/8"), 4},
                                                         {ParsePrefix("10.2.0.0/16"), 5}});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(*r, (SyncStats{.added = 1, .updated = 1, .removed = 1, .unchanged = 1}));
  EXPECT_EQ(maps.ops, (std::vector<std::string>{"put", "put", "erase"}));
}

TEST(SteerAvailabilityTest, NamesAPinDirectoryOutsideBpffs) {
  if (!shaper::testing::IsRoot())
    GTEST_SKIP() << "needs root: without it the capability check fails first";
  auto r = CheckBpfAvailable("/tmp/shaper-not-bpffs/pins");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("/tmp is not on a bpf filesystem"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(CheckBpfAvailable("").has_value());
}

TEST(SteerAvailabilityTest, NamesTheMissingCapabilityWhenNotRoot) {
  if (shaper::testing::IsRoot())
    GTEST_SKIP() << "runs only without root, where the capabilities are missing";
  auto r = CheckBpfAvailable("");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("CAP_BPF"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace shaper::bpf
