#!/usr/bin/env bash
# End to end on the veth testbed (TESTBED.md): shaper-dataplane, shaper-control
# driven by a copy of config/examples/testbed.yaml, iperf3 traffic, policy
# edits while it flows, and a real Prometheus scraping the control.
#
#   client netns (c0: 10.10.1.10, 10.10.2.10, 10.10.3.10 /16)
#     -- veth -- shaper netns (sa | sb, DPDK net_af_packet, pair 0:1)
#     -- veth -- server netns (v0: 10.10.0.1/16)
# shaper-control and prometheus run in the root namespace: the control talks
# to the dataplane over a unix socket (they work across network namespaces)
# and Prometheus reaches the control's metrics on 127.0.0.1.
#
# tenant-a (10.10.1.10) uploads over TCP for the whole test. Steps:
#   1. its rate before any edit must be well above 200 Mbit/s;
#   2. the policy file is replaced (new file + mv, as editors do) with
#      tenant-a's ceiling lowered 950Mbit -> 200Mbit: its rate over a trailing
#      1 s window must fall to 200 Mbit/s + 5% within 2 s of the mv and stay
#      there; shaperctl status and the metrics show the new ceiling; the
#      control's log shows when the dataplane accepted the new plan (the
#      target is two allocation intervals, asserted);
#   3. a broken edit (a bare number, no unit): the rate and the plan stay,
#      shaper_policy_valid becomes 0, shaper_policy_reloads_total{result=
#      "error"} increments, the control logs the error with file:line:col;
#   4. Prometheus (1 s scrapes of /metrics and /metrics/tenants) returns a
#      rate > 0 for tenant-a and shaper_dataplane_up == 1.
#   5. Observability (the issue's scenario 7). Prometheus runs on the shipped
#      deploy/prometheus/prometheus.yml (target, intervals and the rules
#      path filled in for the test) with deploy/prometheus/shaper-alerts.yml:
#      `promtool check rules` accepts the rules; Prometheus evaluates every
#      rule without error on the live series; ShaperPolicyInvalid is pending
#      or firing after step 3's broken edit and ShaperDataplaneDown is not;
#      every panel query of deploy/grafana/dashboards/shaper.json, with its
#      variables filled in (tenant-a, upload, realtime), returns data
#      (tests/deploy/check_dashboard.py query); every metric family of a
#      live scrape is documented in docs/metrics.md. An EF ping (DSCP 46)
#      from tenant-a runs beside iperf3 so the latency class has samples.
# Rates are frame bytes from shaper_tenant_transmit_bytes_total (upload, all
# classes), polled from the control's /metrics/tenants.
#
#   control_veth.sh SHAPER_DATAPLANE SHAPER_CONTROL SHAPERCTL
# Exits 77 (skipped) when not root; as root every missing tool is a failure.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 SHAPER_DATAPLANE SHAPER_CONTROL SHAPERCTL" >&2
  exit 2
fi
dataplane=$(realpath "$1")
control=$(realpath "$2")
shaperctl=$(realpath "$3")
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
probe=$here/probe.py
testbed_policy=$here/../../config/examples/testbed.yaml
deploy_prom=$here/../../deploy/prometheus
dashboard=$here/../../deploy/grafana/dashboards/shaper.json
dashboard_check=$here/../deploy/check_dashboard.py
metrics_doc=$here/../../docs/metrics.md

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: the veth testbed needs root (network namespaces, DPDK)"
  exit 77
fi
for cmd in ip ethtool iperf3 ping curl prometheus promtool /usr/bin/python3; do
  command -v "$cmd" >/dev/null || {
    echo "FAIL: $cmd is missing (apt-get install iproute2 ethtool iperf3 iputils-ping curl prometheus python3 python3-yaml)"
    exit 1
  }
done
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3-yaml is missing (apt-get install python3-yaml)"; exit 1; }
for f in "$dataplane" "$control" "$shaperctl" "$probe" "$testbed_policy" "$deploy_prom/prometheus.yml" \
    "$deploy_prom/shaper-alerts.yml" "$dashboard" "$dashboard_check" "$metrics_doc"; do
  [[ -e "$f" ]] || { echo "FAIL: $f does not exist"; exit 1; }
