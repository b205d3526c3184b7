#!/usr/bin/env bash
# Installs dependencies, builds shaper and runs every test suite.
#   sudo tests/run.sh                 # everything (what CI runs)
#   tests/run.sh --suite unit         # one meson suite (extra args go to `meson test`)
# Environment: BUILD_DIR (default: build), SHAPER_SKIP_DEPS=1 to skip apt,
# SAN_BUILD_DIR (default: BUILD_DIR-asan), SHAPER_SKIP_SANITIZE=1 to skip the
# second pass (unit + dataplane suites under ASan + UBSan).
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
# The fuzz suite (tests/fuzz) needs clang++ for libFuzzer; without it, say so.
fuzz=false
if command -v clang++ >/dev/null; then
  fuzz=true
else
  echo "run.sh: clang++ not found: the fuzz suite is not built (apt-get install clang)" >&2
fi
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" --werror -Dfuzz=$fuzz
else
  meson setup --reconfigure "$build" --werror -Dfuzz=$fuzz >/dev/null
fi
meson compile -C "$build" -j "$jobs"

# Benchmarks are not pass/fail tests: tests/bench/ runs them (see docs/benchmarks.md).
set +e
meson test -C "$build" --no-rebuild --print-errorlogs --no-suite bench "$@"
rc=$?
set -e
logs=("$build/meson-logs/testlog.json")

# Second pass: the unit and dataplane suites again, built with AddressSanitizer
# + UndefinedBehaviorSanitizer in their own build directory (only the targets
# those suites use). Any report fails the test (halt_on_error). Skipped when
# this run selects suites itself (extra arguments) or SHAPER_SKIP_SANITIZE=1.
san=${SAN_BUILD_DIR:-$build-asan}
if [[ $# -eq 0 && "${SHAPER_SKIP_SANITIZE:-0}" != 1 ]]; then
  if [[ ! -f "$san/build.ninja" ]]; then
    meson setup "$san" --werror -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=false
  else
    meson setup --reconfigure "$san" --werror -Db_sanitize=address,undefined -Db_lundef=false \
      -Dfuzz=false >/dev/null
  fi
  # The outputs the two suites run (test executables and programs they are given).
  mapfile -t san_targets < <(cd "$san" && /usr/bin/python3 - <<'PY'
import json, os, subprocess
b = os.getcwd()
tests = json.loads(subprocess.check_output(["meson", "introspect", "--tests", "."]))
targets = {t["id"]: t for t in json.loads(subprocess.check_output(["meson", "introspect", "--targets", "."]))}
outs = set()
for t in tests:
    if {s.split(":")[-1] for s in t["suite"]} & {"unit", "dataplane"}:
        for d in t.get("depends", []):
            outs.update(targets[d]["filename"])
        outs.update(a for a in t["cmd"] if a.startswith(b + "/"))
rel = (os.path.relpath(f, b) for f in outs)
print("\n".join(sorted(r for r in rel if not r.startswith(".."))))
PY
)
  start=$(date +%s)
  ninja -C "$san" -j "$jobs" "${san_targets[@]}"
  echo "run.sh: sanitizer build of ${#san_targets[@]} targets took $(( $(date +%s) - start )) s"
  # detect_leaks: LeakSanitizer too. DPDK's EAL keeps its memory until exit
  # by design; tests/hostile/lsan.supp lists what is suppressed and why.
  set +e
  ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
  LSAN_OPTIONS="suppressions=$root/tests/hostile/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    meson test -C "$san" --no-rebuild --print-errorlogs --timeout-multiplier 3 --suite unit --suite dataplane
  san_rc=$?
  set -e
  logs+=("$san/meson-logs/testlog.json")
  (( rc != 0 )) || rc=$san_rc
fi

/usr/bin/python3 - "${logs[@]}" <<'PY'
import json, os, sys
total = [0, 0, 0]
print()
for path in sys.argv[1:]:
    if not os.path.exists(path):
        continue
    counts = {}
    for line in open(path):
        r = json.loads(line)
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    passed = counts.get("OK", 0) + counts.get("EXPECTEDFAIL", 0)
    skipped = counts.get("SKIP", 0)
    failed = sum(v for k, v in counts.items() if k not in ("OK", "EXPECTEDFAIL", "SKIP"))
    print(f"{os.path.dirname(os.path.dirname(path))}: {passed} passed, {failed} failed, {skipped} skipped")
    total = [total[0] + passed, total[1] + failed, total[2] + skipped]
print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
PY
exit $rc
