#!/usr/bin/python3
"""connflood.py: many connections at once against the proxy, bounded in count and time.

  hold   opens --count connections (round-robin over the --target PORT:KIND entries), writes
         each KIND's opening bytes once and keeps them all open: KIND is "silent" (nothing),
         "tls5" (the 5-byte header of a TLS record that never comes) or "xml" (the first half
         of a stream header). --ready FILE appears once every connection is established.
         With --expect-closed-within S: every one must be closed by the proxy within S seconds
         of the last connect (half-open sessions time out). With --until FILE: hold until FILE
         appears, then report how many the proxy closed meanwhile (--expect-none-closed).
  flood  opens --count connections, --batch at a time, each waiting up to --wait seconds for
         the proxy to close it; with --expect-refused every one must be closed without a byte
         received within --max-close seconds (a refusal, not a session).

Prints one "connflood: ..." summary line; exit 0 when the expectation held, 1 otherwise.
"""
import argparse
import os
import selectors
import socket
import sys
import time

OPENINGS = {"silent": b"", "tls5": b"\x16\x03\x01\x02\x00",
            "xml": b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:str"}


def targets(specs):
    out = []
    for spec in specs:
        port, kind = spec.split(":")
        if kind not in OPENINGS:
            raise SystemExit(f"unknown KIND {kind}")
        out.append((int(port), kind))
    return out


def connect_all(n, tgs, deadline):
    """n established, non-blocking sockets (or fewer if connecting failed)."""
    socks, failed = [], 0
    sel = selectors.DefaultSelector()
    pending = {}
    i = 0
    while (i < n or pending) and time.monotonic() < deadline:
        while i < n and len(pending) < 256:
            port, kind = tgs[i % len(tgs)]
            s = socket.socket()
            s.setblocking(False)
            rc = s.connect_ex(("127.0.0.1", port))
            if rc not in (0, 115):  # EINPROGRESS
                failed += 1
                s.close()
            else:
                pending[s] = kind
                sel.register(s, selectors.EVENT_WRITE)
            i += 1
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            sel.unregister(s)
            kind = pending.pop(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                failed += 1
                s.close()
                continue
            try:
                if OPENINGS[kind]:
                    s.send(OPENINGS[kind])
            except OSError:
                pass
            socks.append(s)
    for s in pending:
        s.close()
    return socks, failed + len(pending)


def watch(socks, until_fn, deadline):
    """Reads from every socket until each is closed or until_fn() / the deadline.
    Returns {sock: close time} and total bytes received."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed, nbytes = {}, 0
    while len(closed) < len(socks) and time.monotonic() < deadline and not until_fn():
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                nbytes += len(data)
                continue
            closed[s] = time.monotonic()
            sel.unregister(s)
    return closed, nbytes


def cmd_hold(a):
    tgs = targets(a.target)
    t0 = time.monotonic()
    socks, failed = connect_all(a.count, tgs, t0 + 30)
    t_conn = time.monotonic()
    if a.ready:
        with open(a.ready, "w", encoding="ascii") as f:
            f.write(f"{len(socks)}\n")
    if a.expect_closed_within is not None:
        closed, nbytes = watch(socks, lambda: False, t_conn + a.expect_closed_within)
    else:
        closed, nbytes = watch(socks, lambda: os.path.exists(a.until), t0 + a.max_hold)
    last = max(closed.values()) - t_conn if closed else 0.0
    print(f"connflood: hold: {len(socks)} established in {t_conn - t0:.2f} s, {failed} failed, "
          f"{len(closed)} closed by the proxy (the last {last:.2f} s after the last connect), "
          f"{len(socks) - len(closed)} still open, {nbytes} bytes received")
    for s in socks:
        s.close()
    if failed or len(socks) != a.count:
        return False
    if a.expect_closed_within is not None:
        return len(closed) == len(socks)
    if a.expect_none_closed:
        return not closed
    return True


def cmd_flood(a):
    tgs = targets(a.target)
    t0 = time.monotonic()
    lat, refused_ok, kept, failed, done, nbytes = [], 0, 0, 0, 0, 0
    while done < a.count:
        batch = min(a.batch, a.count - done)
        start = time.monotonic()
        socks, f = connect_all(batch, tgs, start + 10)
        failed += f
        closed, nb = watch(socks, lambda: False, time.monotonic() + a.wait)
        nbytes += nb
        for s in socks:
            if s in closed:
                lat.append(closed[s] - start)
                if closed[s] - start <= a.max_close:
                    refused_ok += 1
            else:
                kept += 1
            s.close()
        done += batch
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else -1  # noqa: E731
    print(f"connflood: flood: {a.count} connections in {time.monotonic() - t0:.2f} s: "
          f"{refused_ok} closed within {a.max_close:g} s, {kept} kept open, {failed} failed to "
          f"connect, {nbytes} bytes received; close latency p50 {p(0.5):.0f} ms, "
          f"p99 {p(0.99):.0f} ms, max {p(1.0):.0f} ms")
    if a.expect_refused:
        return refused_ok + failed == a.count and nbytes == 0 and kept == 0
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("cmd", choices=("hold", "flood"))
    ap.add_argument("--target", action="append", required=True, metavar="PORT:KIND")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--ready")
    ap.add_argument("--until")
    ap.add_argument("--max-hold", type=float, default=60)
    ap.add_argument("--expect-closed-within", type=float)
    ap.add_argument("--expect-none-closed", action="store_true")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--wait", type=float, default=2.0)
    ap.add_argument("--max-close", type=float, default=1.0)
    ap.add_argument("--expect-refused", action="store_true")
    a = ap.parse_args()
    if a.cmd == "hold" and a.expect_closed_within is None and not a.until:
        ap.error("hold needs --expect-closed-within or --until")
    ok = cmd_hold(a) if a.cmd == "hold" else cmd_flood(a)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
