// shaper-control's AF_XDP side (control/daemon/xdp_sync.h): what the maps
// must hold for a policy, the sync against real pinned maps across a reload
// and a control restart, which maps are pinned (all but xsks_map, the
// layout the dataplane's PMD shares), and that ControlCore calls the sync
// hook exactly when a policy is put in force. The map tests need root.
#include "control/daemon/xdp_sync.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "config/loader.h"
#include "control/daemon/core.h"
#include "tests/bpf/bpf_test_util.h"

namespace shaper::control {
namespace {

using shaper::testing::IsRoot;
using shaper::testing::ParsePrefix;

std::string PolicyText(const std::vector<std::string>& tenants) {
  std::string text =
      "version: 1\n"
      "link: {capacity: 1Gbit, shape_at: 95%, overhead: 24B}\n"
      "classes:\n"
      "  - {name: bulk, priority: bulk, weight: 1, queue_limit: 50ms, default: true}\n"
      "tenants:\n";
  for (const std::string& t : tenants) text += "  - " + t + "\n";
  return text;
}

config::Policy Parse(const std::vector<std::string>& tenants) {
  auto policy = config::LoadPolicyText(PolicyText(tenants), "test.yaml");
  if (!policy) throw std::runtime_error(config::FormatDiagnostics(policy.error()));
  return std::move(*policy);
}

const std::string kA =
    "{name: a, match: {prefixes: [10.10.1.0/24, \"2001:db8:1::/48\"]}, ceiling: 100Mbit}";
const std::string kB = "{name: b, match: {prefixes: [10.10.2.0/24], vlan: 7}, ceiling: 100Mbit}";
const std::string kC = "{name: c, match: {prefixes: [10.10.3.0/24]}, ceiling: 100Mbit}";
const std::string kD = "{name: d, match: {prefixes: [10.10.4.0/24]}, ceiling: 100Mbit}";

TEST(ManagedPrefixes, EveryPrefixOfEveryTenantWithItsPlanId) {
  const config::Policy policy = Parse({kA, kB});
  dpclient::TenantIds ids;
  ids.Update(policy);
  const auto wanted = ManagedPrefixes(policy, ids);
  ASSERT_EQ(wanted.size(), 3u);
  EXPECT_EQ(wanted[0].prefix, ParsePrefix("10.10.1.0/24"));
  EXPECT_EQ(wanted[1].prefix, ParsePrefix("2001:db8:1::/48"));
  EXPECT_EQ(wanted[0].tenant_id, *ids.Find("a"));
  EXPECT_EQ(wanted[1].tenant_id, *ids.Find("a"));
  // A VLAN narrows the dataplane's match, not the steering.
  EXPECT_EQ(wanted[2].prefix, ParsePrefix("10.10.2.0/24"));
  EXPECT_EQ(wanted[2].tenant_id, *ids.Find("b"));
  EXPECT_NE(wanted[0].tenant_id, wanted[2].tenant_id);
}

class XdpSyncMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root (CAP_BPF) to create and pin the steering maps";
    pin_dir_ = "/sys/fs/bpf/shaper-xdpsync-test-" + std::to_string(getpid());
  }
  void TearDown() override {
    if (pin_dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(pin_dir_, ec);
    EXPECT_FALSE(ec) << "cleaning up " << pin_dir_ << ": " << ec.message();
  }
  std::string pin_dir_;
  Logger log_{LogLevel::kError};
};

TEST_F(XdpSyncMapsTest, ReloadChangesOnlyTheDifferenceAndARestartWritesNothing) {
  const config::Policy before = Parse({kA, kB, kC});
  const config::Policy after = Parse({kA, kB, kD});  // c removed, d added
  dpclient::TenantIds ids;
  ids.Update(before);
  {
    auto sync = XdpMapSync::Open(pin_dir_, log_);
    ASSERT_TRUE(sync.has_value()) << sync.error();
    auto first = (*sync)->Sync(before, ids);
    ASSERT_TRUE(first.has_value()) << first.error();
    EXPECT_EQ(*first, (bpf::SyncStats{.added = 4, .updated = 0, .removed = 0, .unchanged = 0}));
    ids.Update(after);
    auto reload = (*sync)->Sync(after, ids);
    ASSERT_TRUE(reload.has_value()) << reload.error();
    EXPECT_EQ(*reload, (bpf::SyncStats{.added = 1, .updated = 0, .removed = 1, .unchanged = 3}));
    EXPECT_TRUE((*sync)->last_error().empty());
  }
  // A restarted control reopens the pins: the same policy writes nothing.
  auto again = XdpMapSync::Open(pin_dir_, log_);
  ASSERT_TRUE(again.has_value()) << again.error();
  auto restart = (*again)->Sync(after, ids);
  ASSERT_TRUE(restart.has_value()) << restart.error();
  EXPECT_EQ(*restart, (bpf::SyncStats{.added = 0, .updated = 0, .removed = 0, .unchanged = 4}));
}

TEST_F(XdpSyncMapsTest, PinsEveryMapTheDataplaneSharesButNotTheSocketMap) {
  auto sync = XdpMapSync::Open(pin_dir_, log_);
  ASSERT_TRUE(sync.has_value()) << sync.error();
  for (const char* name : {STEER_NAME(STEER_MAP_V4), STEER_NAME(STEER_MAP_V6),
                           STEER_NAME(STEER_MAP_VLANS), STEER_NAME(STEER_MAP_CONFIG),
                           STEER_NAME(STEER_MAP_IFACES), STEER_NAME(STEER_MAP_COUNTERS)}) {
    EXPECT_TRUE(std::filesystem::exists(pin_dir_ + "/" + name)) << name << " is not pinned";
  }
  // Each port's program instance needs its own socket map (both bind queue 0).
  EXPECT_FALSE(std::filesystem::exists(pin_dir_ + "/" STEER_NAME(STEER_MAP_XSKS)));
}

TEST(XdpSyncOpen, NamesAMissingBpffs) {
  const Logger log(LogLevel::kError);
  auto sync = XdpMapSync::Open("/tmp", log);
  ASSERT_FALSE(sync.has_value());
  if (IsRoot())
    EXPECT_NE(sync.error().find(
                  "/tmp is not on a bpf filesystem (mount it: mount -t bpf bpf /sys/fs/bpf)"),
              std::string::npos)
        << sync.error();
  else
    EXPECT_NE(sync.error().find("needs CAP_BPF"), std::string::npos) << sync.error();
}

// The hook runs at Start() and after every reload that put a policy in
// force, never after one that failed.
TEST(ControlCoreHook, CalledWhenAPolicyIsPutInForce) {
  const std::string dir = "/tmp/shaper-xdpsync-hook-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/policy.yaml";
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write(PolicyText({kA, kB}));

  std::vector<std::vector<std::string>> calls;  // tenant names per call
  CoreOptions options;
  options.policy_path = path;
  options.on_policy_installed = [&](const config::Policy& p, const dpclient::TenantIds& ids) {
    std::vector<std::string> names;
    for (const config::Tenant& t : p.tenants) {
      names.push_back(t.name);
      EXPECT_TRUE(ids.Find(t.name).has_value()) << t.name << " has no id yet";
    }
    calls.push_back(names);
  };
  const Logger log(LogLevel::kError);
  ControlCore core(
      options,
      []() -> std::expected<std::unique_ptr<dpclient::DataplaneApi>, std::string> {
        return std::unexpected(std::string("no dataplane in this test"));
      },
      [] { return uint64_t{0}; }, [] { return 0.0; }, log);
  ASSERT_TRUE(core.Start().has_value());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], (std::vector<std::string>{"a", "b"}));

  write(PolicyText({kA, kD}));
  EXPECT_TRUE(core.Reload("test").ok);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1], (std::vector<std::string>{"a", "d"}));

  write("version: 1\nlink: {capacity: 1Gbit, shape_at: lots}\n");
  EXPECT_FALSE(core.Reload("test").ok);
  EXPECT_EQ(calls.size(), 2u) << "the hook ran for a policy that failed to load";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace shaper::control
