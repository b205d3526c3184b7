#!/usr/bin/env bash
# shaper-dataplane on the veth testbed: three network namespaces,
#   client (c0 10.0.1.1) -- veth -- shaper (sa | sb, DPDK net_af_packet) -- veth -- server (v0 10.0.1.2)
# The shaper bridges sa (port 0, tenant side) and sb (port 1). Two runs:
# without a plan (transparent bridge) and with the dp_test_tool plan, where
# the client is tenant "alpha" (10.0.1.0/24, ceiling 900 Mbit/s on a
# 1 Gbit/s link). Each run: ping through the bridge, an iperf3 TCP upload,
# SIGTERM, exit 0 with `mbufs in use at exit: 0`. A third run bridges two
# net_tap ports instead: the dataplane creates the tap interfaces in the
# shaper namespace, and they are then moved into two namespaces of their own
# (10.0.3.1 and 10.0.3.2), with no veth involved.
#
#   veth_smoke.sh SHAPER_DATAPLANE DP_TEST_TOOL
# Needs root, iproute2, ethtool, iperf3; exits 77 (skipped) without root.
set -euo pipefail
dataplane=$(realpath "$1")
tool=$(realpath "$2")
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: the veth testbed needs root (network namespaces, DPDK)"
  exit 77
fi
for cmd in ip ethtool iperf3 ping; do
  command -v "$cmd" >/dev/null || { echo "FAIL: $cmd is missing (apt-get install iproute2 ethtool iperf3 iputils-ping)"; exit 1; }
done

tag=dp$$
ns_c=${tag}c ns_s=${tag}s ns_v=${tag}v ns_tc=${tag}tc ns_tv=${tag}tv
tmp=$(mktemp -d /tmp/shaper-veth.XXXXXX)
dp_pid=
cleanup() {
  [[ -n "$dp_pid" ]] && kill -KILL "$dp_pid" 2>/dev/null || true
  for ns in "$ns_v" "$ns_tv"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  for ns in "$ns_c" "$ns_s" "$ns_v" "$ns_tc" "$ns_tv"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" INT TERM

for ns in "$ns_c" "$ns_s" "$ns_v" "$ns_tc" "$ns_tv"; do ip netns add "$ns"; done
ip link add c0 netns "$ns_c" type veth peer name sa netns "$ns_s"
ip link add v0 netns "$ns_v" type veth peer name sb netns "$ns_s"
offloads() { ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true; }
for pair in "$ns_c c0" "$ns_s sa" "$ns_s sb" "$ns_v v0"; do
  set -- $pair
  offloads "$1" "$2"
  ip -n "$1" link set "$2" up
done
ip -n "$ns_c" addr add 10.0.1.1/24 dev c0
ip -n "$ns_v" addr add 10.0.1.2/24 dev v0
ip -n "$ns_c" link set lo up
ip -n "$ns_v" link set lo up
"$tool" write-plan "$tmp/test.plan"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

start() {  # start NAME VDEV0 VDEV1 [dataplane options...]: in the shaper namespace
  local name=$1 vdev0=$2 vdev1=$3; shift 3
  ip netns exec "$ns_s" "$dataplane" --no-huge -m 1024 --file-prefix "veth-$tag-$name" --no-pci \
    --no-telemetry -l 0,1 --log-level '*:warning' --vdev "$vdev0" --vdev "$vdev1" \
    -- --pairs 0:1 --ctl-socket "$tmp/$name.sock" "$@" >"$tmp/$name.out" 2>&1 &
  dp_pid=$!
  for _ in $(seq 100); do grep -q '^running' "$tmp/$name.out" && break; sleep 0.1; done
  grep -q '^running' "$tmp/$name.out" || { fail "$name: dataplane did not start"; cat "$tmp/$name.out"; return 1; }
}

run() {  # run NAME [dataplane options...]: af_packet on sa and sb
  local name=$1; shift
  echo "--- $name"
  start "$name" net_af_packet0,iface=sa,framecnt=8192 net_af_packet1,iface=sb,framecnt=8192 "$@" || return
  exercise "$name" "$ns_c" "$ns_v" 10.0.1.2
}

run_tap() {  # two net_tap ports, moved out of the shaper namespace once created
  local name=tap
  echo "--- $name"
  start "$name" net_tap0,iface=shtap0 net_tap1,iface=shtap1 || return
  ip -n "$ns_s" link set shtap0 netns "$ns_tc"
  ip -n "$ns_s" link set shtap1 netns "$ns_tv"
  ip -n "$ns_tc" addr add 10.0.3.1/24 dev shtap0
  ip -n "$ns_tv" addr add 10.0.3.2/24 dev shtap1
  for pair in "$ns_tc shtap0" "$ns_tv shtap1"; do
    set -- $pair
    offloads "$1" "$2"
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
  done
  exercise "$name" "$ns_tc" "$ns_tv" 10.0.3.2
  grep -q 'port 0 (net_tap0): rx [1-9]' "$tmp/$name.out" || fail "$name: net_tap0 received nothing"
}

exercise() {  # exercise NAME CLIENT_NS SERVER_NS SERVER_IP: ping, iperf3, SIGTERM
  local name=$1 client=$2 server=$3 server_ip=$4
  if ip netns exec "$client" ping -c 5 -i 0.2 -W 2 "$server_ip" >"$tmp/ping" 2>&1; then
    echo "ping: $(tail -1 "$tmp/ping")"
  else
    fail "$name: ping through the bridge"; cat "$tmp/ping"
  fi
  ip netns exec "$server" iperf3 -s -1 -D -p 5201 >/dev/null 2>&1
  sleep 0.5
  if ip netns exec "$client" iperf3 -c "$server_ip" -p 5201 -t 4 -J --connect-timeout 3000 >"$tmp/iperf.json" 2>&1; then
    mbps=$(/usr/bin/python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$tmp/iperf.json")
    echo "iperf3 TCP upload: $mbps Mbit/s"
    echo "$name $mbps" >>"$tmp/rates"
    (( mbps >= 50 )) || fail "$name: TCP through the bridge at only $mbps Mbit/s"
    if [[ "$name" == plan ]]; then
      # alpha's ceiling is 900 Mbit/s of frames; goodput must stay below it.
      (( mbps <= 900 )) || fail "$name: $mbps Mbit/s exceeds alpha's 900 Mbit/s ceiling"
    fi
  else
    fail "$name: iperf3"; cat "$tmp/iperf.json"
  fi

  kill -TERM "$dp_pid"
  local rc=0
  wait "$dp_pid" || rc=$?
  dp_pid=
  [[ $rc -eq 0 ]] || fail "$name: exit status $rc"
  grep -q 'mbufs in use at exit: 0' "$tmp/$name.out" || fail "$name: mbufs leaked"
  grep -E 'port [01] |mbufs in use|freed' "$tmp/$name.out" || true
}

run noplan
run plan --plan "$tmp/test.plan"
run_tap
echo "$failures failure(s)"
[[ $failures -eq 0 ]]
