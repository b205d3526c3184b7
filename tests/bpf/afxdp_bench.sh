#!/usr/bin/env bash
# AF_XDP against af_packet: TCP throughput through shaper-dataplane on the
# veth testbed, both port types in the same run on the same testbed
# (tests/bpf/afxdp_testbed.sh), alternating so that machine load hits both
# alike. The policy's link and ceiling (10 Gbit/s) are far above what veth
# carries, so the port type, not the shaper's rates, sets the figure.
#
# For each round and mode: shaper-dataplane on sa/sb (net_af_packet, or
# net_af_xdp with xdp_prog=steer.bpf.o), shaper-control pushing the plan
# (and, for AF_XDP, keeping the steering maps), then iperf3 from the tenant
# to the server: one stream and four streams, SECONDS each. Prints one line
# per measurement and a summary (median per mode and stream count) to put in
# docs/benchmarks.md, "## XDP steering". Asserts only that every run
# carried traffic (> 10 Mbit/s) and that AF_XDP frames were steered.
#
#   afxdp_bench.sh SHAPER_DATAPLANE SHAPER_CONTROL STEER_BPF_OBJ [ROUNDS [SECONDS]]
# Exits 77 (skipped) when not root.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 SHAPER_DATAPLANE SHAPER_CONTROL STEER_BPF_OBJ [ROUNDS [SECONDS]]" >&2
  exit 2
fi
dataplane=$(realpath "$1")
control=$(realpath "$2")
steer_obj=$(realpath "$3")
rounds=${4:-2}
seconds=${5:-5}
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: the AF_XDP veth testbed needs root (network namespaces, BPF, DPDK)"
  exit 77
fi
for cmd in ip ethtool iperf3 clang bpftool nsenter /usr/bin/python3; do
  command -v "$cmd" >/dev/null || { echo "FAIL: $cmd is missing"; exit 1; }
done
# shellcheck source=afxdp_testbed.sh
source "$here/afxdp_testbed.sh"

readonly server_ip=10.10.0.1 tenant_ip=10.10.1.10
tag=axb$$
tmp=$(mktemp -d /tmp/shaper-afxdp-bench.XXXXXX)
pids=()
dp_pid=
cleanup() {
  local pid
  for pid in "${pids[@]}" $dp_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}" $dp_pid; do wait "$pid" 2>/dev/null || true; done
  afxdp_testbed_down
  rm -rf "$tmp" /var/run/dpdk/afxdp-bench-$$-*
}
trap cleanup EXIT
trap "exit 1" INT TERM

ulimit -l unlimited 2>/dev/null || true
afxdp_testbed_up "$tag" "$tmp" || exit 1
ip -n "$ns_c" addr add "$tenant_ip/16" dev c0
ip -n "$ns_v" addr add "$server_ip/16" dev v0

cat >"$tmp/policy.yaml" <<'YAML'
version: 1
link: {capacity: 10Gbit, shape_at: 95%, overhead: 24B}
classes:
  - {name: bulk, priority: bulk, weight: 1, queue_limit: 50ms, default: true}
tenants:
  - {name: bench, match: {prefixes: [10.10.1.0/24]}, guaranteed: 1Gbit, ceiling: 9Gbit}
default_tenant: {ceiling: 9Gbit}
allocation: {mode: static}
YAML
bg_in_shaper "$control" --policy "$tmp/policy.yaml" --dataplane "$tmp/dp.sock" --metrics 127.0.0.1:0 \
  --admin "$tmp/admin.sock" --state "" --xdp-maps /sys/fs/bpf >"$tmp/control.log" 2>&1 &
pids+=("$!")
ip netns exec "$ns_v" iperf3 -s -B "$server_ip" -p 5201 >"$tmp/iperf-server.log" 2>&1 &
pids+=("$!")

results=$tmp/results.txt
: >"$results"
run=0
for round in $(seq "$rounds"); do
  for mode in af_packet af_xdp; do
    run=$((run + 1))
    afxdp_start_dataplane "$mode" "$dataplane" "$steer_obj" "afxdp-bench-$$-$run" "$tmp/dp.sock" \
      "$tmp/dp-$run.log" || exit 1
    for _ in $(seq 60); do
      [[ $(grep -c 'msg="plan applied"' "$tmp/control.log") -ge $run ]] && break
      sleep 0.1
    done
    [[ $(grep -c 'msg="plan applied"' "$tmp/control.log") -ge $run ]] ||
      { echo "FAIL: the control did not push its plan to the $mode dataplane"; exit 1; }
    steered_before=$( [[ $mode == af_xdp ]] && afxdp_counter steered || echo 0)
    for streams in 1 4; do
      ip netns exec "$ns_c" iperf3 -c "$server_ip" -B "$tenant_ip" -p 5201 -t "$seconds" -O 1 \
        -P "$streams" -J --connect-timeout 3000 >"$tmp/iperf.json" ||
        { echo "FAIL: iperf3 through the $mode dataplane"; tail -5 "$tmp/dp-$run.log"; exit 1; }
      read -r mbps retransmits < <(/usr/bin/python3 -c 'import json, sys
end = json.load(open(sys.argv[1]))["end"]
print("%.0f" % (end["sum_received"]["bits_per_second"] / 1e6), end["sum_sent"].get("retransmits", -1))' "$tmp/iperf.json")
      echo "round $round $mode streams=$streams: $mbps Mbit/s ($retransmits TCP retransmits)"
      echo "$mode $streams $mbps" >>"$results"
      [[ $mbps -gt 10 ]] || { echo "FAIL: $mode carried only $mbps Mbit/s"; exit 1; }
    done
    if [[ $mode == af_xdp ]]; then
      steered=$(( $(afxdp_counter steered) - steered_before ))
      [[ $steered -gt 1000 ]] || { echo "FAIL: only $steered frames steered in AF_XDP mode"; exit 1; }
    fi
    kill -TERM "$dp_pid"
    rc=0
    wait "$dp_pid" || rc=$?
    grep '^port ' "$tmp/dp-$run.log" | sed 's/^/  /' 
    # AF_XDP: DPDK 22.11's PMD keeps 2048 mbufs per port on its fill ring
    # after close; the dataplane counts them exactly and still exits 0.
    if [[ $rc -ne 0 ]]; then
      echo "FAIL: the $mode dataplane exited with status $rc on SIGTERM"
      tail -5 "$tmp/dp-$run.log"
      exit 1
    fi
    grep '^mbufs in use at exit' "$tmp/dp-$run.log" | sed 's/^/  /'
    dp_pid=
  done
done

echo "--- summary (median Mbit/s over $rounds round(s), ${seconds} s each; load: $(uptime | sed 's/.*load average: //'))"
/usr/bin/python3 - "$results" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    mode, streams, mbps = line.split()
    runs[(mode, int(streams))].append(float(mbps))
for streams in (1, 4):
    p, x = statistics.median(runs[("af_packet", streams)]), statistics.median(runs[("af_xdp", streams)])
    print(f"{streams} stream(s): af_packet {p:.0f}, af_xdp {x:.0f} Mbit/s (x{x / p:.2f}); "
          f"runs af_packet {runs[('af_packet', streams)]}, af_xdp {runs[('af_xdp', streams)]}")
PY
