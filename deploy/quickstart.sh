#!/usr/bin/env bash
# shaper quickstart: one command, as root, on a Debian 12 machine. It installs
# the dependencies (deploy/install-deps.sh), builds with meson, reserves 2 MiB
# hugepages if it can (else runs DPDK with --no-huge and says so), builds the
# veth testbed (three network namespaces: client, shaper, server), starts
# shaper-dataplane (net_af_packet) in the middle, shaper-control on a copy of
# config/examples/testbed.yaml and a Prometheus server (127.0.0.1, temporary
# storage), drives greedy iperf3 traffic (4 TCP flows per tenant, restarted
# if they end) for tenant-a, tenant-b and tenant-c plus an EF ping, and shows
# `shaperctl top` live. Ctrl-C, or `quickstart.sh --stop` from another shell,
# tears everything down: processes, namespaces, DPDK runtime files, hugepages.
#
#   sudo deploy/quickstart.sh [--build-dir DIR] [--duration N] [--no-huge] [--no-build]
#   sudo deploy/quickstart.sh --stop
#
#   --build-dir DIR  meson build directory (default: build); set up if missing
#   --duration N     run N seconds without the live view: print a status
#                    snapshot every 5 s, then tear down (exit 0 if the shaper
#                    ran the whole time)
#   --no-huge        do not reserve hugepages (DPDK --no-huge -m 512)
#   --no-build       use the build directory as it is (it must be built)
#   --stop           tear down a quickstart running elsewhere
#   -h, --help       this text
# Environment: SHAPER_SKIP_DEPS=1 skips apt; SHAPER_QUICKSTART_STATE sets the
# state directory (default /run/shaper-quickstart: pids, names, logs, policy).
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=testbed.sh
source "$root/deploy/testbed.sh"

build="$root/build"
duration=0
no_huge=0
no_build=0
stop=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir)
      [[ $# -ge 2 ]] || { echo "quickstart: --build-dir needs a directory" >&2; exit 2; }
      build=$(realpath -m "$2"); shift 2 ;;
    --duration)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] ||
        { echo "quickstart: --duration needs a whole number of seconds > 0, got '${2:-}'" >&2; exit 2; }
      duration=$2; shift 2 ;;
    --no-huge) no_huge=1; shift ;;
    --no-build) no_build=1; shift ;;
    --stop) stop=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "quickstart: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

state=${SHAPER_QUICKSTART_STATE:-/run/shaper-quickstart}
state=${state%/}
hp=/sys/kernel/mm/hugepages/hugepages-2048kB
readonly hugepages_wanted=256  # 512 MiB, the dataplane's -m 512

if [[ $(id -u) -ne 0 ]]; then
  echo "quickstart: run as root (network namespaces, DPDK, apt): sudo $0" >&2
  exit 1
fi

