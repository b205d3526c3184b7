// ControlCore::CollectMetrics: the Prometheus families (DESIGN.md,
// "Metrics"), built at scrape time from the stats segment and the last
// allocation. Building MetricFamily values directly (a prometheus::Collectable)
// rather than keeping a Gauge per series means a million tenant series cost
// nothing between scrapes, and a reload that removes a tenant removes its
// series without bookkeeping.
//
// Units are Prometheus base units: bytes and seconds; the allocator's bit
// rates are divided by 8.
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "control/daemon/core.h"
#include "control/daemon/prom_text.h"

namespace shaper::control {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric& Sample(MetricFamily& f, std::vector<ClientMetric::Label> labels) {
  ClientMetric& m = f.metric.emplace_back();
  m.label = std::move(labels);
  return m;
}

void Gauge(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  Sample(f, std::move(labels)).gauge.value = value;
}

void Counter(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  Sample(f, std::move(labels)).counter.value = value;
}

double Bytes(uint64_t bps) {
  return static_cast<double>(bps) / 8.0;
}

// The per-tenant families, without samples, in the order both CollectMetrics
// and AppendMetricsText give them.
const MetricFamily kTxBytes =
    Family("shaper_tenant_transmit_bytes_total",
           "Bytes transmitted per tenant, direction and class", MetricType::Counter);
const MetricFamily kTxPackets =
    Family("shaper_tenant_transmit_packets_total",
           "Packets transmitted per tenant, direction and class", MetricType::Counter);
const MetricFamily kArrival = Family(
    "shaper_tenant_arrival_bytes_total",
    "Bytes offered to the scheduler per tenant and direction (before drops)", MetricType::Counter);
const MetricFamily kDrops =
    Family("shaper_tenant_drop_packets_total", "Packets dropped per tenant, direction and reason",
           MetricType::Counter);
const MetricFamily kQueue = Family(
    "shaper_tenant_queue_bytes", "Bytes queued per tenant, direction and class", MetricType::Gauge);
const MetricFamily kRate =
    Family("shaper_tenant_rate_bytes_per_second",
           "Per tenant and direction: allocated (assured rate in force), demand "
           "(estimated), guaranteed and ceiling (from the policy)",
           MetricType::Gauge);
constexpr const char* kRateKinds[] = {"allocated", "demand", "guaranteed", "ceiling"};

// `,NAME="VALUE"} `: the last label of a sample, its closing brace and the
// space before the value.
std::string LastLabel(std::string_view name, std::string_view value) {
  std::string s = ",";
  s += name;
  s += "=\"";
  AppendLabelValue(s, value);
  s += "\"} ";
  return s;
}

}  // namespace

// What a scrape copies under the lock: the small families, ready, and the
// numbers of the selected tenants, from which CollectMetrics builds families
// and AppendMetricsText writes text after the lock is released.
struct ControlCore::MetricsSnapshot {
  struct DirectionRow {
    ctl::TenantTotals totals;
    uint64_t allocated_bps, demand_bps, guaranteed_bps, ceiling_bps;
  };
  struct TenantRow {
    std::string name;
    DirectionRow dir[config::kDirections];
  };
  std::vector<MetricFamily> families;  // everything but the tenant families
  bool has_tenants = false;            // false without a stats segment: no tenant families at all
  std::vector<TenantRow> rows;         // by tenant id
  std::vector<std::string> class_names;
};

