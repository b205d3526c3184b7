// The fixture shared by the in-process core tests (core_test.cc,
// reload_test.cc, ids_persist_test.cc): a temp directory with the policy
// file, a real in-process dataplane ctl server (test_env.h) and a
// ControlCore on a fake clock whose log is kept and printed on failure.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <expected>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "control/daemon/core.h"
#include "control/daemon/log.h"
#include "control/dpclient/dataplane_client.h"
#include "tests/unit/control/test_env.h"

namespace shaper::testing {

// What the next apply-plan on the core's connection does instead of a plain
// call: both end without a reply, as a call timeout or a socket closed
// mid-call do, so the control cannot tell whether the dataplane applied it.
enum class ApplyFault : uint8_t {
  kNone,
  kReplyLost,  // the dataplane gets the plan (and applies it); its reply is lost
  kNotSent,    // the connection breaks before the plan reaches the dataplane
};

// The real client, with ApplyFault injected into apply-plan (once per fault set).
class FaultyApi : public dpclient::DataplaneApi {
 public:
  FaultyApi(std::unique_ptr<dpclient::DataplaneApi> inner, std::atomic<ApplyFault>& fault)
      : inner_(std::move(inner)), fault_(fault) {}
  std::expected<dpclient::HelloInfo, std::string> Hello(std::string_view client_name) override {
    return inner_->Hello(client_name);
  }
  std::expected<dpclient::DpReply, std::string> ApplyPlan(
      std::span<const std::byte> plan) override {
    switch (fault_.exchange(ApplyFault::kNone)) {
      case ApplyFault::kNone:
        return inner_->ApplyPlan(plan);
      case ApplyFault::kReplyLost:
        if (auto reply = inner_->ApplyPlan(plan); !reply) return reply;
        return std::unexpected("apply-plan: connection closed before the reply (test)");
      case ApplyFault::kNotSent:
        return std::unexpected("apply-plan: send: Broken pipe (test)");
    }
    return std::unexpected("?");
  }
  std::expected<dpclient::DpReply, std::string> UpdateRates(
      std::span<const std::byte> rates) override {
    return inner_->UpdateRates(rates);
  }

 private:
  std::unique_ptr<dpclient::DataplaneApi> inner_;
  std::atomic<ApplyFault>& fault_;
};

class CoreFixture : public ::testing::Test {
 protected:
  static constexpr uint64_t kMbit = 1'000'000;
  static constexpr uint64_t kTickNs = 100'000'000;  // the policies' allocation interval

  // The temp directory and the dataplane, serving; no policy written, no core.
  // max_classes: as the dataplane's --max-classes.
  // Fatal failures return from here: wrap the call in ASSERT_NO_FATAL_FAILURE.
  void StartDataplane(uint32_t max_classes = abi::kMaxClasses) {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    policy_path_ = dir_ + "/policy.yaml";
    dataplane_ = std::make_unique<InProcessDataplane>(dir_ + "/dp.sock", false, max_classes);
    ASSERT_TRUE(dataplane_->Start());
  }

  // A new core on `options` (policy_path_ filled in), started: not yet
  // connected, that happens on its first Tick(). The old core goes first, as
  // a process restart would.
  void StartCore(control::CoreOptions options = {}) {
    core_.reset();
    options.policy_path = policy_path_;
    auto connect = control::SocketConnector(dir_ + "/dp.sock", std::chrono::milliseconds(2000));
    control::DataplaneConnector connector =
        [this, connect]() -> std::expected<std::unique_ptr<dpclient::DataplaneApi>, std::string> {
      if (unreachable_) return std::unexpected("connect: Connection refused (test)");
      auto api = connect();
      if (!api) return api;
      return std::make_unique<FaultyApi>(std::move(*api), next_apply_fault_);
    };
    core_ = std::make_unique<control::ControlCore>(
        options, std::move(connector), [this] { return now_ns_.load(); },
        [] { return 1'800'000'000.0; }, log_);
    auto started = core_->Start();
    ASSERT_TRUE(started.has_value()) << started.error();
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const std::string& line : log_lines_) std::fputs(line.c_str(), stderr);
    }
    core_.reset();
    dataplane_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Advances the clock one interval with greedy traffic (1 Gbit/s offered)
  // in the download direction of `tenants`, then ticks.
  void GreedyTick(std::initializer_list<const char*> tenants) {
    const Received rx = dataplane_->received();
    for (const char* name : tenants) {
      dataplane_->AddTraffic(rx.ids.at(name), abi::kDownload, 1000 * kMbit / 8 / 10);
    }
    now_ns_ += kTickNs;
    dataplane_->segment().Heartbeat(now_ns_);
    core_->Tick();
  }

  // The assured rate the dataplane last received for `name` in `direction`.
  uint64_t Assured(const char* name, uint32_t direction = abi::kDownload) const {
    const Received rx = dataplane_->received();
    return rx.assured_bps.at({rx.ids.at(name), direction});
  }

  std::string dir_;
  std::string policy_path_;
  std::atomic<uint64_t> now_ns_{1'000'000'000};
  std::vector<std::string> log_lines_;
  control::Logger log_{control::LogLevel::kDebug, [this](std::string_view line) { log_lines_.emplace_back(line); }};
  // Faults on the core's connections (FaultyApi); the dataplane itself keeps serving.
  std::atomic<ApplyFault> next_apply_fault_{ApplyFault::kNone};
  std::atomic<bool> unreachable_{false};
  std::unique_ptr<InProcessDataplane> dataplane_;
  std::unique_ptr<control::ControlCore> core_;
};

}  // namespace shaper::testing
