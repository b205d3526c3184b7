// A small fluent builder for test frames, shared by the dataplane and bpf
// tests:
//
//   auto frame = Packet().eth(kSrcMac, kDstMac).vlan(100).vlan(200)
//                    .ipv4("10.0.0.1", "10.0.0.2", /*dscp=*/46)
//                    .udp(1234, 5678).payload(100).bytes();
//
// Layers are appended in call order; length and type fields (EtherType of
// the layer before, IPv4 total length and checksum, IPv6 payload length, UDP
// length) are filled in by bytes(), so a test only says what it cares about.
// Two VLAN tags make a QinQ stack: the outer one gets TPID 0x88a8, inner ones
// 0x8100 (override with vlan(id, tpid)). truncate(n) cuts the finished frame
// to n bytes, for malformed-input tests. Checksums of TCP/UDP are left zero
// (nothing in the shaper reads them).
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace shaper::testing {

using Mac = std::array<uint8_t, 6>;

class Packet {
 public:
  Packet& eth(const Mac& src, const Mac& dst) {
    Layer l{Kind::kEth, {}};
    l.data.insert(l.data.end(), dst.begin(), dst.end());
    l.data.insert(l.data.end(), src.begin(), src.end());
    l.data.push_back(0);  // EtherType, filled by bytes()
    l.data.push_back(0);
    layers_.push_back(std::move(l));
    return *this;
  }
  Packet& eth() { return eth({0x02, 0, 0, 0, 0, 1}, {0x02, 0, 0, 0, 0, 2}); }

  // tpid 0 = choose: 0x88a8 for the first tag when another follows, else 0x8100.
  Packet& vlan(uint16_t id, uint16_t tpid = 0, uint8_t pcp = 0) {
    Layer l{Kind::kVlan, {}};
    const uint16_t tci = static_cast<uint16_t>((pcp & 7) << 13 | (id & 0x0fff));
    l.data = {static_cast<uint8_t>(tci >> 8), static_cast<uint8_t>(tci), 0, 0};
    l.tpid = tpid;
    layers_.push_back(std::move(l));
    return *this;
  }

  Packet& ipv4(const std::string& src, const std::string& dst, uint8_t dscp = 0,
               uint8_t proto = 0) {
    Layer l{Kind::kIpv4, std::vector<uint8_t>(20, 0)};
    l.data[0] = 0x45;
    l.data[1] = static_cast<uint8_t>(dscp << 2);
    l.data[8] = 64;  // TTL
    l.data[9] = proto;
    Parse(AF_INET, src, &l.data[12]);
    Parse(AF_INET, dst, &l.data[16]);
    layers_.push_back(std::move(l));
    return *this;
  }

  Packet& ipv6(const std::string& src, const std::string& dst, uint8_t dscp = 0,
               uint8_t next_header = 59 /* no next header */) {
    Layer l{Kind::kIpv6, std::vector<uint8_t>(40, 0)};
    const uint32_t vtc_flow = 6u << 28 | static_cast<uint32_t>(dscp) << 22;
    for (int i = 0; i < 4; ++i) l.data[i] = static_cast<uint8_t>(vtc_flow >> (24 - 8 * i));
    l.data[6] = next_header;
    l.data[7] = 64;  // hop limit
    Parse(AF_INET6, src, &l.data[8]);
    Parse(AF_INET6, dst, &l.data[24]);
    layers_.push_back(std::move(l));
    return *this;
  }

  Packet& udp(uint16_t sport, uint16_t dport) {
    Layer l{Kind::kUdp, std::vector<uint8_t>(8, 0)};
    Put16(&l.data[0], sport);
    Put16(&l.data[2], dport);
    layers_.push_back(std::move(l));
    return *this;
  }

  Packet& tcp(uint16_t sport, uint16_t dport, uint8_t flags = 0x02 /* SYN */) {
    Layer l{Kind::kTcp, std::vector<uint8_t>(20, 0)};
    Put16(&l.data[0], sport);
    Put16(&l.data[2], dport);
    l.data[12] = 5 << 4;  // data offset: 5 words
    l.data[13] = flags;
    Put16(&l.data[14], 65535);  // window
    layers_.push_back(std::move(l));
    return *this;
  }

  // An ARP request (who-has target_ip tell sender_ip) from sender_mac.
  Packet& arp(const Mac& sender_mac, const std::string& sender_ip, const std::string& target_ip) {
    Layer l{Kind::kArp, std::vector<uint8_t>(28, 0)};
    Put16(&l.data[0], 1);       // hardware: Ethernet
    Put16(&l.data[2], 0x0800);  // protocol: IPv4
    l.data[4] = 6;
    l.data[5] = 4;
    Put16(&l.data[6], 1);  // request
    std::memcpy(&l.data[8], sender_mac.data(), 6);
    Parse(AF_INET, sender_ip, &l.data[14]);
    Parse(AF_INET, target_ip, &l.data[24]);
    layers_.push_back(std::move(l));
    return *this;
  }

  // A layer of arbitrary bytes with an explicit EtherType for the layer
  // before it (e.g. LLDP 0x88cc), for non-IP frames.
  Packet& raw(uint16_t ethertype, std::vector<uint8_t> data) {
    Layer l{Kind::kRaw, std::move(data)};
    l.ethertype = ethertype;
    layers_.push_back(std::move(l));
    return *this;
  }

  Packet& payload(size_t n, uint8_t fill = 0xab) {
    Layer l{Kind::kPayload, std::vector<uint8_t>(n, fill)};
    layers_.push_back(std::move(l));
    return *this;
  }

  // Cut the finished frame to n bytes (no effect if it is shorter).
  Packet& truncate(size_t n) {
    truncate_to_ = n;
    return *this;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<std::vector<uint8_t>> parts;
    for (const Layer& l : layers_) parts.push_back(l.data);
    // Lengths and next-layer type fields, from the innermost layer out.
    size_t tail = 0;
    for (size_t i = layers_.size(); i-- > 0;) {
      std::vector<uint8_t>& d = parts[i];
      const Kind next = i + 1 < layers_.size() ? layers_[i + 1].kind : Kind::kPayload;
      const size_t len_with_tail = d.size() + tail;
      switch (layers_[i].kind) {
        case Kind::kEth:
          Put16(&d[12], EtherTypeOf(i + 1));
          break;
        case Kind::kVlan: {
          Put16(&d[2], EtherTypeOf(i + 1));
          break;
        }
        case Kind::kIpv4:
          Put16(&d[2], static_cast<uint16_t>(len_with_tail));
          if (d[9] == 0) d[9] = next == Kind::kTcp ? 6 : next == Kind::kUdp ? 17 : 0;
          Put16(&d[10], 0);
          Put16(&d[10], Ipv4Checksum(d.data()));
          break;
        case Kind::kIpv6:
          Put16(&d[4], static_cast<uint16_t>(tail));
          if (next == Kind::kTcp) d[6] = 6;
          if (next == Kind::kUdp) d[6] = 17;
          break;
        case Kind::kUdp:
          Put16(&d[4], static_cast<uint16_t>(len_with_tail));
          break;
        default:
          break;
      }
      tail = len_with_tail;
    }
    // The TPID of each VLAN tag sits in the field of the layer before it.
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (layers_[i].kind != Kind::kVlan || i == 0) continue;
      uint16_t tpid = layers_[i].tpid;
      if (tpid == 0) {
        const bool outer = layers_[i - 1].kind != Kind::kVlan;
        const bool more = i + 1 < layers_.size() && layers_[i + 1].kind == Kind::kVlan;
        tpid = outer && more ? 0x88a8 : 0x8100;
      }
      std::vector<uint8_t>& prev = parts[i - 1];
      Put16(&prev[prev.size() - 2], tpid);
    }
    std::vector<uint8_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    if (out.size() > truncate_to_) out.resize(truncate_to_);
    return out;
  }

 private:
  enum class Kind : uint8_t { kEth, kVlan, kIpv4, kIpv6, kUdp, kTcp, kArp, kRaw, kPayload };
  struct Layer {
    Kind kind;
    std::vector<uint8_t> data;
    uint16_t tpid = 0;
    uint16_t ethertype = 0;
  };

  // The EtherType that announces layer i (0 when there is none).
  uint16_t EtherTypeOf(size_t i) const {
    if (i >= layers_.size()) return 0;
    switch (layers_[i].kind) {
      case Kind::kVlan:
        return 0x8100;  // replaced by the TPID pass in bytes()
      case Kind::kIpv4:
        return 0x0800;
      case Kind::kIpv6:
        return 0x86dd;
      case Kind::kArp:
        return 0x0806;
      case Kind::kRaw:
        return layers_[i].ethertype;
      default:
        return 0;
    }
  }

  static void Put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
  }

  static uint16_t Ipv4Checksum(const uint8_t* h) {
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(h[i] << 8 | h[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
  }

  static void Parse(int af, const std::string& text, uint8_t* out) {
    if (inet_pton(af, text.c_str(), out) != 1)
      throw std::invalid_argument("packet_builder: bad address '" + text + "'");
  }

  std::vector<Layer> layers_;
  size_t truncate_to_ = SIZE_MAX;
};

}  // namespace shaper::testing
