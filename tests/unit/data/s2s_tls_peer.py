#!/usr/bin/python3
"""s2s_tls_peer.py: a scripted s2s peer over STARTTLS playing example.test, used to capture
what Prosody says inside TLS (the s2s-prosody-tls-*.txt files here).

Not a test: regex-level XML, one connection, the tool behind the Prosody facts in
docs/testing-s2s.md.

  server PORT   accept one s2s connection (point Prosody's DNS for example.test at PORT):
                <starttls><required/>, TLS with tests/certs/example.test.crt, a client
                certificate requested and checked against tests/certs/ca.crt, then
                <mechanisms>EXTERNAL (unless --no-external) and <dialback/> (unless
                --no-dialback); <success/> for any <auth/>, type='valid' for a <db:result>.
  client PORT   connect to Prosody's s2s as example.test -> other.test, STARTTLS (SNI
                other.test, client certificate tests/certs/CERT.crt, --cert none for none),
                then --auth external or dialback; --message sends one stanza.

The transcript (--log) has tap.py's format, decrypted: "C:" is what the connecting side sent,
"S:" the accepting side; a "<TLS ...>" line marks the handshake.
"""
import argparse
import base64
import re
import socket
import ssl
import sys
import time
import uuid
from pathlib import Path

CERTS = str(Path(__file__).resolve().parents[2] / "certs")
T0 = time.monotonic()


class Conn:
    def __init__(self, sock, log, me, tag):
        self.s, self.log, self.me, self.tag = sock, log, me, tag
        self.buf = b""
        self.t0 = time.monotonic()

    def esc(self, data):
        out = []
        for b in data:
            if b == 0x5C: out.append("\\\\")
            elif b == 0x0A: out.append("\\n")
            elif b == 0x0D: out.append("\\r")
            elif b == 0x09: out.append("\\t")
            elif 0x20 <= b < 0x7F: out.append(chr(b))
            else: out.append(f"\\x{b:02x}")
        return "".join(out)

    def line(self, text):
        self.log.write(f"[1 +{time.monotonic() - self.t0:.3f}] {text}\n"); self.log.flush()

    def send(self, data):
        self.line(f"{self.me}: {self.esc(data.encode())}")
        self.s.sendall(data.encode())

    def until(self, pat, timeout=10):
        deadline = time.monotonic() + timeout
        rx = re.compile(pat, re.S)
        while not rx.search(self.buf):
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                raise SystemExit(f"timeout waiting for {pat!r}; have {self.buf!r}")
            if not d:
                self.line(f"{self.other()}: <EOF>")
                raise SystemExit(f"EOF waiting for {pat!r}; have {self.buf!r}")
            self.line(f"{self.other()}: {self.esc(d)}")
            self.buf += d
        m = rx.search(self.buf)
        self.buf = self.buf[m.end():]
        return m

    def other(self):
        return "S" if self.me == "C" else "C"

    def read_for(self, secs):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                d = self.s.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            if not d:
                self.line(f"{self.other()}: <EOF>"); return
            self.line(f"{self.other()}: {self.esc(d)}")
            self.buf += d

    def tls(self, ctx, server_side, sni=None):
        self.s.settimeout(10)
        self.s = ctx.wrap_socket(self.s, server_side=server_side, server_hostname=sni)
        peer = self.s.getpeercert()
        self.line(f"<TLS {self.s.version()} {self.s.cipher()[0]}; peer certificate: "
                  f"{dict(x[0] for x in peer['subject']) if peer else None}>")


HDR = ("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
       "xmlns='jabber:server' xmlns:db='jabber:server:dialback' version='1.0'{attrs}>")


