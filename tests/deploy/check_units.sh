#!/usr/bin/env bash
# Checks deploy/systemd/: `systemd-analyze verify` must accept every unit
# without a single warning (unknown keys, bad values, a key in the wrong
# section, an ExecStart that does not resolve), and `systemd-analyze
# security --offline` must keep each unit's exposure at or under the level
# it was written to (so a hardening line removed by mistake fails here).
#
# The units name the installed binaries (/usr/local/bin/shaper-*); a temp
# copy points them at this build's binaries instead so verify can resolve
# them. No running systemd is needed.
#
#   check_units.sh DEPLOY_SYSTEMD_DIR SHAPER_DATAPLANE SHAPER_CONTROL
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 DEPLOY_SYSTEMD_DIR SHAPER_DATAPLANE SHAPER_CONTROL" >&2
  exit 2
fi
src=$(realpath "$1")
dataplane=$(realpath "$2")
control=$(realpath "$3")
command -v systemd-analyze >/dev/null || {
  echo "FAIL: systemd-analyze is missing (apt-get install systemd)"
  exit 1
}

# Exposure ceilings (systemd-analyze security, 0 = locked down, 10 = none).
# Measured with systemd 252: control 2.0, dataplane 4.5, hugepages 1.5.
declare -A max_exposure=([shaper-control]=2.5 [shaper-dataplane]=5.0 [shaper-hugepages]=2.0)

tmp=$(mktemp -d "/tmp/shaper-units-deploy-$$.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

units=()
for unit in shaper-dataplane shaper-control shaper-hugepages; do
  [[ -f "$src/$unit.service" ]] || { fail "$src/$unit.service is missing"; continue; }
  sed -e "s#/usr/local/bin/shaper-dataplane#$dataplane#g" \
      -e "s#/usr/local/bin/shaper-control#$control#g" "$src/$unit.service" >"$tmp/$unit.service"
  units+=("$tmp/$unit.service")
done
[[ -f "$src/shaper.env" ]] || fail "$src/shaper.env is missing"
# The copies must still name the env file and the real binaries.
grep -q "^ExecStart=$dataplane " "$tmp/shaper-dataplane.service" || fail "shaper-dataplane: ExecStart is not /usr/local/bin/shaper-dataplane"
grep -q "^ExecStart=$control " "$tmp/shaper-control.service" || fail "shaper-control: ExecStart is not /usr/local/bin/shaper-control"

# verify prints its warnings on stderr and still exits 0: any output fails.
rc=0
(cd "$tmp" && systemd-analyze verify --man=no "${units[@]}") >"$tmp/verify.log" 2>&1 || rc=$?
if [[ $rc -ne 0 || -s "$tmp/verify.log" ]]; then
  fail "systemd-analyze verify (exit $rc):"
  sed "s#$tmp/##" "$tmp/verify.log"
else
  echo "systemd-analyze verify: ${#units[@]} units, no warnings"
fi

for unit in "${!max_exposure[@]}"; do
  [[ -f "$tmp/$unit.service" ]] || continue
  out=$(systemd-analyze security --offline=yes --no-pager "$tmp/$unit.service" 2>&1) || true
  level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
  [[ -n "$level" ]] || { fail "$unit: no exposure level in systemd-analyze security's output"; echo "$out" | tail -5; continue; }
  if /usr/bin/python3 -c "import sys; sys.exit(0 if $level <= ${max_exposure[$unit]} else 1)"; then
    echo "$unit: exposure $level (at most ${max_exposure[$unit]})"
  else
    fail "$unit: exposure $level, above ${max_exposure[$unit]}: a hardening setting was lost"
  fi
done

# The settings the unit files promise in their comments.
for unit in shaper-dataplane shaper-control; do
  f=$tmp/$unit.service
  [[ -f "$f" ]] || continue
  for line in 'Restart=on-failure' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
      'PrivateTmp=yes' 'RuntimeDirectoryMode=0700' 'EnvironmentFile=/etc/shaper/shaper.env'; do
    grep -qx "$line" "$f" || fail "$unit: no '$line'"
  done
  grep -q '^RuntimeDirectory=shaper\b' "$f" || fail "$unit: no RuntimeDirectory=shaper"
  grep -q '^CapabilityBoundingSet=' "$f" || fail "$unit: no CapabilityBoundingSet"
done
grep -qx 'CapabilityBoundingSet=' "$tmp/shaper-control.service" ||
  fail "shaper-control: its capability bounding set is no longer empty"
grep -q '^After=.*shaper-dataplane.service' "$tmp/shaper-control.service" ||
  fail "shaper-control is not ordered after shaper-dataplane"
grep -q '^After=.*shaper-hugepages.service' "$tmp/shaper-dataplane.service" ||
  fail "shaper-dataplane is not ordered after shaper-hugepages"

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
