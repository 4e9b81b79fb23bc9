#!/usr/bin/python3
"""tlshangup.py: a client that leaves in the middle of the TLS handshake, at a chosen point.

    tlshangup.py --port N [--starttls] [--domain D] --at POINT --how rst|fin

With --starttls it first does the XMPP STARTTLS exchange in plaintext (to='--domain') up to
<proceed/>; without, the connection is Direct TLS from the first byte (ALPN xmpp-client). Then
it builds a real ClientHello (Python's ssl, SNI = --domain, TLS 1.2 to 1.3) and leaves at POINT:
  proceed       before sending any TLS byte (right after <proceed/>, or right after connect)
  half-hello    after sending the first half of the ClientHello
  hello         after sending the whole ClientHello, before reading any answer
  server-hello  after the first bytes of the server's answer (its ServerHello) arrived
--how rst: close with RST (SO_LINGER 0), as a client that crashed or whose network vanished;
--how fin: shut the write side (FIN) and read until the server closes (at most --timeout).
Prints one line "tlshangup: left at POINT by RST|FIN after reading N TLS bytes; server then
closed|did not close" and exits 0 when it got as far as POINT (1 otherwise, 2 bad usage).
"""
import argparse
import socket
import ssl
import struct
import sys
import time

NS_STREAMS = "http://etherx.jabber.org/streams"


def recv_until(sock, text, timeout):
    buf, deadline = b"", time.monotonic() + timeout
    while text not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"no {text!r} within {timeout:g} s: {buf[-200:]!r}")
        sock.settimeout(left)
        data = sock.recv(65536)
        if not data:
            raise RuntimeError(f"closed while waiting for {text!r}: {buf[-200:]!r}")
        buf += data
    return buf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--at", choices=("proceed", "half-hello", "hello", "server-hello"),
                    required=True)
    ap.add_argument("--how", choices=("rst", "fin"), required=True)
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()

    got = 0
    try:
        s = socket.create_connection((a.host, a.port), timeout=a.timeout)
        if a.starttls:
            s.sendall(f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                      f"xmlns:stream='{NS_STREAMS}' to='{a.domain}' version='1.0'>".encode())
            recv_until(s, b"</stream:features>", a.timeout)
            s.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            recv_until(s, b"<proceed", a.timeout)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # it never gets as far as a certificate
        if not a.starttls:
            ctx.set_alpn_protocols(["xmpp-client"])
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname=a.domain)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        if a.at == "half-hello":
            s.sendall(hello[:len(hello) // 2])
        elif a.at in ("hello", "server-hello"):
            s.sendall(hello)
        if a.at == "server-hello":
            s.settimeout(a.timeout)
            first = s.recv(65536)
            if not first or first[0] != 0x16:
                raise RuntimeError(f"no ServerHello: {first[:20]!r}")
            got = len(first)
        time.sleep(0.05)  # the proxy has read what we sent before we leave
        if a.how == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            print(f"tlshangup: left at {a.at} by RST after reading {got} TLS bytes")
            return 0
        s.shutdown(socket.SHUT_WR)
        closed, deadline = False, time.monotonic() + a.timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            got += len(data)
        s.close()
        print(f"tlshangup: left at {a.at} by FIN after reading {got} TLS bytes; server then "
              f"{'closed' if closed else 'did not close'}")
        return 0 if closed else 1
    except (OSError, RuntimeError) as exc:
        print(f"tlshangup: FAIL before {a.at}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
