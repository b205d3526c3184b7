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
  void Stop();   // idempotent
  void Close();  // stops first; releases the queues (their mbufs go back to the pool)

  uint16_t id() const { return id_; }
  const std::string& name() const { return name_; }
  uint16_t rx_descriptors() const { return rx_desc_; }
  uint16_t tx_descriptors() const { return tx_desc_; }
  PortCounters Counters() const;

  // Number of ports DPDK probed (PCI and --vdev).
  static uint16_t Available();

 private:
  explicit Port(uint16_t id) : id_(id) {}
  uint16_t id_;
  std::string name_;
  uint16_t rx_desc_ = 0;
  uint16_t tx_desc_ = 0;
  bool open_ = false;
  bool started_ = false;
};

}  // namespace shaper::dataplane
