#!/usr/bin/python3
"""tlsattack.py: hand-made TLS for attack tests, where OpenSSL cannot or will not send it.

Subcommands (each connects to --port; with --starttls it first does the XMPP STARTTLS exchange
in plaintext, to='--domain'):

  hello KIND      sends one crafted ClientHello (see HELLOS: SSLv2-format, SSLv3, TLS 1.0/1.1,
                  TLS 1.2 offering only RC4 / NULL / anonymous / EXPORT / CBC / static-RSA /
                  finite-field DHE suites, TLS 1.3 offering only ffdhe groups, and two good
                  controls) and reports what came back: a ServerHello, an alert, EOF, a reset
                  or nothing. --expect refused: no ServerHello and the connection closed;
                  --expect accepted: a ServerHello (the controls prove the crafted hellos are
                  sound enough to be answered, so a refusal means the offer was refused).
  overflow-pre    sends a handshake record header claiming 16384+256+1 bytes (more than TLS
                  allows any record, RFC 8446 §5.1/§5.2) and then that many bytes; expects the
                  connection closed without a ServerHello.
  overflow-post   completes a real handshake, opens the stream (to='--domain'), waits for the
                  features, then sends an application-data record header claiming 18433 bytes
                  followed by --marker padding; expects the connection closed.
  after-close     completes a handshake, opens the stream, sends a message carrying
                  --marker-before, sends close_notify, then --marker (plaintext XML) and a
                  fake application-data record; expects the connection closed.

Prints "tlsattack: RESULT ..." on stdout and exits 0 when the expectation held, 1 otherwise.
"""
import argparse
import os
import socket
import ssl
import struct
import sys
import time

NS_STREAMS = "http://etherx.jabber.org/streams"
ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
          22: "record_overflow", 40: "handshake_failure", 47: "illegal_parameter",
          50: "decode_error", 70: "protocol_version", 71: "insufficient_security",
          80: "internal_error", 86: "inappropriate_fallback", 100: "no_renegotiation",
          109: "missing_extension", 112: "unrecognized_name"}

SIGALGS = [0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203,
           0x0201]
X25519, P256, FFDHE2048, FFDHE3072 = 0x001d, 0x0017, 0x0100, 0x0101

# name: (record version, client version, suites, groups, TLS 1.3 key share group or None)
HELLOS = {
    "sslv3": (0x0300, 0x0300, [0x002f, 0x0035, 0x000a, 0x0005, 0x0004], None, None),
    "tls10": (0x0301, 0x0301, [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035], [X25519, P256],
              None),
    "tls11": (0x0301, 0x0302, [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035], [X25519, P256],
              None),
    "tls12-rc4": (0x0301, 0x0303, [0xc011, 0xc007, 0x0005, 0x0004], [X25519, P256], None),
    "tls12-null": (0x0301, 0x0303, [0xc010, 0xc006, 0x003b, 0x0002, 0x0001], [X25519, P256],
                   None),
    "tls12-anon": (0x0301, 0x0303, [0xc018, 0xc019, 0x00a6, 0x00a7, 0x0034, 0x003a, 0x0018],
                   [X25519, P256], None),
    "tls12-export": (0x0301, 0x0303, [0x0003, 0x0006, 0x0008, 0x0014, 0x0011], [X25519, P256],
                     None),
    "tls12-cbc": (0x0301, 0x0303, [0xc009, 0xc00a, 0xc023, 0xc024, 0xc013, 0xc014, 0xc027,
                                   0xc028], [X25519, P256], None),
    "tls12-static-rsa": (0x0301, 0x0303, [0x009c, 0x009d, 0x003c, 0x003d], [X25519, P256], None),
    "tls12-dhe": (0x0301, 0x0303, [0x009e, 0x009f, 0xccaa, 0x00aa, 0x00ab],
                  [FFDHE2048, FFDHE3072], None),
    "tls13-ffdhe": (0x0301, 0x0303, [0x1301, 0x1302, 0x1303], [FFDHE2048, FFDHE3072], FFDHE2048),
    "good-tls12": (0x0301, 0x0303, [0xc02b, 0xc02f, 0xcca9], [X25519, P256], None),
    "good-tls13": (0x0301, 0x0303, [0x1301, 0x1303], [X25519], X25519),
}


def u16(n):
    return struct.pack(">H", n)


def ext(kind, body):
    return u16(kind) + u16(len(body)) + body


