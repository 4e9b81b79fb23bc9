#!/usr/bin/python3
"""chatload.py: N logged-in c2s sessions exchanging messages, for the reload and drain tests.

    chatload.py --starttls-port P --direct-port Q --ca ca.crt --sessions N --ready FILE \\
                --stop FILE [--after-stop SECONDS] [--big BYTES] ...

Each session (a thread; odd ones STARTTLS, even ones Direct TLS; alice and bob in turn, with
the resource load-I) logs in (SASL PLAIN over TLS only, bind, session), then sends itself a
message every --interval seconds and waits for it to come back through the server; a round's
time is its latency. When every session is logged in, --ready is created. When the file --stop
appears, each session goes on for --after-stop seconds more (sessions in the middle of a
conversation), then sends one message of --big bytes, waits for it, closes its stream and
expects the server's </stream:stream> and then the close of the connection.

Fails (exit 1) if a login fails, a connection drops, a stream error arrives, a message does not
come back within --max-latency seconds, or the end is not clean. Prints one line per failed
session, then one summary line on stdout:
  chatload: OK sessions=N rounds=R max_latency_ms=M
  chatload: FAIL sessions=N failed=F rounds=R
--duration (default 120 s) bounds the whole run.
"""
import argparse
import base64
import os
import re
import socket
import ssl
import sys
import threading
import time

NS_STREAMS = "http://etherx.jabber.org/streams"


class Failed(Exception):
    pass


class Session:
    def __init__(self, a, i):
        self.a, self.i = a, i
        self.user = ("alice", "bob")[i % 2]
        self.mode = "starttls" if i % 2 else "direct"
        self.buf = b""
        self.rounds = 0
        self.worst = 0.0
        self.error = None
        self.logged_in = threading.Event()

    def tls(self, alpn):
        ctx = ssl.create_default_context(cafile=self.a.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if alpn:
            ctx.set_alpn_protocols(["xmpp-client"])
        self.s = ctx.wrap_socket(self.s, server_hostname=self.a.domain)

    def send(self, text):
        self.s.sendall(text.encode())

    def wait(self, pattern, secs):
        deadline = time.monotonic() + secs
        rx = re.compile(pattern, re.S)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if b"<stream:error" in self.buf:
                raise Failed(f"stream error: {self.buf[self.buf.find(b'<stream:error'):][:200]!r}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"no {pattern!r} within {secs:g} s; got {self.buf[-200:]!r}")
            self.s.settimeout(left)
            data = self.s.recv(65536)
            if not data:
                raise Failed(f"closed while waiting for {pattern!r}: {self.buf[-200:]!r}")
            self.buf += data

    def header(self):
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  f"xmlns:stream='{NS_STREAMS}' to='{self.a.domain}' version='1.0'>")
        self.wait(rb"</stream:features>", self.a.max_latency)

    def login(self):
        port = self.a.starttls_port if self.mode == "starttls" else self.a.direct_port
        self.s = socket.create_connection((self.a.host, port), timeout=self.a.max_latency)
        if self.mode == "direct":
            self.tls(alpn=True)
        self.header()
        if self.mode == "starttls":
            self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self.wait(rb"<proceed[^>]*>", self.a.max_latency)
            self.tls(alpn=False)
            self.header()
        creds = base64.b64encode(f"\0{self.user}\0secret".encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>")
        self.wait(rb"<success[^>]*>", self.a.max_latency)
        self.header()
        self.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  f"<resource>load-{self.i}</resource></bind></iq>")
        self.jid = self.wait(rb"<jid>([^<]+)</jid>", self.a.max_latency).group(1).decode()
        self.send("<iq type='set' id='sess1'><session "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        self.wait(rb"id=['\"]sess1['\"]", self.a.max_latency)

    def round(self, body):
        self.rounds += 1
        mid = f"s{self.i}m{self.rounds}"
        t0 = time.monotonic()
        self.send(f"<message to='{self.jid}' id='{mid}'><body>{body}</body></message>")
        m = self.wait(rb"<message[^>]*id=['\"]%s['\"][^>]*>.*?</message>" % mid.encode(),
                      self.a.max_latency)
        if body.encode() not in m.group(0):
            raise Failed(f"message {mid} came back altered ({len(m.group(0))} bytes)")
        self.worst = max(self.worst, time.monotonic() - t0)

    def run(self, stop_at):
        try:
            self.login()
            self.logged_in.set()
            until = None
            while True:
                if until is None and os.path.exists(self.a.stop):
                    until = time.monotonic() + self.a.after_stop
                if until is not None and time.monotonic() >= until:
                    break
                if time.monotonic() > stop_at:
                    raise Failed(f"--stop did not appear within --duration={self.a.duration:g} s")
                self.round(f"load {self.i} round {self.rounds + 1}")
                time.sleep(self.a.interval)
            if self.a.big:
                self.round("b" * self.a.big)
            self.send("</stream:stream>")
            self.wait(rb"</stream:stream>", self.a.max_latency)
            self.s.settimeout(self.a.max_latency)
            while True:  # then the connection closes (TLS close_notify or EOF)
                try:
                    if not self.s.recv(65536):
                        break
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError):
                    break
        except (OSError, ssl.SSLError, Failed) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.logged_in.set()
            try:
                self.s.close()
            except (OSError, AttributeError):
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--starttls-port", type=int, required=True)
    ap.add_argument("--direct-port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--after-stop", type=float, default=0.0)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--big", type=int, default=0, metavar="BYTES")
    ap.add_argument("--max-latency", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=120.0)
    a = ap.parse_args()

    stop_at = time.monotonic() + a.duration
    sessions = [Session(a, i) for i in range(a.sessions)]
    threads = []
    for s in sessions:
        t = threading.Thread(target=s.run, args=(stop_at,), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(0.02)  # a login storm is not what these tests are about
    for s in sessions:
        s.logged_in.wait(max(0.0, stop_at - time.monotonic()))
    if all(s.error is None for s in sessions):
        with open(a.ready, "w", encoding="ascii") as f:
            f.write("ready\n")
    for t in threads:
        t.join(max(0.0, stop_at - time.monotonic() + a.after_stop + 2 * a.max_latency))
    failed = [s for s in sessions if s.error is not None or threading.Thread.is_alive(threads[s.i])]
    rounds = sum(s.rounds for s in sessions)
    for s in failed:
        print(f"chatload: session {s.i} ({s.user}/load-{s.i}, {s.mode}) failed after "
              f"{s.rounds} rounds: {s.error or 'still running'}")
    if failed:
        print(f"chatload: FAIL sessions={len(sessions)} failed={len(failed)} rounds={rounds}")
        return 1
    worst = max(s.worst for s in sessions)
    print(f"chatload: OK sessions={len(sessions)} rounds={rounds} max_latency_ms={worst * 1000:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