ControlCore::MetricsSnapshot ControlCore::SnapshotMetrics(bool all_tenants) const {
  std::lock_guard lock(mu_);
  MetricsSnapshot snap;
  std::vector<MetricFamily>& out = snap.families;

  {
    MetricFamily up =
        Family("shaper_dataplane_up", "1 when shaper-control is connected to a live dataplane",
               MetricType::Gauge);
    Gauge(up, {}, api_ ? 1 : 0);
    out.push_back(std::move(up));
    MetricFamily valid =
        Family("shaper_policy_valid",
               "1 when the policy file on disk is the one in force (last load or reload succeeded)",
               MetricType::Gauge);
    Gauge(valid, {}, policy_valid_ ? 1 : 0);
    out.push_back(std::move(valid));
    MetricFamily reloads =
        Family("shaper_policy_reloads_total", "Policy reloads by result", MetricType::Counter);
    Counter(reloads, {{"result", "success"}}, static_cast<double>(reloads_success_));
    Counter(reloads, {{"result", "error"}}, static_cast<double>(reloads_error_));
    out.push_back(std::move(reloads));
    MetricFamily last = Family("shaper_policy_last_reload_timestamp_seconds",
                               "Unix time of the last successful policy load", MetricType::Gauge);
    Gauge(last, {}, last_reload_seconds_);
    out.push_back(std::move(last));
  }
  {
    MetricFamily hist = Family("shaper_allocation_duration_seconds",
                               "Time to allocate both directions (link -> groups -> tenants)",
                               MetricType::Histogram);
    ClientMetric& m = Sample(hist, {});
    m.histogram.sample_count = alloc_count_;
    m.histogram.sample_sum = alloc_sum_seconds_;
    for (size_t b = 0; b < kAllocationBuckets.size(); ++b) {
      m.histogram.bucket.push_back({alloc_bucket_counts_[b], kAllocationBuckets[b]});
    }
    m.histogram.bucket.push_back({alloc_count_, std::numeric_limits<double>::infinity()});
    out.push_back(std::move(hist));
  }
  {
    MetricFamily link =
        Family("shaper_link_capacity_bytes_per_second",
               "The shape rate of each direction (what tenants share)", MetricType::Gauge);
    for (int d = 0; d < config::kDirections; ++d) {
      Gauge(link, {{"direction", config::DirectionName(static_cast<config::Direction>(d))}},
            Bytes(policy_.link.shape_rate_bps));
    }
    out.push_back(std::move(link));
  }
  if (!stats_) return snap;
  snap.has_tenants = true;
  const ctl::StatsReader& stats = *stats_;

  {
    MetricFamily rx = Family("shaper_port_receive_packets_total", "Packets received per port",
                             MetricType::Counter);
    MetricFamily tx = Family("shaper_port_transmit_packets_total", "Packets transmitted per port",
                             MetricType::Counter);
    MetricFamily missed =
        Family("shaper_port_receive_missed_total",
               "Packets the NIC dropped because RX was not polled fast enough (imissed)",
               MetricType::Counter);
    MetricFamily nombuf =
        Family("shaper_port_receive_nombuf_total",
               "Receive attempts that found no free mbuf (DPDK rx_nombuf): the pool ran dry",
               MetricType::Counter);
    for (uint32_t p = 0; p < stats.num_ports(); ++p) {
      const abi::PortStats ps = stats.Port(p);
      const std::string name = p < port_names_.size() ? port_names_[p] : std::to_string(p);
      Counter(rx, {{"port", name}}, static_cast<double>(ps.rx_packets));
      Counter(tx, {{"port", name}}, static_cast<double>(ps.tx_packets));
      Counter(missed, {{"port", name}}, static_cast<double>(ps.imissed));
      Counter(nombuf, {{"port", name}}, static_cast<double>(ps.rx_nombuf));
    }
    out.push_back(std::move(rx));
    out.push_back(std::move(tx));
    out.push_back(std::move(missed));
    out.push_back(std::move(nombuf));
  }
  {
    // The mbuf pool (sampled by the dataplane's main lcore every 100 ms).
    const abi::StatsHeader& h = stats.header();
    auto pool_gauge = [&](MetricFamily f, uint32_t value) {
      Gauge(f, {}, static_cast<double>(value));
      out.push_back(std::move(f));
    };
    pool_gauge(
        Family("shaper_mbuf_pool_size", "Mbufs in the dataplane's packet pool", MetricType::Gauge),
        h.pool_mbufs);
    pool_gauge(Family("shaper_mbuf_pool_in_use", "Mbufs in use: queued, in rings, in flight",
                      MetricType::Gauge),
               h.pool_in_use);
    pool_gauge(Family("shaper_mbuf_pool_in_use_peak",
                      "The most mbufs seen in use since the dataplane started", MetricType::Gauge),
               h.pool_in_use_peak);
    pool_gauge(Family("shaper_mbuf_pool_low_watermark",
                      "Free mbufs below which new frames are dropped (drop reason pool_low)",
                      MetricType::Gauge),
               h.pool_low_watermark);
  }
  {
    MetricFamily busy =
        Family("shaper_lcore_busy_ratio",
               "Share of an lcore's cycles spent in rounds that moved packets (since start)",
               MetricType::Gauge);
    uint64_t malformed_total = 0;
    for (uint32_t i = 0; i < stats.num_lcores(); ++i) {
      const abi::LcoreStats l = stats.Lcore(i);
      malformed_total += l.malformed_forwarded;
      if (l.in_use == 0) continue;
      const double ratio = l.total_cycles == 0 ? 0
                                               : static_cast<double>(l.busy_cycles) /
                                                     static_cast<double>(l.total_cycles);
      Gauge(busy, {{"lcore", std::to_string(l.lcore_id)}}, ratio);
    }
    out.push_back(std::move(busy));
    MetricFamily malformed =
        Family("shaper_malformed_forwarded_packets_total",
               "Frames whose headers could not be parsed, forwarded as the default "
               "tenant (runts are dropped: drop reason malformed)",
               MetricType::Counter);
    Counter(malformed, {}, static_cast<double>(malformed_total));
    out.push_back(std::move(malformed));
  }
  {
    MetricFamily delay =
        Family("shaper_class_queue_delay_seconds", "Sojourn time of transmitted packets per class",
               MetricType::Histogram);
    for (uint32_t d = 0; d < config::kDirections; ++d) {
      for (uint32_t c = 0; c < policy_.classes.size() && c < stats.num_classes(); ++c) {
        const abi::ClassStats cs = stats.SumClass(d, c);
        ClientMetric& m = Sample(
            delay, {{"direction", abi::DirectionName(d)}, {"class", policy_.classes[c].name}});
        m.histogram.sample_count = cs.sojourn_count;
        m.histogram.sample_sum = static_cast<double>(cs.sojourn_sum_ns) * 1e-9;
        uint64_t cumulative = 0;
        // Bucket b's upper bound is 2^b ns; the last one is open (+Inf).
        for (uint32_t b = 0; b + 1 < abi::kSojournBuckets; ++b) {
          cumulative += cs.sojourn_hist[b];
          m.histogram.bucket.push_back({cumulative, std::ldexp(1e-9, static_cast<int>(b))});
        }
        cumulative += cs.sojourn_hist[abi::kSojournBuckets - 1];
        m.histogram.bucket.push_back(
            {std::max(cumulative, cs.sojourn_count), std::numeric_limits<double>::infinity()});
      }
    }
    out.push_back(std::move(delay));
  }

  // Tenants: every one, or the top N by measured rate (both directions).
  // Under the lock only the numbers are copied (a few hundred bytes a
  // tenant); the families, with their label strings, are built after it is
  // released, so a scrape of 100k tenants does not hold up the allocation
  // loop for the time it takes to build millions of samples.
  const uint32_t limit = IdLimitLocked();
  std::vector<uint32_t> selected;
  for (uint32_t id = 0; id < limit; ++id) {
    if (!names_[id].empty()) selected.push_back(id);
  }
  auto rate_of = [&](uint32_t id) {
    uint64_t sum = 0;
    for (const Direction& dir : dirs_) {
      if (dir.demand && id < dir.demand->size()) sum += dir.demand->tenant(id).tx_bps;
    }
    return sum;
  };
  if (!all_tenants && selected.size() > options_.metrics_top_n) {
    std::vector<uint64_t> rates(limit, 0);
    for (uint32_t id : selected) rates[id] = rate_of(id);
    std::partial_sort(
        selected.begin(), selected.begin() + options_.metrics_top_n, selected.end(),
        [&](uint32_t a, uint32_t b) { return rates[a] != rates[b] ? rates[a] > rates[b] : a < b; });
    selected.resize(options_.metrics_top_n);
    std::sort(selected.begin(), selected.end());
  }
  std::vector<MetricsSnapshot::TenantRow>& rows = snap.rows;
  rows.resize(selected.size());
  for (size_t i = 0; i < selected.size(); ++i) {
    const uint32_t id = selected[i];
    rows[i].name = names_[id];
    for (uint32_t d = 0; d < config::kDirections; ++d) {
      const Direction& dir = dirs_[d];
      rows[i].dir[d] = {stats.SumTenant(id, d), id < dir.pushed_bps.size() ? dir.pushed_bps[id] : 0,
                        dir.demand && id < dir.demand->size() ? dir.demand->demand_bps(id) : 0,
                        dir.tenants[id].guaranteed_bps, dir.tenants[id].ceiling_bps};
    }
  }
  // Only classes the segment has counters for (the dataplane's --max-classes;
  // it refuses a plan with more, so this cuts nothing while a plan applies).
  for (uint32_t c = 0; c < policy_.classes.size() && c < stats.num_classes(); ++c) {
    snap.class_names.push_back(policy_.classes[c].name);
  }
  return snap;
}

