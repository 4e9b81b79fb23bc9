#!/usr/bin/python3
"""rawxmpp.py: a scriptable raw XMPP client for bad-input tests.

Steps run in the order given on the command line:

  --send DATA       one write of DATA, exactly as given (plaintext, or inside TLS once TLS is up)
  --send-file FILE  one write of FILE's bytes
  --wait TEXT       read until TEXT has arrived (fails if the peer closes or --timeout passes)
  --starttls        read until <proceed .../>, then the TLS handshake (SNI = --domain, the
                    certificate must chain to --ca and match --domain)
  --tls             the TLS handshake right now (XEP-0368 Direct TLS, ALPN --alpn, by
                    default "xmpp-client")
  (with --cert/--key, both TLS steps present that certificate: an s2s peer)
  --ready FILE      create FILE (tells a test script that the session got this far)
  --sleep SECONDS

Then it reads until the peer closes the connection or --timeout seconds pass, prints everything
it received on stdout (bytes received after the TLS handshake follow a "[TLS]" line) and a
summary on stderr, and checks:

  --expect TEXT       TEXT occurs in what was received (repeatable)
  --expect-not TEXT   TEXT does not occur (repeatable)
  --expect-stream-error CONDITION
                      a <stream:error> arrived and its condition element (RFC 6120 §4.9.3)
                      is exactly CONDITION, e.g. host-unknown
  --expect-closed     the peer closed the connection (FIN, RST or TLS close) before --timeout
  --expect-open       the connection was still open when --timeout passed

Exit status: 0 when every step and check passed, 1 otherwise (the reason is on stderr), 2 bad
usage. --timeout (default 10 s) bounds each --wait/--starttls step and the final read.

Example (STARTTLS, then a stream over TLS, expect jabberd2's features through the proxy):
  rawxmpp.py --port 5222 --ca ca.crt \\
    --send "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \\
            xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>" \\
    --wait '</stream:features>' --send "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" \\
    --starttls --send "<stream:stream ...>" --wait '</stream:features>' --expect PLAIN
"""

import argparse
import os
import re
import socket
import ssl
import sys
import time

NS_STREAM_ERRORS = b"urn:ietf:params:xml:ns:xmpp-streams"
TLS_ALERT = (ssl.SSLError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class StepError(Exception):
    pass


class AppendStep(argparse.Action):
    """Collects the steps into one ordered list."""

    def __call__(self, parser, ns, values, option_string=None):
        steps = getattr(ns, "steps", None) or []
        steps.append((self.dest, values))
        ns.steps = steps


class Session:
    def __init__(self, args):
        self.args = args
        bind = getattr(args, "bind", None)  # other tools reuse Session with fewer options
        src = (bind, 0) if bind else None
        self.sock = socket.create_connection((args.host, args.port), timeout=args.timeout,
                                             source_address=src)
        self.plain = bytearray()  # received before TLS
        self.tls = bytearray()  # received after the TLS handshake
        self.in_tls = False
        self.closed = None  # why the peer closed, or None
        self.tls_info = None

    def received(self):
        return bytes(self.plain + self.tls)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (OSError,) + TLS_ALERT as exc:
            raise StepError(f"send failed: {exc}") from exc

    def read_once(self, deadline):
        """One recv; returns False when the peer closed or the deadline passed."""
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ssl.SSLZeroReturnError:
            self.closed = "TLS close_notify"
            return False
        except ConnectionResetError:
            self.closed = "connection reset"
            return False
        except TLS_ALERT as exc:
            self.closed = f"TLS error: {exc}"
            return False
        except OSError as exc:
            self.closed = f"socket error: {exc}"
            return False
        if not chunk:
            self.closed = "EOF"
            return False
        (self.tls if self.in_tls else self.plain).extend(chunk)
        return True

    def wait(self, text, what=None):
        """Reads until text is in what was received since the current transport started."""
        deadline = time.monotonic() + self.args.timeout
        buf = self.tls if self.in_tls else self.plain
        while text not in buf:
            if not self.read_once(deadline):
                state = self.closed or f"nothing more within {self.args.timeout:g} s"
                raise StepError(f"waiting for {what or repr(text.decode(errors='replace'))}: "
                                f"{state}")
        return buf

    def handshake(self, alpn):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if not self.args.ca:
            raise StepError("TLS needs --ca")
        ctx.load_verify_locations(cafile=self.args.ca)
        if getattr(self.args, "cert", None):  # s2s: we present a server certificate as the client
            ctx.load_cert_chain(self.args.cert, self.args.key)
        if alpn:
            ctx.set_alpn_protocols([getattr(self.args, "alpn", "xmpp-client")])
        self.sock.settimeout(self.args.timeout)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=self.args.domain)
        except (OSError,) + TLS_ALERT as exc:
            self.closed = f"TLS handshake failed: {exc}"
            raise StepError(self.closed) from exc
        self.in_tls = True
        name, _proto, bits = self.sock.cipher()
        self.tls_info = f"{self.sock.version()} {name} ({bits} bits)"
        print(f"rawxmpp: TLS up: {self.tls_info}", file=sys.stderr)

    def starttls(self):
        buf = self.wait(b"<proceed", "<proceed/>")
        end = buf.find(b">", buf.find(b"<proceed"))
        while end < 0:
            if not self.read_once(time.monotonic() + self.args.timeout):
                raise StepError(f"incomplete <proceed/>: {self.closed or 'timeout'}")
            end = buf.find(b">", buf.find(b"<proceed"))
        if len(buf) > end + 1:
            raise StepError(f"{len(buf) - end - 1} unexpected bytes after <proceed/>")
        self.handshake(alpn=False)

    def drain(self):
        deadline = time.monotonic() + self.args.timeout
        while self.read_once(deadline):
            pass


