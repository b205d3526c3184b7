#include "tests/bench/dataplane/shaper_variant.h"

#include <malloc.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mbuf_dyn.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string_view>

namespace shaper::bench {
namespace {

constexpr uint64_t kLatencyQueueLimitNs = 5'000'000;
constexpr uint64_t kBulkQueueLimitNs = 50'000'000;
constexpr uint32_t kLatencyMaxSharePpm = 200'000;

// Heap in use (small chunks plus mmap'd blocks): the difference around a
// construction is what that construction allocated.
uint64_t HeapInUseBytes() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

uint32_t SchedTenant(uint32_t stream_tenant) {
  return stream_tenant + 1;
}

}  // namespace

bool UsingRealClassifier() {
#ifdef SHAPER_BENCH_REAL_CLASSIFIER
  return true;
#else
  return false;
#endif
}

std::string RegisterBenchMeta() {
#ifdef SHAPER_BENCH_REAL_CLASSIFIER
  return dataplane::RegisterMbufMeta();
#else
  static const rte_mbuf_dynfield kDesc = {"shaper_bench_meta", sizeof(dataplane::MbufMeta),
                                          alignof(dataplane::MbufMeta), 0};
  const int offset = rte_mbuf_dynfield_register(&kDesc);
  if (offset < 0) return std::string("rte_mbuf_dynfield_register: ") + rte_strerror(rte_errno);
  dataplane::g_mbuf_meta_offset = offset;
  return "";
#endif
}

std::unique_ptr<ShaperVariant> ShaperVariant::Create(const ShaperConfig& config, uint16_t tx_port,
                                                     std::string* error) {
  const uint32_t n = std::max<uint32_t>(config.num_tenants, 1);
  const uint32_t slots = n + 1;  // slot 0: the default tenant
  const uint64_t assured_bps = std::max<uint64_t>(config.link_bps / n, 1);
  const uint64_t ceiling_bps = std::min(config.link_bps, assured_bps * config.ceiling_factor);

  const sched::LinkParams link{config.link_bps, kWireOverheadBytes, config.global_queue_bytes};
  const std::array<sched::ClassParams, 2> classes = {{
      {true, 1, kLatencyMaxSharePpm, kLatencyQueueLimitNs},
      {false, 1, 0, kBulkQueueLimitNs},
  }};
  std::vector<sched::TenantParams> tenants(
      slots, sched::TenantParams{assured_bps, ceiling_bps, 1, config.burst_bytes,
                                 config.tenant_queue_bytes});
  tenants[abi::kDefaultTenantId].assured_bps = 0;

  std::unique_ptr<ShaperVariant> v(new ShaperVariant());
  v->tx_port_ = tx_port;
  const uint64_t heap0 = HeapInUseBytes();
  auto profile = sched::Profile::TryBuild(rte_get_tsc_hz(), link, classes, tenants);
  if (!profile) {
    *error = "sched::Profile::TryBuild: " + profile.error();
    return nullptr;
  }
  v->profile_ = std::move(*profile);
  const uint64_t heap1 = HeapInUseBytes();
  // Cross-check of Scheduler::TenantStateBytes from what it allocates: the
  // slope between one tenant and `slots` (the timing wheel and other fixed
  // parts cancel out).
  uint64_t fixed_bytes = 0;
  {
    const Sched one(1, static_cast<uint32_t>(classes.size()));
    fixed_bytes = HeapInUseBytes() - heap1;
  }
  const uint64_t heap1b = HeapInUseBytes();
  v->sched_ = std::make_unique<Sched>(slots, static_cast<uint32_t>(classes.size()));
  const uint64_t heap2 = HeapInUseBytes();
  if (!v->sched_->SetProfile(v->profile_.get(), rte_rdtsc())) {
    *error = "sched::Scheduler::SetProfile refused the profile (class count)";
    return nullptr;
  }
  // The counters, sized and measured like the rest: the stride of a stats
  // segment with this many classes.
  v->num_classes_ = static_cast<uint32_t>(classes.size());
  v->stats_stride_ = abi::TenantStatsBytes(v->num_classes_);
  const uint64_t heap3 = HeapInUseBytes();
  v->tenant_stats_.assign(uint64_t{slots} * v->stats_stride_ / sizeof(uint64_t), 0);
  const uint64_t stats_heap = HeapInUseBytes() - heap3;
  v->stats_base_ = reinterpret_cast<std::byte*>(v->tenant_stats_.data());
  // One direction: its state alone competes for the cache. SHAPER_BENCH_WARM
  // = 0 or 1 forces the warm pass off or on (to measure it).
  v->warm_min_tenants_ = dataplane::WarmPassMinTenants(
      Sched::TenantStateBytes(v->num_classes_) + v->stats_stride_ + sizeof(sched::TenantProfile));
  if (const char* force = std::getenv("SHAPER_BENCH_WARM"))
    v->warm_min_tenants_ = std::string_view(force) == "0" ? UINT32_MAX : 0;

  // SHAPER_BENCH_SEND_NOW=0 turns Scheduler::SendNow off (to measure it).
  if (const char* send_now = std::getenv("SHAPER_BENCH_SEND_NOW"))
    v->send_now_ = std::string_view(send_now) != "0";
  v->state_.tenants = slots;
  v->state_.profile_bytes = sizeof(sched::TenantProfile);
  const uint64_t sched_heap = heap2 - heap1b;
  v->state_.sched_bytes = Sched::TenantStateBytes(static_cast<uint32_t>(classes.size()));
  v->state_.sched_alloc_bytes =
      sched_heap > fixed_bytes ? (sched_heap - fixed_bytes) / (slots - 1) : 0;
  v->state_.stats_bytes = v->stats_stride_;
  v->state_.stats_alloc_bytes = stats_heap / slots;
  v->state_.heap_bytes = (heap1 - heap0) + sched_heap + stats_heap;

#ifdef SHAPER_BENCH_REAL_CLASSIFIER
  if (!config.real_classifier) return v;
  const uint64_t build_start = rte_rdtsc();
  std::vector<dataplane::MatchRule> rules(n);
  for (uint32_t t = 0; t < n; ++t) {
    const uint32_t addr_be = rte_cpu_to_be_32(kTenantBaseAddr + t);
    std::memcpy(rules[t].addr.data(), &addr_be, 4);
    rules[t].length = 32;
    rules[t].tenant = SchedTenant(t);
  }
  std::array<uint8_t, 64> dscp_to_class{};
  dscp_to_class.fill(static_cast<uint8_t>(kBulkClass));
  dscp_to_class[kDscpEf] = static_cast<uint8_t>(kLatencyClass);
  auto tables =
      dataplane::ClassifyTables::Build(rules, dscp_to_class, static_cast<uint8_t>(kBulkClass));
  if (!tables) {
    *error = "dataplane::ClassifyTables::Build: " + tables.error();
    return nullptr;
  }
  v->classify_ = std::move(*tables);
  v->real_classifier_ = true;
  v->classifier_build_s_ =
      static_cast<double>(rte_rdtsc() - build_start) / static_cast<double>(rte_get_tsc_hz());
#endif
  return v;
}

ShaperVariant::~ShaperVariant() {
  if (sched_) sched_->DrainAll([](rte_mbuf* m) { rte_pktmbuf_free(m); });
}

void ShaperVariant::Process(rte_mbuf** pkts, const StreamEntry** meta, uint16_t n, uint64_t now_tsc,
                            RunStats& stats) {
#ifdef SHAPER_BENCH_REAL_CLASSIFIER
  if (real_classifier_) {
    classify_->ClassifyBurst(abi::kUpload, pkts, n);
  } else
#endif
  {
    // Stand-in classifier: the generator's precomputed answer, written
    // where the real classifier writes it.
    for (uint16_t i = 0; i < n; ++i) {
      dataplane::MbufMeta* m = dataplane::Meta(pkts[i]);
      m->tenant = SchedTenant(meta[i]->tenant);
      m->cls = meta[i]->cls;
      m->flags = 0;
      m->vlan = 0;
    }
  }
  if (profile_->num_tenants() >= warm_min_tenants_) {  // as Worker::EnqueueBurst
    uint64_t loads = 0;
    for (uint16_t i = 0; i < n; ++i) {
      const uint32_t tenant = dataplane::Meta(pkts[i])->tenant;
      loads += dataplane::WarmFrame(*sched_, tenant, TenantStatsOf(tenant), num_classes_);
    }
    dataplane::KeepLoads(loads);
  }
  rte_mbuf* out[2 * kBurst];
  uint32_t sent_now = 0;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    const dataplane::MbufMeta* mm = dataplane::Meta(m);
    abi::TenantStats& ts = *TenantStatsOf(mm->tenant);
    ++ts.arrival_packets;
    ts.arrival_bytes += m->pkt_len;
    if (send_now_ && sched_->SendNow(m, mm->tenant, mm->cls, now_tsc)) {  // as the worker
      abi::ClassTx* tx = abi::TxOf(&ts, mm->cls);
      ++tx->tx_packets;
      tx->tx_bytes += m->pkt_len;
      out[sent_now++] = m;
      continue;
    }
    const sched::Verdict verdict = sched_->Enqueue(m, mm->tenant, mm->cls, now_tsc);
    if (verdict == sched::Verdict::kQueued) PublishQueued(mm->tenant, mm->cls);
    if (verdict != sched::Verdict::kQueued) {
      const auto reason = verdict == sched::Verdict::kDropPoolLow ? abi::DropReason::kPoolLow
                                                                  : abi::DropReason::kQueueFull;
      ++ts.drop_packets[static_cast<uint32_t>(reason)];
      rte_pktmbuf_free(m);
      ++stats.drop_pkts;
    }
  }
  const uint32_t got = sched_->Dequeue(
      now_tsc, out + sent_now, 2 * kBurst - sent_now,
      [this, &stats](rte_mbuf* m, uint32_t tenant, uint32_t cls, sched::DropReason reason) {
        ++TenantStatsOf(tenant)->drop_packets[static_cast<uint32_t>(reason)];
        PublishQueued(tenant, cls);
        rte_pktmbuf_free(m);
        ++stats.drop_pkts;
      });
  for (uint32_t i = sent_now; i < sent_now + got; ++i) {
    const dataplane::MbufMeta* mm = dataplane::Meta(out[i]);
    PublishQueued(mm->tenant, mm->cls);
    abi::ClassTx* tx = abi::TxOf(TenantStatsOf(mm->tenant), mm->cls);
    ++tx->tx_packets;
    tx->tx_bytes += out[i]->pkt_len;
  }
  SendToNull(tx_port_, out, static_cast<uint16_t>(sent_now + got), stats);
}

