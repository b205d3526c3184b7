#!/usr/bin/python3
"""Checks that tests/tools/gen_policy.py keeps its promises.

    check_generated.py GEN_POLICY_PY [FILE...] [--examples FILE...]

For each FILE (a policy the build generated), and for policies it generates
itself over a spread of options (no groups, flat groups, nested groups, all
IPv4, all IPv6, 0 and 1 tenants, a slow link), it checks, independently of
the generator's own arithmetic:
  * prefixes are valid with no host bits, unique and pairwise disjoint;
  * names are unique, VLANs in 1..4094;
  * per direction: guaranteed <= ceiling <= shape rate, a tenant's or
    group's ceiling <= its group's, and guarantees of siblings sum to at
    most their parent's guarantee (the shape rate at the top);
and that the same seed gives the same bytes and another seed other bytes.
Files after --examples (config/examples) get the same checks, except that a
prefix may sit inside another tenant's (the language allows it; the generator
promises disjoint prefixes), though never equal it. A last self-check breaks
a generated policy on purpose and expects complaints, so a checker that
silently checks nothing fails.
Exits 1 naming the first broken promise of each file.
"""

import ipaddress
import os
import subprocess
import sys
import tempfile

import yaml

kRate = {"bit": 1, "Kbit": 10**3, "Mbit": 10**6, "Gbit": 10**9, "Tbit": 10**12,
         "bps": 1, "Kbps": 10**3, "Mbps": 10**6, "Gbps": 10**9, "Tbps": 10**12}


def rate(text):
    text = str(text)
    for unit in sorted(kRate, key=len, reverse=True):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * kRate[unit])
    raise ValueError(f"{text!r} is not a bit rate")


def shape_rate(link):
    cap = rate(link["capacity"])
    shape = str(link.get("shape_at", "100%"))
    if shape.endswith("%"):
        return cap * round(float(shape[:-1]) * 10000) // 1000000
    return rate(shape)


def direction(entity, d, parent_ceiling):
    """(guaranteed, ceiling) of an entity in direction d, defaults applied."""
    over = entity.get(d, {})
    guar = rate(over.get("guaranteed", entity.get("guaranteed", "0bit")))
    ceil = over.get("ceiling", entity.get("ceiling"))
    return guar, (rate(ceil) if ceil is not None else parent_ceiling)


def check(path, allow_nested=False):
    errors = []
    with open(path) as f:
        policy = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    shape = shape_rate(policy["link"])
    groups = {g["name"]: g for g in policy.get("groups") or []}
    tenants = policy["tenants"] or []
    if len(groups) != len(policy.get("groups") or []):
        errors.append("group names are not unique")
    if len({t["name"] for t in tenants}) != len(tenants):
        errors.append("tenant names are not unique")

    nets = []
    for t in tenants:
        vlan = t["match"].get("vlan")
        if vlan is not None and not 1 <= vlan <= 4094:
            errors.append(f"{t['name']}: vlan {vlan} outside 1..4094")
        for p in t["match"]["prefixes"]:
            try:
                nets.append((ipaddress.ip_network(p, strict=True), t["name"]))
            except ValueError as e:
                errors.append(f"{t['name']}: prefix {p}: {e}")
    # Disjoint: sorted by (version, address), each must end before the next.
    nets.sort(key=lambda n: (n[0].version, int(n[0].network_address)))
    for (a, an), (b, bn) in zip(nets, nets[1:]):
        if a.version != b.version or int(a.broadcast_address) < int(b.network_address):
            continue
        if a == b or not allow_nested:
            errors.append(f"prefixes overlap: {a} ({an}) and {b} ({bn})")

    for d in ("download", "upload"):
        ceil_of = {}

        def group_ceiling(name, seen=()):
            if name in ceil_of:
                return ceil_of[name]
            g = groups[name]
            if name in seen:
                raise ValueError(f"group cycle at {name}")
            parent = g.get("parent")
            pc = group_ceiling(parent, seen + (name,)) if parent else shape
            ceil_of[name] = direction(g, d, pc)[1]
            return ceil_of[name]

        budget = {None: shape}      # guarantee a parent hands its children
        used = {None: 0}
        cap = {None: shape}
        for name, g in groups.items():
            pc = group_ceiling(g["parent"]) if g.get("parent") else shape
            guar, ceil = direction(g, d, pc)
            budget[name], used[name], cap[name] = guar, 0, ceil
        for name, g in groups.items():
            guar, ceil = budget[name], cap[name]
            parent = g.get("parent")
            if not guar <= ceil <= cap[parent]:
                errors.append(f"{d}: group {name}: guaranteed {guar} <= ceiling {ceil} <= parent {cap[parent]} fails")
            used[parent] += guar
        for t in tenants:
            parent = t.get("group")
            guar, ceil = direction(t, d, cap[parent])
            if not guar <= ceil <= min(cap[parent], shape):
                errors.append(f"{d}: tenant {t['name']}: guaranteed {guar} <= ceiling {ceil} <= {cap[parent]} fails")
            used[parent] += guar
        for name in used:
            if used[name] > budget[name]:
                errors.append(f"{d}: guarantees under {name or 'the link'} sum to {used[name]} > {budget[name]}")
    return errors