std::vector<MetricFamily> ControlCore::CollectMetrics(bool all_tenants) const {
  MetricsSnapshot snap = SnapshotMetrics(all_tenants);
  std::vector<MetricFamily> out = std::move(snap.families);
  if (!snap.has_tenants) return out;
  const std::vector<MetricsSnapshot::TenantRow>& rows = snap.rows;
  const std::vector<std::string>& class_names = snap.class_names;

  MetricFamily tx_bytes = kTxBytes;
  MetricFamily tx_packets = kTxPackets;
  MetricFamily arrival = kArrival;
  MetricFamily drops = kDrops;
  MetricFamily queue = kQueue;
  MetricFamily rate = kRate;
  const size_t classes = class_names.size();
  tx_bytes.metric.reserve(rows.size() * config::kDirections * classes);
  tx_packets.metric.reserve(rows.size() * config::kDirections * classes);
  queue.metric.reserve(rows.size() * config::kDirections * classes);
  arrival.metric.reserve(rows.size() * config::kDirections);
  drops.metric.reserve(rows.size() * config::kDirections * abi::kDropReasons);
  rate.metric.reserve(rows.size() * config::kDirections * 4);
  for (const MetricsSnapshot::TenantRow& row : rows) {
    const std::string& tenant = row.name;
    for (uint32_t d = 0; d < config::kDirections; ++d) {
      const std::string direction = abi::DirectionName(d);
      const MetricsSnapshot::DirectionRow& r = row.dir[d];
      const ctl::TenantTotals& t = r.totals;
      for (uint32_t c = 0; c < classes; ++c) {
        const std::string& cls = class_names[c];
        Counter(tx_bytes, {{"tenant", tenant}, {"direction", direction}, {"class", cls}},
                static_cast<double>(t.tx[c].tx_bytes));
        Counter(tx_packets, {{"tenant", tenant}, {"direction", direction}, {"class", cls}},
                static_cast<double>(t.tx[c].tx_packets));
        Gauge(queue, {{"tenant", tenant}, {"direction", direction}, {"class", cls}},
              static_cast<double>(t.queued_bytes[c]));
      }
      Counter(arrival, {{"tenant", tenant}, {"direction", direction}},
              static_cast<double>(t.arrival_bytes));
      for (uint32_t reason = 0; reason < abi::kDropReasons; ++reason) {
        Counter(
            drops,
            {{"tenant", tenant}, {"direction", direction}, {"reason", abi::DropReasonName(reason)}},
            static_cast<double>(t.drop_packets[reason]));
      }
      Gauge(rate, {{"tenant", tenant}, {"direction", direction}, {"kind", "allocated"}},
            Bytes(r.allocated_bps));
      Gauge(rate, {{"tenant", tenant}, {"direction", direction}, {"kind", "demand"}},
            Bytes(r.demand_bps));
      Gauge(rate, {{"tenant", tenant}, {"direction", direction}, {"kind", "guaranteed"}},
            Bytes(r.guaranteed_bps));
      Gauge(rate, {{"tenant", tenant}, {"direction", direction}, {"kind", "ceiling"}},
            Bytes(r.ceiling_bps));
    }
  }
  for (MetricFamily* f : {&tx_bytes, &tx_packets, &arrival, &drops, &queue, &rate}) {
    out.push_back(std::move(*f));
  }
  return out;
}

