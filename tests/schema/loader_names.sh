#!/usr/bin/env bash
# loader_names.sh SHAPERCTL FILE: `shaperctl check FILE` must exit 1 (not
# crash, not a usage error) and its messages must name each field the file's
# `# expect-error: PATH` lines give, so a bad file that the loader rejects for
# some other reason (a broken fixture, a loader bug) does not pass unnoticed.
set -uo pipefail
shaperctl=$1 file=$2
out=$("$shaperctl" check "$file" 2>&1)
rc=$?
echo "$out"
if [[ $rc != 1 ]]; then
  echo "loader_names: 'shaperctl check $file' exited $rc, expected 1" >&2
  exit 1
fi
status=0
while read -r path; do
  # A missing key is reported at its mapping: "link: missing required key
  # 'capacity'" for link.capacity, "missing required key 'link'" at the top.
  if [[ $path == *.* ]]; then
    missing="${path%.*}: missing required key '${path##*.}'"
  else
    missing="missing required key '$path'"
  fi
  if ! grep -qF -- "$path: " <<<"$out" && ! grep -qF -- "$missing" <<<"$out"; then
    echo "loader_names: no message names '$path'" >&2
    status=1
  fi
done < <(sed -n 's/^#[[:space:]]*expect-error:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$file")
exit $status
