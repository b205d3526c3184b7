// The ctl server and the dataplane client in one process: the server on a
// temporary socket path, polled in a thread (or inline where a test forks).
#include "dataplane/ctl/ctl_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "control/dpclient/dataplane_client.h"
#include "control/dpclient/plan_compiler.h"
#include "dataplane/ctl/stats_segment.h"
#include "tests/unit/ctl/test_policy.h"

namespace shaper::ctl {
namespace {

using dpclient::DataplaneClient;
using namespace shaper::testing;

class CtlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shaper-ctl-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/run/shaper/dataplane.sock";  // parents do not exist yet
    auto seg = StatsSegment::Create(1, 64, 2, abi::kMaxClasses, 1'000'000'000);
    ASSERT_TRUE(seg.has_value()) << seg.error();
    stats_ = std::move(*seg);
    auto server = MakeServer();
    ASSERT_TRUE(server.has_value()) << server.error();
    server_ = std::move(*server);
  }

  void TearDown() override {
    StopPolling();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::expected<std::unique_ptr<CtlServer>, std::string> MakeServer() {
    CtlServerOptions options;
    options.socket_path = path_;
    options.limits.max_tenants = 64;
    options.dataplane_version = "test-1.0";
    options.num_lcores = 1;
    options.port_names = {"port0", "port1"};
    options.log = [this](std::string_view text) {
      std::lock_guard lock(log_mutex_);
      log_.emplace_back(text);
    };
    CtlCallbacks callbacks;
    callbacks.on_plan = [this](const PlanView& plan) -> std::expected<uint64_t, std::string> {
      plan_calls_++;
      last_plan_tenants_ = static_cast<int>(plan.tenants().size());
      if (refuse_plans_) return std::unexpected(std::string("out of memory building tables"));
      if (throw_in_plan_) throw std::runtime_error("lpm table full");
      return ++generation_;
    };
    callbacks.on_rates = [this](const RatesView& rates) -> std::expected<void, std::string> {
      rates_calls_++;
      last_rates_entries_ = static_cast<int>(rates.entries.size());
      return {};
    };
    return CtlServer::Create(std::move(options), std::move(callbacks), stats_->fd(),
                             stats_->size_bytes());
  }

  void StartPolling() {
    poller_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) server_->Poll(5);
    });
  }
  void StopPolling() {
    if (poller_.joinable()) {
      poller_.request_stop();
      poller_.join();
    }
  }

  std::unique_ptr<DataplaneClient> Client() {
    auto client = DataplaneClient::Connect(path_, std::chrono::milliseconds(5000));
    EXPECT_TRUE(client.has_value()) << client.error();
    return client ? std::move(*client) : nullptr;
  }

  // A raw connection, for messages the client library would never send.
  int RawConnect() {
    const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
    return fd;
  }
  // Sends `len` bytes (with `pass_fd` if >= 0) and returns the reply.
  static abi::Reply SendRaw(int sock, const void* msg, size_t len, int pass_fd) {
    iovec iov{const_cast<void*>(msg), len};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0) {
      m.msg_control = control;
      m.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    EXPECT_EQ(sendmsg(sock, &m, MSG_NOSIGNAL), static_cast<ssize_t>(len));
    abi::Reply reply{};
    const ssize_t n = recv(sock, &reply, sizeof(reply), 0);
    EXPECT_EQ(n, static_cast<ssize_t>(sizeof(reply))) << strerror(errno);
    return reply;
  }
  static abi::PayloadRequest PlanRequest(uint64_t bytes) {
    abi::PayloadRequest req{};
    req.header = {abi::kMsgMagic, abi::kAbiVersion, static_cast<uint16_t>(abi::MsgType::kApplyPlan),
                  sizeof(req), 77};
    req.payload_bytes = bytes;
    return req;
  }
  static int MemfdWith(std::span<const std::byte> bytes, int seals) {
    const int fd = memfd_create("test-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    if (seals != 0) {
      EXPECT_EQ(fcntl(fd, F_ADD_SEALS, seals), 0);
    }
    return fd;
  }
  std::string Log() {
    std::lock_guard lock(log_mutex_);
    std::string all;
    for (const auto& line : log_) all += line + "\n";
    return all;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<StatsSegment> stats_;
  std::unique_ptr<CtlServer> server_;
  std::jthread poller_;
  std::atomic<int> plan_calls_{0};
  std::atomic<int> last_plan_tenants_{0};
  std::atomic<int> rates_calls_{0};
  std::atomic<int> last_rates_entries_{0};
  std::atomic<bool> refuse_plans_{false};
  std::atomic<bool> throw_in_plan_{false};
  std::atomic<uint64_t> generation_{0};
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

constexpr int kAllSeals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

TEST_F(CtlServerTest, SocketIsMode0600InA0755Dir) {
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ + "/run/shaper").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST_F(CtlServerTest, HelloReturnsLimitsAndTheStatsFd) {
  StartPolling();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  auto hello = client->Hello("test");
  ASSERT_TRUE(hello.has_value()) << hello.error();
  EXPECT_EQ(hello->abi_version, abi::kAbiVersion);
  EXPECT_EQ(hello->dataplane_version, "test-1.0");
  EXPECT_EQ(hello->port_names, (std::vector<std::string>{"port0", "port1"}));
  EXPECT_EQ(hello->max_tenants, 64u);
  EXPECT_EQ(hello->plan_generation, 0u);
  EXPECT_EQ(hello->stats_bytes, stats_->size_bytes());
  ASSERT_TRUE(hello->stats_fd);
  stats_->tenant(0, 5, abi::kDownload)->arrival_bytes = 4242;
  auto reader = StatsReader::Map(hello->stats_fd.get());
  ASSERT_TRUE(reader.has_value()) << reader.error();
  EXPECT_EQ(reader->max_tenants(), 64u);
  EXPECT_EQ(reader->SumTenant(5, abi::kDownload).arrival_bytes, 4242u);
}

TEST_F(CtlServerTest, GoodPlanReachesTheCallback) {
  StartPolling();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  auto reply = client->ApplyPlan(CompiledTestPlan());
  ASSERT_TRUE(reply.has_value()) << reply.error();
  EXPECT_TRUE(reply->ok()) << reply->ToString();
  EXPECT_EQ(reply->generation, 1u);
  EXPECT_EQ(plan_calls_, 1);
  EXPECT_EQ(last_plan_tenants_, 4);
  auto hello = client->Hello("test");
  ASSERT_TRUE(hello.has_value()) << hello.error();
  EXPECT_EQ(hello->plan_generation, 1u);
}

TEST_F(CtlServerTest, BadPlanIsRejectedWithTheReasonAndNeverReachesTheCallback) {
  StartPolling();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->ApplyPlan(CompiledTestPlan()).value().ok());
  std::vector<std::byte> bad = CompiledTestPlan();
  Tenant(bad, 1).rates[abi::kDownload].ceiling_bps = 0;
  auto reply = client->ApplyPlan(bad);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  EXPECT_EQ(reply->result, abi::Result::kInvalid);
  EXPECT_EQ(reply->error, "tenants[1].download.ceiling_bps=0: must be > 0");
  EXPECT_EQ(reply->generation, 1u);  // the running plan stays in force
  EXPECT_EQ(plan_calls_, 1);
  EXPECT_NE(Log().find("plan rejected: tenants[1].download.ceiling_bps=0"), std::string::npos);
}

