#!/usr/bin/env bash
# Installs dependencies, builds shaper and runs every test suite.
#   sudo tests/run.sh                 # everything (what CI runs)
#   tests/run.sh --suite unit         # one meson suite (extra args go to `meson test`)
# Environment: BUILD_DIR (default: build), SHAPER_SKIP_DEPS=1 to skip apt.
# Exits non-zero when any test fails. Tests that need root fail loudly when
# run as root without what they need; in a non-root run they skip and say why.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build}

if [[ "${SHAPER_SKIP_DEPS:-0}" != 1 ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    deploy/install-deps.sh
  else
    deploy/install-deps.sh || echo "run.sh: not root, continuing with what is installed" >&2
  fi
fi

jobs=$(nproc)
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" --werror
else
  meson setup --reconfigure "$build" --werror >/dev/null
fi
meson compile -C "$build" -j "$jobs"

# Benchmarks are not pass/fail tests: tests/bench/ runs them (see docs/benchmarks.md).
set +e
meson test -C "$build" --no-rebuild --print-errorlogs --no-suite bench "$@"
rc=$?
set -e

log="$build/meson-logs/testlog.json"
if [[ -f "$log" ]]; then
  /usr/bin/python3 - "$log" <<'PY'
import json, sys
counts = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    counts[r["result"]] = counts.get(r["result"], 0) + 1
passed = counts.get("OK", 0) + counts.get("EXPECTEDFAIL", 0)
skipped = counts.get("SKIP", 0)
failed = sum(v for k, v in counts.items() if k not in ("OK", "EXPECTEDFAIL", "SKIP"))
print()
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
fi
exit $rc
