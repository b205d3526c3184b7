#include "tests/bench/dataplane/bench_env.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <vector>

#include "tests/bench/dataplane/shaper_variant.h"

namespace shaper::bench {
namespace {

constexpr uint16_t kRingSize = 512;
constexpr uint32_t kPoolCache = 256;
// Room for the 64-byte frame write after the headroom; small mbufs keep a
// large pool affordable without hugepages.
constexpr uint16_t kDataRoom = RTE_PKTMBUF_HEADROOM + 128;

std::string DpdkError(const char* what, int rc) {
  return std::string(what) + ": " + rte_strerror(rc < 0 ? -rc : rte_errno);
}

}  // namespace

std::expected<BenchEnv, std::string> InitEnv(const char* argv0, uint32_t memory_mb,
                                             uint32_t pool_mbufs) {
  const std::string prefix = "bench-" + std::to_string(getpid());
  const std::string memory = std::to_string(memory_mb);
  std::vector<std::string> args = {argv0,    "--no-huge", "-m",   memory,      "--file-prefix",
                                   prefix,   "--no-pci",  "-l",   "0",         "--vdev",
                                   "net_null0", "--log-level", "lib.eal:warning"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    return std::unexpected(DpdkError("rte_eal_init", -rte_errno));
  }
  BenchEnv env;
  if (const std::string err = RegisterBenchMeta(); !err.empty()) return std::unexpected(err);
  env.pool = rte_pktmbuf_pool_create("bench_pool", pool_mbufs, kPoolCache, 0, kDataRoom,
                                     static_cast<int>(rte_socket_id()));
  if (env.pool == nullptr) {
    return std::unexpected(DpdkError(
        ("rte_pktmbuf_pool_create(" + std::to_string(pool_mbufs) + " mbufs)").c_str(), 0));
  }
  env.pool_mbufs = pool_mbufs;
  if (rte_eth_dev_get_port_by_name("net_null0", &env.null_port) != 0) {
    return std::unexpected("net_null0 not found: is librte_net_null installed?");
  }
  rte_eth_conf conf{};
  int rc = rte_eth_dev_configure(env.null_port, 1, 1, &conf);
  if (rc != 0) return std::unexpected(DpdkError("rte_eth_dev_configure(net_null0)", rc));
  const int socket = static_cast<int>(rte_socket_id());
  rc = rte_eth_rx_queue_setup(env.null_port, 0, kRingSize, socket, nullptr, env.pool);
  if (rc != 0) return std::unexpected(DpdkError("rte_eth_rx_queue_setup(net_null0)", rc));
  rc = rte_eth_tx_queue_setup(env.null_port, 0, kRingSize, socket, nullptr);
  if (rc != 0) return std::unexpected(DpdkError("rte_eth_tx_queue_setup(net_null0)", rc));
  rc = rte_eth_dev_start(env.null_port);
  if (rc != 0) return std::unexpected(DpdkError("rte_eth_dev_start(net_null0)", rc));
  return env;
}

void CloseEnv(BenchEnv& env) {
  rte_eth_dev_stop(env.null_port);
  rte_eth_dev_close(env.null_port);
  rte_mempool_free(env.pool);
  rte_eal_cleanup();
}

bool PoolFull(const BenchEnv& env) {
  return rte_mempool_avail_count(env.pool) == env.pool_mbufs;
}

}  // namespace shaper::bench
