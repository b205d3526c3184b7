#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstring>

#include "dataplane/warm.h"

namespace shaper::dataplane {
namespace {

constexpr uint64_t kMinBypassBurstBytes = 16 * 1024;
constexpr size_t kEtherHeaderBytes = 14;

abi::DropReason ToAbi(sched::DropReason r) {
  return static_cast<abi::DropReason>(static_cast<uint8_t>(r));
}
static_assert(static_cast<int>(sched::DropReason::kQueueLimit) ==
              static_cast<int>(abi::DropReason::kQueueLimit));
static_assert(static_cast<int>(sched::DropReason::kMalformed) ==
              static_cast<int>(abi::DropReason::kMalformed));

// (a << 32) / b without overflowing 64 bits, for a rate below 2^64 / 2^32 * b.
uint64_t Q32Div(uint64_t a, uint64_t b) {
  return (a / b << 32) + ((a % b << 32) / b);
}

}  // namespace

void TokenBucket::Configure(uint64_t bytes_per_s, uint64_t burst_bytes, uint64_t tsc_hz,
                            uint64_t now_tsc) {
  rate_q32_per_tsc_ = Q32Div(bytes_per_s, tsc_hz);
  burst_q32_ = burst_bytes << 32;
  tokens_q32_ = burst_q32_;
  last_tsc_ = now_tsc;
  // A long pause refills to the burst anyway; capping the interval keeps
  // elapsed * rate inside 64 bits.
  max_elapsed_tsc_ = tsc_hz / 100;
}

bool TokenBucket::Take(uint32_t bytes, uint64_t now_tsc) {
  const uint64_t elapsed = std::min(now_tsc - last_tsc_, max_elapsed_tsc_);
  last_tsc_ = now_tsc;
  tokens_q32_ = std::min(burst_q32_, tokens_q32_ + elapsed * rate_q32_per_tsc_);
  const uint64_t need = uint64_t{bytes} << 32;
  if (tokens_q32_ < need) return false;
  tokens_q32_ -= need;
  return true;
}

Worker::Worker(const WorkerConfig& config, PlanPublisher& plans, WorkerStats stats,
               const std::atomic<bool>& stop)
    : config_(config),
      plans_(plans),
      lcore_(abi::LcoreAt(stats.base, *stats.header, stats.slot)),
      num_classes_(stats.header->num_classes),
      tenant_stats_bytes_(stats.header->tenant_stats_bytes),
      tenant_stats_(reinterpret_cast<std::byte*>(lcore_) + stats.header->tenant_stats_offset),
      class_stats_(abi::ClassAt(lcore_, *stats.header, 0, 0)),
      stop_(stop),
      tsc_hz_(rte_get_tsc_hz()),
      ns_per_tsc_q32_(Q32Div(1'000'000'000, tsc_hz_)),
      assured_backlog_tsc_(tsc_hz_ / (1'000'000'000 / kAssuredBacklogNs)) {
  dirs_[abi::kUpload].direction = abi::kUpload;
  dirs_[abi::kUpload].rx_port = config.port_a;
  dirs_[abi::kUpload].tx_port = config.port_b;
  dirs_[abi::kDownload].direction = abi::kDownload;
  dirs_[abi::kDownload].rx_port = config.port_b;
  dirs_[abi::kDownload].tx_port = config.port_a;
  for (Dir& d : dirs_) d.scheduler = std::make_unique<Sched>(config.max_tenants, num_classes_);
  // Both directions' state competes for this core's cache.
  warm_min_tenants_ =
      config.warm_min_tenants != 0
          ? config.warm_min_tenants
          : WarmPassMinTenants(abi::kDirections *
                               (Sched::TenantStateBytes(num_classes_) + tenant_stats_bytes_ +
                                sizeof(sched::TenantProfile)));
  lcore_->in_use = 1;
}

uint64_t Worker::queued_bytes() const {
  uint64_t sum = 0;
  for (const Dir& d : dirs_) sum += d.scheduler->queued_bytes();
  return sum;
}

int Worker::Run() {
  lcore_->lcore_id = rte_lcore_id();
  if (config_.idle_sleep_us) {
    // The kernel may stretch a sleep by the thread's timer slack (50 us by
    // default), which would double a 50 us idle sleep and the delay of the
    // first frame after it. Once, at start; a failure only costs latency.
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  }
  plans_.Online(config_.index);
  uint64_t last_tsc = rte_rdtsc();
  while (!stop_.load(std::memory_order_relaxed)) {
    const uint64_t now = rte_rdtsc();
    const uint32_t moved = Poll(now);
    // Plain stores: this lcore is the block's only writer.
    const uint64_t cycles = now - last_tsc;
    last_tsc = now;
    lcore_->total_cycles += cycles;
    if (moved) lcore_->busy_cycles += cycles;
    lcore_->rounds += 1;
    plans_.Quiescent(config_.index);

    if (moved || queued_bytes()) {
      idle_polls_ = 0;
    } else if (config_.idle_sleep_us && ++idle_polls_ >= kIdlePollsBeforeSleep) {
      // Nothing queued, nothing arriving: give the core back for a moment.
      // Still online for RCU: a plan swap just waits out the sleep.
      rte_delay_us_sleep(config_.idle_sleep_us);
    }
  }
  plans_.Offline(config_.index);
  Drain();
  return 0;
}

void Worker::SwapPlan(const RuntimePlan* plan, uint64_t now_tsc) {
  for (const Dir& d : dirs_) {
    if (plan->profiles[d.direction]->num_classes() != num_classes_) {
      // Cannot happen: validation refuses plans with more classes than
      // --max-classes and BuildRuntimePlan pads to it. Bridge unshaped
      // rather than keep using a plan the main lcore is about to free.
      ++totals_.profiles_refused;
      plan_ = nullptr;
      return;
    }
  }
  plan_ = plan;
  for (Dir& d : dirs_) {
    d.scheduler->SetProfile(plan->profiles[d.direction].get(), now_tsc);
    const uint64_t rate = plan->bypass_bytes_per_s[d.direction];
    d.bypass.Configure(rate, std::max(kMinBypassBurstBytes, rate / 1000), tsc_hz_, now_tsc);
  }
}

uint32_t Worker::Poll(uint64_t now_tsc) {
  // A plan is never unpublished, only replaced; the pointer identifies it.
  if (const RuntimePlan* plan = plans_.Acquire(); plan != seen_plan_) {
    seen_plan_ = plan;
    if (plan) SwapPlan(plan, now_tsc);
  }
  uint32_t moved = 0;
  moved += PollDirection(dirs_[0], now_tsc, dirs_[1].queued_frames);
  moved += PollDirection(dirs_[1], now_tsc, dirs_[0].queued_frames);
  return moved;
}

Worker::PoolState Worker::PoolNow() const {
  // O(lcores) in DPDK: once per RX burst, not per frame.
  const unsigned avail = rte_mempool_avail_count(config_.pool);
  return avail < config_.pool_low_watermark / 2 ? PoolState::kCritical
         : avail < config_.pool_low_watermark   ? PoolState::kLow
                                                : PoolState::kOk;
}

void Worker::Transmit(Dir& d) {
  if (!d.tx_count) return;
  const uint16_t sent =
      rte_eth_tx_burst(d.tx_port, config_.queue, d.tx, static_cast<uint16_t>(d.tx_count));
  // What TX refused stays, in order, and goes first next time.
  if (sent < d.tx_count) std::memmove(d.tx, d.tx + sent, (d.tx_count - sent) * sizeof(rte_mbuf*));
  d.tx_count -= sent;
}

void Worker::CountOut(Dir& d, rte_mbuf* m, uint64_t now_tsc) {
  // Counted when handed to the TX buffer, which never drops (TX keeps what it
  // refuses): after rte_eth_tx_burst the mbuf is no longer ours to read.
  const MbufMeta* meta = Meta(m);
  abi::ClassTx* tx = abi::TxOf(TenantStatsOf(meta->tenant, d.direction), meta->cls);
  tx->tx_packets += 1;
  tx->tx_bytes += m->pkt_len;
  abi::ClassStats* cs = ClassStatsOf(d.direction, meta->cls);
  const uint64_t sojourn_tsc = std::min(now_tsc - meta->arrival_tsc, tsc_hz_);  // cap: 1 s
  const uint64_t sojourn_ns = (sojourn_tsc * ns_per_tsc_q32_) >> 32;
  cs->sojourn_count += 1;
  cs->sojourn_sum_ns += sojourn_ns;
  cs->sojourn_hist[abi::SojournBucket(sojourn_ns)] += 1;
  d.tx[d.tx_count++] = m;
}

void Worker::Drop(Dir& d, rte_mbuf* m, uint32_t tenant, uint32_t cls, abi::DropReason reason) {
  const auto r = static_cast<uint32_t>(reason);
  TenantStatsOf(tenant, d.direction)->drop_packets[r] += 1;
  ClassStatsOf(d.direction, cls)->drop_packets[r] += 1;
  rte_pktmbuf_free(m);
}

void Worker::PublishQueued(Dir& d, uint32_t tenant, uint32_t cls) {
  const uint64_t q = d.scheduler->tenant_queued_bytes(tenant, cls);
  *abi::QueuedBytesOf(TenantStatsOf(tenant, d.direction), num_classes_, cls) =
      static_cast<uint32_t>(std::min<uint64_t>(q, UINT32_MAX));
}

uint32_t Worker::PollDirection(Dir& d, uint64_t now_tsc, uint64_t other_queued_frames) {
  Transmit(d);  // leftovers first: they are older than anything below

  rte_mbuf* rx[kRxBurst];
  uint16_t n = rte_eth_rx_burst(d.rx_port, config_.queue, rx, kRxBurst);

  if (!plan_) {
    // No plan yet: a transparent bridge, everything as the default tenant.
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = rx[i];
      MbufMeta* meta = Meta(m);
      *meta = MbufMeta{nullptr, now_tsc, abi::kDefaultTenantId, 0, 0, 0};
      abi::TenantStats* ts = TenantStatsOf(abi::kDefaultTenantId, d.direction);
      ts->arrival_packets += 1;
      ts->arrival_bytes += m->pkt_len;
      if (d.tx_count == kTxBuffer) {
        Drop(d, m, abi::kDefaultTenantId, 0, abi::DropReason::kQueueFull);
        continue;
      }
      ++totals_.unshaped_packets;
      CountOut(d, m, now_tsc);
    }
    const uint32_t before = d.tx_count;
    Transmit(d);
    return n + (before - d.tx_count);
  }

  Sched& sched = *d.scheduler;
  uint32_t received = 0;
  for (uint32_t burst = 1; n != 0; ++burst) {
    received += n;
    // After the burst was taken: the pool as it is now, not as it was
    // before this or the other direction read up to 128 frames.
    const PoolState pool = PoolNow();
    EnqueueBurst(d, rx, n, now_tsc, pool, other_queued_frames);
    // The RX ring is a FIFO that knows no classes: a latency-class frame
    // behind a full ring waits for every frame ahead of it. So drain the
    // ring into the scheduler, where that frame goes first, before
    // transmitting; bounded so the other direction and TX still come soon.
    // Not while the pool is low: then more reading only turns frames in the
    // ring into drops, and takes mbufs the other direction needs.
    if (n < kRxBurst || burst == kMaxRxBurstsPerPoll || pool != PoolState::kOk) break;
    if (d.tx_count) Transmit(d);  // the bypass's frames: room for the next burst's
    n = rte_eth_rx_burst(d.rx_port, config_.queue, rx, kRxBurst);
  }

  rte_mbuf* out[kTxBuffer];
  const uint32_t k =
      sched.Dequeue(now_tsc, out, kTxBuffer - d.tx_count,
                    [&](rte_mbuf* m, uint32_t tenant, uint32_t cls, sched::DropReason reason) {
                      --d.queued_frames;
                      Drop(d, m, tenant, cls, ToAbi(reason));
                      PublishQueued(d, tenant, cls);
                    });
  d.queued_frames -= k;
  for (uint32_t i = 0; i < k; ++i) {
    const MbufMeta* meta = Meta(out[i]);
    PublishQueued(d, meta->tenant, meta->cls);
    CountOut(d, out[i], now_tsc);
  }
  Transmit(d);
  return received + k;
}

void Worker::EnqueueBurst(Dir& d, rte_mbuf** rx, uint16_t n, uint64_t now_tsc, PoolState pool,
                          uint64_t other_queued_frames) {
  plan_->classify->ClassifyBurst(d.direction, rx, n);
  Sched& sched = *d.scheduler;
  if (sched.profile() != nullptr && sched.profile()->num_tenants() >= warm_min_tenants_) {
    uint64_t loads = 0;
    for (uint16_t i = 0; i < n; ++i) {
      const uint32_t tenant = Meta(rx[i])->tenant;
      loads += WarmFrame(sched, tenant, TenantStatsOf(tenant, d.direction), num_classes_);
    }
    KeepLoads(loads);
    ++totals_.warm_passes;
  }
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = rx[i];
    MbufMeta* meta = Meta(m);
    const uint32_t tenant = meta->tenant;
    const uint32_t cls = meta->cls;
    abi::TenantStats* ts = TenantStatsOf(tenant, d.direction);
    ts->arrival_packets += 1;
    ts->arrival_bytes += m->pkt_len;
    if (meta->flags & kMetaMalformed) {
      // Shorter than an Ethernet header: not a frame anyone can deliver.
      if (m->pkt_len < kEtherHeaderBytes) {
        Drop(d, m, tenant, cls, abi::DropReason::kMalformed);
        continue;
      }
      ++totals_.malformed_packets;
      lcore_->malformed_forwarded += 1;  // plain store: this lcore's own block
    }
    if ((meta->flags & kMetaNonIp) && d.tx_count < kTxBuffer &&
        d.bypass.Take(m->pkt_len, now_tsc)) {
      meta->arrival_tsc = now_tsc;
      ++totals_.bypass_packets;
      CountOut(d, m, now_tsc);
      continue;
    }
    if (pool != PoolState::kOk &&
        (pool == PoolState::kCritical ||
         (d.queued_frames >= other_queued_frames &&
          !sched.FitsAssuredBacklog(tenant, m->pkt_len, assured_backlog_tsc_)))) {
      Drop(d, m, tenant, cls, abi::DropReason::kPoolLow);
      continue;
    }
    // An idle tenant within its guarantee while no tenant waits in the
    // assured list: the frame would be the next Dequeue's first, charged the
    // same; it goes to TX now, past its queue and the lists.
    if (d.tx_count < kTxBuffer && sched.SendNow(m, tenant, cls, now_tsc)) {
      ++totals_.sent_now_packets;
      CountOut(d, m, now_tsc);
      continue;
    }
    switch (sched.Enqueue(m, tenant, cls, now_tsc)) {
      case sched::Verdict::kQueued:
        ++d.queued_frames;
        PublishQueued(d, tenant, cls);
        break;
      case sched::Verdict::kDropQueueFull:
        Drop(d, m, tenant, cls, abi::DropReason::kQueueFull);
        break;
      case sched::Verdict::kDropPoolLow:
        Drop(d, m, tenant, cls, abi::DropReason::kPoolLow);
        break;
    }
  }
}

void Worker::Drain() {
  for (Dir& d : dirs_) {
    d.scheduler->DrainAll([&](rte_mbuf* m) {
      ++totals_.drained_at_exit;
      rte_pktmbuf_free(m);
    });
    d.queued_frames = 0;
    for (uint32_t i = 0; i < d.tx_count; ++i) {
      ++totals_.drained_at_exit;
      rte_pktmbuf_free(d.tx[i]);
    }
    d.tx_count = 0;
  }
}

}  // namespace shaper::dataplane
