// The DPDK environment of shaper-bench: EAL on one core without hugepages,
// the mbuf pool every variant draws from, and the net_null port they all
// transmit to.
#pragma once

#include <rte_mempool.h>

#include <cstdint>
#include <expected>
#include <string>

namespace shaper::bench {

struct BenchEnv {
  uint16_t null_port = 0;
  rte_mempool* pool = nullptr;
  uint32_t pool_mbufs = 0;
};

// Starts EAL with `--no-huge -m <memory_mb> --file-prefix bench-<pid>
// --no-pci -l 0 --vdev net_null0`, creates the pool and starts the port.
std::expected<BenchEnv, std::string> InitEnv(const char* argv0, uint32_t memory_mb,
                                             uint32_t pool_mbufs);
void CloseEnv(BenchEnv& env);

// True when every mbuf is back in the pool (a variant leaked none).
bool PoolFull(const BenchEnv& env);

}  // namespace shaper::bench
