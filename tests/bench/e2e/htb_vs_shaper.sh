#!/usr/bin/env bash
# shaper side by side with Linux tc HTB, in one run, on one veth testbed
# (deploy/testbed.sh: client -- middle -- server namespaces), with one policy
# (config/examples/testbed.yaml) and the same traffic for both:
#   (a) shaper-dataplane (net_af_packet on the middle's two veth ends) and
#       shaper-control on the policy;
#   (b) a Linux bridge in the middle with tc HTB on the egress of the
#       server-facing veth (upload), built from the same policy: per tenant
#       rate = guaranteed, ceil = ceiling, quantum = weight x 2 MTU, prio 1,
#       under a 1:1 class at the shape rate; an EF class at prio 0 (u32 match
#       tos 0xb8/0xfc) with ceil = the realtime class's max_share of the link;
#       the same 24 B per-frame overhead; pfifo leaves sized to the policy's
#       queue limits (this kernel has no fq_codel: see docs/benchmarks.md).
# Traffic, per side: an idle EF ping baseline (ping -Q 0xb8 -i 0.01, 3 s from
# tenant-a), then 3 greedy TCP tenants (iperf3 -P 4 each, 3 s omitted + 12 s
# measured) and, during the bulk, the same EF ping for 10 s.
# Prints, for both, per tenant: the expected weighted max-min share (as TCP
# goodput: the share x 1448/1538 payload per frame + overhead), the measured
# goodput and its error; the link use; EF RTT p50/p99 idle and under load;
# and how shaper compares with HTB.
#
#   htb_vs_shaper.sh SHAPER_DATAPLANE SHAPER_CONTROL SHAPERCTL POLICY
# SHAPER_BENCH_KEEP=DIR copies the raw outputs (iperf3 JSON, ping, logs,
# the tc script and counters) there.
# SHAPER_BENCH_WORKER_CORE=1 runs each side as it is deployed: for (a) the
# worker (CPU 1) gets its core as with isolcpus (this script, iperf3, ping,
# the control and the dataplane's main lcore on the other CPUs, unbound
# kernel threads moved off CPU 1 and put back after (a)); (b), HTB, runs in
# the kernel's softirqs wherever the kernel runs them, on all CPUs, as
# without the variable.
# A benchmark, not a pass/fail test: exits 0 when both sides ran (whatever
# the figures), 1 when something failed, 77 when not root.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 SHAPER_DATAPLANE SHAPER_CONTROL SHAPERCTL POLICY" >&2
  exit 2
fi
dataplane=$(realpath "$1")
control=$(realpath "$2")
shaperctl=$(realpath "$3")
policy=$(realpath "$4")
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
# shellcheck source=../../../deploy/testbed.sh
source "$here/../../../deploy/testbed.sh"

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: the veth testbed needs root (network namespaces, DPDK, tc)"
  exit 77
fi
for cmd in ip tc ethtool iperf3 ping /usr/bin/python3; do
  command -v "$cmd" >/dev/null || { echo "FAIL: $cmd is missing (deploy/install-deps.sh)"; exit 1; }
done
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3-yaml is missing"; exit 1; }