def client_hello(kind, domain):
    rec_ver, cli_ver, suites, groups, share = HELLOS[kind]
    exts = b""
    if kind != "sslv3":  # SSLv3 had no extensions
        name = domain.encode()
        exts += ext(0, u16(len(name) + 3) + b"\0" + u16(len(name)) + name)
        exts += ext(0xff01, b"\0")
    if groups:
        exts += ext(10, u16(2 * len(groups)) + b"".join(u16(g) for g in groups))
        exts += ext(11, b"\x01\x00")
    if cli_ver >= 0x0303:
        exts += ext(13, u16(2 * len(SIGALGS)) + b"".join(u16(s) for s in SIGALGS))
    if share is not None:
        exts += ext(43, b"\x02\x03\x04")  # supported_versions: TLS 1.3 only
        kx = os.urandom(32 if share == X25519 else 256)
        entry = u16(share) + u16(len(kx)) + kx
        exts += ext(51, u16(len(entry)) + entry)
        exts += ext(45, b"\x01\x01")  # psk_key_exchange_modes: psk_dhe_ke
    body = (u16(cli_ver) + os.urandom(32) + b"\x20" + os.urandom(32) +
            u16(2 * len(suites)) + b"".join(u16(s) for s in suites) + b"\x01\x00")
    if exts:
        body += u16(len(exts)) + exts
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + u16(rec_ver) + u16(len(hs)) + hs


def sslv2_hello():
    """An SSLv2-format CLIENT-HELLO (RFC 6101 appendix E.2) offering SSLv2 and SSLv3 suites."""
    specs = bytes.fromhex("010080" "030080" "060040" "000005" "00000a" "00002f")
    challenge = os.urandom(16)
    body = b"\x01" + u16(0x0002) + u16(len(specs)) + u16(0) + u16(len(challenge)) + specs + \
        challenge
    return u16(0x8000 | len(body)) + body


class Conn:
    def __init__(self, a):
        self.a = a
        self.sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
        self.raw = b""
        if a.starttls:
            self.starttls()

    def recv_until(self, token):
        deadline = time.monotonic() + self.a.timeout
        while token not in self.raw:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError(f"closed while waiting for {token!r}")
            self.raw += data
        self.raw = self.raw.split(token, 1)[1]

    def starttls(self):
        self.sock.sendall(stream_header(self.a.domain))
        self.recv_until(b"</stream:features>")
        self.sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.recv_until(b"<proceed")
        self.recv_until(b">")

    def outcome(self):
        """Reads records until a ServerHello, an alert, EOF, a reset or the timeout."""
        buf = b""
        deadline = time.monotonic() + self.a.timeout
        while True:
            while len(buf) >= 5:
                ctype, ver, length = buf[0], buf[1] << 8 | buf[2], buf[3] << 8 | buf[4]
                if len(buf) < 5 + length:
                    break
                frag, buf = buf[5:5 + length], buf[5 + length:]
                if ctype == 22 and frag[:1] == b"\x02":
                    sver = frag[4] << 8 | frag[5]
                    sid_len = frag[38]
                    suite = frag[39 + sid_len] << 8 | frag[40 + sid_len]
                    return f"server-hello version=0x{sver:04x} suite=0x{suite:04x}"
                if ctype == 21 and len(frag) >= 2:
                    return (f"alert level={frag[0]} desc={frag[1]} "
                            f"({ALERTS.get(frag[1], '?')}) record=0x{ver:04x}")
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                return "reset"
            if not data:
                return "eof" + (f" after {len(buf)} unparsed bytes" if buf else "")
            buf += data

    def idle(self, quiet):
        """Reads until nothing arrives for quiet seconds (bounded by the timeout)."""
        deadline = time.monotonic() + self.a.timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(quiet)
            try:
                if not self.sock.recv(65536):
                    return
            except (socket.timeout, OSError):
                return

    def closed(self):
        """After an alert: True when the peer closes (EOF or reset) within the timeout."""
        deadline = time.monotonic() + self.a.timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False


class TLSConn(Conn):
    """A real TLS client over a memory BIO, so raw bytes can be slipped in underneath."""

    def handshake(self):
        ctx = ssl.create_default_context(cafile=self.a.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.a.tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname=self.a.domain)
        self.plain = b""
        if self.raw:
            self.inc.write(self.raw)
            self.raw = b""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()
        self.flush()

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def fill(self):
        self.sock.settimeout(self.a.timeout)
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("closed during the exchange")
        self.inc.write(data)

    def send(self, data):
        self.tls.write(data)
        self.flush()

    def wait(self, token):
        deadline = time.monotonic() + self.a.timeout
        while token not in self.plain:
            try:
                self.plain += self.tls.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {token!r} within {self.a.timeout:g} s")
            self.fill()

    def outcome_tls(self):
        """Like outcome(), for a session whose records are encrypted: reads through the TLS
        object, so that an alert the proxy sends under the session keys is seen."""
        names = {v.upper(): k for k, v in ALERTS.items()}
        deadline = time.monotonic() + self.a.timeout
        while time.monotonic() < deadline:
            try:
                data = self.tls.read(65536)
                if not data:  # the memory BIO reports close_notify as an empty read
                    return "alert level=1 desc=0 (close_notify) encrypted"
                self.plain += data
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return "alert level=1 desc=0 (close_notify) encrypted"
            except ssl.SSLError as exc:
                reason = (exc.reason or "").upper()
                for name, code in names.items():
                    if reason.endswith("ALERT_" + name):
                        return f"alert level=2 desc={code} ({name.lower()}) encrypted"
                return f"tls error {exc.reason}"
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                return "reset"
            if not data:
                return "eof"
            self.inc.write(data)
        return "timeout"

    def open_stream(self):
        self.handshake()
        self.send(stream_header(self.a.domain))
        self.wait(b"</stream:features>")