done

readonly tenant=tenant-a
readonly tenant_ip=10.10.1.10
readonly server_ip=10.10.0.1
readonly new_ceiling_mbps=200
# The brief's tolerance: the enforced rate may exceed the ceiling by 5%.
readonly limit_mbps=$((new_ceiling_mbps * 105 / 100))
# Step 2's deadline from the mv: two 100 ms allocation intervals, the reload
# and the 1 s measurement window, rounded up.
readonly react_timeout_s=2

tag=e2e$$
ns_c=${tag}c ns_s=${tag}s ns_v=${tag}v
file_prefix=e2e-$$
tmp=$(mktemp -d /tmp/shaper-e2e.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "$ns_c" "$ns_s" "$ns_v"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
  # EAL's runtime directory (config, fbarray files) for our --file-prefix.
  rm -rf "/var/run/dpdk/$file_prefix"
}
trap cleanup EXIT
trap "exit 1" INT TERM

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() {
  echo "FAIL: $*"
  for log in dp control prometheus; do
    [[ -s "$tmp/$log.log" ]] && { echo "--- $log.log (last 20 lines)"; tail -20 "$tmp/$log.log"; }
  done
  exit 1
}
probe() { /usr/bin/python3 "$probe" "$@"; }
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# A field of tenant-a's upload row in `shaperctl status --json`, or a
# top-level field when no tenant is given.
status_field() {
  "$shaperctl" status --json --admin "$tmp/admin.sock" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
field, tenant = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
if tenant is None:
    print(s[field])
else:
    rows = [t for t in s["tenants"] if t["tenant"] == tenant and t["direction"] == "upload"]
    print(rows[0][field] if rows else "missing")' "$@"
}
# Writes a new file beside the policy and renames it over, as editors do.
replace_policy() {
  cp "$1" "$tmp/policy/.policy.yaml.new"
  mv "$tmp/policy/.policy.yaml.new" "$tmp/policy/policy.yaml"
}
elapsed() { /usr/bin/python3 -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.2f}")' "$1"; }

# --- the testbed
for ns in "$ns_c" "$ns_s" "$ns_v"; do ip netns add "$ns"; done
ip link add c0 netns "$ns_c" type veth peer name sa netns "$ns_s"
ip link add v0 netns "$ns_v" type veth peer name sb netns "$ns_s"
for end in "$ns_c c0" "$ns_s sa" "$ns_s sb" "$ns_v v0"; do
  read -r ns dev <<<"$end"
  # Offloads on, the kernel hands AF_PACKET 64 KiB super-frames.
  ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
    die "ethtool -K $dev (offloads off) in $ns"
  ip -n "$ns" link set "$dev" up
  ip -n "$ns" link set lo up
done
# One address per tenant on the client, all in one /16 with the server.
for octet in 1 2 3; do ip -n "$ns_c" addr add "10.10.$octet.10/16" dev c0; done
ip -n "$ns_v" addr add "$server_ip/16" dev v0

# --- the dataplane (shaper netns), the control and Prometheus (root netns)
ip netns exec "$ns_s" "$dataplane" --no-huge -m 512 -l 0,1 --file-prefix "$file_prefix" --no-pci \
  --no-telemetry --log-level '*:warning' \
  --vdev net_af_packet0,iface=sa,framecnt=8192 --vdev net_af_packet1,iface=sb,framecnt=8192 \
  -- --pairs 0:1 --ctl-socket "$tmp/dp.sock" --idle-sleep-us 50 >"$tmp/dp.log" 2>&1 &
dp_pid=$!
pids+=("$dp_pid")
for _ in $(seq 100); do grep -q '^running' "$tmp/dp.log" && break; sleep 0.1; done
grep -q '^running' "$tmp/dp.log" || die "shaper-dataplane did not start"

mkdir "$tmp/policy"
cp "$testbed_policy" "$tmp/policy/policy.yaml"
metrics_port=$(free_port)
metrics=http://127.0.0.1:$metrics_port
"$control" --policy "$tmp/policy/policy.yaml" --dataplane "$tmp/dp.sock" \
  --metrics "127.0.0.1:$metrics_port" --admin "$tmp/admin.sock" --state "$tmp/control.ids" \
  >"$tmp/control.log" 2>&1 &
