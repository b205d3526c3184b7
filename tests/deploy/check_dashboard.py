#!/usr/bin/python3
"""Checks of deploy/grafana/ and docs/metrics.md (Grafana itself is not in
Debian: the dashboard is checked by evaluating its queries on Prometheus).

  check_dashboard.py lint DASHBOARD.json [--provisioning DIR] [--metrics-doc docs/metrics.md]
      Static: the JSON loads; panel ids and refIds are unique; every panel
      and target uses the ${datasource} variable; every $variable used is
      defined or a Grafana built-in; every shaper_* metric a query names is
      documented in docs/metrics.md; the panels the issue asks for exist;
      the provisioning files point at a Prometheus datasource and a folder.

  check_dashboard.py query DASHBOARD.json --prometheus URL [--var NAME=VALUE ...]
                     [--rate-interval 5s]
      Live: fills in the variables (given with --var, else the first value
      of the variable's own label_values() query on that Prometheus), runs
      every panel target through /api/v1/query and fails when one errors,
      returns no series, or only NaN (a histogram with no samples).

  check_dashboard.py metrics-doc docs/metrics.md (--scrape URL ... | --source FILE ...)
      Every metric name exported (from live scrapes of shaper-control, or
      from the Family("...") calls in the sources) is documented in
      docs/metrics.md, and the doc names no shaper_* metric that is not
      exported.
"""
import argparse
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"}
VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
METRIC_RE = re.compile(r"\bshaper_[a-z0-9_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# The panels the issue (and deploy/README.md) promise, by title fragment.
REQUIRED_PANELS = [
    "Link utilisation per direction",
    "rate against allocated, demand, guaranteed and ceiling",
    "Drops by reason",
    "Queue delay of class $latency_class",
    "Policy reloads",
]


def panels_of(dash):
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []):  # collapsed rows hold their panels
            yield q


def used_vars(text):
    return {a or b or c for a, b, c in VAR_RE.findall(text)}


def base_metric(name):
    for s in HISTOGRAM_SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def documented_metrics(path):
    """Metric names in docs/metrics.md: the first column of its tables."""
    names = set()
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\|\s*`(shaper_[a-z0-9_]+|exposer_[a-z0-9_]+)`", line)
        if m:
            names.add(m.group(1))
    return names


def lint(args):
    errors = []
    dash = json.load(open(args.dashboard, encoding="utf-8"))
    for key in ("uid", "title", "panels", "templating"):
        if key not in dash:
            errors.append(f"{args.dashboard}: no '{key}'")
    variables = [v["name"] for v in dash.get("templating", {}).get("list", [])]
    if len(set(variables)) != len(variables):
        errors.append(f"{args.dashboard}: duplicate template variables {variables}")
    if "datasource" not in variables:
        errors.append(f"{args.dashboard}: no 'datasource' variable")
    known = set(variables) | BUILTINS
    documented = documented_metrics(args.metrics_doc) if args.metrics_doc else None
    ids = set()
    titles = []
    queries = 0
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
            if not re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q):
                errors.append(f"variable {v['name']}: query '{q}' is not label_values(SELECTOR, LABEL)")
            for name in used_vars(q) - known:
                errors.append(f"variable {v['name']}: uses undefined ${name}")
    for p in panels_of(dash):
        where = f"panel {p.get('id')} '{p.get('title')}'"
        if p.get("id") in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        titles.append(p.get("title", ""))
        for name in used_vars(p.get("title", "")) - known:
            errors.append(f"{where}: title uses undefined ${name}")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{where}: datasource is {p.get('datasource')}, not the ${{datasource}} variable")
        targets = p.get("targets", [])
        if not targets:
            errors.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            errors.append(f"{where}: duplicate refIds {refs}")
        for t in targets:
            expr = t.get("expr", "")
            queries += 1
            if not expr.strip():
                errors.append(f"{where} [{t.get('refId')}]: empty expr")
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"{where} [{t.get('refId')}]: datasource is not the ${{datasource}} variable")
            for name in used_vars(expr) - known:
                errors.append(f"{where} [{t.get('refId')}]: uses undefined ${name}")
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                errors.append(f"{where} [{t.get('refId')}]: unbalanced brackets in {expr}")
            if documented is not None:
                for m in METRIC_RE.findall(expr):
                    if base_metric(m) not in documented:
                        errors.append(f"{where} [{t.get('refId')}]: {m} is not in {args.metrics_doc}")
    for want in REQUIRED_PANELS:
        if not any(want in t for t in titles):
            errors.append(f"{args.dashboard}: no panel titled '...{want}...'")
    if args.provisioning:
        errors += lint_provisioning(args.provisioning)
    for e in errors:
        print(f"FAIL: {e}")
    print(f"{args.dashboard}: {len(ids)} panels, {queries} queries, {len(variables)} variables; "
          f"{len(errors)} error(s)")
    return 1 if errors else 0


