#!/usr/bin/python3
"""backpressure.py: a reader that stops reading, a writer that floods it, and the proxy's memory.

alice logs in through the proxy (Direct TLS) and then stops reading. bob logs in to jabberd2
directly (plaintext, the fastest sender there is) and sends alice COUNT messages of SIZE bytes.
While alice does not read, the proxy must stop reading alice's backend stream instead of
buffering: its RSS may grow by at most --max-growth-kib. Then alice reads again and must get
every message, in order (nothing lost when reading resumes). Exit 0 on success, 1 otherwise.
Every wait is bounded by --timeout.
"""
import argparse
import base64
import socket
import ssl
import sys
import time

NS_STREAMS = "http://etherx.jabber.org/streams"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Session:
    def __init__(self, sock, domain, deadline):
        self.s, self.domain, self.deadline, self.buf = sock, domain, deadline, b""

    def send(self, text):
        self.s.sendall(text.encode())

    def wait(self, token):
        token = token.encode()
        while token not in self.buf:
            self.s.settimeout(max(0.1, self.deadline - time.monotonic()))
            data = self.s.recv(65536)
            if not data:
                raise RuntimeError(f"closed while waiting for {token!r}: {self.buf[-300:]!r}")
            self.buf += data
        head, _, self.buf = self.buf.partition(token)
        return head

    def header(self):
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  f"xmlns:stream='{NS_STREAMS}' to='{self.domain}' version='1.0'>")
        self.wait("</stream:features>")

    def login(self, user, password, resource):
        self.header()
        creds = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}"
                  "</auth>")
        self.wait("<success")
        self.wait(">")
        self.header()
        self.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  f"<resource>{resource}</resource></bind></iq>")
        self.wait("</iq>")
        self.send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"
                  "</iq>")
        self.wait("id='s1'")
        self.send("<presence/>")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy-port", type=int, required=True)
    ap.add_argument("--backend-port", type=int, required=True)
    ap.add_argument("--proxy-pid", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--max-growth-kib", type=int, default=4096)
    ap.add_argument("--timeout", type=float, default=90)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout

    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.set_alpn_protocols(["xmpp-client"])
    raw = socket.create_connection(("127.0.0.1", a.proxy_port), timeout=10)
    alice = Session(ctx.wrap_socket(raw, server_hostname=a.domain), a.domain, deadline)
    alice.login("alice", "secret", "r")
    # Let the presence round-trip settle, then stop reading from here on.
    time.sleep(0.5)
    alice.s.settimeout(0.5)
    try:
        while True:
            if not alice.s.recv(65536):
                raise RuntimeError("alice's stream closed")
    except (socket.timeout, ssl.SSLWantReadError):
        pass
    # Keep the kernel's share small so the proxy's own buffering shows.
    base = rss_kib(a.proxy_pid)

    bob = Session(socket.create_connection(("127.0.0.1", a.backend_port), timeout=10),
                  a.domain, deadline)
    bob.login("bob", "secret", "flood")
    body = "x" * a.size
    sent = 0
    bob.s.settimeout(0.2)
    for i in range(a.count):
        msg = (f"<message to='alice@{a.domain}/r' type='chat' id='m{i}'><body>{i}:{body}"
               "</body></message>")
        bob.s.setblocking(True)
        bob.s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            bob.s.sendall(msg.encode())
        except socket.timeout:
            break  # jabberd2 itself stopped reading bob: the pipe is full end to end
        sent += len(msg)
    time.sleep(2)
    peak = rss_kib(a.proxy_pid)
    growth = peak - base
    print(f"backpressure: bob sent {sent / 1e6:.1f} MB to a non-reading alice; "
          f"proxy RSS {base} -> {peak} KiB (+{growth} KiB)")
    if growth > a.max_growth_kib:
        print(f"backpressure: FAIL: the proxy buffered {growth} KiB "
              f"(limit {a.max_growth_kib} KiB)")
        return 1

    # Alice reads again: every message must arrive, in order.
    alice.s.settimeout(max(0.1, deadline - time.monotonic()))
    want = 0
    buf = alice.buf
    while want < a.count and time.monotonic() < deadline:
        data = alice.s.recv(65536)
        if not data:
            break
        buf += data
        while True:
            start = buf.find(b"<body>")
            end = buf.find(b"</body>", start)
            if start < 0 or end < 0:
                break
            n = int(buf[start + 6:buf.index(b":", start)])
            if n != want:
                print(f"backpressure: FAIL: message {n} arrived, expected {want}")
                return 1
            want += 1
            buf = buf[end + 7:]
    if want != a.count:
        print(f"backpressure: FAIL: alice received {want} of {a.count} messages")
        return 1
    print(f"backpressure: alice received all {want} messages in order after resuming")
    alice.send("</stream:stream>")
    bob.send("</stream:stream>")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a clear message, not a traceback, for the test log
        print(f"backpressure: FAIL: {type(e).__name__}: {e}")
        sys.exit(1)
