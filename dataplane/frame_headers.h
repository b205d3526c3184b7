// The classifier's header walk as a pure function of a frame's bytes.
//
// ClassifyTables::ClassifyBurst (classify.cc) calls it for each frame and then
// looks the tenant-side address up; keeping the walk free of DPDK types lets
// tests/fuzz run it on arbitrary bytes (a libFuzzer target built with clang
// needs no EAL, mempool or mbuf for it).
//
// It reads p[0 .. data_len) only (the first segment: headers must sit in it)
// and checks the IP length fields against pkt_len (the whole frame, all
// segments). See classify.h for what is malformed and what a frame is given.
#pragma once

#include <cstdint>

namespace shaper::dataplane {

struct FrameHeaders {
  enum class Family : uint8_t { kNone, kIpv4, kIpv6 };
  bool malformed = false;  // cut short inside a header, or impossible header fields
  bool non_ip = false;     // a well-formed frame of another EtherType (ARP, LLDP, ...)
  bool vlan_tagged = false;
  uint16_t vlan = 0;  // the outermost tag's VLAN id; 0 if untagged
  Family family = Family::kNone;  // set only on a well-formed IP frame
  uint8_t dscp = 0;               // valid when family != kNone
  uint32_t addr_offset = 0;       // the tenant-side address: 4 (IPv4) or 16 (IPv6) bytes at p + this
};

inline constexpr uint32_t kFrameEtherHeaderBytes = 14;
inline constexpr uint32_t kFrameMaxVlanTags = 2;

namespace frame_detail {
inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline bool IsVlanTpid(uint16_t type) { return type == 0x8100 || type == 0x88a8 || type == 0x9100; }
}  // namespace frame_detail

// upload: the tenant is the source address (else the destination).
inline FrameHeaders ParseFrameHeaders(const uint8_t* p, uint32_t data_len, uint32_t pkt_len,
                                      bool upload) {
  using frame_detail::Load16;
  FrameHeaders h;
  if (data_len < kFrameEtherHeaderBytes) {
    h.malformed = true;
    return h;
  }
  uint16_t type = Load16(p + 12);
  uint32_t off = kFrameEtherHeaderBytes;
  uint32_t tags = 0;
  while (frame_detail::IsVlanTpid(type)) {
    if (tags == kFrameMaxVlanTags || off + 4 > data_len) {
      h.malformed = true;
      break;
    }
    if (tags == 0) h.vlan = Load16(p + off) & 0x0fff;
    type = Load16(p + off + 2);
    off += 4;
    ++tags;
  }
  h.vlan_tagged = tags != 0;
  if (h.malformed) return h;

  if (type == 0x0800) {
    const uint8_t* ip = p + off;
    if (off + 20 > data_len) {
      h.malformed = true;
      return h;
    }
    const uint32_t ihl_bytes = (ip[0] & 0x0f) * 4u;
    if ((ip[0] >> 4) != 4 || ihl_bytes < 20 || off + ihl_bytes > data_len) {
      h.malformed = true;
      return h;
    }
    const uint32_t total = Load16(ip + 2);
    if (total < ihl_bytes || off + total > pkt_len) {
      h.malformed = true;
      return h;
    }
    h.family = FrameHeaders::Family::kIpv4;
    h.dscp = static_cast<uint8_t>(ip[1] >> 2);
    h.addr_offset = off + (upload ? 12 : 16);
  } else if (type == 0x86dd) {
    const uint8_t* ip = p + off;
    if (off + 40 > data_len || (ip[0] >> 4) != 6 || off + 40u + Load16(ip + 4) > pkt_len) {
      h.malformed = true;
      return h;
    }
    h.family = FrameHeaders::Family::kIpv6;
    h.dscp = static_cast<uint8_t>(((ip[0] & 0x0f) << 2) | (ip[1] >> 6));
    h.addr_offset = off + (upload ? 8 : 24);
  } else {
    h.non_ip = true;
  }
  return h;
}

}  // namespace shaper::dataplane
