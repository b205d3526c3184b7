// Stats segment writer and reader (see stats_segment.h and abi/stats.h).
#include "dataplane/ctl/stats_segment.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010  // Linux 5.1; older glibc headers lack it
#endif

namespace shaper::ctl {

std::expected<std::unique_ptr<StatsSegment>, std::string> StatsSegment::Create(uint32_t num_lcores,
                                                                               uint32_t max_tenants,
                                                                               uint32_t num_ports,
                                                                               uint32_t num_classes,
                                                                               uint64_t tsc_hz) {
  if (num_lcores == 0 || num_lcores > abi::kMaxLcores) {
    return std::unexpected(
        fmt::format("stats: num_lcores={}: must be in [1, {}]", num_lcores, abi::kMaxLcores));
  }
  if (num_ports > abi::kMaxPorts) {
    return std::unexpected(
        fmt::format("stats: num_ports={}: must be <= {}", num_ports, abi::kMaxPorts));
  }
  if (max_tenants == 0) return std::unexpected(std::string("stats: max_tenants=0: must be > 0"));
  if (num_classes == 0 || num_classes > abi::kMaxClasses) {
    return std::unexpected(
        fmt::format("stats: num_classes={}: must be in [1, {}]", num_classes, abi::kMaxClasses));
  }
  const abi::StatsLayout layout =
      abi::ComputeStatsLayout(num_lcores, max_tenants, num_ports, num_classes);

  const int fd = memfd_create("shaper-stats", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return std::unexpected(fmt::format("stats: memfd_create: {}", std::strerror(errno)));
  if (ftruncate(fd, static_cast<off_t>(layout.total_bytes)) != 0) {
    const int err = errno;
    close(fd);
    return std::unexpected(
        fmt::format("stats: ftruncate to {} bytes: {}", layout.total_bytes, std::strerror(err)));
  }
  void* mem = mmap(nullptr, layout.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    const int err = errno;
    close(fd);
    return std::unexpected(
        fmt::format("stats: mmap {} bytes: {}", layout.total_bytes, std::strerror(err)));
  }
  // Our mapping stays writable; from now on nobody can map it writable or
  // resize it. A kernel older than 5.1 lacks FUTURE_WRITE: readers then rely
  // on mapping PROT_READ themselves, which is still correct.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE) != 0) {
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
  }

  auto* base = static_cast<std::byte*>(mem);
  auto& h = *reinterpret_cast<abi::StatsHeader*>(base);
  h.magic = abi::kStatsMagic;
  h.version = abi::kStatsVersion;
  h.header_bytes = sizeof(abi::StatsHeader);
  h.total_bytes = layout.total_bytes;
  h.tsc_hz = tsc_hz;
  h.num_lcores = num_lcores;
  h.max_tenants = max_tenants;
  h.num_classes = num_classes;
  h.num_ports = num_ports;
  h.num_directions = abi::kDirections;
  h.sojourn_buckets = abi::kSojournBuckets;
  h.ports_offset = layout.ports_offset;
  h.lcores_offset = layout.lcores_offset;
  h.lcore_block_bytes = layout.lcore_block_bytes;
  h.class_stats_offset = layout.class_stats_offset;
  h.tenant_stats_offset = layout.tenant_stats_offset;
  h.class_stats_bytes = sizeof(abi::ClassStats);
  h.tenant_stats_bytes = layout.tenant_stats_bytes;
  return std::unique_ptr<StatsSegment>(new StatsSegment(fd, base, layout.total_bytes));
}

StatsSegment::~StatsSegment() {
  munmap(base_, size_bytes_);
  close(fd_);
}

uint64_t TenantTotals::tx_bytes() const {
  uint64_t sum = 0;
  for (const abi::ClassTx& c : tx) sum += c.tx_bytes;
  return sum;
}
uint64_t TenantTotals::tx_packets() const {
  uint64_t sum = 0;
  for (const abi::ClassTx& c : tx) sum += c.tx_packets;
  return sum;
}
uint64_t TenantTotals::drops() const {
  uint64_t sum = 0;
  for (uint64_t d : drop_packets) sum += d;
  return sum;
}

std::expected<StatsReader, std::string> StatsReader::Map(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return std::unexpected(fmt::format("stats: fstat: {}", std::strerror(errno)));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < sizeof(abi::StatsHeader)) {
    return std::unexpected(
        fmt::format("stats: segment of {} bytes is smaller than its header", size));
  }
  void* mem = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    return std::unexpected(fmt::format("stats: mmap: {}", std::strerror(errno)));
  }
  StatsReader reader(static_cast<const std::byte*>(mem), size);
  const abi::StatsHeader& h = *reader.header_;
  auto fail = [](std::string text) { return std::unexpected(std::move(text)); };
  if (h.magic != abi::kStatsMagic) {
    return fail(fmt::format("stats: header.magic=0x{:08x}: not a stats segment", h.magic));
  }
  if (h.version != abi::kStatsVersion) {
    return fail(fmt::format(
        "stats: header.version={}: this reader speaks version {} only; the dataplane and this "
        "program come from different builds (restart both from the same release)",
        h.version, abi::kStatsVersion));
  }
  if (h.num_lcores == 0 || h.num_lcores > abi::kMaxLcores || h.num_ports > abi::kMaxPorts ||
      h.num_classes == 0 || h.num_classes > abi::kMaxClasses ||
      h.num_directions != abi::kDirections || h.sojourn_buckets != abi::kSojournBuckets ||
      h.header_bytes != sizeof(abi::StatsHeader) ||
      h.class_stats_bytes != sizeof(abi::ClassStats) ||
      h.tenant_stats_bytes != abi::TenantStatsBytes(h.num_classes)) {
    return fail(
        fmt::format("stats: header dimensions (lcores {}, ports {}, classes {}, "
                    "tenant_stats_bytes {}) do not match this reader's layout",
                    h.num_lcores, h.num_ports, h.num_classes, h.tenant_stats_bytes));
  }
  // Recompute the layout from the dimensions: offsets that disagree would
  // point outside the mapping.
  const abi::StatsLayout l =
      abi::ComputeStatsLayout(h.num_lcores, h.max_tenants, h.num_ports, h.num_classes);
  if (h.ports_offset != l.ports_offset || h.lcores_offset != l.lcores_offset ||
      h.lcore_block_bytes != l.lcore_block_bytes || h.class_stats_offset != l.class_stats_offset ||
      h.tenant_stats_offset != l.tenant_stats_offset || h.total_bytes != l.total_bytes ||
      l.total_bytes > size) {
    return fail(
        fmt::format("stats: header.total_bytes={} and offsets do not match the layout "
                    "({} bytes) or the segment ({} bytes)",
                    h.total_bytes, l.total_bytes, size));
  }
  return reader;
}

