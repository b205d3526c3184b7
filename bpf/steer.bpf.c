/* XDP steering: which frames enter the shaper, and which stay with the kernel.
 *
 * In AF_XDP mode the NIC keeps its kernel driver. This program runs first on
 * every received frame and decides: a frame that belongs to a managed tenant
 * is redirected to the shaper's AF_XDP socket bound to the frame's rx queue;
 * everything else (SSH to the host, management, routing protocols) is passed
 * to the kernel, so the host stays reachable whether the shaper runs or not.
 *
 * What "belongs to a tenant" means, in order:
 *   1. an outer or inner VLAN id is managed (STEER_F_VLANS, steer_vlans);
 *   2. the frame is IPv4 or IPv6 and its source or destination address lies
 *      in a managed prefix (LPM tries, longest match; STEER_F_MATCH_SRC /
 *      STEER_F_MATCH_DST). By default both addresses are looked up, which
 *      needs no per-port setup; with STEER_F_PER_IFACE a port's entry in
 *      steer_ifaces names the tenant side, one lookup instead of two (see
 *      steer.h);
 *   3. the frame is IPv6 neighbour discovery and STEER_F_ND is set;
 *   4. the frame is neither IPv4 nor IPv6 (ARP, LLDP, a third VLAN tag) and
 *      STEER_F_NON_IP is set: in AF_XDP mode the kernel does not bridge the
 *      two ports, so ARP for tenant addresses must go through the shaper.
 * Steering is a coarse superset: the dataplane classifies each frame to its
 * tenant exactly (or to the default tenant).
 *
 * The redirect uses bpf_redirect_map() with XDP_PASS as the fallback action:
 * when no socket is bound to this queue (the shaper is down or restarting)
 * the helper returns XDP_PASS and the frame goes to the kernel, counted as
 * no_socket. Frames whose headers are cut short are passed as well (counted
 * malformed): the kernel drops them with its own accounting.
 *
 * Bounds: every header is checked against data_end before it is read, with
 * at most two VLAN tags (802.1Q, 802.1ad QinQ) in an unrolled loop, so the
 * verifier sees a fixed, short path.
 */
#include "steer.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

/* Pinning. In AF_XDP mode DPDK's net_af_xdp PMD loads this object itself
 * (devarg xdp_prog=), once per port, with libbpf's default options: every
 * map marked LIBBPF_PIN_BY_NAME is reused from (or pinned at) the default
 * pin root, /sys/fs/bpf/<map name>. So both ports' program instances and
 * shaper-control share one set of prefix, VLAN, config, interface and
 * counter maps. xsks_map is deliberately NOT pinned: each port's instance
 * needs its own, because both ports bind rx queue 0 and the kernel refuses
 * (drops) a redirect to a socket bound to another interface. */
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __type(key, struct steer_lpm_v4);
  __type(value, struct steer_prefix_value);
  __uint(max_entries, STEER_MAX_V4_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC); /* required for LPM tries */
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} STEER_MAP_V4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __type(key, struct steer_lpm_v6);
  __type(value, struct steer_prefix_value);
  __uint(max_entries, STEER_MAX_V6_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} STEER_MAP_V6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, struct steer_vlan_value);
  __uint(max_entries, STEER_VLAN_IDS);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} STEER_MAP_VLANS SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, struct steer_config);
  __uint(max_entries, 1);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} STEER_MAP_CONFIG SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, __u32);
  __type(value, struct steer_iface);
  __uint(max_entries, STEER_MAX_IFACES);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} STEER_MAP_IFACES SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, struct steer_counters);
  __uint(max_entries, 1);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} STEER_MAP_COUNTERS SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, STEER_MAX_QUEUES);
} STEER_MAP_XSKS SEC(".maps");

/* Why a frame is steered (or not); picks the counter. */
enum steer_match {
  MATCH_NONE,
  MATCH_MALFORMED,
  MATCH_ADDR,
  MATCH_VLAN,
  MATCH_ND,
  MATCH_NON_IP,
};

struct vlan_tag {
  __be16 tci;
  __be16 encapsulated_proto;
};

#define ICMPV6_ROUTER_SOLICIT 133
#define ICMPV6_REDIRECT 137

static __always_inline int managed_v4(const __be32* addr) {
  struct steer_lpm_v4 key = {.prefixlen = 32};
  __builtin_memcpy(key.addr, addr, sizeof(key.addr));
  return bpf_map_lookup_elem(&STEER_MAP_V4, &key) != NULL;
}

