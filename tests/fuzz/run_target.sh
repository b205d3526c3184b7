#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time: the checked-in seed corpus
# first (every seed, and every reproducer added there, must pass), then new
# inputs until SECONDS have passed. Fails on any crash, sanitizer report,
# leak, slow input (-timeout) or out-of-memory.
#
#   run_target.sh FUZZER SEED_CORPUS_DIR SECONDS [more libFuzzer options]
#
# New inputs go to a temporary directory (the checked-in corpus is read
# only); a failing input is written to FUZZ_ARTIFACTS (default: an
# `artifacts` directory beside FUZZER) and named in the log.
set -euo pipefail
exe=$1 seeds=$2 secs=$3
shift 3
[[ -x "$exe" ]] || { echo "FAIL: $exe is not built"; exit 1; }
[[ -d "$seeds" ]] || { echo "FAIL: no seed corpus at $seeds"; exit 1; }
work=$(mktemp -d "/tmp/shaper-fuzz-$(basename "$exe").XXXXXX")
trap 'rm -rf "$work" "$work.log"' EXIT
artifacts=${FUZZ_ARTIFACTS:-$(dirname "$exe")/artifacts}
mkdir -p "$artifacts"
# libFuzzer exits 77 on a crash by default: that is meson's "skipped".
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
rc=0
"$exe" "$work" "$seeds" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$artifacts/$(basename "$exe")-" "$@" >"$work.log" 2>&1 || rc=$?
# Progress lines (NEW/REDUCE/pulse) are many: keep the rest (seeds, DONE, stats, reports).
grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse)|NEW_FUNC' "$work.log" || true
rm -f "$work.log"
echo "$(basename "$exe"): exit $rc, corpus grew to $(ls "$work" | wc -l) new inputs"
exit "$rc"
