#!/usr/bin/env bash
# Access to the running daemons, as an unprivileged user (uid of `nobody`):
#   - shaper-dataplane's control socket and shaper-control's admin socket are
#     mode 0600: nobody's connect() fails (EACCES);
#   - with the modes loosened to 0666 (what a careless operator or a wrong
#     umask would leave), the SO_PEERCRED check still refuses: the dataplane
#     answers "uid N is not allowed" and logs "refused connection from uid=N",
#     shaper-control answers "permission denied" and logs "admin peer refused"
#     with the uid; root still gets through on both afterwards;
#   - shaper-control without --metrics listens on 127.0.0.1:9470 only
#     (checked with ss inside a namespace of its own, so the port is free).
#
#   access.sh SHAPER_DATAPLANE SHAPER_CONTROL SHAPERCTL DP_TEST_TOOL
# Needs root (a second uid, namespaces, DPDK); exits 77 without root.
set -euo pipefail
dataplane=$(realpath "$1")
control=$(realpath "$2")
shaperctl=$(realpath "$3")
tool=$(realpath "$4")
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (runs clients as another uid, namespaces, DPDK)"
  exit 77
fi
for cmd in setpriv ss ip; do
  command -v "$cmd" >/dev/null || { echo "FAIL: $cmd is missing (util-linux, iproute2)"; exit 1; }
done
nobody_uid=$(id -u nobody) || { echo "FAIL: no user 'nobody'"; exit 1; }

tag=hxa$$
ns=${tag}
tmp=$(mktemp -d /tmp/shaper-access.XXXXXX)
chmod 0755 "$tmp"  # nobody may reach the sockets' directory: the sockets' own mode is under test
dp_pid= control_pid=
cleanup() {
  [[ -n "$control_pid" ]] && kill -KILL "$control_pid" 2>/dev/null || true
  [[ -n "$dp_pid" ]] && kill -KILL "$dp_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp" "/var/run/dpdk/access-$tag"
}
trap cleanup EXIT
trap "exit 1" INT TERM
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
as_nobody() { setpriv --reuid "$nobody_uid" --regid "$(id -g nobody)" --clear-groups -- "$@"; }

ip netns add "$ns"
ip -n "$ns" link set lo up
cat >"$tmp/policy.yaml" <<'YAML'
version: 1
link: {capacity: 1Gbit}
classes:
  - {name: bulk, priority: bulk, weight: 1, queue_limit: 50ms, default: true}
tenants:
  - {name: a, match: {prefixes: [10.0.1.0/24]}, ceiling: 100Mbit}
YAML

ip netns exec "$ns" "$dataplane" --no-huge -m 512 --file-prefix "access-$tag" --no-pci \
  --no-telemetry -l 0,1 --log-level '*:warning' --vdev net_null0 --vdev net_null1 \
  -- --pairs 0:1 --ctl-socket "$tmp/dp.sock" --idle-sleep-us 100 >"$tmp/dp.out" 2>&1 &
dp_pid=$!
for _ in $(seq 150); do grep -q '^running' "$tmp/dp.out" && break; sleep 0.1; done
grep -q '^running' "$tmp/dp.out" || { cat "$tmp/dp.out"; echo "FAIL: dataplane did not start"; exit 1; }

ip netns exec "$ns" "$control" --policy "$tmp/policy.yaml" --dataplane "$tmp/dp.sock" \
  --admin "$tmp/admin.sock" --state "$tmp/control.ids" >"$tmp/control.out" 2>&1 &
control_pid=$!
for _ in $(seq 150); do [[ -S "$tmp/admin.sock" ]] && break; sleep 0.1; done
[[ -S "$tmp/admin.sock" ]] || { cat "$tmp/control.out"; echo "FAIL: shaper-control did not create its admin socket"; exit 1; }
sleep 0.5

for s in dp.sock admin.sock; do
  mode=$(stat -c %a "$tmp/$s")
  [[ "$mode" == 600 ]] && echo "$s: mode $mode" || fail "$s has mode $mode, want 600"
done

# 1. The file mode keeps nobody out.
if out=$(as_nobody "$tool" stats "$tmp/dp.sock" 2>&1); then
  fail "nobody read the dataplane's stats through a 0600 socket: $out"
else
  echo "nobody -> dp.sock (0600): refused: $out"
  [[ "$out" == *"ermission denied"* ]] || fail "dp.sock refusal is not EACCES: $out"
fi
if out=$(as_nobody "$shaperctl" status --admin "$tmp/admin.sock" 2>&1); then
  fail "nobody used the admin socket at 0600: $out"
else
  echo "nobody -> admin.sock (0600): refused: $out"
  [[ "$out" == *"ermission denied"* ]] || fail "admin.sock refusal is not EACCES: $out"
fi

# 2. Modes loosened: SO_PEERCRED refuses, and says so in the logs.
chmod 0666 "$tmp/dp.sock" "$tmp/admin.sock"
if out=$(as_nobody "$tool" stats "$tmp/dp.sock" 2>&1); then
  fail "nobody read the dataplane's stats past SO_PEERCRED: $out"
else
  echo "nobody -> dp.sock (0666): refused: $out"
  [[ "$out" == *"uid $nobody_uid is not allowed"* ]] || fail "dataplane refusal does not name uid $nobody_uid: $out"
fi
sleep 0.3
grep -q "refused connection from uid=$nobody_uid" "$tmp/dp.out" &&
  echo "dataplane log: $(grep "refused connection from uid=$nobody_uid" "$tmp/dp.out" | head -1)" ||
  fail "dataplane did not log the refused uid $nobody_uid"
# Five times: the refusal used to race the client's request (the answer was
# lost about one time in two when shaper-control closed before reading it).
for i in 1 2 3 4 5; do
  if out=$(as_nobody "$shaperctl" status --admin "$tmp/admin.sock" 2>&1); then
    fail "nobody used the admin socket past SO_PEERCRED: $out"
  else
    [[ $i -eq 1 ]] && echo "nobody -> admin.sock (0666): refused: $out"
    [[ "$out" == *"permission denied"* ]] || fail "admin refusal $i does not say permission denied: $out"
  fi
done
sleep 0.3
grep "admin peer refused" "$tmp/control.out" | grep -q "$nobody_uid" &&
  echo "control log: $(grep "admin peer refused" "$tmp/control.out" | head -1)" ||
  fail "shaper-control did not log the refused uid $nobody_uid"

# Root still gets in on both, and both daemons are still up.
"$tool" stats "$tmp/dp.sock" >/dev/null || fail "root refused on dp.sock after the refusals"
"$shaperctl" status --admin "$tmp/admin.sock" >/dev/null || fail "root refused on admin.sock after the refusals"

# 3. Metrics: loopback only by default.
listen=$(ip netns exec "$ns" ss -ltnH | awk '{print $4}' | sort -u | tr '\n' ' ')
echo "listening TCP sockets of shaper-control (no --metrics): $listen"
[[ "$listen" == *"127.0.0.1:9470"* ]] || fail "metrics not on 127.0.0.1:9470: $listen"
for addr in $listen; do
  [[ "$addr" == 127.0.0.1:* ]] || fail "a TCP listener beyond loopback: $addr"
done

kill -TERM "$control_pid"; wait "$control_pid" || fail "shaper-control exit status $?"; control_pid=
kill -TERM "$dp_pid"; wait "$dp_pid" || fail "dataplane exit status $?"; dp_pid=
echo "$failures failure(s)"
[[ $failures -eq 0 ]]
