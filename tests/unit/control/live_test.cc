// shaperctl top, and shaper-control restarting while the dataplane runs on:
// the real shaper-control and shaperctl binaries against a real in-process
// dataplane ctl server (test_env.h), whose poll thread keeps the heartbeat
// going like the dataplane's main lcore.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/daemon/shaperctl_live.h"
#include "tests/unit/control/process_env.h"
#include "tests/unit/control/test_env.h"

namespace shaper::testing {
namespace {

constexpr const char* kPolicy = R"(version: 1
link: {capacity: 1000Mbit, shape_at: 95%}
classes:
  - {name: bulk, priority: bulk, queue_limit: 50ms}
tenants:
  - name: acme
    match: {prefixes: [10.0.1.0/24]}
    guaranteed: 100Mbit
    ceiling: 900Mbit
  - name: globex
    match: {prefixes: [10.0.2.0/24]}
    guaranteed: 200Mbit
  - name: initech
    match: {prefixes: [10.0.3.0/24]}
    guaranteed: 50Mbit
allocation: {mode: dynamic, interval: 50ms}
)";

// "400.0 Mbit/s" (shaperctl's FormatRate) back to bit/s.
double ParseRate(const std::string& value, const std::string& unit) {
  const double v = std::strtod(value.c_str(), nullptr);
  if (unit == "Gbit/s") return v * 1e9;
  if (unit == "Mbit/s") return v * 1e6;
  if (unit == "Kbit/s") return v * 1e3;
  return v;
}

struct TopRow {
  std::string tenant;
  std::string direction;
  double rate_bps = 0;
};

// The refreshes of a piped `shaperctl top`: each starts with its "policy"
// line, then the column header, then the rows.
std::vector<std::vector<TopRow>> ParseTop(const std::string& text) {
  std::vector<std::vector<TopRow>> screens;
  std::istringstream in(text);
  std::string line;
  bool in_rows = false;
  while (std::getline(in, line)) {
    if (line.starts_with("policy ")) {
      screens.emplace_back();
      in_rows = false;
    } else if (line.starts_with("TENANT")) {
      in_rows = true;
    } else if (in_rows && !line.empty() && !screens.empty()) {
      std::istringstream fields(line);
      TopRow row;
      std::string value, unit;
      fields >> row.tenant >> row.direction >> value >> unit;
      row.rate_bps = ParseRate(value, unit);
      screens.back().push_back(row);
    }
  }
  return screens;
}

class LiveTest : public ControlProcessFixture {
 protected:
  LiveTest() : ControlProcessFixture(kPolicy, {"control.log", "control2.log"}) {}