# --- teardown, from the state directory alone (this process or --stop's)
stop_pid() {  # PID NAME: SIGTERM, up to 5 s, then SIGKILL
  local pid=$1 _
  kill -0 "$pid" 2>/dev/null || return 0
  # Ours only if its command line names the state directory (every process
  # recorded in $state/pids does): a stale pid may belong to another program.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$state/" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "quickstart: $2 (pid $pid) ignored SIGTERM for 5 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

teardown() {
  [[ -d "$state" ]] || return 0
  local name pid
  # The control first, so that it does not see the dataplane vanish.
  if [[ -f "$state/pids" ]]; then
    while read -r name pid; do
      [[ $name == top ]] && stop_pid "$pid" "$name"
    done <"$state/pids"
    while read -r name pid; do
      [[ $name == control ]] && stop_pid "$pid" "$name"
    done <"$state/pids"
  fi
  if [[ -f "$state/tag" ]]; then
    tb_init "$(cat "$state/tag")"
    # Traffic first, then the dataplane on its own so it can drain and exit.
    local ns pids
    for ns in "$TB_NS_C" "$TB_NS_V"; do
      [[ -e "/run/netns/$ns" ]] || continue
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [[ -z "$pids" ]] || kill -TERM $pids 2>/dev/null || true
    done
    if [[ -f "$state/pids" ]]; then
      while read -r name pid; do
        [[ $name == dataplane ]] && stop_pid "$pid" "$name"
      done <"$state/pids"
    fi
    grep -h 'mbufs in use at exit' "$state/dp.log" 2>/dev/null | sed 's/^/shaper-dataplane: /' || true
    tb_destroy
  fi
  if [[ -f "$state/pids" ]]; then
    while read -r name pid; do
      [[ $name == prometheus ]] && stop_pid "$pid" "$name"
    done <"$state/pids"
  fi
  if [[ -f "$state/hugepages_added" ]]; then
    local added now
    added=$(cat "$state/hugepages_added")
    now=$(cat "$hp/nr_hugepages")
    echo $((now > added ? now - added : 0)) >"$hp/nr_hugepages" 2>/dev/null || true
  fi
  if [[ -f "$state/hugetlbfs_mounted" ]]; then
    umount /dev/hugepages 2>/dev/null || true
  fi
  if [[ -f "$state/hugepages_dir_made" ]]; then
    rmdir /dev/hugepages 2>/dev/null || true
  fi
  rm -rf "$state"
  echo "quickstart: torn down (namespaces, processes, DPDK runtime files${added:+, $added hugepages})"
}

# The pid in $state/main.pid, if that process is still a quickstart.
running_main() {
  local main
  main=$(cat "$state/main.pid" 2>/dev/null || true)
  [[ -n "$main" ]] && kill -0 "$main" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$main/cmdline" 2>/dev/null | grep -q 'quickstart\.sh' && echo "$main"
}

if [[ $stop -eq 1 ]]; then
  [[ -d "$state" ]] || { echo "quickstart: nothing to stop ($state does not exist)"; exit 0; }
  if main=$(running_main); then
    echo "quickstart: asking the quickstart (pid $main) to tear down"
    kill -TERM "$main"
    for _ in $(seq 300); do [[ -d "$state" ]] || break; sleep 0.1; done
  fi
  # Gone without cleaning up (killed, crashed): do it from here.
  [[ -d "$state" ]] && teardown
  exit 0
fi

if [[ -d "$state" ]]; then
  if main=$(running_main); then
    echo "quickstart: already running (pid $main); stop it with: $0 --stop" >&2
    exit 1
  fi
  echo "quickstart: cleaning up what a previous run left in $state"
  teardown
fi

failed=1
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ $failed -eq 1 && -d "$state" ]]; then
    for log in dp control prometheus; do
      [[ -s "$state/$log.log" ]] && { echo "--- $state/$log.log (last 15 lines)"; tail -15 "$state/$log.log"; }
    done
  fi
  echo
  echo "== tearing down"
  teardown
  exit "$rc"
}

cd "$root"
if [[ "${SHAPER_SKIP_DEPS:-0}" != 1 ]]; then
  echo "== installing dependencies (Debian packages; SHAPER_SKIP_DEPS=1 skips this)"
  deploy/install-deps.sh
fi
for cmd in ip ethtool iperf3 ping curl prometheus meson ninja /usr/bin/python3; do
  command -v "$cmd" >/dev/null ||
    { echo "quickstart: $cmd is missing (run deploy/install-deps.sh, or unset SHAPER_SKIP_DEPS)" >&2; exit 1; }
done

if [[ $no_build -eq 1 ]]; then
  echo "== using the build in $build as it is (--no-build)"
else
  echo "== building in $build"
fi
if [[ $no_build -eq 0 && ! -f "$build/build.ninja" ]]; then
  meson setup "$build" >"$build.setup.log" 2>&1 ||
    { cat "$build.setup.log"; echo "quickstart: meson setup failed" >&2; exit 1; }
  rm -f "$build.setup.log"
fi
if [[ $no_build -eq 0 ]]; then
  meson compile -C "$build" -j "$(nproc)" >"$build/quickstart-build.log" 2>&1 ||
    { tail -30 "$build/quickstart-build.log"; echo "quickstart: build failed; run: meson compile -C $build" >&2; exit 1; }
fi
dataplane=$build/dataplane/shaper-dataplane
control=$build/control/daemon/shaper-control
shaperctl=$build/control/shaperctl
for f in "$dataplane" "$control" "$shaperctl"; do
  [[ -x "$f" ]] || { echo "quickstart: $f was not built" >&2; exit 1; }
done

