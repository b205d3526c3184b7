#!/usr/bin/env bash
# AF_XDP mode end to end on the veth testbed (TESTBED.md): shaper-dataplane's
# ports are net_af_xdp with our steering program (bpf/steer.bpf.o, devarg
# xdp_prog=), shaper-control keeps its pinned maps in step with the policy
# (--xdp-maps), and traffic outside the policy stays with the kernel.
#
#   client netns (c0: tenants 10.10.1-4.10/16, management 10.10.250.10/16)
#     -- veth -- shaper netns (sa: 10.10.200.1/16, the host's own address | sb)
#     -- veth -- server netns (v0: 10.10.0.1/16)
# Everything in the shaper netns runs in one mount namespace with bpffs
# (tests/bpf/afxdp_testbed.sh says why).
#
# Steps and what each asserts:
#   1. start: control (first, it creates and pins the maps) and dataplane;
#      steer_v4 holds exactly the policy's three prefixes; both ports run
#      steer_xdp; a tenant pings the server through the shaper;
#   2. shaping: tenant-a (ceiling 200Mbit) uploads over TCP for 4 s through
#      the AF_XDP ports: iperf3's goodput is within 100..210 Mbit/s and the
#      steered counter grew by at least the segments sent;
#   3. reload: the policy drops tenant-c (10.10.3.0/24) and adds tenant-d
#      (10.10.4.0/24): steer_v4 holds exactly 1, 2, 4; tenant-d's ping now
#      crosses the shaper, tenant-c's no longer does (passed to the kernel,
#      which does not forward); the control logged added=1 removed=1
#      unchanged=2, and a second reload of the same file changed nothing
#      (unchanged=3: idempotent);
#   4. management: an SSH-like TCP service (a banner on 10.10.200.1:2222 in
#      the shaper netns) answers the management address while the dataplane
#      runs, and again after the dataplane was killed (SIGKILL: the program
#      stays attached with no socket, frames fall back to the kernel): the
#      passed counter grew, and a tenant frame sent meanwhile is counted
#      no_socket;
#   5. restart: the dataplane refuses to start over the program the killed
#      one left attached, naming it and the fix; detached, it starts again
#      and a tenant crosses it (the pinned maps kept the prefixes);
#   6. shaper-control with --xdp-maps on a directory that is not bpffs exits
#      non-zero with the exact reason;
#   7. clean stop: SIGTERM to the restarted dataplane (which carried pings):
#      exit 0, each port names the 2048 mbufs DPDK 22.11's AF_XDP PMD keeps
#      on its fill ring, and `mbufs in use at exit:` is 0 or within those
#      4096 (more would be a leak: exit 1).
#
#   afxdp_veth.sh SHAPER_DATAPLANE SHAPER_CONTROL SHAPERCTL STEER_BPF_OBJ
# Exits 77 (skipped) when not root; as root every missing tool is a failure.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 SHAPER_DATAPLANE SHAPER_CONTROL SHAPERCTL STEER_BPF_OBJ" >&2
  exit 2
fi
dataplane=$(realpath "$1")
control=$(realpath "$2")
shaperctl=$(realpath "$3")
steer_obj=$(realpath "$4")
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: the AF_XDP veth testbed needs root (network namespaces, BPF, DPDK)"
  exit 77
fi
for cmd in ip ethtool iperf3 ping clang bpftool nsenter /usr/bin/python3; do
  command -v "$cmd" >/dev/null || {
    echo "FAIL: $cmd is missing (apt-get install iproute2 ethtool iperf3 iputils-ping clang bpftool util-linux python3)"
    exit 1
  }
done
for f in "$dataplane" "$control" "$shaperctl" "$steer_obj" "$here/../bpf/afxdp_testbed.sh"; do
  [[ -e "$f" ]] || { echo "FAIL: $f does not exist"; exit 1; }
done
# shellcheck source=../bpf/afxdp_testbed.sh
source "$here/../bpf/afxdp_testbed.sh"

