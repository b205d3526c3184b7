#!/usr/bin/env bash
# listed.sh EXAMPLES_DIR BAD_DIR -- NAME...: fails when a *.yaml file in either
# directory is missing from NAME... (tests/schema/meson.build's lists), so no
# example or bad file goes untested.
set -euo pipefail
examples_dir=$1 bad_dir=$2
shift 3
status=0
for f in "$examples_dir"/*.yaml "$bad_dir"/*.yaml; do
  name=$(basename "$f" .yaml)
  listed=0
  for n in "$@"; do [[ $n == "$name" ]] && listed=1; done
  if [[ $listed == 0 ]]; then
    echo "$f is not listed in tests/schema/meson.build" >&2
    status=1
  fi
done
[[ $status == 0 ]] && echo "all $# policy files are listed"
exit $status
