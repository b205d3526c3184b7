#!/usr/bin/env bash
# The quickstart as a newcomer runs it, non-interactively:
#   SHAPER_SKIP_DEPS=1 deploy/quickstart.sh --duration 30 --build-dir BUILD --no-build
# (--no-build: meson test has just built BUILD; the test does not rebuild it
# under its own feet). Asserts:
#   - exit status 0 and a "torn down" line;
#   - the status snapshots it printed (every 5 s) show each tenant of
#     config/examples/testbed.yaml uploading at a rate > 0 and at most its
#     ceiling + 5% in every snapshot from 10 s on (the first is slow start);
#   - Prometheus, queried at the end, returns an upload rate > 0 per tenant;
#   - nothing is left behind: its network namespaces, its DPDK runtime
#     directory /var/run/dpdk/PREFIX, its state directory, hugepage files
#     of its prefix, the hugepages it reserved (nr_hugepages as before), and
#     any process that inherited this test's marker environment variable
#     (everything the quickstart started: dataplane, control, Prometheus,
#     iperf3, ping).
#
#   quickstart_test.sh QUICKSTART BUILD_DIR
# Exits 77 (skipped) when not root; as root every missing tool is a failure.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 QUICKSTART BUILD_DIR" >&2
  exit 2
fi
quickstart=$(realpath "$1")
build=$(realpath "$2")

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: the quickstart needs root (network namespaces, DPDK)"
  exit 77
fi
for cmd in ip ethtool iperf3 ping curl prometheus /usr/bin/python3; do
  command -v "$cmd" >/dev/null || { echo "FAIL: $cmd is missing (deploy/install-deps.sh installs it)"; exit 1; }
done

tmp=$(mktemp -d /tmp/shaper-quickstart-test.XXXXXX)
state=/run/shaper-quickstart-test-$$
marker=SHAPER_QUICKSTART_TEST_MARK=$$
cleanup() {
  # Only if the quickstart failed to clean up after itself.
  [[ -d "$state" ]] && SHAPER_QUICKSTART_STATE=$state "$quickstart" --stop >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
hugepages_before=$(cat "$hp" 2>/dev/null || echo none)

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

rc=0
env "$marker" SHAPER_SKIP_DEPS=1 SHAPER_QUICKSTART_STATE="$state" \
  timeout --signal=TERM --kill-after=20 150 \
  "$quickstart" --duration 30 --build-dir "$build" --no-build >"$tmp/out.log" 2>&1 || rc=$?
cat "$tmp/out.log"
echo "--- checks"
[[ $rc -eq 0 ]] || fail "quickstart exited with status $rc"
grep -q '^quickstart: torn down' "$tmp/out.log" || fail "no 'quickstart: torn down' line"
grep -q '^  memory: ' "$tmp/out.log" || fail "the quickstart did not say whether it used hugepages"

# The status snapshots: every tenant's upload rate > 0 and within its ceiling.
/usr/bin/python3 - "$tmp/out.log" <<'PY' || fail "status snapshots (above)"
import re, sys
UNIT = {"bit/s": 1, "Kbit/s": 1e3, "Mbit/s": 1e6, "Gbit/s": 1e9}
RATE = r"([0-9.]+) (bit/s|Kbit/s|Mbit/s|Gbit/s)"
ROW = re.compile(rf"^(tenant-[abc]) +upload +{RATE} +{RATE} +{RATE} +{RATE} ")
snapshots, current = [], None
for line in open(sys.argv[1]):
    m = re.match(r"^== status at (\d+) s", line)
    if m:
        current = {}
        snapshots.append((int(m.group(1)), current))
        continue
    m = ROW.match(line)
    if m and current is not None:
        v = [float(m.group(i)) * UNIT[m.group(i + 1)] for i in (2, 4, 6, 8)]
        current[m.group(1)] = {"rate": v[0], "ceiling": v[3]}
bad = []
checked = [(t, s) for t, s in snapshots if t >= 10]
if len(checked) < 3:
    bad.append(f"{len(checked)} status snapshots from 10 s on, expected at least 3")
for t, snap in checked:
    for tenant in ("tenant-a", "tenant-b", "tenant-c"):
        row = snap.get(tenant)
        if row is None:
            bad.append(f"{t} s: no upload row for {tenant}")
        elif row["rate"] <= 0:
            bad.append(f"{t} s: {tenant} upload rate is 0")
        elif row["rate"] > row["ceiling"] * 1.05:
            bad.append(f"{t} s: {tenant} at {row['rate'] / 1e6:.1f} Mbit/s, over its ceiling "
                       f"{row['ceiling'] / 1e6:.1f} Mbit/s + 5%")
for t, snap in checked:
    print(f"{t:3d} s: " + ", ".join(f"{k} {v['rate'] / 1e6:.1f}/{v['ceiling'] / 1e6:.0f} Mbit/s"
                                   for k, v in sorted(snap.items())))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY

# Prometheus scraped the control: a rate > 0 for every tenant.
for t in tenant-a tenant-b tenant-c; do
  grep -qE "^prometheus: $t upload ([1-9][0-9]*\.[0-9]|0\.[1-9]|0\.0*[1-9])" "$tmp/out.log" ||
    fail "no Prometheus rate > 0 for $t in the quickstart's output"
done

# Nothing left behind.
tag=$(sed -n 's/^== testbed: namespaces \([a-z0-9]*\)c (client).*/\1/p' "$tmp/out.log")
if [[ -z "$tag" ]]; then
  fail "the quickstart did not name its namespaces"
else
  for ns in "${tag}c" "${tag}s" "${tag}v"; do
    [[ ! -e "/run/netns/$ns" ]] || fail "network namespace $ns is left"
  done
  [[ ! -e "/var/run/dpdk/$tag" ]] || fail "DPDK runtime directory /var/run/dpdk/$tag is left"
  compgen -G "/dev/hugepages/${tag}map_*" >/dev/null && fail "hugepage files /dev/hugepages/${tag}map_* are left"
fi
[[ ! -e "$state" ]] || fail "state directory $state is left"
hugepages_after=$(cat "$hp" 2>/dev/null || echo none)
[[ "$hugepages_after" == "$hugepages_before" ]] ||
  fail "nr_hugepages was $hugepages_before before the quickstart and is $hugepages_after after"
left=()
for environ in /proc/[0-9]*/environ; do
  pid=${environ#/proc/}
  pid=${pid%/environ}
  [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
  if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qx "$marker"; then
    left+=("$pid:$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)")
  fi
done
[[ ${#left[@]} -eq 0 ]] || fail "processes started by the quickstart are still running: ${left[*]}"

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