control_pid=$!
pids+=("$control_pid")
probe wait "$metrics/metrics" shaper_dataplane_up 1 10 >/dev/null ||
  die "shaper-control did not connect to the dataplane"

prom_port=$(free_port)
prom=http://127.0.0.1:$prom_port
# The shipped scrape configuration (jobs shaper and shaper-tenants, each
# series from one endpoint), with the test's target, 1 s scrapes and
# evaluations, and this tree's alert rules.
/usr/bin/python3 - "$deploy_prom/prometheus.yml" "$(realpath "$deploy_prom/shaper-alerts.yml")" \
  "127.0.0.1:$metrics_port" >"$tmp/prometheus.yml" <<'PY' || die "cannot adapt $deploy_prom/prometheus.yml"
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
cfg["rule_files"] = [sys.argv[2]]
for job in cfg["scrape_configs"]:
    job.pop("scrape_interval", None)
    job.pop("scrape_timeout", None)
    for sc in job["static_configs"]:
        assert sc["targets"] == ["127.0.0.1:9470"], sc["targets"]
        sc["targets"] = [sys.argv[3]]
print(yaml.safe_dump(cfg, sort_keys=False))
PY
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=("$!")

# --- traffic: tenant-a uploads to the server for the whole test
ip netns exec "$ns_v" iperf3 -s -1 -B "$server_ip" -p 5201 >"$tmp/iperf-server.log" 2>&1 &
pids+=("$!")
ip netns exec "$ns_c" ping -c 3 -i 0.2 -W 2 -I "$tenant_ip" "$server_ip" >"$tmp/ping.log" 2>&1 ||
  { cat "$tmp/ping.log"; die "ping $server_ip from $tenant_ip through the shaper"; }
# EF (DSCP 46, TOS 0xb8) pings in the latency class, both directions, for
# the whole test: the dashboard's latency-class panels need samples.
ip netns exec "$ns_c" ping -Q 0xb8 -i 0.05 -I "$tenant_ip" "$server_ip" >/dev/null 2>&1 &
pids+=("$!")
ip netns exec "$ns_c" iperf3 -c "$server_ip" -B "$tenant_ip" -p 5201 -t 22 -i 1 \
  --connect-timeout 3000 >"$tmp/iperf-client.log" 2>&1 &
iperf_pid=$!
pids+=("$iperf_pid")
sleep 2  # past slow start and the first allocations

tenants=$metrics/metrics/tenants
# The best of up to three 2 s windows: on a shared 2-core machine a build
# running beside the test can hold TCP down for a few seconds.
before_mbps=0
for _ in 1 2 3; do
  before_mbps=$(probe rate "$tenants" "$tenant" 2) || die "measuring $tenant before the edit"
  /usr/bin/python3 -c "import sys; sys.exit(0 if $before_mbps >= 1.25 * $limit_mbps else 1)" && break
  echo "$tenant at only $before_mbps Mbit/s before the edit; measuring again"
done
echo "$tenant upload before the edit: $before_mbps Mbit/s (2 s)"
# Not clearly above the limit, the drop would prove nothing.
/usr/bin/python3 -c "import sys; sys.exit(0 if $before_mbps >= 1.25 * $limit_mbps else 1)" ||
  die "$tenant only reaches $before_mbps Mbit/s before the edit: the testbed cannot show a ceiling of $new_ceiling_mbps Mbit/s"
[[ $(status_field ceiling_bps "$tenant") == 950000000 ]] ||
  fail "$tenant's ceiling before the edit: $(status_field ceiling_bps "$tenant"), expected 950000000"

# --- step 2: lower tenant-a's ceiling
sed "/name: $tenant\$/,/weight:/ s/ceiling: 950Mbit\$/ceiling: ${new_ceiling_mbps}Mbit/" \
  "$tmp/policy/policy.yaml" >"$tmp/lowered.yaml"
cmp -s "$tmp/policy/policy.yaml" "$tmp/lowered.yaml" &&
  die "$testbed_policy changed: no 'ceiling: 950Mbit' under $tenant to lower"
