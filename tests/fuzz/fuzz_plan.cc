// libFuzzer target: everything a broken or hostile control can send the
// dataplane (dataplane/ctl/): plan blobs, rate-update blobs, and raw control
// socket messages with or without a sealed payload memfd.
//
// Input: byte 0 picks the door, the rest is what goes through it.
//   0  ValidatePlan on the bytes (copied to an 8-aligned buffer, as a mapping
//      is). An accepted plan is then read the way the dataplane reads it:
//      every section walked, FindTenant over every id, PlanCeilings built; and
//      its promises checked (tenant 0 first, ids strictly ascending, every
//      prefix's tenant present, lengths and classes in range).
//   1  ValidateRates on the bytes against a fixed plan in force.
//   2  One raw message on the control socket (a CtlServer in this process).
//   3  A 24-byte PayloadRequest header followed by a payload: the payload goes
//      into a sealed memfd passed with the message (apply-plan or rates,
//      whatever the header's type says). An accepted plan reaches on_plan.
// Every request must be answered with a reply (the server never hangs up on a
// well-sized message) and the server must keep serving.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/abi/messages.h"
#include "dataplane/ctl/ctl_server.h"
#include "dataplane/ctl/plan_validate.h"

namespace {

namespace abi = shaper::abi;
namespace ctl = shaper::ctl;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_plan: %s\n", what.c_str());
  std::abort();
}

std::vector<uint64_t> Aligned(const uint8_t* data, size_t size) {
  std::vector<uint64_t> buf((size + 7) / 8 + 1);
  if (size) std::memcpy(buf.data(), data, size);
  return buf;
}

// Reads an accepted plan as the dataplane does and checks the validator's promises.
uint64_t Walk(const ctl::PlanView& plan, const ctl::Limits& limits) {
  uint64_t sum = plan.policy_hash() + plan.default_class();
  const auto classes = plan.classes();
  if (classes.empty() || classes.size() > limits.max_classes) Fail("class count out of range");
  if (plan.default_class() >= classes.size()) Fail("default class out of range");
  for (uint8_t c : plan.dscp_to_class())
    if (c >= classes.size()) Fail("dscp_to_class out of range");
  for (const auto& l : plan.links()) sum += l.rate_bps + l.queue_bytes_limit + l.overhead_bytes;
  for (const auto& c : classes) sum += c.queue_limit_ns + c.weight + c.max_share_ppm + c.latency;
  const auto tenants = plan.tenants();
  if (tenants.empty() || tenants[0].id != abi::kDefaultTenantId) Fail("tenant 0 not first");
  for (size_t i = 0; i < tenants.size(); ++i) {
    if (i && tenants[i].id <= tenants[i - 1].id) Fail("tenant ids not strictly ascending");
    if (tenants[i].id >= limits.max_tenants) Fail("tenant id over max_tenants");
    if (tenants[i].id >= plan.tenant_id_limit()) Fail("tenant id over tenant_id_limit");
    for (const auto& r : tenants[i].rates) {
      if (r.ceiling_bps == 0 || r.assured_bps > r.ceiling_bps) Fail("tenant rates inconsistent");
      sum += r.burst_bytes + r.queue_bytes_limit + r.weight;
    }
    if (std::memchr(tenants[i].name, 0, sizeof(tenants[i].name)) == nullptr) Fail("tenant name unterminated");
  }
  for (const auto& p : plan.prefixes()) {
    if (p.length > (p.is_v6 ? 128 : 32)) Fail("prefix length out of range");
    if (p.tenant_id == 0 || plan.FindTenant(p.tenant_id) == nullptr) Fail("prefix of an absent tenant");
    sum += p.addr[15];
  }
  const uint32_t limit = plan.tenant_id_limit();
  for (uint32_t id = 0; id <= limit && id < 100'000; ++id)
    if (const auto* t = plan.FindTenant(id)) sum += t->vlan;
  (void)plan.FindTenant(UINT32_MAX);
  const auto ceilings = ctl::PlanCeilings::From(plan, 1);
  if (ceilings.ceiling_bps.size() != limit) Fail("ceilings not sized by tenant_id_limit");
  return sum;
}

ctl::PlanCeilings FixedCeilings() {
  ctl::PlanCeilings c;
  c.generation = 7;
  c.ceiling_bps = {{10'000'000, 10'000'000}, {0, 0}, {900'000'000, 800'000'000}, {1, 1}};
  return c;
}

// One control server for the whole run, on a socket of its own.
struct Server {
  std::unique_ptr<ctl::CtlServer> server;
  std::string path;
  uint64_t plans = 0;
  Server() {
    path = "/tmp/fuzz-plan-" + std::to_string(getpid()) + ".sock";
    ctl::CtlServerOptions o;
    o.socket_path = path;
    o.dataplane_version = "fuzz";
    o.num_lcores = 1;
    o.port_names = {"p0", "p1"};
    o.log = [](std::string_view) {};
    ctl::CtlCallbacks cb;
    cb.on_plan = [this](const ctl::PlanView& v) -> std::expected<uint64_t, std::string> {
      (void)Walk(v, ctl::Limits{});
      return ++plans;
    };
    cb.on_rates = [](const ctl::RatesView& r) -> std::expected<void, std::string> {
      for (const auto& e : r.entries) (void)e.assured_bps;
      return {};
    };
    auto s = ctl::CtlServer::Create(o, std::move(cb), -1, 0);
    if (!s) Fail("CtlServer::Create: " + s.error());
    server = std::move(*s);
    std::atexit([] { unlink(("/tmp/fuzz-plan-" + std::to_string(getpid()) + ".sock").c_str()); });
  }
};

Server& TheServer() {
  static Server s;
  return s;
}

int Connect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Fail("connect");
  return fd;
}

