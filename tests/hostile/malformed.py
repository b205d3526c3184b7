#!/usr/bin/python3
"""Sends a catalogue of malformed and odd frames out of one interface.

  malformed.py IFACE ROUNDS

Run inside the client namespace of the hostile test (hostile_veth.sh). Every
frame carries addresses outside the tenants' prefixes (192.0.2.0/24,
2001:db8:ff::/48), so whatever the classifier makes of it, it belongs to the
default tenant. Prints one JSON object: frames sent per case, and
`malformed`, how many of them the classifier must flag malformed (IP frames
cut short inside a header or with impossible header fields, and frames with
more VLAN tags than it reads) -- the count the dataplane must report.
The random frames use a fixed seed.
"""
import json
import random
import socket
import sys

from scapy.all import (Dot1AD, Dot1Q, Ether, ICMP, IP, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                       Raw, TCP, UDP)

iface, rounds = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
SRC4, DST4 = "192.0.2.1", "192.0.2.2"
SRC6, DST6 = "2001:db8:ff::1", "2001:db8:ff::2"


def eth():
    return Ether(src="02:00:00:00:0f:01", dst="02:00:00:00:0f:02")


cases = {}  # name -> (frames, how many of them are malformed)


def add(name, frames, malformed):
    frames = [bytes(f) for f in frames]
    cases[name] = (frames, len(frames) if malformed is True else malformed)


good4 = bytes(eth() / IP(src=SRC4, dst=DST4, ihl=5) / TCP(sport=1, dport=2) / Raw(b"x" * 40))
good6 = bytes(eth() / IPv6(src=SRC6, dst=DST6) / UDP(sport=1, dport=2) / Raw(b"y" * 40))
# Cut at every byte boundary inside Ethernet + IPv4 (14 + 20) and Ethernet + IPv6 (14 + 40).
# Cuts below 14 bytes (inside the Ethernet header) are the "runts" case below.
add("ipv4_truncated", [good4[:n] for n in range(14, 34)], True)
add("ipv6_truncated", [good6[:n] for n in range(14, 54)], True)
# Total length beyond the frame (a header claims bytes that are not there).
b = bytearray(good4); b[16:18] = (1500).to_bytes(2, "big")
add("ipv4_total_length_too_long", [bytes(b)], True)
b = bytearray(good4); b[16:18] = (10).to_bytes(2, "big")
add("ipv4_total_length_below_ihl", [bytes(b)], True)
b = bytearray(good6); b[18:20] = (1400).to_bytes(2, "big")
add("ipv6_payload_length_too_long", [bytes(b)], True)
# Bad IHL: below 5 words, and pointing past the frame.
bad_ihl = []
for ihl in (0, 1, 4):
    b = bytearray(good4); b[14] = 0x40 | ihl; bad_ihl.append(bytes(b))
short = bytes(eth() / IP(src=SRC4, dst=DST4))  # 34 bytes: an IHL of 15 needs 60
b = bytearray(short); b[14] = 0x4F; bad_ihl.append(bytes(b))
add("ipv4_bad_ihl", bad_ihl, True)
b = bytearray(good4); b[14] = 0x65  # EtherType IPv4, version 6
add("ipv4_wrong_version", [bytes(b)], True)
b = bytearray(good6); b[14] = 0x45
add("ipv6_wrong_version", [bytes(b)], True)
# IPv6 extension chains (well-formed: the classifier reads the fixed header only).
add("ipv6_extension_chain", [
    eth() / IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() /
    IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment() / UDP() / Raw(b"z" * 20),
    eth() / IPv6(src=SRC6, dst=DST6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() /
    IPv6ExtHdrRouting() / IPv6ExtHdrRouting() / IPv6ExtHdrFragment(m=1) / ICMP(),
    eth() / IPv6(src=SRC6, dst=DST6, nh=0, plen=8) / Raw(b"\x2b\xff" + b"\x00" * 6),  # claims more than it has
], 0)
# VLAN stacks: one and two tags are read; a third is more than the classifier reads.
add("vlan_stacks_ok", [
    eth() / Dot1Q(vlan=100) / IP(src=SRC4, dst=DST4) / UDP(),
    eth() / Dot1AD(vlan=200) / Dot1Q(vlan=100) / IP(src=SRC4, dst=DST4) / UDP(),
    eth() / Dot1Q(vlan=4095) / IPv6(src=SRC6, dst=DST6) / UDP(),
], 0)
add("vlan_stack_too_deep", [
    eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / IP(src=SRC4, dst=DST4),
    eth() / Dot1AD(vlan=1) / Dot1AD(vlan=2) / Dot1AD(vlan=3) / Dot1AD(vlan=4) / IP(src=SRC4, dst=DST4),
], True)
add("vlan_tag_truncated", [bytes(eth() / Dot1Q(vlan=7))[:16]], True)
# Runts: the kernel refuses to send frames shorter than an Ethernet header on
# a veth (EINVAL from AF_PACKET, counted as "refused" below), so they never
# reach the dataplane here; worker_test covers the runt drop in the worker.
add("runts", [good4[:n] for n in (1, 6, 13)], 0)
add("all_zero", [bytes(n) for n in (14, 60, 64, 1514)], 0)
add("random", [bytes(rng.getrandbits(8) for _ in range(rng.randint(14, 1514))) for _ in range(50)], None)
# Jumbo frames (above the 1500 MTU: whether they arrive depends on the port).
add("jumbo", [eth() / IP(src=SRC4, dst=DST4) / UDP() / Raw(b"j" * 8000),
              eth() / IPv6(src=SRC6, dst=DST6) / UDP() / Raw(b"k" * 9000)], 0)

sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((iface, 0))
sent, refused = {}, {}
for _ in range(rounds):
    for name, (frames, _) in cases.items():
        for f in frames:
            try:
                sock.send(f)
                sent[name] = sent.get(name, 0) + 1
            except OSError:
                refused[name] = refused.get(name, 0) + 1
sock.close()


def random_malformed(frames):
    """What the classifier makes of the random frames (re-derived, not trusted)."""
    n = 0
    for f in frames:
        off, tags, t = 14, 0, int.from_bytes(f[12:14], "big")
        bad = False
        while t in (0x8100, 0x88A8, 0x9100):
            if tags == 2 or off + 4 > len(f):
                bad = True
                break
            t = int.from_bytes(f[off + 2:off + 4], "big"); off += 4; tags += 1
        if not bad and t == 0x0800:
            ip = f[off:]
            ihl = (ip[0] & 15) * 4 if ip else 0
            bad = (len(ip) < 20 or ip[0] >> 4 != 4 or ihl < 20 or len(ip) < ihl or
                   int.from_bytes(ip[2:4], "big") < ihl or int.from_bytes(ip[2:4], "big") > len(ip))
        elif not bad and t == 0x86DD:
            ip = f[off:]
            bad = len(ip) < 40 or ip[0] >> 4 != 6 or 40 + int.from_bytes(ip[4:6], "big") > len(ip)
        n += bad
    return n


malformed = 0
for name, (frames, m) in cases.items():
    if m is None:
        m = random_malformed(frames)
    malformed += m * rounds
print(json.dumps({"sent": sent, "refused": refused, "total": sum(sent.values()),
                  "malformed": malformed, "jumbo": sent.get("jumbo", 0)}))