# From here on everything is recorded in $state and undone on exit.
mkdir -p "$state"
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo $$ >"$state/main.pid"
tag=qs$$
echo "$tag" >"$state/tag"
tb_init "$tag"
: >"$state/pids"

# --- hugepages, if we can have them
eal=(--no-huge -m 512)
memory="no hugepages (DPDK --no-huge -m 512)"
if [[ $no_huge -eq 1 ]]; then
  memory+=": --no-huge was given"
elif [[ ! -w $hp/nr_hugepages ]]; then
  memory+=": $hp is missing or read-only"
else
  if ! mountpoint -q /dev/hugepages; then
    [[ -d /dev/hugepages ]] || { mkdir /dev/hugepages && touch "$state/hugepages_dir_made"; }
    mount -t hugetlbfs none /dev/hugepages 2>/dev/null && touch "$state/hugetlbfs_mounted"
  fi
  free=$(cat "$hp/free_hugepages")
  if [[ $free -lt $hugepages_wanted ]]; then
    before=$(cat "$hp/nr_hugepages")
    echo $((before + hugepages_wanted - free)) >"$hp/nr_hugepages" 2>/dev/null || true
    echo $(($(cat "$hp/nr_hugepages") - before)) >"$state/hugepages_added"
  fi
  if ! mountpoint -q /dev/hugepages; then
    memory+=": no hugetlbfs on /dev/hugepages"
  elif [[ $(cat "$hp/free_hugepages") -lt $hugepages_wanted ]]; then
    memory+=": the kernel gave only $(cat "$hp/free_hugepages") of $hugepages_wanted free 2 MiB pages"
  else
    eal=(-m 512 --huge-unlink)
    memory="$hugepages_wanted hugepages of 2 MiB (DPDK -m 512 --huge-unlink)"
  fi
fi
echo "== memory: $memory"

echo "== testbed: namespaces $TB_NS_C (client) -- $TB_NS_S (shaper) -- $TB_NS_V (server)"
tb_create

echo "== starting shaper-dataplane, shaper-control and Prometheus"
tb_start_dataplane "$dataplane" "$state/dp.sock" "$state/dp.log" "${eal[@]}"
echo "dataplane $TB_DP_PID" >>"$state/pids"

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
mkdir "$state/policy"
cp config/examples/testbed.yaml "$state/policy/policy.yaml"
metrics_port=$(free_port)
setsid "$control" --policy "$state/policy/policy.yaml" --dataplane "$state/dp.sock" \
  --metrics "127.0.0.1:$metrics_port" --admin "$state/admin.sock" --state "$state/control.ids" \
  >"$state/control.log" 2>&1 &
echo "control $!" >>"$state/pids"
control_pid=$!
for _ in $(seq 100); do
  "$shaperctl" status --json --admin "$state/admin.sock" 2>/dev/null | grep -q '"dataplane_up": *true' && break
  kill -0 "$control_pid" 2>/dev/null || break
  sleep 0.1
done
"$shaperctl" status --json --admin "$state/admin.sock" 2>/dev/null | grep -q '"dataplane_up": *true' ||
  { echo "quickstart: shaper-control did not connect to the dataplane" >&2; exit 1; }

prom_port=$(free_port)
cat >"$state/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: shaper
    static_configs: [{targets: ['127.0.0.1:$metrics_port']}]
  - job_name: shaper-tenants
    metrics_path: /metrics/tenants
    static_configs: [{targets: ['127.0.0.1:$metrics_port']}]
EOF
setsid prometheus --config.file="$state/prometheus.yml" --storage.tsdb.path="$state/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$state/prometheus.log" 2>&1 &
echo "prometheus $!" >>"$state/pids"

# Every long-lived process gets its own session (setsid, same pid): a Ctrl-C
# on the terminal reaches this script only, which stops them in order.
# --- demo traffic: each tenant uploads with 4 TCP flows, restarted if they end
echo "== demo traffic: iperf3, 4 TCP flows each from ${TB_TENANT_IPS[*]} to $TB_SERVER_IP; EF ping from ${TB_TENANT_IPS[0]}"
port=5201
for ip in "${TB_TENANT_IPS[@]}"; do
  setsid ip netns exec "$TB_NS_V" iperf3 -s -B "$TB_SERVER_IP" -p "$port" >/dev/null 2>&1 &
  port=$((port + 1))
