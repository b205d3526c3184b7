// libFuzzer target: the classifier's header walk (dataplane/frame_headers.h,
// what ClassifyTables::ClassifyBurst runs on every received frame) on
// arbitrary bytes.
//
// Input: one frame. The bytes are copied into a buffer of exactly their size,
// so AddressSanitizer sees any read past the first segment. The walk runs
// twice: as a one-segment frame (pkt_len == data_len) and as the first
// segment of a longer chained frame (pkt_len > data_len), both directions.
// Beyond "no crash", it checks what the classifier promises its caller:
//   - a frame is exactly one of malformed / non-IP / IPv4 / IPv6;
//   - the tenant address it points at lies inside the first segment;
//   - the VLAN id is 12 bits and only set on a tagged frame;
//   - a frame shorter than an Ethernet header is malformed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dataplane/frame_headers.h"

namespace {

using shaper::dataplane::FrameHeaders;

[[noreturn]] void Fail(const char* what, uint32_t len) {
  std::fprintf(stderr, "fuzz_classify: %s (frame of %u bytes)\n", what, len);
  std::abort();
}

void Check(const uint8_t* p, uint32_t data_len, uint32_t pkt_len, bool upload) {
  const FrameHeaders h = shaper::dataplane::ParseFrameHeaders(p, data_len, pkt_len, upload);
  const bool ip = h.family != FrameHeaders::Family::kNone;
  if (int{h.malformed} + int{h.non_ip} + int{ip} != 1) Fail("not exactly one of malformed/non-IP/IP", data_len);
  if (data_len < shaper::dataplane::kFrameEtherHeaderBytes && !h.malformed) Fail("runt not malformed", data_len);
  if (h.vlan > 0x0fff) Fail("vlan id wider than 12 bits", data_len);
  if (h.vlan != 0 && !h.vlan_tagged) Fail("vlan id on an untagged frame", data_len);
  if (ip) {
    const uint32_t addr_bytes = h.family == FrameHeaders::Family::kIpv4 ? 4 : 16;
    if (h.addr_offset + addr_bytes > data_len) Fail("tenant address past the first segment", data_len);
    if (h.dscp >= 64) Fail("dscp >= 64", data_len);
    // Touch the address, as the LPM lookup will.
    volatile uint8_t sink = 0;
    for (uint32_t i = 0; i < addr_bytes; ++i) sink = static_cast<uint8_t>(sink ^ p[h.addr_offset + i]);
    (void)sink;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;  // larger than any frame a port delivers
  const auto len = static_cast<uint32_t>(size);
  std::unique_ptr<uint8_t[]> frame(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(frame.get(), data, size);
  for (bool upload : {false, true}) {
    Check(frame.get(), len, len, upload);
    Check(frame.get(), len, len + 9000, upload);  // the first segment of a chained frame
  }
  return 0;
}
