// The control side of the dataplane socket (dataplane/abi/messages.h):
// connect, hello (which brings the stats segment fd), apply a plan, push
// rates. Payloads go as sealed memfds, so the dataplane can read them in place
// knowing they cannot change after it validated them.
//
// Every call is bounded by the timeout given at Connect(): a stuck dataplane
// makes a call fail with a message, never hang the control loop. Errors say
// what failed and where (`apply-plan: dataplane replied invalid:
// tenants[3].download.ceiling_bps=0: must be > 0`).
//
// Control code talks to DataplaneApi so that tests can replace the dataplane.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/abi/messages.h"

namespace shaper::dpclient {

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct HelloInfo {
  uint32_t abi_version = 0;
  std::string dataplane_version;
  std::vector<std::string> port_names;
  uint32_t max_tenants = 0;
  uint32_t max_classes = 0;
  uint32_t max_prefixes = 0;
  uint32_t num_lcores = 0;
  uint64_t max_plan_bytes = 0;
  uint64_t plan_generation = 0;  // 0 = no plan in force
  uint64_t stats_bytes = 0;
  UniqueFd stats_fd;  // map with ctl::StatsReader::Map
};

// The dataplane's answer to apply-plan / update-rates.
struct DpReply {
  abi::Result result = abi::Result::kOk;
  uint64_t generation = 0;  // plan generation in force after the request
  std::string error;        // the dataplane's reason when result != kOk
  bool ok() const { return result == abi::Result::kOk; }
  // "ok (generation 4)" or "invalid: tenants[3]...: must be > 0".
  std::string ToString() const;
};

class DataplaneApi {
 public:
  virtual ~DataplaneApi() = default;
  virtual std::expected<HelloInfo, std::string> Hello(std::string_view client_name) = 0;
  // Transport failures are the error; a refusal by the dataplane is a DpReply
  // with result != kOk.
  virtual std::expected<DpReply, std::string> ApplyPlan(std::span<const std::byte> plan) = 0;
  virtual std::expected<DpReply, std::string> UpdateRates(std::span<const std::byte> rates) = 0;
};

class DataplaneClient : public DataplaneApi {
 public:
  static std::expected<std::unique_ptr<DataplaneClient>, std::string> Connect(
      const std::string& socket_path,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));

  std::expected<HelloInfo, std::string> Hello(std::string_view client_name) override;
  std::expected<DpReply, std::string> ApplyPlan(std::span<const std::byte> plan) override;
  std::expected<DpReply, std::string> UpdateRates(std::span<const std::byte> rates) override;

 private:
  DataplaneClient(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  std::expected<DpReply, std::string> SendPayload(abi::MsgType type, const char* what,
                                                  std::span<const std::byte> payload);
  // Receives one message into buf; returns its size and any fd that came with it.
  // Gives up after `periods` timeouts without a message.
  std::expected<size_t, std::string> Receive(const char* what, void* buf, size_t size,
                                             UniqueFd* fd_out, uint32_t periods = 1);

  UniqueFd fd_;
  std::string path_;
  uint32_t seq_ = 0;
};

// A sealed memfd (write, shrink, grow, seal) holding `bytes`.
std::expected<UniqueFd, std::string> MakeSealedMemfd(const char* name,
                                                     std::span<const std::byte> bytes);

}  // namespace shaper::dpclient