done
ip netns exec "$TB_NS_C" ping -c 3 -i 0.2 -W 2 -I "${TB_TENANT_IPS[0]}" "$TB_SERVER_IP" >"$state/ping-check.log" 2>&1 ||
  { cat "$state/ping-check.log"; echo "quickstart: no ping through the shaper" >&2; exit 1; }
port=5201
for ip in "${TB_TENANT_IPS[@]}"; do
  setsid ip netns exec "$TB_NS_C" bash -c "while :; do
      iperf3 -c $TB_SERVER_IP -B $ip -p $port -P 4 -t 86400 --connect-timeout 3000 >/dev/null 2>&1
      sleep 1
    done" &
  port=$((port + 1))
done
setsid ip netns exec "$TB_NS_C" ping -Q 0xb8 -i 0.2 -I "${TB_TENANT_IPS[0]}" "$TB_SERVER_IP" >"$state/ping-ef.log" 2>&1 &
ping_pid=$!

cat <<EOF | tee "$state/info.txt"

== shaper is running
  policy (edit it, the control reloads it):  $state/policy/policy.yaml
  metrics:     http://127.0.0.1:$metrics_port/metrics  and  http://127.0.0.1:$metrics_port/metrics/tenants
  Prometheus:  http://127.0.0.1:$prom_port  (e.g. rate(shaper_tenant_transmit_bytes_total{job="shaper-tenants"}[5s]) * 8)
  shaperctl:   $shaperctl status --admin $state/admin.sock
  logs:        $state/{dp,control,prometheus}.log
  memory:      $memory
  stop:        Ctrl-C here, or: $0 --stop
  this text:   $state/info.txt
  expected with all three greedy (upload): tenant-a ~190, tenant-b ~390, tenant-c ~370 Mbit/s

EOF

alive() {
  kill -0 "$TB_DP_PID" 2>/dev/null || { echo "quickstart: shaper-dataplane exited" >&2; return 1; }
  kill -0 "$control_pid" 2>/dev/null || { echo "quickstart: shaper-control exited" >&2; return 1; }
}

if [[ $duration -eq 0 ]]; then
  # From here Ctrl-C and --stop are the normal end: exit 0, no log dump.
  trap 'failed=0; exit 0' INT TERM
  echo "(shaperctl top clears the screen: the live view starts in 5 s)"
  sleep 5
  # In the background so that Ctrl-C and --stop reach our trap at once.
  "$shaperctl" top --admin "$state/admin.sock" &
  echo "top $!" >>"$state/pids"
  wait $! || true
  failed=0
  exit 0
fi

start=$SECONDS
next=5
while ((SECONDS - start < duration)); do
  sleep 1
  alive || exit 1
  if ((SECONDS - start >= next || SECONDS - start >= duration)); then
    echo "== status at $((SECONDS - start)) s"
    "$shaperctl" status --admin "$state/admin.sock" || { echo "quickstart: shaperctl status failed" >&2; exit 1; }
    next=$((next + 5))
  fi
done
# What Prometheus scraped, as a newcomer would query it.
# /metrics carries the busiest tenants, /metrics/tenants all: one job, no double count.
query='sum by (tenant) (rate(shaper_tenant_transmit_bytes_total{job="shaper-tenants",direction="upload"}[10s])) * 8'
if prom_reply=$(curl -sf --max-time 5 "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$query"); then
  echo "== Prometheus: $query"
  /usr/bin/python3 -c '
import json, sys
for r in sorted(json.load(sys.stdin)["data"]["result"], key=lambda r: r["metric"].get("tenant", "")):
    tenant = r["metric"].get("tenant", "?")
    mbps = float(r["value"][1]) / 1e6
    print(f"prometheus: {tenant} upload {mbps:.1f} Mbit/s")
' <<<"$prom_reply"
else
  echo "quickstart: Prometheus at 127.0.0.1:$prom_port did not answer a query" >&2
  exit 1
fi
# ping prints its summary on SIGINT.
kill -INT "$ping_pid" 2>/dev/null || true
wait "$ping_pid" 2>/dev/null || true
echo "== EF ping from ${TB_TENANT_IPS[0]} (-Q 0xb8) under load: $(grep -E 'rtt|received' "$state/ping-ef.log" | tr '\n' ' ')"
failed=0
exit 0
