#!/usr/bin/python3
"""dnsfake.py: a DNS server on UDP that fails every query in one way, for the DNS fault tests.

    dnsfake.py --mode servfail|silent --port-file FILE --log FILE [--listen 127.0.0.1:0]

dnsmasq (lib.sh start_dnsmasq) answers NXDOMAIN, NODATA and REFUSED; what it cannot be made to
do on cue is fail as a broken or unreachable server does:
  servfail  answer every query with RCODE 2 (SERVFAIL, RFC 1035 §4.1.1), the question echoed,
            no records: an upstream whose zone is broken (lame delegation, DNSSEC failure)
  silent    read every query and never answer: a server that is down behind a firewall that
            drops packets (the client can only time out)
Each query is one line in --log, flushed at once: "QTYPE NAME" (e.g. "SRV _xmpp-server._tcp.
slow.test." or "TYPE52 ..." for types without a name here) followed by " -> SERVFAIL" or
" -> (no answer)". --max-seconds S (default 120) is a backstop: exit after S. Exit status 0 on
SIGTERM/SIGINT or --max-seconds, 2 bad usage, 1 if it cannot bind.
"""

import argparse
import os
import signal
import socket
import struct
import sys
import time

QTYPES = {1: "A", 28: "AAAA", 33: "SRV", 52: "TLSA", 5: "CNAME", 2: "NS", 6: "SOA", 43: "DS",
          48: "DNSKEY"}


def question(msg):
    """(name, qtype, end offset of the question) of the first question, or None."""
    if len(msg) < 12 or struct.unpack("!H", msg[4:6])[0] < 1:
        return None
    labels, i = [], 12
    while i < len(msg):
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(msg):  # no compression in a question we accept
            return None
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[i:i + 2])[0]
    return ".".join(labels) + ".", qtype, i + 4


def servfail(msg, qend):
    """The reply: same id, QR=1, opcode and RD copied, RA=1, RCODE=2, the question only."""
    qid, flags = struct.unpack("!HH", msg[:4])
    flags = 0x8000 | (flags & 0x7900) | 0x0080 | 2
    return struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0) + msg[12:qend]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--mode", choices=("servfail", "silent"), required=True)
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--max-seconds", type=float, default=120.0)
    a = p.parse_args()

    host, _, port = a.listen.rpartition(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, int(port)))
    except OSError as exc:
        print(f"dnsfake: cannot bind {a.listen}: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    log = open(a.log, "a", encoding="ascii", buffering=1)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{s.getsockname()[1]}\n")
    os.replace(tmp, a.port_file)

    end = time.monotonic() + a.max_seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return 0
        s.settimeout(left)
        try:
            msg, peer = s.recvfrom(4096)
        except socket.timeout:
            return 0
        q = question(msg)
        if q is None:
            log.write(f"malformed query of {len(msg)} bytes -> (no answer)\n")
            continue
        name, qtype, qend = q
        what = f"{QTYPES.get(qtype, f'TYPE{qtype}')} {name}"
        if a.mode == "silent":
            log.write(f"{what} -> (no answer)\n")
            continue
        s.sendto(servfail(msg, qend), peer)
        log.write(f"{what} -> SERVFAIL\n")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
