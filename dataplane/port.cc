#include "dataplane/port.h"

#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>

#include <string_view>

namespace shaper::dataplane {
namespace {

constexpr std::string_view kAfXdpDriver = "net_af_xdp";
// Reaping TX completions at close: stop after this many 1 ms rounds in a row
// hand nothing back, or after kTxReapMaxRounds in all.
constexpr int kTxReapQuietRounds = 3;
constexpr int kTxReapMaxRounds = 100;

}  // namespace

uint32_t RxQueueMbufs(uint16_t port_id, uint16_t rx_descriptors) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port_id, &info) == 0 && info.driver_name != nullptr &&
      info.driver_name == kAfXdpDriver)
    return kAfXdpFillRingMbufsPerQueue;
  return rx_descriptors;
}

std::expected<Port, std::string> Port::Configure(uint16_t port_id, const PortConfig& config,
                                                 rte_mempool* pool) {
  if (!rte_eth_dev_is_valid_port(port_id))
    return std::unexpected(fmt::format("port {}: no such port ({} probed)", port_id, Available()));
  Port port(port_id);
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  if (rte_eth_dev_get_name_by_port(port_id, name) == 0) port.name_ = name;

  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0)
    return std::unexpected(fmt::format("port {} ({}): rte_eth_dev_info_get: {}", port_id,
                                       port.name_, rte_strerror(-rc)));
  if (info.driver_name) port.driver_ = info.driver_name;
  port.pool_ = pool;
  if (config.queues > info.max_rx_queues || config.queues > info.max_tx_queues)
    return std::unexpected(
        fmt::format("port {} ({}): {} queues asked, the device has at most {} RX / {} TX", port_id,
                    port.name_, config.queues, info.max_rx_queues, info.max_tx_queues));

  rte_eth_conf conf{};
  conf.rxmode.mq_mode = config.queues > 1 ? RTE_ETH_MQ_RX_RSS : RTE_ETH_MQ_RX_NONE;
  conf.rxmode.offloads = 0;
  conf.txmode.offloads = 0;
  if (config.queues > 1) {
    conf.rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_IP & info.flow_type_rss_offloads;
  }
  if (int rc = rte_eth_dev_configure(port_id, config.queues, config.queues, &conf); rc != 0)
    return std::unexpected(fmt::format("port {} ({}): rte_eth_dev_configure({} queues): {}",
                                       port_id, port.name_, config.queues, rte_strerror(-rc)));
  port.open_ = true;

  uint16_t rx_desc = config.rx_descriptors;
  uint16_t tx_desc = config.tx_descriptors;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc); rc != 0)
    return std::unexpected(fmt::format("port {} ({}): rte_eth_dev_adjust_nb_rx_tx_desc: {}",
                                       port_id, port.name_, rte_strerror(-rc)));
  port.rx_desc_ = rx_desc;
  port.tx_desc_ = tx_desc;

  const int socket = rte_eth_dev_socket_id(port_id);
  const unsigned socket_id = socket < 0 ? 0u : static_cast<unsigned>(socket);
  rte_eth_rxconf rxconf = info.default_rxconf;
  rxconf.offloads = 0;
  rte_eth_txconf txconf = info.default_txconf;
  txconf.offloads = 0;
  for (uint16_t q = 0; q < config.queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port_id, q, rx_desc, socket_id, &rxconf, pool); rc != 0)
      return std::unexpected(
          fmt::format("port {} ({}): rte_eth_rx_queue_setup(queue {}, {} "
                      "descriptors): {}",
                      port_id, port.name_, q, rx_desc, rte_strerror(-rc)));
    port.queues_ = q + 1;
    if (port.driver_ == kAfXdpDriver) port.kept_after_close_ += kAfXdpFillRingMbufsPerQueue;
    if (int rc = rte_eth_tx_queue_setup(port_id, q, tx_desc, socket_id, &txconf); rc != 0)
      return std::unexpected(
          fmt::format("port {} ({}): rte_eth_tx_queue_setup(queue {}, {} "
                      "descriptors): {}",
                      port_id, port.name_, q, tx_desc, rte_strerror(-rc)));
  }
  return port;
}

