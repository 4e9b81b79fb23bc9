#!/usr/bin/python3
"""xmlattack.py: sends one hostile XML payload on an XMPP stream and reports how it ended.

  --mode plain     the payload goes on the pre-TLS stream (STARTTLS listener)
  --mode starttls  STARTTLS first, then the payload on the stream over TLS
  --mode direct    Direct TLS (XEP-0368) first, then the payload

The stream begins with --begin-file (default: an XML declaration and a stream header for
--domain); with --wait-features the payload waits for </stream:features>. The payload
(--payload-file) is written in 64 KiB pieces and writing stops quietly at the first error,
since the proxy is expected to hang up in the middle of a huge one. Then everything is read
until the proxy closes or --timeout passes. Checks: --expect-stream-error CONDITION,
--expect-closed, --max-seconds (the close must come that fast after the payload started).
Prints what arrived and one summary line; exit 0 when every check held, 1 otherwise.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawxmpp  # noqa: E402  (the raw client next to this file)

NS_STREAMS = "http://etherx.jabber.org/streams"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("plain", "starttls", "direct"), required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--begin-file")
    ap.add_argument("--wait-features", action="store_true")
    ap.add_argument("--payload-file", required=True)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--expect-stream-error", metavar="CONDITION")
    ap.add_argument("--expect-closed", action="store_true")
    ap.add_argument("--max-seconds", type=float)
    a = ap.parse_args()

    header = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              f"xmlns:stream='{NS_STREAMS}' to='{a.domain}' version='1.0'>").encode()
    begin = open(a.begin_file, "rb").read() if a.begin_file else header
    payload = open(a.payload_file, "rb").read()
    errors, sent = [], 0
    s = rawxmpp.Session(a)
    started = None
    try:
        if a.mode == "direct":
            s.handshake(alpn=True)
        elif a.mode == "starttls":
            s.send(header)
            s.wait(b"</stream:features>")
            s.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            s.starttls()
        if a.wait_features:
            s.send(begin)
            s.wait(b"</stream:features>")
            begin = b""
        started = time.monotonic()
        data = begin + payload
        for i in range(0, len(data), 65536):
            try:
                s.sock.sendall(data[i:i + 65536])
            except (OSError,) + rawxmpp.TLS_ALERT:
                break
            sent += len(data[i:i + 65536])
        s.drain()
    except rawxmpp.StepError as exc:
        errors.append(str(exc))
    elapsed = time.monotonic() - (started or time.monotonic())

    out = sys.stdout.buffer
    out.write(bytes(s.plain) + (b"\n[TLS]\n" + bytes(s.tls) if s.in_tls else b"") + b"\n")
    out.flush()
    got = s.received()
    if a.expect_stream_error:
        cond = rawxmpp.stream_error_condition(got)
        if cond != a.expect_stream_error:
            errors.append(f"expected <{a.expect_stream_error}/>, got {cond and f'<{cond}/>'}")
    if a.expect_closed and not s.closed:
        errors.append(f"the peer did not close the connection within {a.timeout:g} s")
    if a.max_seconds is not None and elapsed > a.max_seconds:
        errors.append(f"closed only after {elapsed:.2f} s (allowed {a.max_seconds:g} s)")
    print(f"xmlattack: sent {sent} of {len(begin) + len(payload)} bytes, "
          f"{'closed by peer (' + s.closed + ')' if s.closed else 'still open'} after "
          f"{elapsed:.2f} s, condition {rawxmpp.stream_error_condition(got)}", file=sys.stderr)
    for e in errors:
        print(f"xmlattack: FAIL: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
