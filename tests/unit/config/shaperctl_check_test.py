#!/usr/bin/env python3
"""`shaperctl check` end to end: exit codes, the errors on stderr, --json.

Usage: shaperctl_check_test.py SHAPERCTL TESTDATA_DIR
"""
import json
import os
import subprocess
import sys


def run(*args):
    return subprocess.run([SHAPERCTL, *args], capture_output=True, text=True, timeout=60)


def expect(cond, what, result):
    if not cond:
        sys.stderr.write(f"FAIL: {what}\nexit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n")
        sys.exit(1)


SHAPERCTL, DATA = sys.argv[1], sys.argv[2]
valid = os.path.join(DATA, "valid.yaml")
invalid = os.path.join(DATA, "invalid.yaml")

r = run("check", valid)
expect(r.returncode == 0, "a valid policy exits 0", r)
expect(f"{valid}: valid: 2 tenants, 1 group, 2 classes\n" in r.stdout, "summary line", r)
expect("oversubscription 0.71x" in r.stdout, "download oversubscription 7Gbit/9.8Gbit", r)
expect(r.stderr == "", "nothing on stderr", r)

r = run("check", valid, invalid)
expect(r.returncode == 1, "any invalid file exits 1", r)
expect(r.stderr.splitlines() == [
    f"{invalid}:11:24: tenants[0].match.prefixes[0]: 203.0.113.5/24 has host bits set; did you mean 203.0.113.0/24?",
    f"{invalid}:12:5: tenants[0].celing: unknown key 'celing'; did you mean 'ceiling'?",
    f"{invalid}:15:28: tenants[1].download.guaranteed: guaranteed 500Mbit exceeds the ceiling 400Mbit",
    f"{invalid}: invalid (3 errors)",
], "every error of the invalid file, on stderr", r)

r = run("check", "--json", "--limit", "1", valid, invalid)
expect(r.returncode == 1, "--json: exit 1 too", r)
doc = json.loads(r.stdout)
expect([f["valid"] for f in doc["files"]] == [True, False], "--json: one entry per file", r)
expect(len(doc["files"][0]["tenants"]) == 1 and doc["files"][0]["tenant_count"] == 2, "--limit in JSON", r)
expect(len(doc["files"][1]["errors"]) == 3, "--json: the errors", r)

r = run("check")
expect(r.returncode == 2, "usage error (no FILE) exits 2", r)
print("shaperctl check: 5 passed, 0 failed")
