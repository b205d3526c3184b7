// DataplaneClient against a scripted fake dataplane: timeouts fail the call
// with a message, a late reply to a timed-out request is skipped, and the
// payload arrives as a sealed memfd.
#include "control/dpclient/dataplane_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

namespace shaper::dpclient {
namespace {

abi::Reply MakeReply(uint32_t seq, abi::Result result, uint64_t generation, const char* error) {
  abi::Reply r{};
  r.header = {abi::kMsgMagic, abi::kAbiVersion, static_cast<uint16_t>(abi::MsgType::kReply),
              sizeof(r), seq};
  r.result = static_cast<int32_t>(result);
  r.generation = generation;
  std::strncpy(r.error, error, sizeof(r.error) - 1);
  return r;
}

class FakeDataplane : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shaper-dpclient-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/dp.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listen_fd_, 1), 0);
  }
  void TearDown() override {
    close(listen_fd_);
    std::filesystem::remove_all(dir_);
  }
  // Receives one request; returns its header and the fd it carried (or -1).
  static std::pair<abi::PayloadRequest, int> ReadRequest(int conn) {
    abi::PayloadRequest req{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    iovec iov{&req, sizeof(req)};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    int fd = -1;
    if (recvmsg(conn, &m, MSG_CMSG_CLOEXEC) > 0) {
      if (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr) std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    }
    return {req, fd};
  }
  std::string dir_;
  std::string path_;
  int listen_fd_ = -1;
};

TEST_F(FakeDataplane, TimeoutThenLateReplyIsSkipped) {
  const std::vector<std::byte> payload(64, std::byte{0x5a});
  std::atomic<int> seals_seen{0};
  std::atomic<uint64_t> size_seen{0};
  std::thread server([&] {
    const int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    // 1st request: answered too late (after the client's 200 ms timeout).
    auto [first, fd1] = ReadRequest(conn);
    if (fd1 >= 0) close(fd1);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    // 2nd request: the late answer to the first arrives first, then the real one.
    auto [second, fd2] = ReadRequest(conn);
    seals_seen = fcntl(fd2, F_GET_SEALS);
    struct stat st {};
    fstat(fd2, &st);
    size_seen = static_cast<uint64_t>(st.st_size);
    close(fd2);
    const abi::Reply late = MakeReply(first.header.seq, abi::Result::kOk, 1, "");
    send(conn, &late, sizeof(late), 0);
    const abi::Reply real =
        MakeReply(second.header.seq, abi::Result::kInvalid, 1, "tenants[2].vlan=5000: nope");
    send(conn, &real, sizeof(real), 0);
    close(conn);
  });
  auto client = DataplaneClient::Connect(path_, std::chrono::milliseconds(200));
  ASSERT_TRUE(client.has_value()) << client.error();
  auto first = (*client)->ApplyPlan(payload);
  ASSERT_FALSE(first.has_value());
  EXPECT_NE(first.error().find("apply-plan: no reply from the dataplane"), std::string::npos)
      << first.error();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto second = (*client)->UpdateRates(payload);
  server.join();
  ASSERT_TRUE(second.has_value()) << second.error();
  EXPECT_EQ(second->result, abi::Result::kInvalid);
  EXPECT_EQ(second->error, "tenants[2].vlan=5000: nope");
  EXPECT_EQ(second->ToString(), "invalid: tenants[2].vlan=5000: nope (generation in force: 1)");
  const int all = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  EXPECT_EQ(seals_seen & all, all);
  EXPECT_EQ(size_seen, payload.size());
}

TEST_F(FakeDataplane, HelloWithAnotherAbiVersionIsAnError) {
  std::thread server([&] {
    const int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    abi::HelloRequest req{};
    recv(conn, &req, sizeof(req), 0);
    abi::HelloReply reply{};
    reply.header = {abi::kMsgMagic, abi::kAbiVersion,
                    static_cast<uint16_t>(abi::MsgType::kHelloReply), sizeof(reply),
                    req.header.seq};
    reply.abi_version = abi::kAbiVersion + 1;
    send(conn, &reply, sizeof(reply), 0);
    close(conn);
  });
  auto client = DataplaneClient::Connect(path_, std::chrono::milliseconds(2000));
  ASSERT_TRUE(client.has_value()) << client.error();
  auto hello = (*client)->Hello("test");
  server.join();
  ASSERT_FALSE(hello.has_value());
  EXPECT_NE(hello.error().find("dataplane speaks ABI version 2"), std::string::npos)
      << hello.error();
}

TEST(DataplaneClient, ConnectErrorsSayWhatToDo) {
  auto missing = DataplaneClient::Connect("/nonexistent/dir/dp.sock");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().find("is shaper-dataplane running?"), std::string::npos)
      << missing.error();
  auto too_long = DataplaneClient::Connect(std::string(200, 'x'));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_NE(too_long.error().find("must be 1..107 bytes"), std::string::npos) << too_long.error();
}

}  // namespace
}  // namespace shaper::dpclient