tmp=$(mktemp -d /tmp/shaper-htb-bench.XXXXXX)
tb_init "hb$$"
control_pid=
moved_kthreads=()  # "pid mask" pairs to put back
server_pids=()     # the iperf3 servers (ip netns exec execs them: same pid)
worker_core_release() {
  local entry
  for entry in "${moved_kthreads[@]}"; do taskset -p -c "${entry#* }" "${entry%% *}" >/dev/null 2>&1 || true; done
  moved_kthreads=()
  local all="0-$(($(nproc --all) - 1))" pid
  taskset -p -c "$all" $$ >/dev/null
  for pid in "${server_pids[@]}"; do taskset -a -p -c "$all" "$pid" >/dev/null 2>&1 || true; done
}
worker_core_take() {  # CPU 1 for the worker: see SHAPER_BENCH_WORKER_CORE above
  local stat pid ppid mask
  taskset -p -c 0 $$ >/dev/null
  for pid in "${server_pids[@]}"; do taskset -a -p -c 0 "$pid" >/dev/null; done
  for stat in /proc/[0-9]*/stat; do
    pid=${stat#/proc/}; pid=${pid%/stat}
    ppid=$(awk '{sub(/.*\) /, ""); print $2}' "$stat" 2>/dev/null) || continue
    [[ "$ppid" == 2 ]] || continue
    mask=$(taskset -p -c "$pid" 2>/dev/null | awk '{print $NF}') || continue
    [[ "$mask" == *-* || "$mask" == *,* ]] || continue  # per-CPU kernel threads stay
    taskset -p -c 0 "$pid" >/dev/null 2>&1 && moved_kthreads+=("$pid $mask")
  done
  echo "CPU 1 kept for the worker: this script and its children on CPU 0, ${#moved_kthreads[@]} unbound kernel threads moved off CPU 1"
}
cleanup() {
  worker_core_release
  [[ -n "$control_pid" ]] && kill -KILL "$control_pid" 2>/dev/null
  tb_destroy
  if [[ -n "${SHAPER_BENCH_KEEP:-}" ]]; then
    mkdir -p "$SHAPER_BENCH_KEEP" && cp -r "$tmp"/. "$SHAPER_BENCH_KEEP"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 1" INT TERM

readonly omit_s=3 measure_s=12 idle_pings=300 load_pings=1000
# The policy as numbers, and the HTB script built from it.
/usr/bin/python3 - "$policy" "$tmp" <<'PY'
import json, math, re, sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
UNIT = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
def bps(text):
    m = re.fullmatch(r"([0-9.]+)\s*([kmg]?bit)", str(text).strip().lower())
    if not m:
        sys.exit(f"{sys.argv[1]}: rate '{text}' is not NUMBER[k|M|G]bit")
    return float(m.group(1)) * UNIT[m.group(2)]
def pct(text):
    return float(str(text).rstrip("%")) / 100
link = p["link"]
shape = bps(link["capacity"]) * pct(link.get("shape_at", "100%"))
overhead = int(str(link.get("overhead", "0B")).rstrip("B"))
tenants = [{"name": t["name"], "prefix": t["match"]["prefixes"][0], "g": bps(t["guaranteed"]),
            "c": bps(t["ceiling"]), "w": float(t.get("weight", 1))} for t in p["tenants"]]
# Weighted max-min with every tenant greedy: guarantees first, then the
# spare by weight, a tenant stopping at its ceiling.
alloc = {t["name"]: t["g"] for t in tenants}
spare = shape - sum(alloc.values())
active = [t for t in tenants if alloc[t["name"]] < t["c"]]
while spare > 1 and active:
    wsum = sum(t["w"] for t in active)
    given = 0.0
    for t in list(active):
        add = min(spare * t["w"] / wsum, t["c"] - alloc[t["name"]])
        alloc[t["name"]] += add
        given += add
        if alloc[t["name"]] >= t["c"] - 1:
            active.remove(t)
    spare -= given
    if given < 1:
        break
rt = [c for c in p["classes"] if c.get("priority") == "latency"][0]
bulk = [c for c in p["classes"] if c.get("default")][0]
def ms(text):
    return float(str(text).rstrip("ms")) / 1000
ef_ceil = shape * pct(rt.get("max_share", "100%"))
frame = 1514  # MTU 1500 + Ethernet header, as HTB and the shaper count it
mbit = lambda v: f"{v / 1e6:.3f}mbit"
lines = [
    # r2q: the default quantum of the 1:1 inner class (rate / r2q) stays small.
    "qdisc add dev sb root handle 1: htb default 99 r2q 1000",
    f"class add dev sb parent 1: classid 1:1 htb rate {mbit(shape)} ceil {mbit(shape)} overhead {overhead}",
    f"class add dev sb parent 1:1 classid 1:5 htb rate 1mbit ceil {mbit(ef_ceil)} prio 0 quantum {frame} overhead {overhead}",
    f"qdisc add dev sb parent 1:5 handle 5: pfifo limit {max(2, math.ceil(ef_ceil * ms(rt['queue_limit']) / 8 / frame))}",
    "filter add dev sb parent 1: protocol ip prio 1 u32 match ip tos 0xb8 0xfc flowid 1:5",
]
for i, t in enumerate(tenants):
    cid = 10 + i
    limit = max(10, math.ceil(alloc[t["name"]] * ms(bulk["queue_limit"]) / 8 / frame))
    lines += [
        f"class add dev sb parent 1:1 classid 1:{cid} htb rate {mbit(t['g'])} ceil {mbit(t['c'])} prio 1 "
        f"quantum {int(t['w'] * 2 * frame)} overhead {overhead}",
        f"qdisc add dev sb parent 1:{cid} handle {cid}: pfifo limit {limit}",
        f"filter add dev sb parent 1: protocol ip prio 2 u32 match ip src {t['prefix']} flowid 1:{cid}",
    ]
dflt = bps(p.get("default_tenant", {}).get("ceiling", "10Mbit"))
lines += [
    f"class add dev sb parent 1:1 classid 1:99 htb rate 1mbit ceil {mbit(dflt)} prio 1 quantum {frame} overhead {overhead}",
    "qdisc add dev sb parent 1:99 handle 99: pfifo limit 100",
]
open(f"{sys.argv[2]}/htb.tc", "w").write("\n".join(lines) + "\n")
json.dump({"shape": shape, "overhead": overhead, "alloc": alloc,
           "tenants": [t["name"] for t in tenants]}, open(f"{sys.argv[2]}/policy.json", "w"))
PY

tb_create
port=5201
for _ in "${TB_TENANT_IPS[@]}"; do
  ip netns exec "$TB_NS_V" iperf3 -s -B "$TB_SERVER_IP" -p "$port" >/dev/null 2>&1 &
  server_pids+=("$!")
  port=$((port + 1))
done

ef_ping() {  # COUNT OUT: EF pings from tenant-a every 10 ms
  ip netns exec "$TB_NS_C" ping -Q 0xb8 -i 0.01 -W 1 -c "$1" -I "${TB_TENANT_IPS[0]}" "$TB_SERVER_IP" >"$2" 2>&1 || true
}

# Runs the traffic through whatever is in the middle; results in $tmp/NAME.*
measure() {
  local name=$1 i ok=0
  for i in $(seq 30); do
    ip netns exec "$TB_NS_C" ping -c 1 -W 1 -I "${TB_TENANT_IPS[0]}" "$TB_SERVER_IP" >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.2
  done
  [[ $ok -eq 1 ]] || { echo "FAIL: $name: no ping through the middle"; return 1; }
  ef_ping "$idle_pings" "$tmp/$name.idle.ping"
  local pids=() port=5201 ip
  for ip in "${TB_TENANT_IPS[@]}"; do
    ip netns exec "$TB_NS_C" iperf3 -c "$TB_SERVER_IP" -B "$ip" -p "$port" -P 4 -O "$omit_s" -t "$measure_s" -J \
      --connect-timeout 3000 >"$tmp/$name.$ip.json" 2>&1 &
    pids+=("$!")
    port=$((port + 1))
  done
  sleep $((omit_s + 1))
  ef_ping "$load_pings" "$tmp/$name.load.ping"
  local rc=0
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  [[ $rc -eq 0 ]] || { echo "FAIL: $name: an iperf3 client failed"; tail -5 "$tmp/$name."*.json; return 1; }
}

# --- (a) shaper
echo "== (a) shaper-dataplane + shaper-control"
[[ -z "${SHAPER_BENCH_WORKER_CORE:-}" ]] || worker_core_take
tb_start_dataplane "$dataplane" "$tmp/dp.sock" "$tmp/dp.log" --no-huge -m 512
cp "$policy" "$tmp/policy.yaml"
metrics_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$control" --policy "$tmp/policy.yaml" --dataplane "$tmp/dp.sock" --admin "$tmp/admin.sock" \
  --state "$tmp/control.ids" --metrics "127.0.0.1:$metrics_port" >"$tmp/control.log" 2>&1 &
control_pid=$!
plan_in_force() {
  "$shaperctl" status --json --admin "$tmp/admin.sock" 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; s = json.load(sys.stdin); sys.exit(0 if s["dataplane_up"] and s["plan_generation"] >= 1 else 1)' 2>/dev/null
}
for _ in $(seq 100); do plan_in_force && break; sleep 0.1; done
plan_in_force || { echo "FAIL: shaper-control did not push a plan to the dataplane"; tail -20 "$tmp/control.log"; exit 1; }
measure shaper
kill -TERM "$control_pid"
wait "$control_pid" || true
control_pid=
tb_stop_dataplane || echo "NOTE: shaper-dataplane exited with status $?"
worker_core_release

# --- (b) Linux bridge + tc HTB on the server-facing veth
echo "== (b) Linux bridge + tc HTB (pfifo leaves)"
tb_bridge_up
ip netns exec "$TB_NS_S" tc -batch "$tmp/htb.tc" || { echo "FAIL: tc -batch:"; cat "$tmp/htb.tc"; exit 1; }
measure htb
ip netns exec "$TB_NS_S" tc -s class show dev sb >"$tmp/htb.stats"
ip netns exec "$TB_NS_S" tc qdisc del dev sb root
tb_bridge_down

echo "== load: $(uptime)"
/usr/bin/python3 - "$tmp" "${TB_TENANT_IPS[@]}" <<'PY'
import json, re, statistics, sys
tmp, ips = sys.argv[1], sys.argv[2:]
pol = json.load(open(f"{tmp}/policy.json"))
goodput = 1448 / (1514 + pol["overhead"])  # TCP payload per frame + overhead
names = pol["tenants"]
expect = {n: pol["alloc"][n] * goodput for n in names}
link_goodput = pol["shape"] * goodput

def rtts(path):
    text = open(path).read()
    v = sorted(float(x) for x in re.findall(r"time=([0-9.]+) ms", text))
    sent = re.search(r"(\d+) packets transmitted", text)
    return v, int(sent.group(1)) if sent else 0

def pctl(v, q):
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]

res = {}
for side in ("shaper", "htb"):
    r = {"rate": {}}
    for n, ip in zip(names, ips):
        j = json.load(open(f"{tmp}/{side}.{ip}.json"))
        r["rate"][n] = j["end"]["sum_received"]["bits_per_second"]
    r["err"] = {n: (r["rate"][n] - expect[n]) / expect[n] * 100 for n in names}
    r["mae"] = statistics.mean(abs(e) for e in r["err"].values())
    # The split of what was carried, against the expected split: how well
    # the weights and guarantees held even when the total fell short.
    total, etotal = sum(r["rate"].values()), sum(expect.values())
    r["split"] = {n: (r["rate"][n] / total - expect[n] / etotal) / (expect[n] / etotal) * 100 for n in names}
    r["smae"] = statistics.mean(abs(e) for e in r["split"].values())
    r["use"] = sum(r["rate"].values()) / link_goodput * 100
    for kind in ("idle", "load"):
        v, sent = rtts(f"{tmp}/{side}.{kind}.ping")
        r[kind] = (pctl(v, 50), pctl(v, 99), len(v), sent, v[-1] if v else float("nan"))
    res[side] = r

print()
print(f"shape rate {pol['shape'] / 1e6:.0f} Mbit/s, overhead {pol['overhead']} B: "
      f"expected goodput = share x {goodput:.4f}; link goodput {link_goodput / 1e6:.1f} Mbit/s")
print("rates: Mbit/s of TCP goodput; err: against the expected rate; split: the tenant's part of what")
print("was carried, against its expected part (the weights, even if the total fell short)")
print(f"{'':11} {'expected':>9} | {'shaper':>8} {'err':>7} {'split':>7} | {'HTB':>8} {'err':>7} {'split':>7}")
for n in names:
    s, h = res["shaper"], res["htb"]
    print(f"{n:11} {expect[n] / 1e6:9.1f} | {s['rate'][n] / 1e6:8.1f} {s['err'][n]:+6.1f}% {s['split'][n]:+6.1f}% | "
          f"{h['rate'][n] / 1e6:8.1f} {h['err'][n]:+6.1f}% {h['split'][n]:+6.1f}%")
s, h = res["shaper"], res["htb"]
print(f"{'mean |err|':11} {'':9} | {'':8} {s['mae']:6.1f}% {s['smae']:6.1f}% | {'':8} {h['mae']:6.1f}% {h['smae']:6.1f}%")
print(f"{'link use':11} {'':9} | {s['use']:23.1f}% | {h['use']:23.1f}%")
for kind, label in (("idle", "EF idle"), ("load", "EF load")):
    for i, q in ((0, "p50"), (1, "p99"), (4, "max")):
        print(f"{label + ' ' + q:11} {'':9} | {s[kind][i]:21.3f} ms | {h[kind][i]:21.3f} ms")
    rx = lambda r: f"{r[kind][2]}/{r[kind][3]} replies"
    print(f"{label + ' rx':11} {'':9} | {rx(s):>24} | {rx(h):>24}")
print()
def versus(shaper, htb, unit):
    """'N x smaller/larger with shaper' for a figure where smaller is better."""
    if shaper <= 0 or htb <= 0:
        return f"{shaper:.3g} vs {htb:.3g} {unit}"
    r = htb / shaper
    word = "smaller" if r >= 1 else "LARGER"
    return f"{shaper:.3g} vs {htb:.3g} {unit}: {max(r, 1 / r):.1f}x {word} with shaper"
print("shaper vs HTB (shaper first):")
print(f"  mean rate error    {versus(s['mae'], h['mae'], '%')}")
print(f"  mean split error   {versus(s['smae'], h['smae'], '%')}")
print(f"  link use           {s['use']:.1f}% vs {h['use']:.1f}%: {s['use'] - h['use']:+.1f} points with shaper")
print(f"  EF p50 under load  {versus(s['load'][0], h['load'][0], 'ms')}")
print(f"  EF p99 under load  {versus(s['load'][1], h['load'][1], 'ms')}")
print(f"  EF p99 load - idle {s['load'][1] - s['idle'][1]:+.3f} vs {h['load'][1] - h['idle'][1]:+.3f} ms")
PY
echo "--- HTB class counters (upload)"
awk '/^class/ { id = $3 } / Sent / { print "  class " id ": " $2 " bytes, " $4 " packets, dropped " $7 }' "$tmp/htb.stats" | tr -d ','
echo "--- shaper-dataplane: $(grep 'mbufs in use at exit' "$tmp/dp.log" || echo 'no exit line')"