static __always_inline int managed_v6(const struct in6_addr* addr) {
  struct steer_lpm_v6 key = {.prefixlen = 128};
  __builtin_memcpy(key.addr, addr, sizeof(key.addr));
  return bpf_map_lookup_elem(&STEER_MAP_V6, &key) != NULL;
}

static __always_inline int vlan_managed(__be16 tci) {
  __u32 vid = bpf_ntohs(tci) & 0x0fff;
  struct steer_vlan_value* v = bpf_map_lookup_elem(&STEER_MAP_VLANS, &vid);
  return v && v->managed;
}

static __always_inline enum steer_match classify(void* data, void* data_end, __u32 flags) {
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return MATCH_MALFORMED;

  __be16 proto = eth->h_proto;
  void* cur = eth + 1;
  int vlan_hit = 0;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    struct vlan_tag* tag = cur;
    if ((void*)(tag + 1) > data_end) return MATCH_MALFORMED;
    if ((flags & STEER_F_VLANS) && vlan_managed(tag->tci)) vlan_hit = 1;
    proto = tag->encapsulated_proto;
    cur = tag + 1;
  }
  /* A managed VLAN is steered whatever it carries. */
  if (vlan_hit) return MATCH_VLAN;

  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = cur;
    if ((void*)(ip + 1) > data_end) return MATCH_MALFORMED;
    if (ip->version != 4 || ip->ihl < 5) return MATCH_MALFORMED;
    if ((flags & STEER_F_MATCH_SRC) && managed_v4(&ip->saddr)) return MATCH_ADDR;
    if ((flags & STEER_F_MATCH_DST) && managed_v4(&ip->daddr)) return MATCH_ADDR;
    return MATCH_NONE;
  }
  if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = cur;
    if ((void*)(ip6 + 1) > data_end) return MATCH_MALFORMED;
    if (ip6->version != 6) return MATCH_MALFORMED;
    if ((flags & STEER_F_MATCH_SRC) && managed_v6(&ip6->saddr)) return MATCH_ADDR;
    if ((flags & STEER_F_MATCH_DST) && managed_v6(&ip6->daddr)) return MATCH_ADDR;
    if ((flags & STEER_F_ND) && ip6->nexthdr == IPPROTO_ICMPV6) {
      /* Stacks send ND right after the fixed header (RFC 6980 forbids
       * fragmenting it); ND behind extension headers is matched by address
       * only. */
      __u8* icmp_type = (void*)(ip6 + 1);
      if ((void*)(icmp_type + 1) <= data_end && *icmp_type >= ICMPV6_ROUTER_SOLICIT &&
          *icmp_type <= ICMPV6_REDIRECT)
        return MATCH_ND;
    }
    return MATCH_NONE;
  }
  return (flags & STEER_F_NON_IP) ? MATCH_NON_IP : MATCH_NONE;
}

SEC("xdp")
int STEER_PROG(struct xdp_md* ctx) {
  __u32 zero = 0;
  struct steer_counters* cnt = bpf_map_lookup_elem(&STEER_MAP_COUNTERS, &zero);
  struct steer_config* cfg = bpf_map_lookup_elem(&STEER_MAP_CONFIG, &zero);
  if (!cnt || !cfg) return XDP_PASS; /* cannot happen for arrays; keeps the verifier happy */

  __u32 flags = cfg->flags;
  if (flags & STEER_F_PER_IFACE) {
    __u32 ifindex = ctx->ingress_ifindex;
    struct steer_iface* port = bpf_map_lookup_elem(&STEER_MAP_IFACES, &ifindex);
    if (port) {
      const __u32 sides = STEER_F_MATCH_SRC | STEER_F_MATCH_DST;
      flags = (flags & ~sides) | (port->match_flags & sides);
    }
  }

  void* data = (void*)(long)ctx->data;
  void* data_end = (void*)(long)ctx->data_end;
  switch (classify(data, data_end, flags)) {
    case MATCH_NONE:
      cnt->passed++;
      return XDP_PASS;
    case MATCH_MALFORMED:
      cnt->malformed++;
      return XDP_PASS;
    case MATCH_VLAN:
      cnt->vlan_match++;
      break;
    case MATCH_ND:
      cnt->nd++;
      break;
    case MATCH_NON_IP:
      cnt->non_ip++;
      break;
    case MATCH_ADDR:
      break;
  }
  long verdict = bpf_redirect_map(&STEER_MAP_XSKS, ctx->rx_queue_index, XDP_PASS);
  if (verdict == XDP_REDIRECT)
    cnt->steered++;
  else
    cnt->no_socket++;
  return (int)verdict;
}

/* No GPL-only helper is used, so the project's own licence is fine. */
char LICENSE[] SEC("license") = "Apache-2.0";