def server(a):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port)); ls.listen(5); ls.settimeout(a.wait)
    s, _ = ls.accept()
    c = Conn(s, open(a.log, "w"), "S", "srv")
    c.line("open (Prosody connects to us)")
    m = c.until(rb"<stream:stream[^>]*>")
    at = dict(re.findall(r"([\w:]+)=['\"]([^'\"]*)['\"]", m.group(0).decode()))
    frm = at.get("from", "")
    c.send(HDR.format(attrs=f" from='example.test' to='{frm}' id='{uuid.uuid4()}'")
           + "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>")
    c.until(rb"<starttls[^>]*/>|<starttls[^>]*>\s*</starttls>")
    c.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{CERTS}/example.test.crt", f"{CERTS}/example.test.key")
    ctx.load_verify_locations(f"{CERTS}/ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    sni = []
    ctx.sni_callback = lambda sock, name, _ctx: sni.append(name)
    c.tls(ctx, True)
    c.line(f"<SNI from the client: {sni[0] if sni else None!r}>")
    c.until(rb"<stream:stream[^>]*>")
    mechs = "" if a.no_external else "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>"
    db = "" if a.no_dialback else "<dialback xmlns='urn:xmpp:features:dialback'/>"
    c.send(HDR.format(attrs=f" from='example.test' to='{frm}' id='{uuid.uuid4()}'")
           + f"<stream:features>{mechs}{db}</stream:features>")
    m = c.until(rb"<auth[^>]*>[^<]*</auth>|<auth[^>]*/>|<db:result[^>]*>[^<]*</db:result>")
    if m.group(0).startswith(b"<auth"):
        c.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        c.until(rb"<stream:stream[^>]*>")
        c.send(HDR.format(attrs=f" from='example.test' to='{frm}' id='{uuid.uuid4()}'") + "<stream:features/>")
    else:
        rat = dict(re.findall(r"([\w:]+)=['\"]([^'\"]*)['\"]", m.group(0).decode()))
        c.send(f"<db:result from='{rat.get('to')}' to='{rat.get('from')}' type='valid'/>")
    c.read_for(a.linger)
    c.send("</stream:stream>")
    c.read_for(1)


def client(a):
    s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    c = Conn(s, open(a.log, "w"), "C", "cli")
    c.line("open (we connect to Prosody)")
    c.send(HDR.format(attrs=" from='example.test' to='other.test'"))
    c.until(rb"</stream:features>")
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    c.until(rb"<proceed[^>]*/>")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(f"{CERTS}/ca.crt")
    if a.cert:
        ctx.load_cert_chain(f"{CERTS}/{a.cert}.crt", f"{CERTS}/{a.cert}.key")
    c.tls(ctx, False, sni="other.test")
    c.send(HDR.format(attrs=" from='example.test' to='other.test'"))
    m = c.until(rb"</stream:features>|<stream:features/>")
    if a.auth == "external":
        c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>"
               + base64.b64encode(b"example.test").decode() + "</auth>")
        c.until(rb"<success[^>]*/>|<success[^>]*>[^<]*</success>|<failure.*?</failure>")
        c.send(HDR.format(attrs=" from='example.test' to='other.test'"))
        c.until(rb"</stream:features>|<stream:features/>")
    else:
        c.send("<db:result from='example.test' to='other.test'>0123456789abcdef</db:result>")
    if a.message:
        c.read_for(0.5)
        c.send("<message from='alice@example.test/x' to='bob@other.test' type='chat' id='m1'><body>over TLS</body></message>")
    c.read_for(a.linger)
    c.send("</stream:stream>")
    c.read_for(1)


p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("mode", choices=("server", "client"))
p.add_argument("port", type=int)
p.add_argument("--log", required=True)
p.add_argument("--wait", type=float, default=15)
p.add_argument("--linger", type=float, default=2)
p.add_argument("--no-external", action="store_true")
p.add_argument("--no-dialback", action="store_true")
p.add_argument("--cert", default="example.test")
p.add_argument("--auth", choices=("external", "dialback"), default="external")
p.add_argument("--message", action="store_true")
a = p.parse_args()
if a.cert == "none":
    a.cert = None
try:
    (server if a.mode == "server" else client)(a)
except SystemExit as e:
    print(f"tlspeer: {e}", file=sys.stderr)
    sys.exit(1)