Port::Port(Port&& other) noexcept
    : id_(other.id_),
      name_(std::move(other.name_)),
      driver_(std::move(other.driver_)),
      pool_(other.pool_),
      queues_(other.queues_),
      rx_desc_(other.rx_desc_),
      tx_desc_(other.tx_desc_),
      kept_after_close_(other.kept_after_close_),
      open_(other.open_),
      started_(other.started_) {
  other.open_ = false;
  other.started_ = false;
}

Port& Port::operator=(Port&& other) noexcept {
  if (this != &other) {
    Close();
    id_ = other.id_;
    name_ = std::move(other.name_);
    driver_ = std::move(other.driver_);
    pool_ = other.pool_;
    queues_ = other.queues_;
    rx_desc_ = other.rx_desc_;
    tx_desc_ = other.tx_desc_;
    kept_after_close_ = other.kept_after_close_;
    open_ = other.open_;
    started_ = other.started_;
    other.open_ = false;
    other.started_ = false;
  }
  return *this;
}

Port::~Port() {
  Close();
}

std::expected<void, std::string> Port::Start() {
  if (int rc = rte_eth_dev_start(id_); rc != 0)
    return std::unexpected(
        fmt::format("port {} ({}): rte_eth_dev_start: {}", id_, name_, rte_strerror(-rc)));
  started_ = true;
  // Best effort: net_ring, net_null and some others have no promiscuous mode,
  // and need none (they see every frame anyway).
  const int rc = rte_eth_promiscuous_enable(id_);
  if (rc != 0 && rc != -ENOTSUP)
    return std::unexpected(
        fmt::format("port {} ({}): rte_eth_promiscuous_enable: {}", id_, name_, rte_strerror(-rc)));
  return {};
}

void Port::Stop() {
  if (!started_) return;
  rte_eth_dev_stop(id_);
  started_ = false;
}

// net_af_xdp frees a transmitted mbuf only when a later TX call finds it in
// the kernel's completion ring, so the frames of the last bursts stay lent
// after the workers stop, and closing the port would lose them. A TX burst
// of zero frames reaps the completion ring (the PMD's kick_tx). The kernel
// completes asynchronously (veth: once the peer has taken the frame), hence
// the rounds until nothing more comes back.
void Port::ReapTxCompletions() {
  if (driver_ != kAfXdpDriver || !started_ || !pool_) return;
  rte_mbuf* none[1] = {};
  unsigned before = rte_mempool_in_use_count(pool_);
  for (int round = 0, quiet = 0; quiet < kTxReapQuietRounds && round < kTxReapMaxRounds; ++round) {
    for (uint16_t q = 0; q < queues_; ++q) rte_eth_tx_burst(id_, q, none, 0);
    const unsigned now = rte_mempool_in_use_count(pool_);
    quiet = now < before ? 0 : quiet + 1;
    before = now;
    rte_delay_us_sleep(1000);
  }
}

void Port::Close() {
  if (!open_) return;
  ReapTxCompletions();
  Stop();
  rte_eth_dev_close(id_);
  open_ = false;
}

PortCounters Port::Counters() const {
  rte_eth_stats s{};
  PortCounters c;
  if (rte_eth_stats_get(id_, &s) != 0) return c;
  c.rx_packets = s.ipackets;
  c.rx_bytes = s.ibytes;
  c.tx_packets = s.opackets;
  c.tx_bytes = s.obytes;
  c.imissed = s.imissed;
  c.rx_nombuf = s.rx_nombuf;
  c.ierrors = s.ierrors;
  c.oerrors = s.oerrors;
  return c;
}

uint16_t Port::Available() {
  return rte_eth_dev_count_avail();
}

}  // namespace shaper::dataplane
