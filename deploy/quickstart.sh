#!/usr/bin/env bash
# shaper quickstart: installs dependencies, builds, and checks the example
# policies with shaperctl.
#   sudo deploy/quickstart.sh [--build-dir DIR]
# (Running the shaper on a veth testbed with live per-tenant rates is the
# end-to-end issue's part; until then this stops after the policy check.)
set -euo pipefail

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
}

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "quickstart: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$root"
echo "== installing dependencies (Debian packages)"
deploy/install-deps.sh --build-only

echo "== building in $build"
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" >/dev/null
fi
meson compile -C "$build" -j "$(nproc)" >/dev/null

shaperctl="$build/control/shaperctl"
echo "== checking the example policies"
for f in config/examples/*.yaml; do
  echo "-- $f"
  "$shaperctl" check "$f"
done
echo
echo "All example policies are valid. Edit one and run: $shaperctl check FILE"