  void TearDown() override {
    StopTraffic();
    ControlProcessFixture::TearDown();
  }
  void StartControl(const std::string& log_name) { pid_ = Spawn(ControlArgs(), dir_ + "/" + log_name); }
  // Downstream traffic every 20 ms: globex 400 Mbit/s, acme 100 Mbit/s, initech none.
  void StartTraffic() {
    const Received rx = dataplane_->received();
    const uint32_t acme = rx.ids.at("acme");
    const uint32_t globex = rx.ids.at("globex");
    traffic_ = std::thread([this, acme, globex] {
      while (!stop_traffic_) {
        dataplane_->AddTraffic(globex, abi::kDownload, 400'000'000 / 8 / 50);
        dataplane_->AddTraffic(acme, abi::kDownload, 100'000'000 / 8 / 50);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  }
  void StopTraffic() {
    stop_traffic_ = true;
    if (traffic_.joinable()) traffic_.join();
  }
  nlohmann::json StatusJson() {
    auto [rc, out] = RunCommand(shaperctl_ + " status --json --admin " + admin_);
    if (rc != 0) return nlohmann::json{};
    return nlohmann::json::parse(out, nullptr, false);
  }
  uint64_t RateOf(const nlohmann::json& status, const std::string& tenant) {
    if (!status.is_object() || !status.contains("tenants")) return 0;
    for (const auto& row : status["tenants"]) {
      if (row["tenant"] == tenant && row["direction"] == "download") return row["rate_bps"].get<uint64_t>();
    }
    return 0;
  }

  std::thread traffic_;
  std::atomic<bool> stop_traffic_{false};
};

TEST(TopTableTest, SortsByRateAndCutsToTheScreen) {
  nlohmann::json status = {{"ok", true}, {"policy", "p.yaml"}, {"tenants", nlohmann::json::array()}};
  // 30 rows; rate = (i * 7) % 30 Mbit/s, so the input order is not the sorted one.
  for (uint64_t i = 0; i < 30; ++i) {
    status["tenants"].push_back({{"tenant", "t" + std::to_string(i)},
                                 {"direction", "download"},
                                 {"rate_bps", ((i * 7) % 30) * 1'000'000}});
  }
  const nlohmann::json sorted = shaper::control::SortedByRate(status);
  ASSERT_EQ(sorted["tenants"].size(), 30u);
  for (size_t i = 1; i < 30; ++i) {
    EXPECT_GE(sorted["tenants"][i - 1]["rate_bps"].get<uint64_t>(), sorted["tenants"][i]["rate_bps"].get<uint64_t>());
  }
  EXPECT_EQ(sorted["tenants"][0]["rate_bps"].get<uint64_t>(), 29'000'000u);

  // 10 lines: 2 header lines, 6 rows, the "more" line, the cursor's line.
  const std::string screen = shaper::control::TopTable(status, 10);
  const auto screens = ParseTop(screen);
  ASSERT_EQ(screens.size(), 1u) << screen;
  ASSERT_EQ(screens[0].size(), 7u) << screen;  // 6 rows + the "more" line, read as a row
  EXPECT_EQ(screens[0][0].rate_bps, 29e6) << screen;
  EXPECT_EQ(screens[0][5].rate_bps, 24e6) << screen;
  EXPECT_NE(screen.find("... 24 more rows"), std::string::npos) << screen;
  EXPECT_EQ(std::count(screen.begin(), screen.end(), '\n'), 9) << screen;
  // Everything fits: no "more" line.
  EXPECT_EQ(shaper::control::TopTable(status, 40).find("more row"), std::string::npos);
}

TEST_F(LiveTest, TopShowsTenantsBusiestFirstAndStopsAfterCount) {
  StartControl("control.log");
  ASSERT_TRUE(WaitFor([&] { return dataplane_->received().plans == 1; })) << "no plan pushed";
  ASSERT_TRUE(WaitFor([&] { return access(admin_.c_str(), F_OK) == 0; }));
  StartTraffic();
  // Until the measured rates reflect the traffic: globex > acme > 0.
  ASSERT_TRUE(WaitFor([&] {
    const nlohmann::json s = StatusJson();
    return RateOf(s, "acme") > 50'000'000 && RateOf(s, "globex") > 2 * RateOf(s, "acme");
  })) << StatusJson().dump();

  const auto started = std::chrono::steady_clock::now();
  auto [rc, out] = RunCommand(shaperctl_ + " top --count 2 --interval 300ms --admin " + admin_);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(rc, 0) << out;
  // One interval between the two refreshes.
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "ANSI codes on a pipe:\n" << out;
  const auto screens = ParseTop(out);
  ASSERT_EQ(screens.size(), 2u) << out;
  for (const auto& rows : screens) {
    ASSERT_EQ(rows.size(), 8u) << out;  // default and 3 tenants x 2 directions
    std::set<std::string> tenants;
    for (size_t i = 0; i < rows.size(); ++i) {
      tenants.insert(rows[i].tenant);
      if (i > 0) {
        EXPECT_GE(rows[i - 1].rate_bps, rows[i].rate_bps) << "row " << i << " out of order:\n" << out;
      }
    }
    EXPECT_EQ(tenants, (std::set<std::string>{"default", "acme", "globex", "initech"})) << out;
    EXPECT_EQ(rows[0].tenant, "globex") << out;
    EXPECT_EQ(rows[0].direction, "download") << out;
    EXPECT_EQ(rows[1].tenant, "acme") << out;
  }

  // On a terminal (a pty from script(1), 10 rows): the screen is cleared
  // before each refresh and the table cut to fit: 10 - 4 = 6 rows, 2 left out.
  if (access("/usr/bin/script", X_OK) == 0) {
    auto [rc_tty, out_tty] = RunCommand("/usr/bin/script -qec 'stty rows 10 cols 200; " + shaperctl_ +
                                        " top --count 2 --interval 50ms --admin " + admin_ + "' /dev/null");
    EXPECT_EQ(rc_tty, 0) << out_tty;
    const std::string clear = "\x1b[H\x1b[2J";
    size_t clears = 0;
    for (size_t pos = 0; (pos = out_tty.find(clear, pos)) != std::string::npos; pos += clear.size()) ++clears;
    EXPECT_EQ(clears, 2u) << out_tty;
    std::string plain = out_tty;
    for (size_t pos; (pos = plain.find(clear)) != std::string::npos;) plain.replace(pos, clear.size(), "\n");
    const auto tty_screens = ParseTop(plain);
    ASSERT_EQ(tty_screens.size(), 2u) << plain;
    for (const auto& rows : tty_screens) {
      ASSERT_EQ(rows.size(), 7u) << plain;  // 6 rows and the "more" line
      EXPECT_EQ(rows[0].tenant, "globex") << plain;
    }
    EXPECT_NE(plain.find("... 2 more rows"), std::string::npos) << plain;
  }

  // --json: one sorted status reply per line.
  auto [rc_json, out_json] = RunCommand(shaperctl_ + " top --json --count 2 --interval 50ms --admin " + admin_);
  EXPECT_EQ(rc_json, 0) << out_json;
  std::istringstream lines(out_json);
  std::string line;
  int replies = 0;
  while (std::getline(lines, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    ++replies;
    const auto& rows = j["tenants"];
    ASSERT_EQ(rows.size(), 8u);
    for (size_t i = 1; i < rows.size(); ++i) {
      EXPECT_GE(rows[i - 1]["rate_bps"].get<uint64_t>(), rows[i]["rate_bps"].get<uint64_t>()) << line;
    }
  }
  EXPECT_EQ(replies, 2) << out_json;

  // Without --count it runs until SIGINT, then exits 0.
  // (sh execs shaperctl: the pid signalled is shaperctl's; its screens go to a file.)
  const pid_t top = Spawn({"/bin/sh", "-c", "exec " + shaperctl_ + " top --interval 50ms --admin " + admin_ + " > " +
                                                dir_ + "/top.out"},
                          dir_ + "/top.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int wstatus = 0;
  EXPECT_EQ(waitpid(top, &wstatus, WNOHANG), 0) << "top ended on its own";
  kill(top, SIGINT);
  ASSERT_TRUE(WaitFor([&] { return waitpid(top, &wstatus, WNOHANG) == top; }, 3000));
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;

  // Usage errors and an unreachable shaper-control.
  auto [rc_bad, out_bad] = RunCommand(shaperctl_ + " top --interval 0ms --admin " + admin_);
  EXPECT_EQ(rc_bad, 2) << out_bad;
  EXPECT_NE(out_bad.find("--interval"), std::string::npos) << out_bad;
  auto [rc_gone, out_gone] = RunCommand(shaperctl_ + " top --count 1 --admin " + dir_ + "/nothing.sock");
  EXPECT_EQ(rc_gone, 1) << out_gone;
  EXPECT_NE(out_gone.find("is shaper-control running?"), std::string::npos) << out_gone;
}

// SIGKILL shaper-control: the dataplane keeps the plan (nothing new arrives,
// the generation stands); a new shaper-control reconnects, pushes the same
// policy under the same tenant ids, and answers shaperctl again.
TEST_F(LiveTest, ControlKilledAndRestartedWhileTheDataplaneRuns) {
  StartControl("control.log");
  ASSERT_TRUE(WaitFor([&] { return dataplane_->received().plans == 1; })) << "no plan pushed";
  ASSERT_TRUE(WaitFor([&] { return access(admin_.c_str(), F_OK) == 0; }));
  StartTraffic();
  // Dynamic rates pushed on top of the plan, so "rates stand" means something.
  ASSERT_TRUE(WaitFor([&] {
    const Received rx = dataplane_->received();
    return rx.assured_bps.at({rx.ids.at("globex"), abi::kDownload}) > 200'000'000;
  }));
  auto [rc1, out1] = RunCommand(shaperctl_ + " status --admin " + admin_);
  ASSERT_EQ(rc1, 0) << out1;

  kill(pid_, SIGKILL);
  ASSERT_EQ(waitpid(pid_, nullptr, 0), pid_);
  pid_ = -1;
  const Received at_kill = dataplane_->received();
  // Ten allocation intervals with traffic and no controller.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  {
    SCOPED_TRACE("no controller: nothing pushed since the kill");
    ExpectSameReceived(dataplane_->received(), at_kill);
  }
  auto [rc_down, out_down] = RunCommand(shaperctl_ + " status --admin " + admin_);
  EXPECT_EQ(rc_down, 1) << out_down;
  EXPECT_NE(out_down.find("is shaper-control running?"), std::string::npos) << out_down;

  // Same command line: the stale admin socket is replaced, the metrics port reused.
  StartControl("control2.log");
  ASSERT_TRUE(WaitFor([&] { return dataplane_->received().plans == at_kill.plans + 1; })) << "no reconnect";
  const Received again = dataplane_->received();
  EXPECT_EQ(again.generation, at_kill.generation + 1);  // the dataplane accepted it
  EXPECT_EQ(again.ids, at_kill.ids);                    // no tenant changed id
  ASSERT_TRUE(WaitFor([&] { return access(admin_.c_str(), F_OK) == 0 && StatusJson().is_object(); }));
  const nlohmann::json status = StatusJson();
  EXPECT_TRUE(status.value("dataplane_up", false)) << status.dump();
  EXPECT_EQ(status.value("plan_generation", uint64_t{0}), again.generation) << status.dump();
  for (const auto& row : status["tenants"]) {
    EXPECT_EQ(row["id"].get<uint32_t>(), again.ids.at(row["tenant"].get<std::string>())) << row.dump();
  }
  auto [rc2, out2] = RunCommand(shaperctl_ + " status --admin " + admin_);
  EXPECT_EQ(rc2, 0) << out2;
  EXPECT_NE(out2.find("dataplane up"), std::string::npos) << out2;
  EXPECT_NE(out2.find("globex"), std::string::npos) << out2;
  // And it allocates again: globex's demand is seen anew.
  EXPECT_TRUE(WaitFor([&] {
    const Received rx = dataplane_->received();
    return rx.rate_updates > again.rate_updates && rx.assured_bps.at({rx.ids.at("globex"), abi::kDownload}) > 200'000'000;
  }));
}

}  // namespace
}  // namespace shaper::testing