successes_before=$(probe value "$metrics/metrics" shaper_policy_reloads_total result=success)
edit_start=$(date +%s.%N)
replace_policy "$tmp/lowered.yaml"
read -r react_s react_mbps react_short_s reload_s < <(probe react "$tenants" "$tenant" "$edit_start" "$limit_mbps" \
  $((new_ceiling_mbps * 1000000)) "$react_timeout_s") ||
  die "$tenant's rate did not fall to $limit_mbps Mbit/s within $react_timeout_s s of the edit"
echo "$tenant under $limit_mbps Mbit/s ${react_s} s after the edit (1 s window: $react_mbps Mbit/s;" \
  "a 0.2 s window was under it after ${react_short_s} s; the control showed the new ceiling after ${reload_s} s)"
after_mbps=$(probe rate "$tenants" "$tenant" 2)
echo "$tenant upload after the edit: $after_mbps Mbit/s (2 s)"
/usr/bin/python3 -c "import sys; sys.exit(0 if $new_ceiling_mbps / 2 <= $after_mbps <= $limit_mbps else 1)" ||
  fail "$tenant at $after_mbps Mbit/s after the edit: expected $((new_ceiling_mbps / 2))..$limit_mbps"
[[ $(status_field ceiling_bps "$tenant") == $((new_ceiling_mbps * 1000000)) ]] ||
  fail "shaperctl status: $tenant's ceiling is $(status_field ceiling_bps "$tenant") after the edit"
ceiling_metric=$(probe value "$tenants" shaper_tenant_rate_bytes_per_second \
  tenant="$tenant" direction=upload kind=ceiling)
[[ $ceiling_metric == $((new_ceiling_mbps * 1000000 / 8)).0 ]] ||
  fail "metrics: $tenant's ceiling is $ceiling_metric bytes/s after the edit"
[[ $(probe value "$metrics/metrics" shaper_policy_valid) == 1.0 ]] ||
  fail "shaper_policy_valid is not 1 after a good edit"
successes=$(probe value "$metrics/metrics" shaper_policy_reloads_total result=success)
/usr/bin/python3 -c "import sys; sys.exit(0 if $successes == $successes_before + 1 else 1)" ||
  fail "shaper_policy_reloads_total{result=\"success\"} went from $successes_before to $successes on one edit"