readonly server_ip=10.10.0.1 host_ip=10.10.200.1 mgmt_ip=10.10.250.10
tag=axv$$
file_prefix=afxdp-e2e-$$
tmp=$(mktemp -d /tmp/shaper-afxdp-e2e.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  afxdp_testbed_down
  rm -rf "$tmp" "/var/run/dpdk/$file_prefix"
}
trap cleanup EXIT
trap "exit 1" INT TERM

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() {
  echo "FAIL: $*"
  for log in dp control; do
    [[ -s "$tmp/$log.log" ]] && { echo "--- $log.log (last 20 lines)"; tail -20 "$tmp/$log.log"; }
  done
  exit 1
}
pings() {  # pings FROM: 0 when the server answers from that source address
  ip netns exec "$ns_c" ping -c 2 -i 0.2 -W 1 -I "$1" "$server_ip" >/dev/null 2>&1
}
banner() {  # the first line the management service sends to mgmt_ip, or ""
  ip netns exec "$ns_c" /usr/bin/python3 -c '
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], 2222), timeout=3, source_address=(sys.argv[2], 0))
    print(s.recv(64).decode().strip())
except OSError as e:
    print(f"no answer: {e}", file=sys.stderr)' "$host_ip" "$mgmt_ip"
}
policy() {  # policy TENANT_NAME:OCTET... : the testbed policy with these tenants
  echo "version: 1
link: {capacity: 1Gbit, shape_at: 95%, overhead: 24B}
classes:
  - {name: realtime, priority: latency, dscp: [EF], max_share: 20%, queue_limit: 2ms}
  - {name: bulk, priority: bulk, weight: 1, queue_limit: 50ms, default: true}
tenants:"
  local t
  for t in "$@"; do
    echo "  - {name: ${t%%:*}, match: {prefixes: [10.10.${t##*:}.0/24]}, guaranteed: 50Mbit, ceiling: 200Mbit}"
  done
  echo "default_tenant: {ceiling: 10Mbit}
allocation: {mode: dynamic, interval: 100ms}"
}

# --- the testbed
ulimit -l unlimited 2>/dev/null ||
  echo "note: could not raise RLIMIT_MEMLOCK ($(ulimit -l) KiB); kernels >= 5.11 account BPF memory by cgroup instead" >&2
afxdp_testbed_up "$tag" "$tmp" || die "testbed setup"
for octet in 1 2 3 4 250; do ip -n "$ns_c" addr add "10.10.$octet.10/16" dev c0; done
ip -n "$ns_v" addr add "$server_ip/16" dev v0
ip -n "$ns_s" addr add "$host_ip/16" dev sa
# The host's own address is reached by the management address only. ARP is
# steered (STEER_F_NON_IP: it must cross the bridge for tenants), so the
# management pair's neighbours are static, as on a host whose management
# shares the tenant port (docs/architecture.md, "XDP steering").
sa_mac=$(ip -n "$ns_s" -j link show sa | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
c0_mac=$(ip -n "$ns_c" -j link show c0 | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
ip -n "$ns_c" neigh replace "$host_ip" lladdr "$sa_mac" dev c0 nud permanent
ip -n "$ns_s" neigh replace "$mgmt_ip" lladdr "$c0_mac" dev sa nud permanent
bg_in_shaper /usr/bin/python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 2222))
s.listen(8)
while True:
    c, _ = s.accept()
    c.sendall(b"SSH-2.0-shaper-afxdp-test\r\n")
    c.close()' "$host_ip" >"$tmp/sshd.log" 2>&1 &
pids+=("$!")

# --- step 1: control, then the dataplane
mkdir "$tmp/policy"
policy tenant-a:1 tenant-b:2 tenant-c:3 >"$tmp/policy/policy.yaml"
bg_in_shaper "$control" --policy "$tmp/policy/policy.yaml" --dataplane "$tmp/dp.sock" \
  --metrics 127.0.0.1:0 --admin "$tmp/admin.sock" --state "" --xdp-maps /sys/fs/bpf \
  >"$tmp/control.log" 2>&1 &
control_pid=$!
pids+=("$control_pid")
for _ in $(seq 50); do grep -q 'msg="xdp steering maps synced"' "$tmp/control.log" && break; sleep 0.1; done
grep -q 'msg="xdp steering maps synced"' "$tmp/control.log" || die "shaper-control did not sync the maps"
afxdp_start_dataplane af_xdp "$dataplane" "$steer_obj" "$file_prefix" "$tmp/dp.sock" "$tmp/dp.log" ||
  die "dataplane"
pids+=("$dp_pid")
for _ in $(seq 50); do grep -q 'msg="plan applied"' "$tmp/control.log" && break; sleep 0.1; done
grep -q 'msg="plan applied"' "$tmp/control.log" || die "the control did not push its plan"
# Each AF_XDP port lends the kernel a 2048-entry fill ring, beyond its RX
# descriptors: the pool is sized for it.
grep -q '^mbuf pool: .*RX rings +2048 for AF_XDP fill rings' "$tmp/dp.log" ||
  fail "the pool is not sized for the AF_XDP fill rings: $(grep '^mbuf pool' "$tmp/dp.log")"

