// Stats segment: the layout for 2 and 8 classes, byte by byte; what the
// writer puts in per lcore comes out of the reader summed, through an fd
// mapped read-only; a reader cannot map it writable, and refuses a segment
// of another version or with offsets that do not add up.
#include "dataplane/ctl/stats_segment.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace shaper::ctl {
namespace {

TEST(StatsLayout, OffsetsAreAlignedAndSized) {
  const abi::StatsLayout l = abi::ComputeStatsLayout(3, 1000, 2, abi::kMaxClasses);
  EXPECT_EQ(l.ports_offset % 64, 0u);
  EXPECT_EQ(l.lcores_offset % 64, 0u);
  EXPECT_EQ(l.lcore_block_bytes % 64, 0u);
  EXPECT_EQ(l.tenant_stats_offset % 64, 0u);
  EXPECT_GE(l.lcores_offset, l.ports_offset + 2 * sizeof(abi::PortStats));
  EXPECT_GE(l.lcore_block_bytes, l.tenant_stats_offset + 1000ull * abi::kDirections * 208);
  EXPECT_EQ(l.total_bytes, l.lcores_offset + 3 * l.lcore_block_bytes);
}

// The figures worked out by hand from abi/stats.h, for the two counts that
// matter: 2 classes (the benchmark's, the state target) and 8 (the default).
TEST(StatsLayout, TwoAndEightClassesByHand) {
  // Header 192 + 2 ports x 64 = 320; a lcore block: LcoreStats 64, then
  // ClassStats [2][N] x 304, then TenantStats [1000][2] x stride.
  const abi::StatsLayout two = abi::ComputeStatsLayout(3, 1000, 2, 2);
  EXPECT_EQ(two.ports_offset, 192u);
  EXPECT_EQ(two.lcores_offset, 320u);
  EXPECT_EQ(two.class_stats_offset, 64u);
  EXPECT_EQ(two.tenant_stats_offset, 1280u);  // 64 + 4 x 304 = 1280
  EXPECT_EQ(two.tenant_stats_bytes, 88u);     // 48 + 2 x 16 + 2 x 4
  EXPECT_EQ(two.lcore_block_bytes, 177280u);  // 1280 + 2000 x 88
  EXPECT_EQ(two.total_bytes, 320u + 3 * 177280u);

  const abi::StatsLayout eight = abi::ComputeStatsLayout(3, 1000, 2, 8);
  EXPECT_EQ(eight.tenant_stats_offset, 4928u);  // align64(64 + 16 x 304 = 4928)
  EXPECT_EQ(eight.tenant_stats_bytes, 208u);    // 48 + 8 x 16 + 8 x 4: version 1's size
  EXPECT_EQ(eight.lcore_block_bytes, 420928u);  // 4928 + 2000 x 208
  EXPECT_EQ(eight.total_bytes, 320u + 3 * 420928u);

  EXPECT_EQ(abi::QueuedBytesOffset(2), 80u);
  EXPECT_EQ(abi::QueuedBytesOffset(8), 176u);
  EXPECT_EQ(abi::TenantStatsBytes(1), 72u);   // 48 + 16 + 4 = 68, padded to 8
  EXPECT_EQ(abi::TenantStatsBytes(3), 112u);  // 48 + 48 + 12 = 108, padded
}

// For every class count: the regions follow each other without overlap, the
// tails of a tenant's counters fit its stride, and strides keep 8-byte
// alignment (every counter is naturally aligned, so readers never tear).
TEST(StatsLayout, NoOverlapForAnyClassCount) {
  for (uint32_t n = 1; n <= abi::kMaxClasses; ++n) {
    SCOPED_TRACE(n);
    const uint32_t tenants = 777;
    const abi::StatsLayout l = abi::ComputeStatsLayout(2, tenants, 4, n);
    EXPECT_GE(l.ports_offset, sizeof(abi::StatsHeader));
    EXPECT_GE(l.lcores_offset, l.ports_offset + 4 * sizeof(abi::PortStats));
    EXPECT_GE(l.class_stats_offset, sizeof(abi::LcoreStats));
    EXPECT_GE(l.tenant_stats_offset,
              l.class_stats_offset + uint64_t{abi::kDirections} * n * sizeof(abi::ClassStats));
    EXPECT_GE(l.lcore_block_bytes,
              l.tenant_stats_offset + uint64_t{tenants} * abi::kDirections * l.tenant_stats_bytes);
    EXPECT_EQ(l.total_bytes, l.lcores_offset + 2 * l.lcore_block_bytes);
    // Within a tenant's counters: head, tx[n], queued_bytes[n], padding.
    EXPECT_EQ(l.tenant_stats_bytes, abi::TenantStatsBytes(n));
    EXPECT_EQ(l.tenant_stats_bytes % 8, 0u);
    EXPECT_EQ(abi::QueuedBytesOffset(n), sizeof(abi::TenantStats) + n * sizeof(abi::ClassTx));
    EXPECT_LE(abi::QueuedBytesOffset(n) + n * sizeof(uint32_t), l.tenant_stats_bytes);
    EXPECT_LT(l.tenant_stats_bytes, abi::QueuedBytesOffset(n) + n * sizeof(uint32_t) + 8);
    // The accessors land where the offsets say.
    alignas(8) std::byte buf[256] = {};
    auto* ts = reinterpret_cast<abi::TenantStats*>(buf);
    EXPECT_EQ(reinterpret_cast<std::byte*>(abi::TxOf(ts, n - 1)) - buf,
              static_cast<ptrdiff_t>(48 + 16 * (n - 1)));
    EXPECT_EQ(reinterpret_cast<std::byte*>(abi::QueuedBytesOf(ts, n, n - 1)) - buf,
              static_cast<ptrdiff_t>(abi::QueuedBytesOffset(n) + 4 * (n - 1)));
  }
}

TEST(StatsLayout, SojournBuckets) {
  EXPECT_EQ(abi::SojournBucket(0), 0u);
  EXPECT_EQ(abi::SojournBucket(1), 1u);
  EXPECT_EQ(abi::SojournBucket(1023), 10u);
  EXPECT_EQ(abi::SojournBucket(1024), 11u);
  EXPECT_EQ(abi::SojournBucket(UINT64_MAX), abi::kSojournBuckets - 1);
}

TEST(StatsSegment, WriterReaderRoundTripSumsLcores) {
  auto seg = StatsSegment::Create(3, 100, 2, abi::kMaxClasses, 2'000'000'000);
  ASSERT_TRUE(seg.has_value()) << seg.error();
  StatsSegment& w = **seg;
  for (uint32_t l = 0; l < 3; ++l) {
    abi::TenantStats* t = w.tenant(l, 42, abi::kUpload);
    t->arrival_packets = 10 + l;
    t->arrival_bytes = 1000 * (l + 1);
    t->drop_packets[static_cast<int>(abi::DropReason::kQueueFull)] = l;
    w.tx(l, 42, abi::kUpload, 1)->tx_packets = 5;
    w.tx(l, 42, abi::kUpload, 1)->tx_bytes = 5000;
    *w.queued_bytes(l, 42, abi::kUpload, 1) = 100;
    abi::ClassStats* c = w.class_stats(l, abi::kUpload, 1);
    c->sojourn_count += 1;
    c->sojourn_sum_ns += 3000;
    c->sojourn_hist[abi::SojournBucket(3000)] += 1;
    w.lcore(l)->busy_cycles = 10;
    w.lcore(l)->total_cycles = 40;
    w.lcore(l)->malformed_forwarded = l + 1;
  }
  // The neighbours must stay untouched: the helpers address distinct rows.
  w.tenant(0, 41, abi::kUpload)->arrival_packets = 1;
  w.tenant(0, 42, abi::kDownload)->arrival_packets = 2;
  w.port(1)->imissed = 77;
  w.Heartbeat(123456);
  w.SetPlanGeneration(9);

  // A reader gets its own fd, as over the socket.
  const int fd = fcntl(w.fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  auto reader = StatsReader::Map(fd);
  close(fd);
  ASSERT_TRUE(reader.has_value()) << reader.error();
  EXPECT_EQ(reader->num_lcores(), 3u);
  EXPECT_EQ(reader->max_tenants(), 100u);
  EXPECT_EQ(reader->heartbeat(), 1u);
  EXPECT_EQ(reader->last_update_ns(), 123456u);
  EXPECT_EQ(reader->plan_generation(), 9u);
  EXPECT_EQ(reader->header().tsc_hz, 2'000'000'000u);

  const TenantTotals t = reader->SumTenant(42, abi::kUpload);
  EXPECT_EQ(t.arrival_packets, 10u + 11u + 12u);
  EXPECT_EQ(t.arrival_bytes, 6000u);
  EXPECT_EQ(t.drop_packets[static_cast<int>(abi::DropReason::kQueueFull)], 3u);
  EXPECT_EQ(t.drops(), 3u);
  EXPECT_EQ(t.tx[1].tx_packets, 15u);
  EXPECT_EQ(t.tx_bytes(), 15000u);
  EXPECT_EQ(t.tx_packets(), 15u);
  EXPECT_EQ(t.queued_bytes[1], 300u);
  EXPECT_EQ(reader->SumTenant(41, abi::kUpload).arrival_packets, 1u);
  EXPECT_EQ(reader->SumTenant(42, abi::kDownload).arrival_packets, 2u);
  EXPECT_EQ(reader->SumTenant(43, abi::kUpload).arrival_packets, 0u);
  EXPECT_EQ(reader->SumTenant(100, abi::kUpload).arrival_packets, 0u);  // out of range: zeros

  const abi::ClassStats c = reader->SumClass(abi::kUpload, 1);
  EXPECT_EQ(c.sojourn_count, 3u);
  EXPECT_EQ(c.sojourn_sum_ns, 9000u);
  EXPECT_EQ(c.sojourn_hist[12], 3u);  // 3000 ns: bit width 12
  EXPECT_EQ(reader->Port(1).imissed, 77u);
  EXPECT_EQ(reader->Lcore(2).busy_cycles, 10u);
  EXPECT_EQ(reader->Lcore(2).malformed_forwarded, 3u);

  // Live: a later write shows through the same mapping.
  w.tenant(1, 42, abi::kUpload)->arrival_packets += 100;
  w.Heartbeat(200000);
  EXPECT_EQ(reader->SumTenant(42, abi::kUpload).arrival_packets, 133u);
  EXPECT_EQ(reader->heartbeat(), 2u);
}

TEST(StatsSegment, ReadersCannotMapItWritable) {
  auto seg = StatsSegment::Create(1, 10, 1, 2, 1);
  ASSERT_TRUE(seg.has_value()) << seg.error();
  const int seals = fcntl((*seg)->fd(), F_GET_SEALS);
  ASSERT_GE(seals, 0);
  if ((seals & 0x0010 /* F_SEAL_FUTURE_WRITE */) == 0) {
    GTEST_SKIP() << "kernel lacks F_SEAL_FUTURE_WRITE (Linux < 5.1)";
  }
  void* mem =
      mmap(nullptr, (*seg)->size_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, (*seg)->fd(), 0);
  EXPECT_EQ(mem, MAP_FAILED);
  if (mem != MAP_FAILED) munmap(mem, (*seg)->size_bytes());
}

TEST(StatsReader, RejectsWhatIsNotASegment) {
  const int fd = memfd_create("not-stats", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  auto reader = StatsReader::Map(fd);
  ASSERT_FALSE(reader.has_value());
  EXPECT_NE(reader.error().find("header.magic=0x00000000"), std::string::npos) << reader.error();

  // A header whose dimensions promise more than the segment holds.
  auto seg = StatsSegment::Create(1, 10, 1, 2, 1);
  ASSERT_TRUE(seg.has_value());
  abi::StatsHeader h = (*seg)->header();
  h.max_tenants = 1'000'000;
  ASSERT_EQ(pwrite(fd, &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
  auto liar = StatsReader::Map(fd);
  ASSERT_FALSE(liar.has_value());
  EXPECT_NE(liar.error().find("do not match the layout"), std::string::npos) << liar.error();

  // A stride that does not belong to the class count.
  h = (*seg)->header();
  h.tenant_stats_bytes = 208;  // version 1's, with num_classes 2
  ASSERT_EQ(pwrite(fd, &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
  auto stride = StatsReader::Map(fd);
  ASSERT_FALSE(stride.has_value());
  EXPECT_NE(stride.error().find("tenant_stats_bytes 208"), std::string::npos) << stride.error();
  close(fd);
}

// A segment written by another version (here: version 1, fixed 8-class
// arrays) is refused with a message naming both versions, not misread.
TEST(StatsReader, RefusesAnotherVersion) {
  auto seg = StatsSegment::Create(1, 10, 1, 8, 1);
  ASSERT_TRUE(seg.has_value()) << seg.error();
  const int fd = memfd_create("old-stats", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>((*seg)->size_bytes())), 0);
  abi::StatsHeader h = (*seg)->header();
  ASSERT_EQ(pwrite(fd, &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
  ASSERT_TRUE(StatsReader::Map(fd).has_value()) << "the copy itself must be readable";
  h.version = 1;
  ASSERT_EQ(pwrite(fd, &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
  auto reader = StatsReader::Map(fd);
  close(fd);
  ASSERT_FALSE(reader.has_value());
  EXPECT_NE(reader.error().find("header.version=1"), std::string::npos) << reader.error();
  EXPECT_NE(reader.error().find("version 3"), std::string::npos) << reader.error();
}

TEST(StatsSegment, RefusesClassCountsOutsideTheAbi) {
  for (uint32_t n : {0u, abi::kMaxClasses + 1}) {
    auto seg = StatsSegment::Create(1, 10, 1, n, 1);
    ASSERT_FALSE(seg.has_value()) << n;
    EXPECT_NE(seg.error().find(fmt::format("num_classes={}", n)), std::string::npos) << seg.error();
  }
}

// With 2 classes, counters of class 1 land at the byte the layout promises,
// touch nothing else, and the reader sums exactly the 2 classes there are.
TEST(StatsSegment, TwoClassesRoundTripAndPlacement) {
  auto seg = StatsSegment::Create(2, 16, 2, 2, 1);
  ASSERT_TRUE(seg.has_value()) << seg.error();
  StatsSegment& w = **seg;
  EXPECT_EQ(w.header().num_classes, 2u);
  EXPECT_EQ(w.header().tenant_stats_bytes, 88u);
  const abi::StatsLayout l = abi::ComputeStatsLayout(2, 16, 2, 2);
  EXPECT_EQ(w.size_bytes(), l.total_bytes);

  const uint32_t lcore = 1, tenant = 5, dir = abi::kDownload;
  w.tx(lcore, tenant, dir, 1)->tx_packets = 7;
  w.tx(lcore, tenant, dir, 1)->tx_bytes = 700;
  *w.queued_bytes(lcore, tenant, dir, 1) = 1500;
  w.tenant(lcore, tenant, dir)->arrival_packets = 9;
  w.tenant(lcore, tenant, dir)->arrival_bytes = 900;
  w.class_stats(lcore, dir, 1)->sojourn_count = 3;

  const uint64_t row = l.lcores_offset + lcore * l.lcore_block_bytes + l.tenant_stats_offset +
                       (uint64_t{tenant} * abi::kDirections + dir) * 88;
  uint64_t tx_packets = 0, tx_bytes = 0;
  uint32_t queued = 0;
  std::memcpy(&tx_packets, w.base() + row + 48 + 16, 8);
  std::memcpy(&tx_bytes, w.base() + row + 48 + 16 + 8, 8);
  std::memcpy(&queued, w.base() + row + 48 + 32 + 4, 4);
  // Version 3: the arrival pair right before the tx pairs, after the drops.
  uint64_t arrival_packets = 0, arrival_bytes = 0;
  std::memcpy(&arrival_packets, w.base() + row + 32, 8);
  std::memcpy(&arrival_bytes, w.base() + row + 40, 8);
  EXPECT_EQ(arrival_packets, 9u);
  EXPECT_EQ(arrival_bytes, 900u);
  EXPECT_EQ(tx_packets, 7u);
  EXPECT_EQ(tx_bytes, 700u);
  EXPECT_EQ(queued, 1500u);
  uint64_t sojourn_count = 0;
  const uint64_t cls_row = l.lcores_offset + lcore * l.lcore_block_bytes + l.class_stats_offset +
                           (uint64_t{dir} * 2 + 1) * sizeof(abi::ClassStats);
  std::memcpy(&sojourn_count, w.base() + cls_row, 8);
  EXPECT_EQ(sojourn_count, 3u);
  // Every other byte past the header is still zero.
  uint64_t nonzero = 0;
  for (uint64_t i = sizeof(abi::StatsHeader); i < w.size_bytes(); ++i) {
    const bool ours = (i >= row + 32 && i < row + 48) || (i >= row + 64 && i < row + 80) ||
                      (i >= row + 84 && i < row + 88) || (i >= cls_row && i < cls_row + 8);
    if (!ours && w.base()[i] != std::byte{0}) ++nonzero;
  }
  EXPECT_EQ(nonzero, 0u);

  const int fd = fcntl(w.fd(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  auto reader = StatsReader::Map(fd);
  close(fd);
  ASSERT_TRUE(reader.has_value()) << reader.error();
  EXPECT_EQ(reader->num_classes(), 2u);
  const TenantTotals t = reader->SumTenant(tenant, dir);
  EXPECT_EQ(t.num_classes, 2u);
  EXPECT_EQ(t.tx[1].tx_packets, 7u);
  EXPECT_EQ(t.tx[1].tx_bytes, 700u);
  EXPECT_EQ(t.arrival_packets, 9u);
  EXPECT_EQ(t.arrival_bytes, 900u);
  EXPECT_EQ(t.queued_bytes[1], 1500u);
  EXPECT_EQ(t.tx[0].tx_packets, 0u);
  EXPECT_EQ(t.tx_packets(), 7u);
  EXPECT_EQ(reader->SumTenant(tenant + 1, dir).tx_packets(), 0u);
  EXPECT_EQ(reader->SumTenant(tenant, abi::kUpload).tx_packets(), 0u);
  EXPECT_EQ(reader->SumClass(dir, 1).sojourn_count, 3u);
  EXPECT_EQ(reader->SumClass(dir, 2).sojourn_count, 0u);  // no class 2: zeros, no read
}

}  // namespace
}  // namespace shaper::ctl
