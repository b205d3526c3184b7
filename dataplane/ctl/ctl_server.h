// The dataplane's control server: a unix SOCK_SEQPACKET socket that control
// uses to say hello, apply plans and push rates (dataplane/abi/messages.h).
//
// It runs on the dataplane's main lcore: Poll(timeout_ms) is called from the
// main loop, never blocks longer than asked, and never touches the packet
// path itself: a valid plan or rates blob is handed to a callback that the
// dataplane provides (which builds the new profile and swaps it in with RCU).
// Invalid blobs never reach a callback, so a rejected plan leaves the running
// one in force.
//
// Trust: the socket is mode 0600 in a 0755 directory, and each peer is checked
// with SO_PEERCRED: root and the dataplane's own uid are accepted; any other
// uid is logged with its pid and disconnected. Payloads are memfds that must
// be sealed (write, shrink, grow, seal) so they cannot change after
// validation; they are mapped read-only and unmapped after the callback.
#pragma once

#include <poll.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/abi/messages.h"
#include "dataplane/ctl/plan_validate.h"

namespace shaper::ctl {

struct CtlServerOptions {
  std::string socket_path = abi::kDefaultSocketPath;
  Limits limits;
  // Reported in the hello reply.
  std::string dataplane_version;
  uint32_t num_lcores = 0;
  std::vector<std::string> port_names;  // at most abi::kMaxPorts
  uint32_t max_clients = 8;
  // Where the server reports refused peers and rejected requests; default: stderr.
  std::function<void(std::string_view)> log;
};

struct CtlCallbacks {
  // Install a validated plan; return the generation now in force. The view is
  // valid only during the call: copy what is needed.
  std::function<std::expected<uint64_t, std::string>(const PlanView&)> on_plan;
  // Install validated assured rates for the plan in force.
  std::function<std::expected<void, std::string>(const RatesView&)> on_rates;
};

class CtlServer {
 public:
  // Creates the socket (its parent directory 0755 if missing; a stale socket
  // file is removed), listening and non-blocking. `stats_fd` is the stats
  // segment, sent with every hello reply (not owned; -1 for none).
  static std::expected<std::unique_ptr<CtlServer>, std::string> Create(CtlServerOptions options,
                                                                       CtlCallbacks callbacks,
                                                                       int stats_fd,
                                                                       uint64_t stats_bytes);
  ~CtlServer();  // closes every connection and removes the socket file
  CtlServer(const CtlServer&) = delete;
  CtlServer& operator=(const CtlServer&) = delete;

  // Accepts connections and answers pending requests, waiting at most
  // timeout_ms (0: just look). Returns the number of requests answered.
  int Poll(int timeout_ms);

  // Records a plan installed without the socket (e.g. `--plan FILE` at
  // startup), so hello reports it and rate updates are checked against it.
  void SetPlanInForce(const PlanView& plan, uint64_t generation);
  uint64_t generation() const { return in_force_.generation; }
  const std::string& socket_path() const { return options_.socket_path; }

 private:
  CtlServer(CtlServerOptions options, CtlCallbacks callbacks, int listen_fd, int stats_fd,
            uint64_t stats_bytes);
  void Accept();
  enum class Handled { kAnswered, kDrained, kClose };
  // Reads and answers one request.
  Handled HandleOne(int fd);
  void SendReply(int fd, uint32_t seq, abi::Result result, std::string_view error);
  void SendHello(int fd, uint32_t seq);
  void HandlePayload(int fd, const abi::PayloadRequest& req, int payload_fd, bool is_plan);
  void Log(std::string_view text) const;
  std::expected<uint64_t, std::string> CallPlan(const PlanView& plan);
  std::expected<void, std::string> CallRates(const RatesView& rates);
  // Answers a refused peer and closes it once it has read the answer.
  void Refuse(int fd, std::string_view reason);
  void ReapRefused(std::span<const pollfd> polled);

  CtlServerOptions options_;
  CtlCallbacks callbacks_;
  int listen_fd_;
  int stats_fd_;
  uint64_t stats_bytes_;
  std::vector<int> clients_;
  struct Refused {
    int fd;
    uint64_t deadline_ns;  // CLOCK_MONOTONIC
  };
  std::vector<Refused> refused_;
  std::vector<pollfd> poll_fds_;
  PlanCeilings in_force_;
};

}  // namespace shaper::ctl