generation=$(status_field plan_generation)
# The issue's promise: an edit is enforced within two allocation intervals.
# Control logs "policy reloaded" (ms timestamps) after the dataplane accepted
# the new plan; its time since the mv is the reaction, free of TCP's own pace.
interval_s=$(/usr/bin/python3 -c 'import re,sys
m = re.search(r"interval:\s*(\d+)ms", open(sys.argv[1]).read())
print(int(m.group(1)) / 1000 if m else 0.1)' "$tmp/policy/policy.yaml")
applied_s=$(/usr/bin/python3 - "$tmp/control.log" "$edit_start" "$generation" <<'PY'
import datetime, re, sys
log, start, gen = sys.argv[1], float(sys.argv[2]), sys.argv[3]
for line in open(log):
    if 'msg="policy reloaded"' in line and f"generation={gen}" in line:
        ts = re.search(r"ts=(\S+)Z", line).group(1)
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        print(f"{t - start:.3f}")
        break
else:
    print("missing")
PY
)
[[ $applied_s != missing ]] || fail "no 'policy reloaded' line for generation $generation in the control log"
two_intervals_s=$(/usr/bin/python3 -c "print(2 * $interval_s)")
echo "the new plan was in force ${applied_s} s after the mv (two allocation intervals: ${two_intervals_s} s)"
# The target is two allocation intervals. A plan change rewrites only the
# classifier's spare table (docs/architecture.md, "Plan swaps"): 0.008 s
# measured on a quiet machine, so the target is asserted as it stands.
/usr/bin/python3 -c "import sys; sys.exit(0 if $applied_s <= $two_intervals_s else 1)" ||
  fail "the edit took ${applied_s} s to be in force (target: two allocation intervals, ${two_intervals_s} s)"

# --- step 3: a broken edit (a bare number) must change nothing enforced
errors_before=$(probe value "$metrics/metrics" shaper_policy_reloads_total result=error)
sed "/name: $tenant\$/,/weight:/ s/ceiling: ${new_ceiling_mbps}Mbit\$/ceiling: 900/" \
  "$tmp/policy/policy.yaml" >"$tmp/broken.yaml"
bad_line=$(grep -n 'ceiling: 900$' "$tmp/broken.yaml" | cut -d: -f1)
[[ -n "$bad_line" ]] || die "could not write the broken policy"
broken_start=$(date +%s.%N)
replace_policy "$tmp/broken.yaml"
probe wait "$metrics/metrics" shaper_policy_reloads_total "$(( ${errors_before%.0} + 1 ))" 3 result=error \
  >/dev/null || fail "shaper_policy_reloads_total{result=\"error\"} did not go from $errors_before to +1"
echo "broken edit seen as a reload error $(elapsed "$broken_start") s after the mv"
[[ $(probe value "$metrics/metrics" shaper_policy_valid) == 0.0 ]] ||
  fail "shaper_policy_valid is not 0 after a broken edit"
grep 'policy reload failed' "$tmp/control.log" | grep -q "policy.yaml:$bad_line:[0-9][0-9]*:" ||
  { fail "the control did not log the error as policy.yaml:$bad_line:COL"; grep -i error "$tmp/control.log" || true; }
broken_mbps=$(probe rate "$tenants" "$tenant" 2)
echo "$tenant upload after the broken edit: $broken_mbps Mbit/s (2 s)"
/usr/bin/python3 -c "import sys; sys.exit(0 if $new_ceiling_mbps / 2 <= $broken_mbps <= $limit_mbps else 1)" ||
  fail "$tenant at $broken_mbps Mbit/s after the broken edit: expected $((new_ceiling_mbps / 2))..$limit_mbps"
[[ $(status_field ceiling_bps "$tenant") == $((new_ceiling_mbps * 1000000)) ]] ||
  fail "shaperctl status: $tenant's ceiling changed to $(status_field ceiling_bps "$tenant") on a broken edit"
[[ $(status_field plan_generation) == "$generation" ]] ||
  fail "a broken edit pushed a plan (generation $generation -> $(status_field plan_generation))"

# --- step 4: Prometheus saw it all
for _ in $(seq 50); do curl -sf "$prom/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "$prom/-/ready" >/dev/null 2>&1 || die "prometheus is not ready at $prom"
prom_rate=$(probe query "$prom" "rate(shaper_tenant_transmit_bytes_total{tenant=\"$tenant\"}[5s])") ||
  fail "prometheus: no rate for $tenant"
prom_max=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' <<<"$prom_rate")
/usr/bin/python3 -c "import sys; sys.exit(0 if $prom_max > 0 else 1)" ||
  fail "prometheus: $tenant's transmit rate is 0 in every series"
echo "prometheus: max rate(shaper_tenant_transmit_bytes_total{tenant=\"$tenant\"}[5s]) = $prom_max B/s" \
  "($(/usr/bin/python3 -c "print(f'{$prom_max * 8 / 1e6:.1f}')") Mbit/s)"
probe query "$prom" 'shaper_dataplane_up == 1' >/dev/null || fail "prometheus: shaper_dataplane_up is not 1"
prom_up=$(probe query "$prom" 'up == 1') || fail "prometheus: no target up"
for job in shaper shaper-tenants; do
  grep -q "job=$job " <<<"$prom_up" || fail "prometheus: job $job is not up"
done

# --- step 5 (scenario 7): alert rules and the dashboard on live data
promtool check rules "$deploy_prom/shaper-alerts.yml" >"$tmp/promtool.log" 2>&1 ||
  { cat "$tmp/promtool.log"; fail "promtool check rules $deploy_prom/shaper-alerts.yml"; }
# Every rule evaluated on the live series without error (a vector-matching
# mistake only shows on real series), and the alerts in the state this run
# put them in: the policy is still broken since step 3 (for: 1m, so pending
# or already firing), the dataplane never went away.
rules_ok=0
for _ in $(seq 20); do
  if /usr/bin/python3 - "$prom" "$deploy_prom/shaper-alerts.yml" >"$tmp/rules.log" 2>&1 <<'PY'
import json, sys, urllib.request, yaml
prom, rules_file = sys.argv[1], sys.argv[2]
want = {r["alert"] for g in yaml.safe_load(open(rules_file))["groups"] for r in g["rules"] if "alert" in r}
data = json.load(urllib.request.urlopen(prom + "/api/v1/rules"))["data"]
rules = {r["name"]: r for g in data["groups"] for r in g["rules"]}
bad = []
for name in sorted(want):
    r = rules.get(name)
    if r is None:
        bad.append(f"{name}: not loaded by prometheus")
    elif r.get("health") != "ok" or r.get("lastError"):
        bad.append(f"{name}: health {r.get('health')} {r.get('lastError', '')}")
states = {n: {a["state"] for a in r.get("alerts", [])} for n, r in rules.items()}
for n, r in sorted(rules.items()):
    for a in r.get("alerts", []):
        labels = {k: v for k, v in a["labels"].items() if k not in ("alertname", "severity", "job", "instance")}
        print(f"  {n} {a['state']} {labels} value={a.get('value')}")
if not states.get("ShaperPolicyInvalid", set()) & {"pending", "firing"}:
    bad.append(f"ShaperPolicyInvalid is not pending/firing after the broken edit: {states.get('ShaperPolicyInvalid')}")
if states.get("ShaperDataplaneDown"):
    bad.append(f"ShaperDataplaneDown is {states['ShaperDataplaneDown']} with the dataplane up")
print(f"{len(want)} alert rules, {len(bad)} problem(s); alert states: "
      + ", ".join(f"{n}={'/'.join(sorted(s)) or 'inactive'}" for n, s in sorted(states.items())))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
  then rules_ok=1; break; fi
  sleep 0.5
done
cat "$tmp/rules.log"
[[ $rules_ok -eq 1 ]] || fail "prometheus: the alert rules are not all loaded, healthy and in the expected state"
# Grafana's $__rate_interval is four scrape intervals (here 1 s) at least.
/usr/bin/python3 "$dashboard_check" query "$dashboard" --prometheus "$prom" --rate-interval 5s \
  --var tenant="$tenant" --var direction=upload --var latency_class=realtime >"$tmp/dashboard.log" 2>&1 ||
  { cat "$tmp/dashboard.log"; fail "a panel query of $dashboard returned no data"; }
echo "dashboard: $(grep -c '^ok ' "$tmp/dashboard.log") panel queries returned data"
/usr/bin/python3 "$dashboard_check" metrics-doc "$metrics_doc" --scrape "$metrics/metrics" "$metrics/metrics/tenants" \
  >"$tmp/metrics-doc.log" 2>&1 || { cat "$tmp/metrics-doc.log"; fail "docs/metrics.md does not match the live metrics"; }
tail -1 "$tmp/metrics-doc.log"

# --- shut down cleanly: the control, then the dataplane (no leaked mbufs)
kill -TERM "$iperf_pid" 2>/dev/null || true
kill -TERM "$control_pid"
wait "$control_pid" || fail "shaper-control exited with status $? on SIGTERM"
kill -TERM "$dp_pid"
dp_rc=0
wait "$dp_pid" || dp_rc=$?
[[ $dp_rc -eq 0 ]] || fail "shaper-dataplane exited with status $dp_rc on SIGTERM"
grep -q 'mbufs in use at exit: 0' "$tmp/dp.log" || fail "shaper-dataplane leaked mbufs: $(grep 'mbufs in use' "$tmp/dp.log")"

echo "--- iperf3 (client, per second)"
grep -E '^\[ *[0-9]+\] +[0-9.]+-' "$tmp/iperf-client.log" | awk '{ print $3, $7, $8 }' | tr '\n' ';'
echo
echo "--- summary: before ${before_mbps} Mbit/s; plan in force ${applied_s} s after the edit; ceiling ${new_ceiling_mbps}Mbit reached in ${react_s} s (1 s window), ${react_short_s} s (0.2 s window), metrics showed the new ceiling at ${reload_s} s;" \
  "after ${after_mbps} Mbit/s; after the broken edit ${broken_mbps} Mbit/s; prometheus rate ${prom_max} B/s"
echo "$failures failure(s)"
[[ $failures -eq 0 ]]
