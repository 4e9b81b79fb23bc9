#!/usr/bin/python3
"""slowloris.py: dribbles a valid opening at --rate bytes per second and times the hang-up.

  --phase plain         the stream header, in plaintext (STARTTLS listener)
  --phase hello         a real TLS ClientHello (Direct TLS listener)
  --phase hello-starttls  the STARTTLS exchange at full speed, then the ClientHello dribbled
  --phase tls-header    Direct TLS at full speed, then the stream header dribbled, one TLS
                        record per byte

Everything the proxy sends is read meanwhile. Stops when the proxy closes the connection or
--max-seconds pass. Prints "slowloris: closed after S s, sent N bytes, condition C" (C: the
stream error condition received, or none). --expect-between LOW HIGH: exit 1 unless the
connection was closed between LOW and HIGH seconds after it opened; --expect-stream-error
CONDITION as in rawxmpp.py.
"""
import argparse
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawxmpp  # noqa: E402

NS_STREAMS = "http://etherx.jabber.org/streams"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--phase", choices=("plain", "hello", "hello-starttls", "tls-header"),
                    required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--rate", type=float, default=1.0, help="bytes per second")
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--expect-between", type=float, nargs=2, metavar=("LOW", "HIGH"))
    ap.add_argument("--expect-stream-error")
    a = ap.parse_args()
    header = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              f"xmlns:stream='{NS_STREAMS}' to='{a.domain}' version='1.0'>").encode()

    t0 = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    got, closed, sent = b"", None, 0
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.set_alpn_protocols(["xmpp-client"])
    tls = None
    if a.phase == "hello-starttls":
        sock.sendall(header)
        want = b"</stream:features>"
        while want:
            data = sock.recv(4096)
            if not data:
                print("slowloris: FAIL: closed during the STARTTLS exchange")
                return 1
            got += data
            if want in got and want != b"<proceed":
                sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                want = b"<proceed"
            elif want == b"<proceed" and b"<proceed" in got and got.rstrip().endswith(b">"):
                want = None
    if a.phase in ("hello", "hello-starttls"):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname=a.domain)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        data = out.read()  # the ClientHello
        chunks = [data[i:i + 1] for i in range(len(data))]
    elif a.phase == "tls-header":
        tls = ctx.wrap_socket(sock, server_hostname=a.domain)
        chunks = [header[i:i + 1] for i in range(len(header))]
    else:
        chunks = [header[i:i + 1] for i in range(len(header))]

    conn = tls or sock
    deadline = t0 + a.max_seconds
    for chunk in chunks + [None]:
        if chunk is not None:
            try:
                conn.sendall(chunk)
                sent += 1
            except (OSError, ssl.SSLError) as exc:
                closed = f"send failed: {exc}"
                break
        # Read whatever comes until the next byte is due.
        due = time.monotonic() + 1.0 / a.rate if chunk is not None else deadline
        while time.monotonic() < min(due, deadline):
            conn.settimeout(max(0.01, min(due, deadline) - time.monotonic()))
            try:
                data = conn.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (OSError, ssl.SSLError) as exc:
                closed = f"{type(exc).__name__}"
                break
            if not data:
                closed = "EOF"
                break
            got += data
        if closed or time.monotonic() >= deadline:
            break
    elapsed = time.monotonic() - t0
    cond = rawxmpp.stream_error_condition(got)
    print(f"slowloris: {a.phase}: {'closed (' + closed + ')' if closed else 'still open'} after "
          f"{elapsed:.2f} s, sent {sent} bytes, condition {cond}")
    ok = True
    if a.expect_between and not (closed and a.expect_between[0] <= elapsed <= a.expect_between[1]):
        print(f"slowloris: FAIL: expected a close between {a.expect_between[0]:g} and "
              f"{a.expect_between[1]:g} s")
        ok = False
    if a.expect_stream_error and cond != a.expect_stream_error:
        print(f"slowloris: FAIL: expected <{a.expect_stream_error}/>, got {cond}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