def stream_error_condition(data):
    """The local name of the first element in the stream-errors namespace inside the first
    <stream:error>, or None (RFC 6120 §4.9.2: exactly one condition element)."""
    m = re.search(rb"<stream:error\b[^>]*>(.*?)</stream:error>", data, re.S)
    if not m:
        return None
    for el in re.finditer(rb"<([A-Za-z][\w.-]*)\b([^>]*)>", m.group(1)):
        if NS_STREAM_ERRORS in el.group(2):
            return el.group(1).decode()
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", help="CA file for the TLS steps")
    p.add_argument("--domain", default="example.test", help="SNI and certificate name")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--cert", help="client certificate chain (PEM) for the TLS steps (s2s)")
    p.add_argument("--key", help="its private key (PEM)")
    p.add_argument("--alpn", default="xmpp-client", help="ALPN protocol for --tls")
    p.add_argument("--bind", help="local address to connect from (e.g. 127.0.0.5)")
    p.add_argument("--send", dest="send", action=AppendStep, metavar="DATA")
    p.add_argument("--send-file", dest="send_file", action=AppendStep, metavar="FILE")
    p.add_argument("--wait", dest="wait", action=AppendStep, metavar="TEXT")
    p.add_argument("--starttls", dest="starttls", action=AppendStep, nargs=0)
    p.add_argument("--tls", dest="tls", action=AppendStep, nargs=0)
    p.add_argument("--ready", dest="ready", action=AppendStep, metavar="FILE")
    p.add_argument("--sleep", dest="sleep", action=AppendStep, type=float, metavar="SECONDS")
    p.add_argument("--expect", action="append", default=[], metavar="TEXT")
    p.add_argument("--expect-not", action="append", default=[], metavar="TEXT")
    p.add_argument("--expect-stream-error", metavar="CONDITION")
    p.add_argument("--expect-closed", action="store_true")
    p.add_argument("--expect-open", action="store_true")
    args = p.parse_args()
    steps = getattr(args, "steps", None) or []

    started = time.monotonic()
    errors = []
    try:
        s = Session(args)
    except OSError as exc:
        print(f"rawxmpp: FAIL: cannot connect to {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        for kind, value in steps:
            if kind == "send":
                s.send(os.fsencode(value))  # exactly the argv bytes
            elif kind == "send_file":
                with open(value, "rb") as f:
                    s.send(f.read())
            elif kind == "wait":
                s.wait(os.fsencode(value))
            elif kind == "starttls":
                s.starttls()
            elif kind == "tls":
                s.handshake(alpn=True)
            elif kind == "ready":
                with open(value, "w", encoding="ascii") as f:
                    f.write("ready\n")
            elif kind == "sleep":
                time.sleep(value)
        s.drain()
    except StepError as exc:
        errors.append(str(exc))
    elapsed = time.monotonic() - started

    out = sys.stdout.buffer
    out.write(bytes(s.plain))
    if s.in_tls:
        out.write(b"\n[TLS]\n" + bytes(s.tls))
    out.write(b"\n")
    out.flush()

    got = s.received()
    for text in args.expect:
        if os.fsencode(text) not in got:
            errors.append(f"expected {text!r} in what was received")
    for text in args.expect_not:
        if os.fsencode(text) in got:
            errors.append(f"did not expect {text!r} in what was received")
    if args.expect_stream_error:
        cond = stream_error_condition(got)
        if cond is None:
            errors.append(f"expected <stream:error> with <{args.expect_stream_error}/>, got none")
        elif cond != args.expect_stream_error:
            errors.append(f"expected <{args.expect_stream_error}/>, got <{cond}/>")
    if args.expect_closed and not s.closed:
        errors.append(f"the peer did not close the connection within {args.timeout:g} s")
    if args.expect_open and s.closed:
        errors.append(f"the peer closed the connection ({s.closed})")
    state = f"closed by peer ({s.closed})" if s.closed else "still open"
    print(f"rawxmpp: {len(got)} bytes received, {state} after {elapsed:.2f} s", file=sys.stderr)
    try:
        s.sock.close()
    except OSError:
        pass
    for e in errors:
        print(f"rawxmpp: FAIL: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
