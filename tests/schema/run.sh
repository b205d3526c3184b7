#!/usr/bin/env bash
# Validates policy files against config/policy.schema.json with ajv.
#   run.sh NPM_DIR SCHEMA --expect valid|invalid FILE...
# NPM_DIR is a directory in the meson build dir. The first call installs the
# pinned packages of tests/schema/package-lock.json there with `npm ci`;
# later calls reuse them while the lock file is unchanged. A missing npm or a
# failed install is an error (exit 1), never a skip: CI must not go green
# without having validated anything.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
npm_dir=$1
shift

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "tests/schema: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

mkdir -p "$npm_dir"
# Tests run in parallel: one installs, the others wait on the lock.
exec 9>"$npm_dir/.lock"
flock 9
stamp="$npm_dir/.installed"
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -d "$npm_dir/node_modules/ajv" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
  if ! (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >"$npm_dir/npm-ci.log" 2>&1); then
    echo "tests/schema: 'npm ci' in $npm_dir failed:" >&2
    cat "$npm_dir/npm-ci.log" >&2
    exit 1
  fi
  echo "$want" >"$stamp"
fi
flock -u 9

exec node "$here/validate.mjs" --modules "$npm_dir/node_modules" "$@"