TEST_F(CtlServerTest, CallbackRefusalIsReportedAsRejected) {
  StartPolling();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  refuse_plans_ = true;
  auto reply = client->ApplyPlan(CompiledTestPlan());
  ASSERT_TRUE(reply.has_value()) << reply.error();
  EXPECT_EQ(reply->result, abi::Result::kRejected);
  EXPECT_EQ(reply->error, "out of memory building tables");
  EXPECT_EQ(reply->generation, 0u);
}

TEST_F(CtlServerTest, ACallbackExceptionBecomesARefusal) {
  StartPolling();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  throw_in_plan_ = true;
  auto reply = client->ApplyPlan(CompiledTestPlan());
  ASSERT_TRUE(reply.has_value()) << reply.error();
  EXPECT_EQ(reply->result, abi::Result::kRejected);
  EXPECT_EQ(reply->error, "applying the plan failed: lpm table full");
  throw_in_plan_ = false;
  EXPECT_TRUE(client->ApplyPlan(CompiledTestPlan()).value().ok());  // the server lives on
}

TEST_F(CtlServerTest, UnsealedOrPartlySealedMemfdIsRefused) {
  StartPolling();
  const std::vector<std::byte> plan = CompiledTestPlan();
  const int sock = RawConnect();
  for (int seals : {0, F_SEAL_WRITE, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW}) {
    const int memfd = MemfdWith(plan, seals);
    const abi::PayloadRequest req = PlanRequest(plan.size());
    const abi::Reply reply = SendRaw(sock, &req, sizeof(req), memfd);
    close(memfd);
    EXPECT_EQ(reply.result, static_cast<int32_t>(abi::Result::kBadRequest)) << "seals " << seals;
    EXPECT_NE(std::string(reply.error).find("must include F_SEAL_WRITE"), std::string::npos)
        << reply.error;
    EXPECT_EQ(reply.header.seq, 77u);
  }
  EXPECT_EQ(plan_calls_, 0);
  close(sock);
}

