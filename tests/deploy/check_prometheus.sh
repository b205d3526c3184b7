#!/usr/bin/env bash
# Checks deploy/prometheus/: `promtool check config` accepts the scrape
# configuration (its rule_files entry pointed at this tree's rules file),
# `promtool check rules` accepts the alert rules, and `promtool test rules`
# runs tests/deploy/shaper-alerts.test.yml: every alert fires on its
# synthetic unhealthy series and stays quiet on the healthy ones.
#
#   check_prometheus.sh DEPLOY_PROMETHEUS_DIR ALERTS_TEST_FILE
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DEPLOY_PROMETHEUS_DIR ALERTS_TEST_FILE" >&2
  exit 2
fi
src=$(realpath "$1")
unit_tests=$(realpath "$2")
command -v promtool >/dev/null || {
  echo "FAIL: promtool is missing (apt-get install --no-install-recommends prometheus)"
  exit 1
}
rules=$src/shaper-alerts.yml
tmp=$(mktemp -d "/tmp/shaper-prom-deploy-$$.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

grep -q '^  - /etc/prometheus/shaper-alerts.yml$' "$src/prometheus.yml" ||
  fail "prometheus.yml no longer loads /etc/prometheus/shaper-alerts.yml"
sed "s#/etc/prometheus/shaper-alerts.yml#$rules#" "$src/prometheus.yml" >"$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml" || fail "promtool check config"
promtool check rules "$rules" || fail "promtool check rules"
promtool test rules "$unit_tests" || fail "promtool test rules"

# Every alert of the rules file has a unit test, and the tests name no alert
# the rules file lacks.
/usr/bin/python3 - "$rules" "$unit_tests" <<'PY' || fail "alerts and unit tests do not match"
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
tested, fired = set(), set()
for t in tests["tests"]:
    for a in t.get("alert_rule_test", []):
        tested.add(a["alertname"])
        if a.get("exp_alerts"):
            fired.add(a["alertname"])
ok = True
for name in sorted(alerts - fired):
    print(f"alert {name}: no unit test shows it firing"); ok = False
for name in sorted(tested - alerts):
    print(f"unit test names alert {name}, which the rules file does not define"); ok = False
print(f"{len(alerts)} alerts, each shown firing and quiet: {', '.join(sorted(alerts))}" if ok else "")
sys.exit(0 if ok else 1)
PY

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
