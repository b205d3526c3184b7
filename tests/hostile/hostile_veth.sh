#!/usr/bin/env bash
# Hostile input through the running bridge, on the veth testbed (TESTBED.md):
#   client (c0 10.0.1.1) -- veth -- shaper (sa | sb, DPDK net_af_packet) -- veth -- server (v0 10.0.1.2)
# Policy: tenant "good" = 10.0.1.0/24 with a 100 Mbit/s ceiling; everything
# else is the default tenant (10 Mbit/s). While an iperf3 TCP upload from the
# client is shaped, the client also sends (malformed.py) truncated headers at
# every boundary, bad IHL, IPv6 extension chains, VLAN stacks, runts, jumbo,
# all-zero and random frames, and corrupted plans (corrupt_plans.py) are
# pushed on the control socket. Asserts:
#   - every corrupted plan is refused with a reason naming a field, and the
#     plan generation in force does not change;
#   - the good flow stays shaped: goodput <= its 100 Mbit/s ceiling and >= 30
#     (not starved; the lower bound is loose for a loaded CI machine);
#   - the dataplane stays up (ping through it afterwards) and counts the
#     malformed frames (`malformed frames forwarded: N` at exit >= what
#     malformed.py says it sent malformed; the default tenant's arrivals grow
#     by at least the frames sent, jumbo frames excepted);
#   - clean exit on SIGTERM with no mbuf leaked.
#
#   hostile_veth.sh SHAPER_DATAPLANE DP_TEST_TOOL SHAPER_PLAN
# Needs root, iproute2, ethtool, iperf3, python3-scapy; exits 77 without root.
set -euo pipefail
dataplane=$(realpath "$1")
tool=$(realpath "$2")
plan_tool=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: the veth testbed needs root (network namespaces, DPDK)"
  exit 77
fi
for cmd in ip ethtool iperf3 ping; do
  command -v "$cmd" >/dev/null || { echo "FAIL: $cmd is missing (apt-get install iproute2 ethtool iperf3 iputils-ping)"; exit 1; }
done
/usr/bin/python3 -c 'import scapy' 2>/dev/null || { echo "FAIL: python3-scapy is missing (apt-get install python3-scapy)"; exit 1; }

