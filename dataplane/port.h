// A DPDK port as the shaper uses it: one RX and one TX queue per worker,
// promiscuous (a transparent bridge must see frames for every MAC), every
// offload off (the classifier and the scheduler want the frames as they are
// on the wire: no VLAN stripping, no LRO/TSO super-frames). The same code
// serves PCI NICs and virtual devices (net_ring, net_null, net_pcap,
// net_af_packet, net_af_xdp, net_tap): it asks the device for its limits
// instead of assuming them, and treats promiscuous mode as best effort since
// some virtual devices do not implement it.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

struct rte_mempool;

namespace shaper::dataplane {

// DPDK 22.11's net_af_xdp PMD (its zero-copy build, Debian's) lends the
// kernel's fill ring ETH_AF_XDP_DFLT_NUM_DESCS = XSK_RING_CONS__DEFAULT_NUM_DESCS
// = 2048 mbufs per RX queue when the queue is set up (xsk_configure), puts a
// fresh mbuf on the ring for every frame it receives, and never takes them
// back: eth_dev_close deletes the socket and its rings with the mbufs still
// on them (the source of 24.x does the same). The count is exact: the PMD
// refills only what it received, and skips a burst whole when the pool
// cannot refill it. The fill ring is the PMD's private data, so the
// application cannot return these mbufs; it can only count them.
inline constexpr uint32_t kAfXdpFillRingMbufsPerQueue = 2048;

// Mbufs one RX queue of the (probed, not yet configured) port takes from the
// pool while it runs: its descriptors, or net_af_xdp's fill ring. For the
// pool's size, before any port is configured.
uint32_t RxQueueMbufs(uint16_t port_id, uint16_t rx_descriptors);

struct PortConfig {
  uint16_t queues = 1;  // RX and TX queues, one pair per worker
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
};

struct PortCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t imissed = 0;    // dropped by the device: RX ring full
  uint64_t rx_nombuf = 0;  // RX refill failed: mbuf pool empty
  uint64_t ierrors = 0;
  uint64_t oerrors = 0;
};

class Port {
 public:
  // Configures queues on port `port_id` with mbufs from `pool`; does not start it.
  static std::expected<Port, std::string> Configure(uint16_t port_id, const PortConfig& config,
                                                    rte_mempool* pool);
  Port(Port&& other) noexcept;
  Port& operator=(Port&& other) noexcept;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  ~Port();  // stops and closes if still open

  std::expected<void, std::string> Start();
  void Stop();  // idempotent
  // Stops first; releases the queues (their mbufs go back to the pool, except
  // mbufs_kept_after_close()). The caller has stopped every lcore using them.
  void Close();

  uint16_t id() const { return id_; }
  const std::string& name() const { return name_; }
  uint16_t rx_descriptors() const { return rx_desc_; }
  uint16_t tx_descriptors() const { return tx_desc_; }
  const std::string& driver() const { return driver_; }
  // Mbufs the driver keeps when the port closes: never back in the pool
  // (net_af_xdp: kAfXdpFillRingMbufsPerQueue per RX queue set up; else 0).
  uint32_t mbufs_kept_after_close() const { return kept_after_close_; }
  PortCounters Counters() const;

  // Number of ports DPDK probed (PCI and --vdev).
  static uint16_t Available();

 private:
  explicit Port(uint16_t id) : id_(id) {}
  void ReapTxCompletions();

  uint16_t id_;
  std::string name_;
  std::string driver_;
  rte_mempool* pool_ = nullptr;
  uint16_t queues_ = 0;
  uint16_t rx_desc_ = 0;
  uint16_t tx_desc_ = 0;
  uint32_t kept_after_close_ = 0;
  bool open_ = false;
  bool started_ = false;
};

}  // namespace shaper::dataplane
