// Stats segment: what the writer puts in per lcore comes out of the reader
// summed, through an fd mapped read-only; a reader cannot map it writable.
#include "dataplane/ctl/stats_segment.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

namespace shaper::ctl {
namespace {

TEST(StatsLayout, OffsetsAreAlignedAndSized) {
  const abi::StatsLayout l = abi::ComputeStatsLayout(3, 1000, 2);
  EXPECT_EQ(l.ports_offset % 64, 0u);
  EXPECT_EQ(l.lcores_offset % 64, 0u);
  EXPECT_EQ(l.lcore_block_bytes % 64, 0u);
  EXPECT_EQ(l.tenant_stats_offset % 64, 0u);
  EXPECT_GE(l.lcores_offset, l.ports_offset + 2 * sizeof(abi::PortStats));
  EXPECT_GE(l.lcore_block_bytes,
            l.tenant_stats_offset + 1000ull * abi::kDirections * sizeof(abi::TenantStats));
  EXPECT_EQ(l.total_bytes, l.lcores_offset + 3 * l.lcore_block_bytes);
}

TEST(StatsLayout, SojournBuckets) {
  EXPECT_EQ(abi::SojournBucket(0), 0u);
  EXPECT_EQ(abi::SojournBucket(1), 1u);
  EXPECT_EQ(abi::SojournBucket(1023), 10u);
  EXPECT_EQ(abi::SojournBucket(1024), 11u);
  EXPECT_EQ(abi::SojournBucket(UINT64_MAX), abi::kSojournBuckets - 1);
}

TEST(StatsSegment, WriterReaderRoundTripSumsLcores) {
  auto seg = StatsSegment::Create(3, 100, 2, 2'000'000'000);
  ASSERT_TRUE(seg.has_value()) << seg.error();
  StatsSegment& w = **seg;
  for (uint32_t l = 0; l < 3; ++l) {
    abi::TenantStats* t = w.tenant(l, 42, abi::kUpload);
    t->arrival_packets = 10 + l;
    t->arrival_bytes = 1000 * (l + 1);
    t->drop_packets[static_cast<int>(abi::DropReason::kQueueFull)] = l;
    t->tx[1].tx_packets = 5;
    t->tx[1].tx_bytes = 5000;
    t->queued_bytes[1] = 100;
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
  auto seg = StatsSegment::Create(1, 10, 1, 1);
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
  auto seg = StatsSegment::Create(1, 10, 1, 1);
  ASSERT_TRUE(seg.has_value());
  abi::StatsHeader h = (*seg)->header();
  h.max_tenants = 1'000'000;
  ASSERT_EQ(pwrite(fd, &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
  auto liar = StatsReader::Map(fd);
  ASSERT_FALSE(liar.has_value());
  EXPECT_NE(liar.error().find("do not match the layout"), std::string::npos) << liar.error();
  close(fd);
}

}  // namespace
}  // namespace shaper::ctl