tag=hx$$
ns_c=${tag}c ns_s=${tag}s ns_v=${tag}v
tmp=$(mktemp -d /tmp/shaper-hostile.XXXXXX)
dp_pid= iperf_pid=
cleanup() {
  [[ -n "$dp_pid" ]] && kill -KILL "$dp_pid" 2>/dev/null || true
  [[ -n "$iperf_pid" ]] && kill -KILL "$iperf_pid" 2>/dev/null || true
  for ns in "$ns_c" "$ns_v"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  for ns in "$ns_c" "$ns_s" "$ns_v"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" INT TERM

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for ns in "$ns_c" "$ns_s" "$ns_v"; do ip netns add "$ns"; done
ip link add c0 netns "$ns_c" type veth peer name sa netns "$ns_s"
ip link add v0 netns "$ns_v" type veth peer name sb netns "$ns_s"
for pair in "$ns_c c0" "$ns_s sa" "$ns_s sb" "$ns_v v0"; do
  set -- $pair
  ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  ip -n "$1" link set "$2" up
done
# Jumbo frames leave the client and reach the shaper's port; the TCP flow keeps MSS 1460.
ip -n "$ns_c" link set c0 mtu 9000
ip -n "$ns_s" link set sa mtu 9000
ip -n "$ns_c" addr add 10.0.1.1/24 dev c0
ip -n "$ns_v" addr add 10.0.1.2/24 dev v0
ip -n "$ns_c" route add 10.0.1.2/32 dev c0 mtu 1500
for ns in "$ns_c" "$ns_v"; do ip -n "$ns" link set lo up; done

cat >"$tmp/policy.yaml" <<'YAML'
version: 1
link: {capacity: 1Gbit, shape_at: 95%, overhead: 24B}
classes:
  - {name: bulk, priority: bulk, weight: 1, queue_limit: 50ms, default: true}
tenants:
  - {name: good, match: {prefixes: [10.0.1.0/24]}, guaranteed: 50Mbit, ceiling: 100Mbit}
default_tenant: {ceiling: 10Mbit}
YAML
"$plan_tool" "$tmp/policy.yaml" -o "$tmp/good.plan" >/dev/null
/usr/bin/python3 "$here/corrupt_plans.py" "$tmp/good.plan" "$tmp/corrupt" >"$tmp/corrupt.list"

ip netns exec "$ns_s" "$dataplane" --no-huge -m 1024 --file-prefix "hostile-$tag" --no-pci \
  --no-telemetry -l 0,1 --log-level '*:warning' \
  --vdev net_af_packet0,iface=sa,framecnt=8192 --vdev net_af_packet1,iface=sb,framecnt=8192 \
  -- --pairs 0:1 --ctl-socket "$tmp/dp.sock" --plan "$tmp/good.plan" >"$tmp/dp.out" 2>&1 &
dp_pid=$!
for _ in $(seq 150); do grep -q '^running' "$tmp/dp.out" && break; sleep 0.1; done
grep -q '^running' "$tmp/dp.out" || { cat "$tmp/dp.out"; echo "FAIL: dataplane did not start"; exit 1; }

stat_json() { "$tool" stats "$tmp/dp.sock"; }
field() {  # field JSON-EXPR (evaluated on the stats as `s`)
  stat_json | /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
gen_before=$(field 's["generation"]')
default_before=$(field 's["tenants"]["0"]["upload"]["arrival_packets"]')

ip netns exec "$ns_c" ping -c 3 -i 0.2 -W 2 10.0.1.2 >/dev/null || fail "ping through the bridge before the test"
ip netns exec "$ns_v" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
sleep 0.5
ip netns exec "$ns_c" iperf3 -c 10.0.1.2 -p 5201 -t 12 -J --connect-timeout 3000 >"$tmp/iperf.json" 2>&1 &
iperf_pid=$!
sleep 2

# Malformed traffic beside the flow, several rounds.
start=$(date +%s.%N)
ip netns exec "$ns_c" /usr/bin/python3 "$here/malformed.py" c0 20 >"$tmp/malformed.json" 2>"$tmp/malformed.err" ||
  { cat "$tmp/malformed.err"; fail "malformed.py"; }
echo "malformed traffic: $(cat "$tmp/malformed.json") in $(echo "$(date +%s.%N) - $start" | bc) s"

# Corrupted plans on the control socket, while the flow runs.
refused=0
while read -r name file; do
  set +e
  out=$("$tool" push "$tmp/dp.sock" "$file" 2>&1)
  rc=$?
  set -e
  if [[ $rc -eq 3 && ( "$out" == invalid:* || "$out" == bad_request:* ) ]]; then
    refused=$((refused + 1))
    echo "  $name: refused: $(echo "$out" | head -1)"
  elif [[ $rc -eq 1 && "$name" == empty ]]; then
    refused=$((refused + 1))  # the client will not send an empty payload
    echo "  $name: refused by the client: $(echo "$out" | head -1)"
  else
    fail "corrupted plan $name: exit $rc (want 3, refused naming a field): $out"
  fi
done <"$tmp/corrupt.list"
echo "corrupted plans refused: $refused of $(wc -l <"$tmp/corrupt.list")"
gen_after=$(field 's["generation"]')
[[ "$gen_after" == "$gen_before" ]] || fail "plan generation changed from $gen_before to $gen_after"

wait "$iperf_pid" || fail "iperf3 failed: $(cat "$tmp/iperf.json")"
iperf_pid=
mbps=$(/usr/bin/python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6, 1))' "$tmp/iperf.json")
echo "good TCP flow beside the malformed traffic: $mbps Mbit/s (ceiling 100, load: $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/python3 -c 'import sys; v=float(sys.argv[1]); sys.exit(0 if 30 <= v <= 100 else 1)' "$mbps" ||
  fail "good flow at $mbps Mbit/s: want 30..100 (shaped at its 100 Mbit/s ceiling, not starved)"

kill -0 "$dp_pid" 2>/dev/null || fail "the dataplane died"
ip netns exec "$ns_c" ping -c 3 -i 0.2 -W 2 10.0.1.2 >/dev/null || fail "ping through the bridge after the malformed traffic"
default_after=$(field 's["tenants"]["0"]["upload"]["arrival_packets"]')
total=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$tmp/malformed.json")
want_malformed=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["malformed"])' "$tmp/malformed.json")
jumbo=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jumbo"])' "$tmp/malformed.json")
echo "default tenant upload arrivals: $default_before -> $default_after (frames sent: $total, of which jumbo: $jumbo)"
# Jumbo frames leave c0 but net_af_packet (frames of 2048 bytes) does not
# deliver them: they are not required to arrive, everything else is.
(( default_after - default_before >= total - jumbo )) ||
  fail "default tenant saw $((default_after - default_before)) arrivals, fewer than the $((total - jumbo)) non-jumbo frames sent"

kill -TERM "$dp_pid"
rc=0
wait "$dp_pid" || rc=$?
dp_pid=
[[ $rc -eq 0 ]] || fail "dataplane exit status $rc"
grep -E 'malformed|mbufs in use|port [01] ' "$tmp/dp.out" || true
got=$(sed -n 's/^malformed frames forwarded: \([0-9]*\)$/\1/p' "$tmp/dp.out")
[[ -n "$got" ]] || fail "no 'malformed frames forwarded' line at exit"
(( ${got:-0} >= want_malformed )) || fail "malformed frames counted: ${got:-none}, sent: $want_malformed"
grep -q 'mbufs in use at exit: 0' "$tmp/dp.out" || fail "mbufs leaked"
echo "$failures failure(s)"
[[ $failures -eq 0 ]]