prefixes=$(afxdp_v4_prefixes | tr '\n' ' ')
[[ $prefixes == "10.10.1.0/24 10.10.2.0/24 10.10.3.0/24 " ]] ||
  fail "steer_v4 holds '$prefixes' at start, expected the policy's 10.10.1-3.0/24"
for dev in sa sb; do
  ip -n "$ns_s" link show "$dev" | grep -q 'prog/xdp id [0-9]* name steer_xdp' ||
    fail "$dev does not run steer_xdp: $(ip -n "$ns_s" link show "$dev" | grep prog || echo 'no XDP program')"
done
pings 10.10.1.10 || die "tenant-a (10.10.1.10) cannot ping the server through the AF_XDP shaper"

# --- step 2: tenant-a is shaped through the AF_XDP ports
ip netns exec "$ns_v" iperf3 -s -1 -B "$server_ip" -p 5201 >"$tmp/iperf-server.log" 2>&1 &
pids+=("$!")
sleep 0.3
steered_before=$(afxdp_counter steered)
ip netns exec "$ns_c" iperf3 -c "$server_ip" -B 10.10.1.10 -p 5201 -t 4 -O 1 -J \
  --connect-timeout 3000 >"$tmp/iperf.json" || die "iperf3 from tenant-a through the shaper failed"