StatsReader::StatsReader(StatsReader&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      size_bytes_(std::exchange(other.size_bytes_, 0)),
      header_(std::exchange(other.header_, nullptr)) {}

StatsReader& StatsReader::operator=(StatsReader&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(const_cast<std::byte*>(base_), size_bytes_);
    base_ = std::exchange(other.base_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
    header_ = std::exchange(other.header_, nullptr);
  }
  return *this;
}

StatsReader::~StatsReader() {
  if (base_ != nullptr) munmap(const_cast<std::byte*>(base_), size_bytes_);
}

uint64_t StatsReader::heartbeat() const {
  return Load(header_->heartbeat);
}
uint64_t StatsReader::last_update_ns() const {
  return Load(header_->last_update_ns);
}
uint64_t StatsReader::plan_generation() const {
  return Load(header_->plan_generation);
}

TenantTotals StatsReader::SumTenant(uint32_t tenant, uint32_t direction) const {
  TenantTotals sum;
  const uint32_t classes = header_->num_classes;  // checked by Map: <= kMaxClasses
  sum.num_classes = classes;
  if (tenant >= header_->max_tenants || direction >= abi::kDirections) return sum;
  for (uint32_t l = 0; l < header_->num_lcores; ++l) {
    const abi::TenantStats* t =
        abi::TenantAt(abi::LcoreAt(base_, *header_, l), *header_, tenant, direction);
    sum.arrival_packets += Load(t->arrival_packets);
    sum.arrival_bytes += Load(t->arrival_bytes);
    for (uint32_t r = 0; r < abi::kDropReasons; ++r)
      sum.drop_packets[r] += Load(t->drop_packets[r]);
    for (uint32_t c = 0; c < classes; ++c) {
      const abi::ClassTx* tx = abi::TxOf(t, c);
      sum.tx[c].tx_packets += Load(tx->tx_packets);
      sum.tx[c].tx_bytes += Load(tx->tx_bytes);
      sum.queued_bytes[c] += Load(*abi::QueuedBytesOf(t, classes, c));
    }
  }
  return sum;
}

abi::ClassStats StatsReader::SumClass(uint32_t direction, uint32_t cls) const {
  abi::ClassStats sum{};
  if (direction >= abi::kDirections || cls >= header_->num_classes) return sum;
  for (uint32_t l = 0; l < header_->num_lcores; ++l) {
    const abi::ClassStats* c =
        abi::ClassAt(abi::LcoreAt(base_, *header_, l), *header_, direction, cls);
    sum.sojourn_count += Load(c->sojourn_count);
    sum.sojourn_sum_ns += Load(c->sojourn_sum_ns);
    for (uint32_t b = 0; b < abi::kSojournBuckets; ++b)
      sum.sojourn_hist[b] += Load(c->sojourn_hist[b]);
    for (uint32_t r = 0; r < abi::kDropReasons; ++r)
      sum.drop_packets[r] += Load(c->drop_packets[r]);
  }
  return sum;
}

abi::PortStats StatsReader::Port(uint32_t port) const {
  abi::PortStats out{};
  if (port >= header_->num_ports) return out;
  const abi::PortStats* p = abi::PortAt(base_, *header_, port);
  out.rx_packets = Load(p->rx_packets);
  out.rx_bytes = Load(p->rx_bytes);
  out.tx_packets = Load(p->tx_packets);
  out.tx_bytes = Load(p->tx_bytes);
  out.imissed = Load(p->imissed);
  out.rx_nombuf = Load(p->rx_nombuf);
  out.ierrors = Load(p->ierrors);
  out.oerrors = Load(p->oerrors);
  return out;
}

abi::LcoreStats StatsReader::Lcore(uint32_t index) const {
  abi::LcoreStats out{};
  if (index >= header_->num_lcores) return out;
  const abi::LcoreStats* l = abi::LcoreAt(base_, *header_, index);
  out.busy_cycles = Load(l->busy_cycles);
  out.total_cycles = Load(l->total_cycles);
  out.rounds = Load(l->rounds);
  out.lcore_id = Load(l->lcore_id);
  out.in_use = Load(l->in_use);
  out.malformed_forwarded = Load(l->malformed_forwarded);
  return out;
}

}  // namespace shaper::ctl