TEST_F(CtlServerTest, MalformedRequestsAreAnsweredAndTheConnectionSurvives) {
  StartPolling();
  const std::vector<std::byte> plan = CompiledTestPlan();
  const int sock = RawConnect();
  {  // declared size differs from the memfd
    const int memfd = MemfdWith(plan, kAllSeals);
    const abi::PayloadRequest req = PlanRequest(plan.size() + 8);
    const abi::Reply reply = SendRaw(sock, &req, sizeof(req), memfd);
    close(memfd);
    EXPECT_EQ(reply.result, static_cast<int32_t>(abi::Result::kBadRequest));
    EXPECT_NE(std::string(reply.error).find("payload_bytes="), std::string::npos) << reply.error;
  }
  {  // apply-plan without an fd
    const abi::PayloadRequest req = PlanRequest(plan.size());
    const abi::Reply reply = SendRaw(sock, &req, sizeof(req), -1);
    EXPECT_EQ(reply.result, static_cast<int32_t>(abi::Result::kBadRequest));
    EXPECT_NE(std::string(reply.error).find("0 fds"), std::string::npos) << reply.error;
  }
  {  // too short for a header
    const char junk[5] = {1, 2, 3, 4, 5};
    const abi::Reply reply = SendRaw(sock, junk, sizeof(junk), -1);
    EXPECT_EQ(reply.result, static_cast<int32_t>(abi::Result::kBadRequest));
  }
  {  // wrong ABI version
    abi::HelloRequest req{};
    req.header = {abi::kMsgMagic, 99, static_cast<uint16_t>(abi::MsgType::kHello), sizeof(req), 3};
    const abi::Reply reply = SendRaw(sock, &req, sizeof(req), -1);
    EXPECT_EQ(reply.result, static_cast<int32_t>(abi::Result::kVersion));
    EXPECT_NE(std::string(reply.error).find("abi_version=99"), std::string::npos);
  }
  {  // unknown type
    abi::HelloRequest req{};
    req.header = {abi::kMsgMagic, abi::kAbiVersion, 42, sizeof(req), 4};
    const abi::Reply reply = SendRaw(sock, &req, sizeof(req), -1);
    EXPECT_EQ(reply.result, static_cast<int32_t>(abi::Result::kBadRequest));
    EXPECT_NE(std::string(reply.error).find("type=42"), std::string::npos);
  }
  {  // and a valid hello on the same connection still works
    abi::HelloRequest req{};
    req.header = {abi::kMsgMagic, abi::kAbiVersion, static_cast<uint16_t>(abi::MsgType::kHello),
                  sizeof(req), 5};
    ASSERT_EQ(send(sock, &req, sizeof(req), 0), static_cast<ssize_t>(sizeof(req)));
    abi::HelloReply reply{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    iovec iov{&reply, sizeof(reply)};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    ASSERT_EQ(recvmsg(sock, &m, MSG_CMSG_CLOEXEC), static_cast<ssize_t>(sizeof(reply)));
    EXPECT_EQ(reply.header.type, static_cast<uint16_t>(abi::MsgType::kHelloReply));
    EXPECT_EQ(reply.header.seq, 5u);
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    ASSERT_NE(c, nullptr);
    int stats_fd;
    std::memcpy(&stats_fd, CMSG_DATA(c), sizeof(int));
    close(stats_fd);
  }
  EXPECT_EQ(plan_calls_, 0);
  close(sock);
}

TEST_F(CtlServerTest, RateUpdatesAreCheckedAgainstThePlanInForce) {
  StartPolling();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  auto stale = client->UpdateRates(dpclient::EncodeRates(1, {}));
  ASSERT_TRUE(stale.has_value());
  EXPECT_EQ(stale->result, abi::Result::kStale);  // no plan yet

  auto applied = client->ApplyPlan(CompiledTestPlan());
  ASSERT_TRUE(applied.has_value() && applied->ok());
  const abi::RateEntry good[] = {{1, abi::kDownload, {}, 3'000'000'000},
                                 {2, abi::kUpload, {}, 200'000'000}};
  auto reply = client->UpdateRates(dpclient::EncodeRates(applied->generation, good));
  ASSERT_TRUE(reply.has_value()) << reply.error();
  EXPECT_TRUE(reply->ok()) << reply->ToString();
  EXPECT_EQ(rates_calls_, 1);
  EXPECT_EQ(last_rates_entries_, 2);

  reply = client->UpdateRates(dpclient::EncodeRates(applied->generation + 1, good));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->result, abi::Result::kStale);

  const abi::RateEntry too_much[] = {{2, abi::kUpload, {}, 900'000'000}};
  reply = client->UpdateRates(dpclient::EncodeRates(applied->generation, too_much));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->result, abi::Result::kInvalid);
  EXPECT_NE(reply->error.find("rates.entries[0].assured_bps=900000000"), std::string::npos)
      << reply->error;
  EXPECT_EQ(rates_calls_, 1);
}

