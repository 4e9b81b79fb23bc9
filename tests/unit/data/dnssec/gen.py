#!/usr/bin/python3
"""Writes sec.test.zone, a DNSSEC-signed zone (ECDSA P-256, algorithm 13, NSEC), and
sec.test.key, its trust anchor, for test_dns.c. A fresh key each run; the signatures are valid
from 2020 to 2080. Some RRsets get a corrupted signature on purpose (see BROKEN) so that the
validator calls them bogus. Needs python3-cryptography.
    cd tests/unit/data/dnssec && ./gen.py"""
import base64
import calendar
import struct
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ZONE = "sec.test."
TTL = 3600
INCEPTION = calendar.timegm((2020, 1, 1, 0, 0, 0))
EXPIRATION = calendar.timegm((2080, 1, 1, 0, 0, 0))
T = {"A": 1, "NS": 2, "SOA": 6, "AAAA": 28, "SRV": 33, "RRSIG": 46, "NSEC": 47, "DNSKEY": 48,
     "TLSA": 52}

# (owner relative to the zone, type, presentation rdata)
RECORDS = [
    ("@", "SOA", "ns.sec.test. admin.sec.test. 1 3600 600 86400 300"),
    ("@", "NS", "ns.sec.test."),
    ("ns", "A", "127.0.0.53"),
    # sec.test: both services on one target, TLSA for both endpoints
    ("_xmpp-server._tcp", "SRV", "0 0 5269 xmpp.sec.test."),
    ("_xmpps-server._tcp", "SRV", "0 0 5223 xmpp.sec.test."),
    ("xmpp", "A", "127.0.1.2"),
    ("xmpp", "AAAA", "2001:db8::1:2"),
    ("_5269._tcp.xmpp", "TLSA", "3 1 1 " + "11" * 32),
    ("_5223._tcp.xmpp", "TLSA", "3 1 1 " + "22" * 32),
    ("_5223._tcp.xmpp", "TLSA", "2 0 2 " + "33" * 64),
    # plain.sec.test: no SRV (secure NXDOMAIN), A only (secure NODATA for AAAA), TLSA on 5269
    ("plain", "A", "127.0.1.3"),
    ("_5269._tcp.plain", "TLSA", "3 0 1 " + "44" * 32),
    # bad.sec.test: the STARTTLS SRV RRset is bogus
    ("_xmpp-server._tcp.bad", "SRV", "0 0 5269 xmpp.sec.test."),
    # badaddr.sec.test: the first target's A RRset is bogus, the second target is fine
    ("_xmpp-server._tcp.badaddr", "SRV", "0 0 5269 t1.badaddr.sec.test."),
    ("_xmpp-server._tcp.badaddr", "SRV", "1 0 5269 xmpp.sec.test."),
    ("t1.badaddr", "A", "127.0.1.4"),
    # badtlsa.sec.test: the only endpoint's TLSA RRset is bogus
    ("_xmpp-server._tcp.badtlsa", "SRV", "0 0 5269 t2.badtlsa.sec.test."),
    ("t2.badtlsa", "A", "127.0.1.5"),
    ("_5269._tcp.t2.badtlsa", "TLSA", "3 1 1 " + "55" * 32),
]
BROKEN = {("_xmpp-server._tcp.bad.sec.test.", "SRV"), ("t1.badaddr.sec.test.", "A"),
          ("_5269._tcp.t2.badtlsa.sec.test.", "TLSA")}


def fqdn(rel):
    return ZONE if rel == "@" else rel + "." + ZONE


def wire_name(name):
    out = b""
    for label in name.lower().rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rdata_wire(rtype, text):
    f = text.split()
    if rtype == "A":
        return bytes(int(x) for x in f[0].split("."))
    if rtype == "AAAA":
        import ipaddress
        return ipaddress.IPv6Address(f[0]).packed
    if rtype == "NS":
        return wire_name(f[0])
    if rtype == "SOA":
        return wire_name(f[0]) + wire_name(f[1]) + struct.pack(">5I", *map(int, f[2:7]))
    if rtype == "SRV":
        return struct.pack(">3H", int(f[0]), int(f[1]), int(f[2])) + wire_name(f[3])
    if rtype == "TLSA":
        return bytes([int(f[0]), int(f[1]), int(f[2])]) + bytes.fromhex(f[3])
    raise ValueError(rtype)


def canon_key(name):
    # RFC 4034 §6.1: compare labels right to left, case-folded, as octet strings.
    return [label.encode() for label in reversed(name.lower().rstrip(".").split("."))]


def bitmap(types):
    nums = sorted(T[t] for t in types)
    out = b""
    for window in sorted({n >> 8 for n in nums}):
        bits = bytearray(32)
        for n in nums:
            if n >> 8 == window:
                bits[(n & 0xFF) >> 3] |= 0x80 >> (n & 7)
        used = max(i for i, b in enumerate(bits) if b) + 1
        out += bytes([window, used]) + bytes(bits[:used])
    return out


def key_tag(rdata):
    acc = 0
    for i, b in enumerate(rdata):
        acc += b if i & 1 else b << 8
    acc += (acc >> 16) & 0xFFFF
    return acc & 0xFFFF


def ts(t):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(t))


def main():
    key = ec.generate_private_key(ec.SECP256R1())
    nums = key.public_key().public_numbers()
    pub = nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")
    dnskey = struct.pack(">HBB", 257, 3, 13) + pub
    tag = key_tag(dnskey)

    rrsets = {}  # (owner, type) -> [(wire rdata, presentation)]
    for rel, rtype, text in RECORDS:
        rrsets.setdefault((fqdn(rel), rtype), []).append((rdata_wire(rtype, text), text))
    b64key = base64.b64encode(pub).decode()
    rrsets[(ZONE, "DNSKEY")] = [(dnskey, "257 3 13 " + b64key)]

    owners = sorted({o for o, _ in rrsets}, key=canon_key)
    for i, owner in enumerate(owners):
        nxt = owners[(i + 1) % len(owners)]
        types = [t for o, t in rrsets if o == owner] + ["RRSIG", "NSEC"]
        rd = wire_name(nxt) + bitmap(types)
        rrsets[(owner, "NSEC")] = [(rd, nxt + " " + " ".join(sorted(types, key=T.get)))]

    lines = ["$ORIGIN " + ZONE]
    for owner in owners:
        for (o, rtype), rrs in sorted(rrsets.items(), key=lambda kv: T[kv[0][1]]):
            if o != owner:
                continue
            ttl = 300 if rtype == "NSEC" else TTL  # NSEC TTL: the SOA minimum
            for _, text in rrs:
                lines.append(f"{o} {ttl} IN {rtype} {text}")
            labels = len(o.rstrip(".").split("."))
            head = struct.pack(">HBBIIIH", T[rtype], 13, labels, ttl, EXPIRATION, INCEPTION,
                               tag) + wire_name(ZONE)
            data = head
            for rd in sorted(r for r, _ in rrs):
                data += wire_name(o) + struct.pack(">HHIH", T[rtype], 1, ttl, len(rd)) + rd
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            sig = bytearray(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
            if (o, rtype) in BROKEN:
                sig[7] ^= 0x5A
            lines.append(f"{o} {ttl} IN RRSIG {rtype} 13 {labels} {ttl} {ts(EXPIRATION)} "
                         f"{ts(INCEPTION)} {tag} {ZONE} {base64.b64encode(bytes(sig)).decode()}")
    with open("sec.test.zone", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open("sec.test.key", "w") as f:
        f.write(f"{ZONE} IN DNSKEY 257 3 13 {b64key}\n")


if __name__ == "__main__":
    main()
