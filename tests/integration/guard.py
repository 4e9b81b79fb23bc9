#!/usr/bin/python3
"""guard.py: a logged-in session that must survive an attack on the proxy next to it.

Logs in as USER through the proxy (Direct TLS or STARTTLS, SASL PLAIN over TLS only, resource
binding, session, presence), creates --ready, then sends a roster query every --interval
seconds and times the answer, until the file --stop appears (or --duration passes). Then it
sends itself a message, waits for it to come back through the server, closes its stream and
expects the server's </stream:stream>.

Fails (exit 1) if the login fails, the connection drops, an answer takes longer than
--max-latency seconds, or the message does not come back. Prints one summary line:
  guard: OK rounds=N max_latency_ms=M
"""
import argparse
import base64
import os
import re
import socket
import ssl
import sys
import time

NS_STREAMS = "http://etherx.jabber.org/streams"


class Guard:
    def __init__(self, a):
        self.a = a
        self.buf = b""
        self.s = socket.create_connection((a.host, a.port), timeout=a.max_latency)
        if a.mode == "direct":
            self.tls(alpn=True)

    def tls(self, alpn):
        ctx = ssl.create_default_context(cafile=self.a.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if alpn:
            ctx.set_alpn_protocols(["xmpp-client"])
        self.s = ctx.wrap_socket(self.s, server_hostname=self.a.domain)

    def send(self, text):
        self.s.sendall(text.encode())

    def wait(self, pattern, secs):
        """Reads until the regex pattern (bytes) matches; returns the match, consumes up to it."""
        deadline = time.monotonic() + secs
        rx = re.compile(pattern, re.S)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no {pattern!r} within {secs:g} s; got {self.buf[-200:]!r}")
            self.s.settimeout(left)
            data = self.s.recv(65536)
            if not data:
                raise RuntimeError(f"closed while waiting for {pattern!r}: {self.buf[-200:]!r}")
            self.buf += data

    def header(self):
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  f"xmlns:stream='{NS_STREAMS}' to='{self.a.domain}' version='1.0'>")
        self.wait(rb"</stream:features>", self.a.max_latency)

    def login(self):
        self.header()
        if self.a.mode == "starttls":
            self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self.wait(rb"<proceed[^>]*>", self.a.max_latency)
            self.tls(alpn=False)
            self.header()
        creds = base64.b64encode(f"\0{self.a.user}\0{self.a.password}".encode()).decode()
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                  f"{creds}</auth>")
        self.wait(rb"<success[^>]*>", self.a.max_latency)
        self.header()
        self.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  "<resource>guard</resource></bind></iq>")
        self.jid = self.wait(rb"<jid>([^<]+)</jid>", self.a.max_latency).group(1).decode()
        self.send("<iq type='set' id='sess1'><session "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        self.wait(rb"id=['\"]sess1['\"]", self.a.max_latency)
        self.send("<presence/>")

    def round(self, n):
        t0 = time.monotonic()
        self.send(f"<iq type='get' id='g{n}'><query xmlns='jabber:iq:roster'/></iq>")
        self.wait(rb"<iq[^>]*id=['\"]g%d['\"]" % n, self.a.max_latency)
        return time.monotonic() - t0

    def finish(self):
        self.send(f"<message to='{self.jid}' id='last'><body>guard still here</body></message>")
        self.wait(rb"guard still here", self.a.max_latency)
        self.send("</stream:stream>")
        self.wait(rb"</stream:stream>", self.a.max_latency)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("direct", "starttls"), default="direct")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--ready", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--max-latency", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=120.0)
    a = ap.parse_args()
    rounds, worst = 0, 0.0
    try:
        g = Guard(a)
        g.login()
        with open(a.ready, "w", encoding="ascii") as f:
            f.write("ready\n")
        end = time.monotonic() + a.duration
        while not os.path.exists(a.stop) and time.monotonic() < end:
            rounds += 1
            worst = max(worst, g.round(rounds))
            time.sleep(a.interval)
        g.finish()
    except (OSError, RuntimeError, ssl.SSLError) as exc:
        print(f"guard: FAIL after {rounds} rounds: {exc}", file=sys.stderr)
        return 1
    print(f"guard: OK rounds={rounds} max_latency_ms={worst * 1000:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
