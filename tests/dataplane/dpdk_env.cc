#include "tests/dataplane/dpdk_env.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "dataplane/mbuf_meta.h"

namespace shaper::testing {
namespace {
constexpr size_t kPage = 4096;
void NoFree(void*, void*) {}
}  // namespace

bool DpdkEnv::is_root() {
  return geteuid() == 0;
}

void DpdkEnv::SetUp() {
  if (!is_root()) return;
  const std::string prefix = "shaper-test-" + std::to_string(getpid());
  std::vector<std::string> args = {"dataplane-test", "--no-huge",     "-m", "1024", "--file-prefix",
                                   prefix,           "--no-pci",      "-l", "0",    "--log-level",
                                   "*:warning",      "--no-telemetry"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    problem_ = std::string("rte_eal_init: ") + rte_strerror(rte_errno);
    return;
  }
  if (std::string err = dataplane::RegisterMbufMeta(); !err.empty()) {
    problem_ = err;
    return;
  }
  pool_ = rte_pktmbuf_pool_create("test_pool", 8192, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (!pool_) {
    problem_ = std::string("rte_pktmbuf_pool_create: ") + rte_strerror(rte_errno);
    return;
  }
  ready_ = true;
}

void DpdkEnv::TearDown() {
  if (!ready_) return;
  rte_mempool_free(pool_);
  rte_eal_cleanup();
}

GuardedFrame::GuardedFrame(const std::vector<uint8_t>& bytes) {
  if (bytes.size() > kPage) throw std::invalid_argument("GuardedFrame: frame over one page");
  void* m = mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::runtime_error("GuardedFrame: mmap failed");
  map_ = static_cast<uint8_t*>(m);
  if (mprotect(map_ + kPage, kPage, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
  uint8_t* start = map_ + kPage - bytes.size();
  if (!bytes.empty()) std::memcpy(start, bytes.data(), bytes.size());
  auto* shinfo = new rte_mbuf_ext_shared_info{};
  shinfo->free_cb = NoFree;
  rte_mbuf_ext_refcnt_set(shinfo, 1);
  shinfo_ = shinfo;
  mbuf_ = rte_pktmbuf_alloc(DpdkEnv::pool());
  if (!mbuf_) throw std::runtime_error("GuardedFrame: pool empty");
  rte_pktmbuf_attach_extbuf(mbuf_, start, reinterpret_cast<rte_iova_t>(start),
                            static_cast<uint16_t>(bytes.size()), shinfo);
  mbuf_->data_len = static_cast<uint16_t>(bytes.size());
  mbuf_->pkt_len = static_cast<uint32_t>(bytes.size());
}

GuardedFrame::~GuardedFrame() {
  if (mbuf_) rte_pktmbuf_free(mbuf_);
  delete static_cast<rte_mbuf_ext_shared_info*>(shinfo_);
  munmap(map_, 2 * kPage);
}

rte_mbuf* MakeMbuf(const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(DpdkEnv::pool());
  if (!m) return nullptr;
  char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size()));
  if (!p) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  // An empty frame has no data(): memcpy from nullptr is undefined even for 0 bytes (UBSan).
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return m;
}

namespace {
[[maybe_unused]] ::testing::Environment* const kEnv =
    ::testing::AddGlobalTestEnvironment(new DpdkEnv);
}  // namespace

}  // namespace shaper::testing
