// The classification result and scheduler bookkeeping that travel with a
// packet, in an mbuf dynamic field (rte_mbuf_dyn.h). Classification writes
// tenant, class and flags; the scheduler reaches `next` and `arrival_tsc`
// only through MbufTraits. Keeping it in the mbuf (not a side table) means a
// packet carries its own state through RX, queues and TX with no lookup and
// no allocation.
#pragma once

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <cstdint>
#include <string>

namespace shaper::dataplane {

// Flags set by the classifier.
inline constexpr uint8_t kMetaMalformed = 1 << 0;  // truncated or broken headers: default tenant
inline constexpr uint8_t kMetaNonIp = 1 << 1;      // ARP, LLDP, ...: eligible for the bypass queue
inline constexpr uint8_t kMetaVlan = 1 << 2;       // carried at least one VLAN tag

struct MbufMeta {
  rte_mbuf* next;        // intrusive FIFO link, owned by the scheduler
  uint64_t arrival_tsc;  // set by the scheduler at enqueue (sojourn)
  uint32_t tenant;
  uint8_t cls;
  uint8_t flags;
  uint16_t vlan;  // outer VLAN id, 0 if untagged (for logs and tests)
};
static_assert(sizeof(MbufMeta) == 24);

// The dynfield offset, set once by RegisterMbufMeta() before any mbuf is
// classified. A process-wide value by nature: DPDK's registry is too.
inline int g_mbuf_meta_offset = -1;

// Registers the dynfield (idempotent). Returns an error text on failure.
std::string RegisterMbufMeta();

inline MbufMeta* Meta(rte_mbuf* m) {
  return RTE_MBUF_DYNFIELD(m, g_mbuf_meta_offset, MbufMeta*);
}
inline const MbufMeta* Meta(const rte_mbuf* m) {
  return RTE_MBUF_DYNFIELD(m, g_mbuf_meta_offset, const MbufMeta*);
}

// sched::Scheduler's packet access for rte_mbuf.
struct MbufTraits {
  using Packet = rte_mbuf;
  static uint32_t WireLength(const rte_mbuf* m) { return m->pkt_len; }
  static rte_mbuf* Next(const rte_mbuf* m) { return Meta(m)->next; }
  static void SetNext(rte_mbuf* m, rte_mbuf* next) { Meta(m)->next = next; }
  static uint64_t ArrivalTsc(const rte_mbuf* m) { return Meta(m)->arrival_tsc; }
  static void SetArrivalTsc(rte_mbuf* m, uint64_t tsc) { Meta(m)->arrival_tsc = tsc; }
};

}  // namespace shaper::dataplane