ShaperVariant::TouchedLines ShaperVariant::CountTouchedLines(double latency_share) const {
  struct Range {
    const void* at;
    size_t bytes;
  };
  // Distinct 64-byte lines under the ranges (of one array, in address order).
  auto lines = [](std::initializer_list<Range> ranges) {
    uintptr_t last = UINTPTR_MAX;
    double n = 0;
    for (const Range& r : ranges) {
      const auto a = reinterpret_cast<uintptr_t>(r.at);
      for (uintptr_t line = a >> 6; line <= (a + r.bytes - 1) >> 6; ++line) {
        if (line != last) ++n;
        last = line;
      }
    }
    return n;
  };
  const uint32_t tenants = profile_->num_tenants();
  const uint32_t step = std::max<uint32_t>(tenants / 65536, 1);
  const size_t block = Sched::TenantStateBytes(num_classes_);
  TouchedLines sum;
  uint32_t samples = 0;
  for (uint32_t t = 1; t < tenants; t += step, ++samples) {
    sum.profile += lines({{&profile_->tenant(t), sizeof(sched::TenantProfile)}});
    sum.scheduler += lines({{sched_->TenantBlock(t), block}});
    // The arrival pair, the class's tx pair and its queued gauge.
    const abi::TenantStats* ts = TenantStatsOf(t);
    auto row = [&](uint32_t cls) {
      return lines({{&ts->arrival_packets, 2 * sizeof(uint64_t)},
                    {abi::TxOf(ts, cls), sizeof(abi::ClassTx)},
                    {abi::QueuedBytesOf(ts, num_classes_, cls), sizeof(uint32_t)}});
    };
    sum.counters += latency_share * row(kLatencyClass) + (1 - latency_share) * row(kBulkClass);
  }
  if (samples == 0) return sum;
  return {sum.profile / samples, sum.scheduler / samples, sum.counters / samples};
}

uint64_t ShaperVariant::TxPackets(uint32_t stream_tenant) const {
  uint64_t sum = 0;
  for (uint32_t c = 0; c < num_classes_; ++c)
    sum += abi::TxOf(TenantStatsOf(SchedTenant(stream_tenant)), c)->tx_packets;
  return sum;
}

const abi::TenantStats& ShaperVariant::Stats(uint32_t stream_tenant) const {
  return *TenantStatsOf(SchedTenant(stream_tenant));
}

uint64_t ShaperVariant::TxBytes(uint32_t stream_tenant) const {
  uint64_t sum = 0;
  for (uint32_t c = 0; c < num_classes_; ++c)
    sum += abi::TxOf(TenantStatsOf(SchedTenant(stream_tenant)), c)->tx_bytes;
  return sum;
}

}  // namespace shaper::bench
