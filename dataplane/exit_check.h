// The dataplane's last word: are all mbufs back in the pool?
//
// After a clean stop (workers drained, ports closed) every mbuf must be back,
// except those a driver is known to keep after close, counted exactly per
// port (Port::mbufs_kept_after_close: DPDK 22.11's net_af_xdp leaves 2048 per
// RX queue on the kernel's fill ring). Mbufs in use up to that count are the
// driver's; any beyond it are a leak, named with its size, and the exit
// status says so.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>

namespace shaper::dataplane {

struct MbufExitCheck {
  bool ok;           // nothing leaked: exit 0
  std::string line;  // "mbufs in use at exit: N" and what N is made of
};

// `in_use`: rte_mempool_in_use_count after the ports closed; `kept_by_driver`:
// the sum of Port::mbufs_kept_after_close over every port.
inline MbufExitCheck CheckMbufsAtExit(uint64_t in_use, uint64_t kept_by_driver) {
  std::string line = fmt::format("mbufs in use at exit: {}", in_use);
  if (in_use == 0 || kept_by_driver == 0) return {in_use == 0, std::move(line)};
  if (in_use <= kept_by_driver) {
    line += fmt::format(
        " (all within the {} that DPDK 22.11's AF_XDP PMD keeps in its fill rings after close)",
        kept_by_driver);
    return {true, std::move(line)};
  }
  line += fmt::format(
      " ({} leaked: more than the {} that DPDK 22.11's AF_XDP PMD keeps in its fill rings after "
      "close)",
      in_use - kept_by_driver, kept_by_driver);
  return {false, std::move(line)};
}

}  // namespace shaper::dataplane