// The same samples as CollectMetrics(all_tenants) followed by
// TextSerializer, without a MetricFamily per tenant series: at 100k tenants
// (3M series) building and serializing those objects was most of a scrape.
// The small families still go through TextSerializer; the tenant families are
// written here, each label prefix escaped once per tenant and direction.
void ControlCore::AppendMetricsText(bool all_tenants, std::string& out) const {
  WriteMetricsText(all_tenants, out, SIZE_MAX, [](std::string& /*whole*/) {});
}

void ControlCore::WriteMetricsText(bool all_tenants, std::string& out, size_t flush_bytes,
                                   const std::function<void(std::string&)>& flush) const {
  const MetricsSnapshot snap = SnapshotMetrics(all_tenants);
  auto flush_if_full = [&] {
    if (out.size() >= flush_bytes) {
      flush(out);
      out.clear();
    }
  };
  const prometheus::TextSerializer serializer;
  out += serializer.Serialize(snap.families);
  if (!snap.has_tenants) {
    flush(out);
    return;
  }

  // `{tenant="NAME",direction="DIR"`, per tenant and direction.
  std::vector<std::string> heads;
  heads.reserve(snap.rows.size() * config::kDirections);
  size_t head_bytes = 0;
  for (const MetricsSnapshot::TenantRow& row : snap.rows) {
    for (uint32_t d = 0; d < config::kDirections; ++d) {
      std::string& h = heads.emplace_back("{tenant=\"");
      AppendLabelValue(h, row.name);
      h += "\",direction=\"";
      h += abi::DirectionName(d);
      h += '"';
      head_bytes += h.size();
    }
  }
  std::vector<std::string> class_tails;
  for (const std::string& c : snap.class_names) class_tails.push_back(LastLabel("class", c));
  std::vector<std::string> reason_tails;
  for (uint32_t r = 0; r < abi::kDropReasons; ++r)
    reason_tails.push_back(LastLabel("reason", abi::DropReasonName(r)));
  std::vector<std::string> kind_tails;
  for (const char* kind : kRateKinds) kind_tails.push_back(LastLabel("kind", kind));

  // Samples per tenant and direction; about 70 bytes a line besides the head
  // (name, last label, value): one allocation for the whole text.
  const size_t classes = class_tails.size();
  const size_t lines = 3 * classes + 1 + abi::kDropReasons + kind_tails.size();
  const size_t whole = head_bytes * lines + heads.size() * lines * 72;
  out.reserve(out.size() + std::min(whole, flush_bytes) + (size_t{1} << 16));

  auto header = [&](const MetricFamily& family) { out += serializer.Serialize({family}); };
  auto sample = [&](std::string_view name, const std::string& head, std::string_view tail,
                    double value) {
    out += name;
    out += head;
    out += tail;
    AppendValue(out, value);
    out += '\n';
  };
  // One family after the other, tenants in id order, as CollectMetrics.
  auto each = [&](const MetricFamily& family, auto&& write) {
    header(family);
    const std::string_view name = family.name;
    for (size_t i = 0; i < snap.rows.size(); ++i) {
      for (uint32_t d = 0; d < config::kDirections; ++d) {
        write(name, heads[i * config::kDirections + d], snap.rows[i].dir[d]);
      }
      flush_if_full();
    }
  };
  using Row = MetricsSnapshot::DirectionRow;
  each(kTxBytes, [&](std::string_view name, const std::string& head, const Row& r) {
    for (size_t c = 0; c < classes; ++c)
      sample(name, head, class_tails[c], static_cast<double>(r.totals.tx[c].tx_bytes));
  });
  each(kTxPackets, [&](std::string_view name, const std::string& head, const Row& r) {
    for (size_t c = 0; c < classes; ++c) {
      sample(name, head, class_tails[c], static_cast<double>(r.totals.tx[c].tx_packets));
    }
  });
  each(kArrival, [&](std::string_view name, const std::string& head, const Row& r) {
    sample(name, head, "} ", static_cast<double>(r.totals.arrival_bytes));
  });
  each(kDrops, [&](std::string_view name, const std::string& head, const Row& r) {
    for (uint32_t reason = 0; reason < abi::kDropReasons; ++reason) {
      sample(name, head, reason_tails[reason], static_cast<double>(r.totals.drop_packets[reason]));
    }
  });
  each(kQueue, [&](std::string_view name, const std::string& head, const Row& r) {
    for (size_t c = 0; c < classes; ++c)
      sample(name, head, class_tails[c], static_cast<double>(r.totals.queued_bytes[c]));
  });
  each(kRate, [&](std::string_view name, const std::string& head, const Row& r) {
    sample(name, head, kind_tails[0], Bytes(r.allocated_bps));
    sample(name, head, kind_tails[1], Bytes(r.demand_bps));
    sample(name, head, kind_tails[2], Bytes(r.guaranteed_bps));
    sample(name, head, kind_tails[3], Bytes(r.ceiling_bps));
  });
  flush(out);
}

}  // namespace shaper::control