def stream_header(domain):
    return (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            f"xmlns:stream='{NS_STREAMS}' to='{domain}' version='1.0'>").encode()


def cmd_hello(a):
    c = Conn(a)
    c.sock.sendall(sslv2_hello() if a.kind == "sslv2" else client_hello(a.kind, a.domain))
    res = c.outcome()
    closed = res in ("eof", "reset") or res.startswith("eof") or \
        (res.startswith("alert") and c.closed())
    print(f"tlsattack: RESULT hello {a.kind}: {res}{' then closed' if closed else ''}")
    if a.expect == "accepted":
        if a.hangup:  # a client that gives up at the first byte: close at once, with RST
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sock.close()
        else:  # take the whole flight: hang up as a client that changed its mind
            c.idle(0.5)
        return res.startswith("server-hello")
    return not res.startswith("server-hello") and closed


def alert_ok(a, res):
    """--expect-alert N: the proxy's answer was the fatal alert N."""
    return a.expect_alert is None or res.startswith(f"alert level=2 desc={a.expect_alert} ")


def cmd_overflow_pre(a):
    c = Conn(a)
    n = 16384 + 256 + 1
    try:
        c.sock.sendall(b"\x16\x03\x01" + u16(n) + b"\x01" + b"\0" * (n - 1))
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed on the header alone: fine
    res = c.outcome()
    closed = not res.startswith("server-hello") and (
        not res.startswith("alert") or c.closed()) and res != "timeout"
    print(f"tlsattack: RESULT overflow-pre: {res}{' then closed' if closed else ''}")
    return closed and alert_ok(a, res)


def cmd_overflow_post(a):
    c = TLSConn(a)
    c.open_stream()
    n = 18433
    pad = (a.marker * (n // max(1, len(a.marker)) + 1))[:n].encode()
    try:
        c.sock.sendall(b"\x17\x03\x03" + u16(n) + pad)
    except (BrokenPipeError, ConnectionResetError):
        pass
    res = c.outcome_tls()
    closed = res != "timeout" and (not res.startswith("alert") or c.closed())
    print(f"tlsattack: RESULT overflow-post: {res}{' then closed' if closed else ''}")
    return closed and alert_ok(a, res)


def cmd_after_close(a):
    c = TLSConn(a)
    c.open_stream()
    c.send(f"<message to='nobody@{a.domain}' id='before'><body>{a.marker_before}</body>"
           "</message>".encode())
    try:
        c.tls.unwrap()  # our close_notify
    except ssl.SSLWantReadError:
        pass
    c.flush()
    late = f"<message to='nobody@{a.domain}' id='after'><body>{a.marker}</body></message>"
    try:
        c.sock.sendall(late.encode())
        c.sock.sendall(b"\x17\x03\x03" + u16(64) + os.urandom(64))
    except (BrokenPipeError, ConnectionResetError):
        pass
    closed = c.closed()
    print(f"tlsattack: RESULT after-close: {'closed' if closed else 'still open'}")
    return closed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("cmd", choices=("hello", "overflow-pre", "overflow-post", "after-close"))
    ap.add_argument("kind", nargs="?", choices=sorted(HELLOS) + ["sslv2"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--ca")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--tls12", action="store_true", help="real handshakes: TLS 1.2 at most")
    ap.add_argument("--expect", choices=("refused", "accepted"), default="refused")
    ap.add_argument("--hangup", action="store_true",
                    help="hello --expect accepted: reset the connection right after the "
                         "ServerHello instead of reading the rest of the flight")
    ap.add_argument("--expect-alert", type=int, metavar="N",
                    help="overflow-*: the proxy must answer with the fatal alert N "
                         "(22: record_overflow)")
    ap.add_argument("--marker", default="MARKER-AFTER")
    ap.add_argument("--marker-before", default="MARKER-BEFORE")
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    if a.cmd == "hello" and not a.kind:
        ap.error("hello needs a KIND")
    cmds = {"hello": cmd_hello, "overflow-pre": cmd_overflow_pre,
            "overflow-post": cmd_overflow_post, "after-close": cmd_after_close}
    try:
        ok = cmds[a.cmd](a)
    except (OSError, RuntimeError, ssl.SSLError) as exc:
        print(f"tlsattack: RESULT {a.cmd}: error: {exc}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