TEST_F(CtlServerTest, PlanLoadedAtStartupCountsAsInForce) {
  const std::vector<std::byte> plan = CompiledTestPlan();
  auto view = ValidatePlan(plan, Limits{});
  ASSERT_TRUE(view.has_value());
  server_->SetPlanInForce(*view, 12);
  StartPolling();
  auto client = Client();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Hello("t").value().plan_generation, 12u);
  const abi::RateEntry e[] = {{3, abi::kUpload, {}, 1}};
  auto reply = client->UpdateRates(dpclient::EncodeRates(12, e));
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->ok()) << reply->ToString();
}

TEST_F(CtlServerTest, ASecondServerOnALiveSocketIsRefused) {
  auto second = MakeServer();
  ASSERT_FALSE(second.has_value());
  EXPECT_NE(second.error().find("in use by a running process"), std::string::npos)
      << second.error();
}

TEST_F(CtlServerTest, AStaleSocketIsReplacedButOtherFilesAreNot) {
  server_.reset();  // removes its socket
  // A socket file nobody listens on, as a crashed dataplane leaves it.
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  auto server = MakeServer();
  ASSERT_TRUE(server.has_value()) << server.error();
  server->reset();

  const int file = open(path_.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(file, 0);
  close(file);
  auto refused = MakeServer();
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().find("is not a socket"), std::string::npos) << refused.error();
  struct stat st {};
  EXPECT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(CtlServerTest, APeerWithAnotherUidIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as uid 65534";
  // Loosen the file modes so the other uid can reach the socket at all: the
  // point is the SO_PEERCRED check behind them.
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(chmod((dir_ + "/run").c_str(), 0755), 0);
  ASSERT_EQ(chmod(path_.c_str(), 0666), 0);
  // No polling thread: fork from a single-threaded process, poll inline.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    auto client = DataplaneClient::Connect(path_, std::chrono::milliseconds(5000));
    if (!client) _exit(11);
    auto hello = (*client)->Hello("intruder");
    if (hello) _exit(12);
    if (hello.error().find("uid 65534 is not allowed") == std::string::npos) {
      fprintf(stderr, "child got: %s\n", hello.error().c_str());
      _exit(13);
    }
    _exit(0);
  }
  int status = 0;
  for (int i = 0; i < 1000; ++i) {
    server_->Poll(10);
    if (waitpid(child, &status, WNOHANG) == child) break;
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 setuid, 11 connect, 12 hello accepted, 13 wrong text";
  EXPECT_NE(Log().find("refused connection from uid=65534 pid=" + std::to_string(child)),
            std::string::npos)
      << Log();
}

}  // namespace
}  // namespace shaper::ctl
