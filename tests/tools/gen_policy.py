#!/usr/bin/python3
"""Writes a large, valid shaper policy for load, scale and benchmark tests.

    gen_policy.py --tenants 100000 [--groups 64] [--nested] [--ipv6-share 0.2]
                  [--vlans] [--seed 1] [--link 100Gbit] --out policy.yaml

Why it writes text directly: a million tenants as Python dicts dumped through
PyYAML takes minutes and gigabytes; one formatted line per tenant takes a few
seconds. Each tenant is a YAML flow mapping on one line, which is ordinary
YAML (the loader and the schema see the same structure as block style).

What the output promises (the loader's rules, config/model.h):
  * the sum of tenant guarantees in each direction stays below the shape
    rate, and below the guarantee of the tenant's group; the sum of group
    guarantees under a parent (or at the top) stays below the parent's
    guarantee (or the shape rate). Every sum keeps a margin, so rounding in
    the loader cannot tip it over;
  * guaranteed <= ceiling <= the shape rate, and a tenant's ceiling never
    exceeds its group's;
  * every prefix is unique, aligned (no host bits) and disjoint from every
    other: IPv4 tenants get a /29 out of 10.0.0.0/8 (2^21 of them), IPv6
    tenants a /56 out of 2001:db8::/32 (2^24 of them). Block numbers are
    shuffled by a seeded bijection so prefixes are not in tenant order;
  * the same arguments and seed give the same bytes.

--ipv6-share is the fraction of tenants matched by an IPv6 prefix (the rest
by IPv4). --vlans gives every tenant a VLAN (1..4094). --groups G puts the
tenants in G groups; with --nested the first max(1, G/8) of them are parents
("pops") and the rest are their children ("sites"), tenants in the sites.
"""

import argparse
import random
import sys
import time

kV4Blocks = 1 << 21          # /29 blocks in 10.0.0.0/8
kV6Blocks = 1 << 24          # /56 blocks in 2001:db8::/32
kMarginNum, kMarginDen = 9, 10   # every guarantee budget keeps 10% spare

kRateUnits = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12,
              "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9,
              "tbps": 8 * 10**12}


def parse_rate(text):
    """'100Gbit' -> 100e9 bits per second; used for --link only."""
    t = text.strip().lower()
    for unit in sorted(kRateUnits, key=len, reverse=True):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * kRateUnits[unit])
    raise argparse.ArgumentTypeError(f"--link {text!r}: expected a bit rate like 100Gbit")


def fmt_rate(bps):
    """The shortest exact spelling of a rate in bits per second."""
    for unit, mult in (("Gbit", 10**9), ("Mbit", 10**6), ("Kbit", 10**3)):
        if bps >= mult and bps % mult == 0:
            return f"{bps // mult}{unit}"
    return f"{bps}bit"


def quantize(bps):
    """Rounds a rate down to a round figure (Kbit, or bit below 1 Kbit)."""
    return bps - bps % 1000 if bps >= 1000 else bps


