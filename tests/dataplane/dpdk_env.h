// One EAL for a whole test binary (DPDK cannot be initialised twice), with
// --no-huge so it runs on any machine where the tests run as root, and an mbuf
// pool. Tests start with REQUIRE_DPDK(): as a normal user they skip and say
// why; as root a failed EAL init fails every test loudly.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

struct rte_mbuf;
struct rte_mempool;

namespace shaper::testing {

class DpdkEnv : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
  static bool ready() { return ready_; }
  static const std::string& problem() { return problem_; }
  static bool is_root();
  static rte_mempool* pool() { return pool_; }

 private:
  static inline bool ready_ = false;
  static inline std::string problem_;
  static inline rte_mempool* pool_ = nullptr;
};

#define REQUIRE_DPDK()                                                            \
  do {                                                                            \
    if (!::shaper::testing::DpdkEnv::is_root())                                   \
      GTEST_SKIP() << "DPDK needs root (even with --no-huge): run the dataplane " \
                      "suite as root";                                            \
    ASSERT_TRUE(::shaper::testing::DpdkEnv::ready())                              \
        << "EAL/pool setup failed: " << ::shaper::testing::DpdkEnv::problem();    \
  } while (0)

// A frame in an mbuf whose bytes end exactly at a page boundary, followed by
// an inaccessible page: any read past data_len faults, with or without ASan.
class GuardedFrame {
 public:
  explicit GuardedFrame(const std::vector<uint8_t>& bytes);
  ~GuardedFrame();
  GuardedFrame(const GuardedFrame&) = delete;
  GuardedFrame& operator=(const GuardedFrame&) = delete;
  rte_mbuf* mbuf() const { return mbuf_; }

 private:
  uint8_t* map_ = nullptr;
  rte_mbuf* mbuf_ = nullptr;
  void* shinfo_ = nullptr;
};

// An ordinary mbuf from the pool holding `bytes`.
rte_mbuf* MakeMbuf(const std::vector<uint8_t>& bytes);

}  // namespace shaper::testing
