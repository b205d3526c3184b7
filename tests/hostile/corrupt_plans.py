#!/usr/bin/python3
"""Writes corrupted copies of a valid plan, one per file, for hostile_veth.sh.

  corrupt_plans.py GOOD.plan OUTDIR

Each case breaks one thing (header, a section reference, a count, an id, a
rate, a prefix length, the size) using the layout in dataplane/abi/plan.h,
and prints `NAME FILE` lines. The dataplane must refuse every one with a
reason, and keep the plan in force.
"""
import os
import struct
import sys

good, out = open(sys.argv[1], "rb").read(), sys.argv[2]
# PlanHeader: magic u32, abi_version u16, header_bytes u16, total_bytes u64,
# policy_hash u64, default_class u8, reserved0[7], dscp_to_class[64],
# sections[4] (SectionRef {offset u64, count u32, entry_bytes u32}: links,
# classes, tenants, prefixes) at offset 96, reserved1[32].
SECTIONS = 96
LINKS, CLASSES, TENANTS, PREFIXES = range(4)


def section(blob, s):
    return struct.unpack_from("<QII", blob, SECTIONS + 16 * s)


def poke(fmt, off, value, blob=good):
    b = bytearray(blob)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


cases = {}
cases["truncated_half"] = good[: len(good) // 2]
cases["truncated_header"] = good[:40]
cases["empty"] = b""
cases["extra_byte"] = good + b"\0"
cases["bad_magic"] = poke("<I", 0, 0xDEADBEEF)
cases["wrong_abi_version"] = poke("<H", 4, 99)
cases["wrong_header_bytes"] = poke("<H", 6, 8)
cases["total_bytes_mismatch"] = poke("<Q", 8, len(good) + 4096)
cases["default_class_out_of_range"] = poke("<B", 24, 200)
cases["dscp_class_out_of_range"] = poke("<B", 32 + 46, 9)
for s, name in enumerate(("links", "classes", "tenants", "prefixes")):
    off, count, entry = section(good, s)
    base = SECTIONS + 16 * s
    cases[f"{name}_offset_past_end"] = poke("<Q", base, len(good) + 64)
    cases[f"{name}_offset_misaligned"] = poke("<Q", base, off + 1)
    cases[f"{name}_count_huge"] = poke("<I", base + 8, 0xFFFFFFFF)
    cases[f"{name}_entry_bytes_wrong"] = poke("<I", base + 12, entry + 8)
off, count, entry = section(good, LINKS)
cases["link_rate_zero"] = poke("<Q", off, 0)
cases["link_overhead_huge"] = poke("<I", off + 16, 100000)
off, count, entry = section(good, CLASSES)
cases["class_queue_limit_zero"] = poke("<Q", off, 0)
cases["class_weight_huge"] = poke("<I", off + 8, 0xFFFFFFFF)
cases["class_name_unterminated"] = good[:off + 24] + b"A" * (entry - 24) + good[off + entry:]
off, count, entry = section(good, TENANTS)
t1 = off + entry  # tenants[1] (tenants[0] is the default tenant)
cases["tenant_id_out_of_range"] = poke("<I", t1, 0x7FFFFFFF)
cases["tenant_id_duplicate"] = poke("<I", t1, 0)
cases["tenant_vlan_4095"] = poke("<H", t1 + 4, 4095)
cases["tenant_ceiling_zero"] = poke("<Q", t1 + 8 + 8, 0)
cases["tenant_assured_over_ceiling"] = poke("<Q", t1 + 8, 1 << 62)
cases["tenant_burst_zero"] = poke("<Q", t1 + 8 + 16, 0)
off, count, entry = section(good, PREFIXES)
if count:
    cases["prefix_unknown_tenant"] = poke("<I", off, 9999)
    cases["prefix_tenant_zero"] = poke("<I", off, 0)
    cases["prefix_length_33"] = poke("<B", off + 5, 33) if good[off + 4] == 0 else poke("<B", off + 5, 129)
    cases["prefix_not_v4_or_v6"] = poke("<B", off + 4, 7)
    cases["prefix_host_bits"] = poke("<B", off + 8 + 15, 1) if good[off + 4] else poke("<B", off + 8 + 3, 1)

os.makedirs(out, exist_ok=True)
for name, blob in cases.items():
    path = os.path.join(out, name + ".plan")
    open(path, "wb").write(blob)
    print(name, path)