class Shuffle:
    """A seeded bijection on range(n), n a power of two: k -> (a*k + b) mod n."""

    def __init__(self, n, rng):
        self.n_ = n
        self.a_ = rng.randrange(n // 2) * 2 + 1  # odd: invertible mod 2^m
        self.b_ = rng.randrange(n)

    def __call__(self, k):
        return (self.a_ * k + self.b_) % self.n_


def v4_prefix(block):
    addr = 10 << 24 | block << 3
    return f"{addr >> 24}.{addr >> 16 & 255}.{addr >> 8 & 255}.{addr & 255}/29"


def v6_prefix(block):
    # 2001:db8:HHHH:HH00::/56: the block number fills bits 32..55.
    return f'"2001:db8:{block >> 8:x}:{(block & 255) << 8:x}::/56"'


def build_groups(args, shape_bps, rng):
    """Returns (header lines, leaf groups as (name, guaranteed, ceiling))."""
    if args.groups <= 0:
        return [], []
    lines = ["groups:"]
    top_budget = shape_bps * kMarginNum // kMarginDen
    if args.nested:
        n_parents = max(1, args.groups // 8)
        n_leaves = max(1, args.groups - n_parents)
    else:
        n_parents, n_leaves = 0, args.groups
    leaves = []
    if n_parents:
        parent_guar = quantize(top_budget // n_parents)
        parents = []
        for p in range(n_parents):
            name = f"pop{p:03d}"
            ceil = max(parent_guar, shape_bps * rng.choice((5, 8, 10)) // 10)
            ceil = quantize(ceil)
            parents.append((name, parent_guar, ceil))
            lines.append(f"  - {{name: {name}, guaranteed: {fmt_rate(parent_guar)}, "
                         f"ceiling: {fmt_rate(ceil)}}}")
        per_parent = [0] * n_parents
        for s in range(n_leaves):
            per_parent[s % n_parents] += 1
        for s in range(n_leaves):
            pname, pguar, pceil = parents[s % n_parents]
            guar = quantize(pguar * kMarginNum // kMarginDen // per_parent[s % n_parents])
            ceil = quantize(max(guar, pceil * rng.choice((3, 5, 10)) // 10))
            name = f"site{s:05d}"
            leaves.append((name, guar, ceil))
            lines.append(f"  - {{name: {name}, parent: {pname}, guaranteed: {fmt_rate(guar)}, "
                         f"ceiling: {fmt_rate(ceil)}, weight: {rng.randint(1, 4)}}}")
    else:
        guar = quantize(top_budget // n_leaves)
        for g in range(n_leaves):
            ceil = quantize(max(guar, shape_bps * rng.choice((3, 5, 10)) // 10))
            name = f"group{g:05d}"
            leaves.append((name, guar, ceil))
            lines.append(f"  - {{name: {name}, guaranteed: {fmt_rate(guar)}, "
                         f"ceiling: {fmt_rate(ceil)}, weight: {rng.randint(1, 4)}}}")
    return lines, leaves


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tenants", type=int, required=True)
    ap.add_argument("--groups", type=int, default=0)
    ap.add_argument("--nested", action="store_true", help="two levels of groups")
    ap.add_argument("--ipv6-share", type=float, default=0.2)
    ap.add_argument("--vlans", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--link", type=parse_rate, default=parse_rate("100Gbit"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    n = args.tenants
    if n < 0 or not 0.0 <= args.ipv6_share <= 1.0:
        ap.error("--tenants must be >= 0 and --ipv6-share in 0..1")
    n_v6 = round(n * args.ipv6_share)
    if n - n_v6 > kV4Blocks or n_v6 > kV6Blocks:
        ap.error(f"at most {kV4Blocks} IPv4 and {kV6Blocks} IPv6 tenants fit")
    if args.nested and args.groups < 2:
        ap.error("--nested needs --groups >= 2")

    start = time.monotonic()
    rng = random.Random(args.seed)
    capacity_bps = args.link
    shape_bps = capacity_bps * 98 // 100

    head = [
        f"# Generated by tests/tools/gen_policy.py --tenants {n} --groups {args.groups}"
        f"{' --nested' if args.nested else ''} --ipv6-share {args.ipv6_share}"
        f"{' --vlans' if args.vlans else ''} --seed {args.seed}",
        "version: 1",
        "link:",
        f"  capacity: {fmt_rate(capacity_bps)}",
        "  shape_at: 98%",
        "  overhead: 24B",
        "classes:",
        "  - {name: realtime, priority: latency, dscp: [EF, CS5], max_share: 20%, queue_limit: 2ms}",
        "  - {name: interactive, priority: bulk, dscp: [AF41, AF42, AF31], weight: 4, queue_limit: 10ms}",
        "  - {name: bulk, priority: bulk, weight: 1, queue_limit: 50ms, default: true}",
        "  - {name: scavenger, priority: bulk, dscp: [LE, CS1], weight: 1, queue_limit: 100ms}",
    ]
    group_lines, leaves = build_groups(args, shape_bps, rng)
    head += group_lines

    # Tenants per leaf group, so each gets an equal cut of its group's budget.
    if leaves:
        counts = [0] * len(leaves)
        for i in range(n):
            counts[i % len(leaves)] += 1
        units = [g[1] * kMarginNum // kMarginDen // max(1, c) for g, c in zip(leaves, counts)]
    else:
        units = [shape_bps * kMarginNum // kMarginDen // max(1, n)]

    ceilings = [10**7, 5 * 10**7, 10**8, 5 * 10**8, 10**9, 10**10]
    v4_order = Shuffle(kV4Blocks, rng)
    v6_order = Shuffle(kV6Blocks, rng)
    # Which tenants are IPv6: every tenant whose running share falls behind.
    out = open(args.out, "w", buffering=1 << 20)
    out.write("\n".join(head) + "\n")
    out.write("tenants:\n" if n else "tenants: []\n")
    rand = rng.random
    randint = rng.randint
    v4_next = v6_next = 0
    chunk = []
    for i in range(n):
        gi = i % len(leaves) if leaves else 0
        unit = units[gi]
        if v6_next < round((i + 1) * args.ipv6_share):
            prefix = v6_prefix(v6_order(v6_next))
            v6_next += 1
        else:
            prefix = v4_prefix(v4_order(v4_next))
            v4_next += 1
        cap = leaves[gi][2] if leaves else shape_bps
        ceil = min(cap, ceilings[int(rand() * len(ceilings))])
        guar = min(ceil, quantize(int(unit * (0.2 + 0.8 * rand()))))
        parts = [f"  - {{name: t{i:07d}"]
        if leaves:
            parts.append(f", group: {leaves[gi][0]}")
        if args.vlans:
            parts.append(f", match: {{prefixes: [{prefix}], vlan: {i % 4094 + 1}}}")
        else:
            parts.append(f", match: {{prefixes: [{prefix}]}}")
        r = rand()
        if r < 0.1:
            # Asymmetric access line: upload a quarter of download.
            parts.append(f", download: {{guaranteed: {fmt_rate(guar)}, ceiling: {fmt_rate(ceil)}}}"
                         f", upload: {{guaranteed: {fmt_rate(quantize(guar // 4))}, "
                         f"ceiling: {fmt_rate(max(quantize(ceil // 4), quantize(guar // 4), 1000))}}}")
        else:
            parts.append(f", guaranteed: {fmt_rate(guar)}, ceiling: {fmt_rate(ceil)}")
        if r > 0.7:
            parts.append(f", weight: {randint(2, 8)}")
        if r > 0.95:
            parts.append(", burst: 10ms" if r > 0.975 else ", burst: 64KiB")
        parts.append("}\n")
        chunk.append("".join(parts))
        if len(chunk) >= 8192:
            out.write("".join(chunk))
            chunk.clear()
    out.write("".join(chunk))
    out.write(f"default_tenant: {{ceiling: {fmt_rate(quantize(min(10**9, shape_bps)))}}}\n")
    out.write("allocation: {mode: dynamic, interval: 100ms, hysteresis: 1%}\n")
    out.close()
    print(f"gen_policy: {n} tenants ({n_v6} IPv6), {args.groups} groups -> {args.out} "
          f"in {time.monotonic() - start:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
