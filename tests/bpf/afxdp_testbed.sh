# Sourced by tests/e2e/afxdp_veth.sh and tests/bpf/afxdp_bench.sh: the veth
# testbed of TESTBED.md set up for AF_XDP (bash; the caller sets -euo pipefail).
#
#   client netns (c0) -- veth -- shaper netns (sa | sb) -- veth -- server netns (v0)
#
# What AF_XDP on veth needs, and how it is done here:
#   - offloads off on every end (or the kernel hands over 64 KiB frames);
#   - an XDP program on the peer ends c0 and v0 (any XDP_PASS program), or
#     the veth cannot carry XDP-redirected frames: a two-line program built
#     with clang at setup;
#   - bpffs in the shaper netns. `ip netns exec` gives every command a fresh
#     mount namespace (and /sys), and each bpffs mount is its own instance,
#     so a pin made by one command would be invisible to the next. One
#     holder process keeps a mount namespace with bpffs on /sys/fs/bpf, and
#     `in_shaper CMD` runs CMD in the holder's network and mount namespaces:
#     the dataplane's PMD and shaper-control then see the same pins, and the
#     pins vanish with the holder (nothing is left on the host's bpffs).
#
# afxdp_testbed_up TAG TMPDIR sets ns_c ns_s ns_v and holder_pid;
# afxdp_testbed_down undoes it (call it from the caller's EXIT trap).

afxdp_testbed_up() {
  local tag=$1 tmpdir=$2 ns dev end
  ns_c=${tag}c ns_s=${tag}s ns_v=${tag}v
  for ns in "$ns_c" "$ns_s" "$ns_v"; do ip netns add "$ns"; done
  ip link add c0 netns "$ns_c" type veth peer name sa netns "$ns_s"
  ip link add v0 netns "$ns_v" type veth peer name sb netns "$ns_s"
  for end in "$ns_c c0" "$ns_s sa" "$ns_s sb" "$ns_v v0"; do
    read -r ns dev <<<"$end"
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
      { echo "FAIL: ethtool -K $dev (offloads off) in $ns"; return 1; }
    ip -n "$ns" link set "$dev" up
    ip -n "$ns" link set lo up
  done
  printf '%s\n' '__attribute__((section("xdp"), used)) int pass(void *ctx) { return 2; /* XDP_PASS */ }' \
    'char _license[] __attribute__((section("license"), used)) = "GPL";' |
    clang -O2 -target bpf -c -x c - -o "$tmpdir/xdp_pass.o" ||
    { echo "FAIL: clang could not build the XDP_PASS program for the peer ends"; return 1; }
  ip -n "$ns_c" link set dev c0 xdp obj "$tmpdir/xdp_pass.o" sec xdp ||
    { echo "FAIL: attaching an XDP_PASS program to c0"; return 1; }
  ip -n "$ns_v" link set dev v0 xdp obj "$tmpdir/xdp_pass.o" sec xdp ||
    { echo "FAIL: attaching an XDP_PASS program to v0"; return 1; }
  ip netns exec "$ns_s" sh -c 'mount -t bpf bpf /sys/fs/bpf && exec sleep 100000' &
  holder_pid=$!
  local _
  for _ in $(seq 50); do
    [[ $(nsenter -t "$holder_pid" -m stat -f -c %T /sys/fs/bpf 2>/dev/null) == bpf_fs ]] && return 0
    sleep 0.1
  done
  echo "FAIL: could not mount bpffs in the shaper netns's mount namespace"
  return 1
}

in_shaper() { nsenter -t "$holder_pid" -m -n "$@"; }
# For background commands only (`bg_in_shaper CMD &`): the background
# subshell execs nsenter, which execs CMD without forking (no PID namespace
# is entered), so $! is CMD itself and the caller can signal and wait for it.
bg_in_shaper() { exec nsenter -t "$holder_pid" -m -n "$@"; }

afxdp_testbed_down() {
  [[ -n ${holder_pid:-} ]] && { kill "$holder_pid" 2>/dev/null || true; wait "$holder_pid" 2>/dev/null || true; }
  local ns
  for ns in "${ns_c:-}" "${ns_s:-}" "${ns_v:-}"; do
    [[ -n $ns ]] && ip netns del "$ns" 2>/dev/null || true
  done
}

# Starts shaper-dataplane in the shaper netns on sa/sb in MODE (af_xdp: our
# steering program through the PMD's xdp_prog= devarg; af_packet) and waits
# for "running". Sets dp_pid. Args: MODE DATAPLANE STEER_OBJ FILE_PREFIX CTL_SOCKET LOG.
afxdp_start_dataplane() {
  local mode=$1 dataplane=$2 obj=$3 prefix=$4 sock=$5 log=$6 vdevs
  case $mode in
    af_xdp) vdevs=(--vdev "net_af_xdp0,iface=sa,xdp_prog=$obj" --vdev "net_af_xdp1,iface=sb,xdp_prog=$obj") ;;
    af_packet) vdevs=(--vdev net_af_packet0,iface=sa,framecnt=8192 --vdev net_af_packet1,iface=sb,framecnt=8192) ;;
    *) echo "FAIL: unknown mode $mode"; return 1 ;;
  esac
  bg_in_shaper "$dataplane" --no-huge -m 512 -l 0,1 --file-prefix "$prefix" --no-pci --no-telemetry \
    --log-level '*:warning' "${vdevs[@]}" \
    -- --pairs 0:1 --ctl-socket "$sock" --idle-sleep-us 50 >"$log" 2>&1 &
  dp_pid=$!
  local _
  for _ in $(seq 150); do
    grep -q '^running' "$log" && return 0
    kill -0 "$dp_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: shaper-dataplane ($mode) did not start:"
  tail -20 "$log"
  return 1
}

# Sum over all CPUs of one field of the pinned per-CPU steer_counters
# (struct steer_counters in bpf/steer.h: u64 fields in this order). Raw
# bytes, little-endian: bpftool's "formatted" view is missing for per-CPU maps.
afxdp_counter() {
  in_shaper bpftool -j map dump pinned /sys/fs/bpf/steer_counters |
    /usr/bin/python3 -c 'import json, sys
fields = ["steered", "no_socket", "passed", "malformed", "non_ip", "nd", "vlan_match"]
i = fields.index(sys.argv[1])
raw = lambda v: bytes(int(b, 16) for b in v)
d = json.load(sys.stdin)
print(sum(int.from_bytes(raw(c["value"])[8 * i:8 * i + 8], "little") for e in d for c in e["values"]))' "$1"
}

# The IPv4 prefixes in the pinned steer_v4, one "a.b.c.d/len" per line,
# sorted (key: u32 prefix length, host order, then the address).
afxdp_v4_prefixes() {
  in_shaper bpftool -j map dump pinned /sys/fs/bpf/steer_v4 |
    /usr/bin/python3 -c 'import json, sys
keys = [bytes(int(b, 16) for b in e["key"]) for e in json.load(sys.stdin)]
print("\n".join(sorted(".".join(map(str, k[4:8])) + "/" + str(int.from_bytes(k[:4], "little")) for k in keys)))'
}