void SendAndExpectReply(const uint8_t* msg, size_t size, int payload_fd) {
  Server& s = TheServer();
  s.server->Poll(0);
  const int fd = Connect(s.path);
  s.server->Poll(0);  // accept
  iovec iov{const_cast<uint8_t*>(msg), size};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (payload_fd >= 0) {
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &payload_fd, sizeof(int));
  }
  if (sendmsg(fd, &m, MSG_NOSIGNAL) < 0) {
    close(fd);
    return;  // e.g. a zero-length or oversized message: the kernel's answer, not ours
  }
  // The server answers every message it can read; a message over its buffer
  // (kMaxMessageBytes) may be answered or dropped with the connection.
  char reply[sizeof(abi::HelloReply) + 64];
  ssize_t n = -1;
  for (int i = 0; i < 200 && n < 0; ++i) {
    s.server->Poll(1);
    n = recv(fd, reply, sizeof(reply), MSG_DONTWAIT);
  }
  if (n < 0 && size >= sizeof(abi::MsgHeader) && size <= abi::kMaxMessageBytes)
    Fail("no reply to a " + std::to_string(size) + "-byte message");
  close(fd);
  s.server->Poll(0);  // notice the hang-up
}

int SealedMemfd(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) Fail("memfd_create");
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) Fail("write memfd");
    done += static_cast<size_t>(n);
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    Fail("seal memfd");
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] & 3;
  ++data;
  --size;
  const ctl::Limits limits{.max_tenants = 4096, .max_classes = abi::kMaxClasses,
                           .max_prefixes = 1u << 16, .max_plan_bytes = 1u << 20};
  switch (mode) {
    case 0: {
      const auto buf = Aligned(data, size);
      const std::span<const std::byte> blob(reinterpret_cast<const std::byte*>(buf.data()), size);
      auto plan = ctl::ValidatePlan(blob, limits);
      if (plan) {
        volatile uint64_t sink = Walk(*plan, limits);
        (void)sink;
      } else if (plan.error().empty()) {
        Fail("plan refused without a reason");
      }
      break;
    }
    case 1: {
      const auto buf = Aligned(data, size);
      const std::span<const std::byte> blob(reinterpret_cast<const std::byte*>(buf.data()), size);
      static const ctl::PlanCeilings in_force = FixedCeilings();
      auto rates = ctl::ValidateRates(blob, limits, in_force);
      if (rates) {
        for (const auto& e : rates->entries) {
          if (e.tenant_id >= in_force.ceiling_bps.size() || e.direction >= abi::kDirections ||
              e.assured_bps > in_force.ceiling_bps[e.tenant_id][e.direction])
            Fail("accepted rate entry out of range");
        }
      } else if (rates.error().text.empty()) {
        Fail("rates refused without a reason");
      }
      break;
    }
    case 2:
      if (size > 0) SendAndExpectReply(data, size, -1);
      break;
    case 3: {
      if (size < sizeof(abi::PayloadRequest)) return 0;
      const int memfd = SealedMemfd(data + sizeof(abi::PayloadRequest), size - sizeof(abi::PayloadRequest));
      SendAndExpectReply(data, sizeof(abi::PayloadRequest), memfd);
      close(memfd);
      break;
    }
  }
  return 0;
}