read -r goodput_mbps segments < <(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["end"]
print("%.1f" % (r["sum_received"]["bits_per_second"] / 1e6), int(r["sum_sent"]["bytes"] / 1448))' "$tmp/iperf.json")
steered=$(( $(afxdp_counter steered) - steered_before ))
echo "tenant-a through AF_XDP with a 200Mbit ceiling: ${goodput_mbps} Mbit/s goodput over 4 s; ${steered} frames steered"
/usr/bin/python3 -c "import sys; sys.exit(0 if 100 <= $goodput_mbps <= 210 else 1)" ||
  fail "tenant-a at $goodput_mbps Mbit/s through AF_XDP, expected 100..210 (ceiling 200Mbit)"
[[ $steered -ge $segments ]] || fail "only $steered frames steered for ~$segments TCP segments sent"

# --- step 3: a reload adds tenant-d and removes tenant-c
pings 10.10.4.10 && fail "10.10.4.10 crossed the shaper before its tenant existed (not steered: the kernel should drop it)"
pings 10.10.3.10 || fail "tenant-c (10.10.3.10) cannot ping the server before the reload"
policy tenant-a:1 tenant-b:2 tenant-d:4 >"$tmp/policy/.new"
mv "$tmp/policy/.new" "$tmp/policy/policy.yaml"
for _ in $(seq 50); do
  [[ $(grep -c 'msg="xdp steering maps synced"' "$tmp/control.log") -ge 2 ]] && break
  sleep 0.1
done
sync_line=$(grep 'msg="xdp steering maps synced"' "$tmp/control.log" | sed -n 2p)
[[ $sync_line == *"added=1 updated=0 removed=1 unchanged=2"* ]] ||
  fail "the reload's map sync: '$sync_line', expected added=1 updated=0 removed=1 unchanged=2"
prefixes=$(afxdp_v4_prefixes | tr '\n' ' ')
[[ $prefixes == "10.10.1.0/24 10.10.2.0/24 10.10.4.0/24 " ]] ||
  fail "steer_v4 holds '$prefixes' after the reload, expected 10.10.1, 2 and 4.0/24"
pings 10.10.4.10 || fail "tenant-d (10.10.4.10) cannot ping the server after the reload added it"
pings 10.10.3.10 && fail "10.10.3.10 still crosses the shaper after the reload removed tenant-c"
"$shaperctl" reload --admin "$tmp/admin.sock" >/dev/null || fail "shaperctl reload failed"
sync_line=$(grep 'msg="xdp steering maps synced"' "$tmp/control.log" | tail -1)
[[ $sync_line == *"added=0 updated=0 removed=0 unchanged=3"* ]] ||
  fail "reloading the same policy changed the maps: '$sync_line'"

# --- step 4: management traffic is the kernel's, shaper up or down
answer=$(banner)
[[ $answer == SSH-2.0-* ]] || fail "the management service did not answer while the dataplane runs ('$answer')"
passed_before=$(afxdp_counter passed)
no_socket_before=$(afxdp_counter no_socket)
kill -KILL "$dp_pid"
wait "$dp_pid" 2>/dev/null || true
ip -n "$ns_s" link show sa | grep -q 'name steer_xdp' ||
  fail "steer_xdp is no longer attached to sa after the dataplane was killed"
answer=$(banner)
echo "management service with the dataplane killed: '$answer'"
[[ $answer == SSH-2.0-* ]] || fail "the management service did not answer with the dataplane stopped ('$answer')"
pings 10.10.1.10 && fail "tenant-a crossed the (stopped) shaper"
passed=$(( $(afxdp_counter passed) - passed_before ))
no_socket=$(( $(afxdp_counter no_socket) - no_socket_before ))
echo "with the dataplane killed: $passed frames passed, $no_socket tenant frames found no socket"
[[ $passed -ge 3 ]] || fail "only $passed frames passed to the kernel for a TCP handshake and banner"
[[ $no_socket -ge 2 ]] || fail "only $no_socket tenant frames counted no_socket (2 pings sent)"

# --- step 5: restart after the kill. The PMD attaches only where no XDP
# program is, so the dataplane must refuse, naming the leftover program and
# the fix; once it is detached the dataplane starts again on the same maps.
in_shaper "$dataplane" --no-huge -m 256 -l 0,1 --file-prefix "$file_prefix-r" --no-pci \
  --no-telemetry --vdev "net_af_xdp0,iface=sa,xdp_prog=$steer_obj" \
  --vdev "net_af_xdp1,iface=sb,xdp_prog=$steer_obj" -- --pairs 0:1 --ctl-socket "$tmp/dp2.sock" \
  >"$tmp/dp-refused.log" 2>&1 && fail "the dataplane started over the program a killed one left attached"
grep -q "interface sa already runs XDP program steer_xdp .*ip link set dev sa xdp off" "$tmp/dp-refused.log" ||
  fail "the refusal does not name the leftover steer_xdp and the fix: $(cat "$tmp/dp-refused.log")"
ip -n "$ns_s" link set dev sa xdp off
ip -n "$ns_s" link set dev sb xdp off
afxdp_start_dataplane af_xdp "$dataplane" "$steer_obj" "$file_prefix" "$tmp/dp.sock" "$tmp/dp.log" ||
  die "dataplane restart"
pids+=("$dp_pid")
for _ in $(seq 50); do pings 10.10.1.10 && break; sleep 0.2; done
pings 10.10.1.10 || fail "tenant-a cannot cross the restarted dataplane"

# --- step 6: BPF missing is named exactly (here: no bpffs at the directory)
if in_shaper "$control" --policy "$tmp/policy/policy.yaml" --dataplane "$tmp/none.sock" \
  --metrics 127.0.0.1:0 --admin "$tmp/admin2.sock" --state "" --xdp-maps "$tmp" >"$tmp/nobpf.log" 2>&1; then
  fail "shaper-control started with --xdp-maps on a directory that is not bpffs"
fi
grep -q "is not on a bpf filesystem (mount it: mount -t bpf bpf /sys/fs/bpf)" "$tmp/nobpf.log" ||
  fail "shaper-control's error without bpffs: $(cat "$tmp/nobpf.log")"

# --- step 7: a clean stop of the AF_XDP dataplane
kill -TERM "$dp_pid"
dp_rc=0
wait "$dp_pid" || dp_rc=$?
mbuf_line=$(grep '^mbufs in use at exit: ' "$tmp/dp.log" || echo 'no "mbufs in use at exit" line')
echo "AF_XDP dataplane on SIGTERM: exit status $dp_rc; $mbuf_line"
[[ $dp_rc -eq 0 ]] || fail "the AF_XDP dataplane exited with status $dp_rc on SIGTERM: $(tail -4 "$tmp/dp.log")"
kept_re="^mbufs in use at exit: ([0-9]+ \(all within the 4096 that DPDK 22\.11's AF_XDP PMD keeps in its fill rings after close\)|0)\$"
[[ $mbuf_line =~ $kept_re ]] || fail "unexpected exit line: '$mbuf_line'"
for p in 0 1; do
  grep -q "^port $p (net_af_xdp$p): net_af_xdp keeps 2048 mbufs after close" "$tmp/dp.log" ||
    fail "port $p does not say what the PMD keeps after close: $(grep "^port $p " "$tmp/dp.log")"
done

kill -TERM "$control_pid"
wait "$control_pid" || fail "shaper-control exited with status $? on SIGTERM"
echo "$failures failure(s)"
[[ $failures -eq 0 ]]