def lint_provisioning(directory):
    import yaml  # python3-yaml (Debian)
    errors = []
    ds_path = os.path.join(directory, "datasources", "shaper.yaml")
    db_path = os.path.join(directory, "dashboards", "shaper.yaml")
    for path in (ds_path, db_path):
        if not os.path.exists(path):
            errors.append(f"{path}: missing")
    if errors:
        return errors
    ds = yaml.safe_load(open(ds_path, encoding="utf-8"))
    if ds.get("apiVersion") != 1 or not ds.get("datasources"):
        errors.append(f"{ds_path}: want apiVersion 1 and a datasources list")
    elif not any(d.get("type") == "prometheus" and d.get("url") for d in ds["datasources"]):
        errors.append(f"{ds_path}: no prometheus datasource with a url")
    db = yaml.safe_load(open(db_path, encoding="utf-8"))
    providers = db.get("providers") or []
    if db.get("apiVersion") != 1 or not providers:
        errors.append(f"{db_path}: want apiVersion 1 and a providers list")
    for pr in providers:
        if pr.get("type") != "file" or not pr.get("options", {}).get("path"):
            errors.append(f"{db_path}: provider {pr.get('name')}: want type file and options.path")
    return errors


def api(base, path, params):
    url = f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def substitute(text, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(name)
        return values[name]
    return VAR_RE.sub(repl, text)


def query(args):
    dash = json.load(open(args.dashboard, encoding="utf-8"))
    given = dict(kv.split("=", 1) for kv in args.var)
    values = {"__rate_interval": args.rate_interval, "__interval": args.rate_interval,
              "__range": args.rate_interval, "__range_s": args.rate_interval.rstrip("s")}
    failures = 0
    for v in dash["templating"]["list"]:
        name = v["name"]
        if name in given:
            values[name] = given[name]
        elif v.get("type") == "datasource":
            values[name] = "prometheus"
        elif v.get("type") == "query":
            try:
                q = substitute(v["query"]["query"], values)
            except KeyError as e:
                print(f"FAIL: variable {name}: no value for ${e.args[0]}")
                failures += 1
                continue
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
            try:
                found = sorted(api(args.prometheus, f"/api/v1/label/{m.group(2)}/values",
                                   {"match[]": m.group(1)}))
            except RuntimeError as e:
                found = []
                print(f"FAIL: variable {name}: {q}: {e}")
            if not found:
                print(f"FAIL: variable {name}: {q} has no values")
                failures += 1
                continue
            values[name] = found[0]
        print(f"variable {name} = {values.get(name)}")
    for p in panels_of(dash):
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []):
            where = f"'{p['title']}' [{t['refId']}]"
            try:
                expr = substitute(t["expr"], values)
            except KeyError as e:
                print(f"FAIL: {where}: no value for ${e.args[0]}")
                failures += 1
                continue
            try:
                data = api(args.prometheus, "/api/v1/query", {"query": expr})
            except RuntimeError as e:
                print(f"FAIL: {where}: {expr}: {e}")
                failures += 1
                continue
            series = data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]
            numbers = [float(s["value"][1]) for s in series]
            finite = [x for x in numbers if not math.isnan(x)]
            if not series:
                print(f"FAIL: {where}: no data: {expr}")
                failures += 1
            elif not finite:
                print(f"FAIL: {where}: only NaN (no samples) in {len(series)} series: {expr}")
                failures += 1
            else:
                print(f"ok   {where}: {len(series)} series, e.g. {finite[0]:.6g}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


def exported_from_scrape(urls):
    names = set()
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                m = re.match(r"# TYPE (\S+) ", line)
                if m:
                    names.add(m.group(1))
    return names


def exported_from_source(paths):
    names = set()
    for path in paths:
        names |= set(re.findall(r'Family\(\s*"((?:shaper|exposer)_[a-z0-9_]+)"', open(path, encoding="utf-8").read()))
    return names


def metrics_doc(args):
    documented = documented_metrics(args.doc)
    exported = exported_from_scrape(args.scrape) if args.scrape else exported_from_source(args.source)
    if args.source:
        # exposer_* come from prometheus-cpp, not from Family() calls.
        documented_cmp = {n for n in documented if n.startswith("shaper_")}
    else:
        documented_cmp = documented
    failures = 0
    if not exported:
        print("FAIL: no metric found in the scrape/sources")
        failures += 1
    for name in sorted(exported - documented):
        print(f"FAIL: {name} is exported but not documented in {args.doc}")
        failures += 1
    for name in sorted(documented_cmp - exported):
        print(f"FAIL: {args.doc} documents {name}, which is not exported")
        failures += 1
    print(f"{len(exported)} exported metric families, {len(documented)} documented; {failures} failure(s)")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lint")
    p.add_argument("dashboard")
    p.add_argument("--provisioning")
    p.add_argument("--metrics-doc")
    p = sub.add_parser("query")
    p.add_argument("dashboard")
    p.add_argument("--prometheus", required=True)
    p.add_argument("--var", action="append", default=[])
    p.add_argument("--rate-interval", default="5s")
    p = sub.add_parser("metrics-doc")
    p.add_argument("doc")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--scrape", nargs="+")
    g.add_argument("--source", nargs="+")
    args = ap.parse_args()
    return {"lint": lint, "query": query, "metrics-doc": metrics_doc}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