def generate(gen, out, *args):
    subprocess.run([sys.executable, gen, "--out", out, *args], check=True,
                   stderr=subprocess.DEVNULL)
    return out


def main():
    gen, rest = sys.argv[1], sys.argv[2:]
    cut = rest.index("--examples") if "--examples" in rest else len(rest)
    files, examples = rest[:cut], rest[cut + 1:]
    failed = 0
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        spreads = [
            ["--tenants", "0"],
            ["--tenants", "1"],
            ["--tenants", "3000"],
            ["--tenants", "3000", "--groups", "7", "--ipv6-share", "0"],
            ["--tenants", "3000", "--groups", "17", "--nested", "--vlans", "--ipv6-share", "1"],
            ["--tenants", "2000", "--groups", "3", "--link", "100Mbit", "--seed", "5"],
            ["--tenants", "10", "--groups", "40", "--nested", "--link", "1.5Gbit"],
        ]
        for i, args in enumerate(spreads):
            files.append(generate(gen, os.path.join(tmp, f"spread{i}.yaml"), *args))

        for path, nested in [(f, False) for f in files] + [(f, True) for f in examples]:
            errors = check(path, allow_nested=nested)
            checked += 1
            if errors:
                failed += 1
                print(f"FAIL {path}:")
                for e in errors[:20]:
                    print(f"  {e}")
            else:
                print(f"PASS {path}")

        # Determinism: same seed, same bytes; another seed, other bytes.
        args = ["--tenants", "2000", "--groups", "9", "--nested", "--vlans"]
        a = open(generate(gen, os.path.join(tmp, "a.yaml"), *args, "--seed", "3"), "rb").read()
        b = open(generate(gen, os.path.join(tmp, "b.yaml"), *args, "--seed", "3"), "rb").read()
        c = open(generate(gen, os.path.join(tmp, "c.yaml"), *args, "--seed", "4"), "rb").read()
        checked += 1
        if a != b or a == c:
            failed += 1
            print(f"FAIL determinism: same seed equal={a == b}, other seed equal={a == c}")
        else:
            print("PASS determinism")

        # Self-check: an over-guaranteed tenant and a duplicated prefix must
        # both be caught.
        broken = os.path.join(tmp, "broken.yaml")
        text = open(os.path.join(tmp, "spread3.yaml")).read()
        lines = text.split("\n")
        first = next(i for i, l in enumerate(lines) if l.startswith("  - {name: t0000000"))
        lines.insert(first, "  - {name: greedy, group: group00000, match: {prefixes: [192.0.2.0/24]}, "
                            "guaranteed: 90Gbit, ceiling: 90Gbit}")
        lines.insert(first + 1, lines[first + 1].replace("t0000001", "dup-prefix"))
        open(broken, "w").write("\n".join(lines))
        problems = check(broken)
        checked += 1
        if not any("overlap" in p for p in problems) or not any(" sum to " in p for p in problems):
            failed += 1
            print(f"FAIL self-check: broken policy gave {problems[:5]}")
        else:
            print(f"PASS self-check ({len(problems)} problems found in a broken policy)")
    print(f"{checked - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
