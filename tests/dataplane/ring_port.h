// A net_ring port for the worker tests: frames pushed on `in` are received by
// the port, frames it sends land on `out`. Shared by tests/dataplane and
// tests/reliability.
#pragma once

#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <expected>
#include <string>

#include "dataplane/port.h"

namespace shaper::testing {

struct RingPort {
  rte_ring* in = nullptr;
  rte_ring* out = nullptr;
  uint16_t id = 0;
};

// Creates the rings (`in` 1024 frames, `out` exactly tx_ring_size) and a
// net_ring port named after `tag` over them, configured on `pool` and started.
inline std::expected<dataplane::Port, std::string> OpenRingPort(RingPort& p, const std::string& tag,
                                                                uint32_t tx_ring_size,
                                                                rte_mempool* pool) {
  p.in = rte_ring_create(("in" + tag).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  p.out = rte_ring_create(("out" + tag).c_str(), tx_ring_size, 0,
                          RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
  if (!p.in || !p.out) return std::unexpected("rte_ring_create " + tag + " failed");
  const int id = rte_eth_from_rings(("ring" + tag).c_str(), &p.in, 1, &p.out, 1, 0);
  if (id < 0) return std::unexpected("rte_eth_from_rings " + tag + " failed");
  p.id = static_cast<uint16_t>(id);
  auto port = dataplane::Port::Configure(p.id, dataplane::PortConfig{}, pool);
  if (!port) return port;
  if (auto started = port->Start(); !started) return std::unexpected(started.error());
  return port;
}

// Frees every frame still in the port's rings.
inline void EmptyRingPort(const RingPort& p) {
  for (rte_ring* r : {p.in, p.out}) {
    void* m = nullptr;
    while (r && rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }
}

// Frees the rings themselves (after the port is closed).
inline void FreeRingPort(RingPort& p) {
  rte_ring_free(p.in);
  rte_ring_free(p.out);
  p = RingPort{};
}

}  // namespace shaper::testing
