/* The one header shared by the XDP steering program (bpf/steer.bpf.c, BPF C)
 * and its userspace side (bpf/steer_loader.cc, control, tests: C++).
 *
 * Everything that crosses the boundary lives here: map names, the pin
 * directory, and the layout of every key and value. Fields are fixed-width,
 * padding is explicit, sizes are asserted, and most structs keep spare room
 * so a later field does not change the layout the running program expects.
 * tests/bpf/steer_abi_test.cc compares these structs with the BTF of the
 * built steer.bpf.o (sizes and member offsets), so C and C++ cannot drift
 * apart silently.
 *
 * Plain C on purpose (no namespaces, no constexpr): the BPF side is C.
 */
#ifndef SHAPER_BPF_STEER_H_
#define SHAPER_BPF_STEER_H_

#include <linux/types.h>

#ifdef __cplusplus
#define STEER_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define STEER_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* Map names. The BPF C defines its maps with these identifiers; userspace
 * uses the strings (STEER_NAME) to find and pin them. Kernel object names
 * are at most 15 characters. */
#define STEER_MAP_V4 steer_v4             /* LPM trie: managed IPv4 prefixes */
#define STEER_MAP_V6 steer_v6             /* LPM trie: managed IPv6 prefixes */
#define STEER_MAP_VLANS steer_vlans       /* array[4096]: managed VLAN ids */
#define STEER_MAP_CONFIG steer_config     /* array[1]: struct steer_config */
#define STEER_MAP_COUNTERS steer_counters /* per-CPU array[1]: verdicts */
#define STEER_MAP_XSKS xsks_map           /* XSKMAP: rx queue -> AF_XDP socket */
#define STEER_MAP_IFACES steer_ifaces     /* hash: ifindex -> struct steer_iface */
#define STEER_PROG steer_xdp              /* the XDP program */

#define STEER_STR_(x) #x
#define STEER_NAME(x) STEER_STR_(x)

/* Where the maps are pinned (each at STEER_PIN_DIR "/" its name), so that
 * DPDK's net_af_xdp PMD, which loads steer.bpf.o itself per port, and
 * shaper-control share them, and a restarted shaper-control finds the
 * prefixes it loaded before and reconciles only the difference. It is
 * libbpf's default pin root: DPDK 22.11's PMD opens the object with default
 * options, so maps marked LIBBPF_PIN_BY_NAME land there and nowhere else
 * (docs/architecture.md, "XDP steering"). xsks_map is never pinned. */
#define STEER_PIN_DIR "/sys/fs/bpf"

/* Capacities. LPM tries allocate per entry (BPF_F_NO_PREALLOC), so a large
 * maximum costs nothing until used; 2^20 covers the 1M-prefix benchmark. */
#define STEER_MAX_V4_PREFIXES (1u << 20)
#define STEER_MAX_V6_PREFIXES (1u << 20)
#define STEER_MAX_QUEUES 256u
#define STEER_VLAN_IDS 4096u
#define STEER_MAX_IFACES 64u

/* LPM trie keys: the kernel requires prefixlen (host order, in bits) first,
 * then the address in network byte order. */
struct steer_lpm_v4 {
  __u32 prefixlen;
  __u8 addr[4];
};
STEER_STATIC_ASSERT(sizeof(struct steer_lpm_v4) == 8, "steer_lpm_v4 layout");

struct steer_lpm_v6 {
  __u32 prefixlen;
  __u8 addr[16];
};
STEER_STATIC_ASSERT(sizeof(struct steer_lpm_v6) == 20, "steer_lpm_v6 layout");

/* The value of a managed prefix. The program only needs "present"; the
 * tenant id makes the maps readable with bpftool and is room for a later
 * per-tenant verdict (e.g. steering to a tenant-specific queue). */
struct steer_prefix_value {
  __u32 tenant_id;
  __u32 flags; /* reserved, 0 */
  __u32 spare[2];
};
STEER_STATIC_ASSERT(sizeof(struct steer_prefix_value) == 16, "steer_prefix_value layout");

/* A managed VLAN: steer_vlans[vid].managed != 0. */
struct steer_vlan_value {
  __u32 managed;
};
STEER_STATIC_ASSERT(sizeof(struct steer_vlan_value) == 4, "steer_vlan_value layout");

/* steer_config.flags. An all-zero config (a program nobody configured)
 * steers nothing: every frame goes to the kernel, the safe default. */
enum steer_config_flags {
  /* Match the source address against the managed prefixes. */
  STEER_F_MATCH_SRC = 1u << 0,
  /* Match the destination address. A bridge port sees both directions of a
   * tenant's traffic only as ingress of one side each (download on the
   * core side: tenant = destination; upload on the access side: tenant =
   * source); matching both on every port needs no per-port setup and is
   * what the loader configures by default. */
  STEER_F_MATCH_DST = 1u << 1,
  /* Steer frames that are neither IPv4 nor IPv6 (ARP, LLDP, ...). In AF_XDP
   * mode the kernel does not bridge the two ports, so ARP for tenant
   * addresses only crosses the bridge if the shaper gets it. The cost: the
   * host's own ARP on that port goes to the shaper too; where a port also
   * carries the host's address, turn this off and give tenants their own
   * port (or VLAN). */
  STEER_F_NON_IP = 1u << 2,
  /* Steer IPv6 neighbour discovery (ICMPv6 133..137 right after the fixed
   * header): ND uses link-local and solicited-node addresses that are in no
   * tenant's prefix, yet must cross the bridge like ARP. */
  STEER_F_ND = 1u << 3,
  /* Steer frames whose outer or inner VLAN id is in steer_vlans. */
  STEER_F_VLANS = 1u << 4,
  /* Look the ingress interface up in steer_ifaces: an entry there replaces
   * STEER_F_MATCH_SRC / STEER_F_MATCH_DST for that port. Naming the tenant
   * side per port (core side: destination, access side: source) makes one
   * LPM lookup per frame instead of two; off, no per-port lookup is made. */
  STEER_F_PER_IFACE = 1u << 5,
};

struct steer_config {
  __u32 flags; /* enum steer_config_flags */
  __u32 spare[7];
};
STEER_STATIC_ASSERT(sizeof(struct steer_config) == 32, "steer_config layout");

/* Which address is the tenant's on one port: STEER_F_MATCH_SRC and/or
 * STEER_F_MATCH_DST (other bits are ignored). */
struct steer_iface {
  __u32 match_flags;
  __u32 spare[3];
};
STEER_STATIC_ASSERT(sizeof(struct steer_iface) == 16, "steer_iface layout");

/* Per-CPU verdict counters; readers sum the CPUs. Every frame is counted in
 * exactly one of steered / no_socket / passed / malformed; non_ip,
 * nd and vlan_match break the matched frames down further. */
struct steer_counters {
  __u64 steered;    /* matched and redirected to the shaper's AF_XDP socket */
  __u64 no_socket;  /* matched, but no socket on this rx queue: passed */
  __u64 passed;     /* not managed: passed to the kernel */
  __u64 malformed;  /* truncated or bad header: passed, the kernel decides */
  __u64 non_ip;     /* matched because non-IP and STEER_F_NON_IP */
  __u64 nd;         /* matched because IPv6 ND and STEER_F_ND */
  __u64 vlan_match; /* matched because of a managed VLAN */
  __u64 spare[1];
};
STEER_STATIC_ASSERT(sizeof(struct steer_counters) == 64, "steer_counters: one cache line");

#endif /* SHAPER_BPF_STEER_H_ */
