#!/usr/bin/python3
"""fakepeer.py: a scripted TCP server that misbehaves on cue, for the fault-injection tests.

    fakepeer.py --port-file FILE --log FILE [--listen 127.0.0.1:0] STEPS...

It plays a backend (jabberd2's c2s behind the proxy) or a remote server (in front of the
proxy's s2s-out) that fails in one exact way no real server shows on demand. Every accepted
connection runs the steps, in the order given, in a thread of its own:

  --send DATA       one write of DATA (plaintext)
  --send-hex HEX    one write of the bytes HEX spells (e.g. a TLS alert record: 15030300020228)
  --wait TEXT       read until TEXT has arrived (since the previous --wait, TLS-free bytes)
  --wait-bytes N    read until N more bytes have arrived (e.g. the start of a ClientHello)
  --sleep SECONDS
  --tls-partial N   act as a TLS server until the first server flight is ready (TLS 1.2/1.3
                    with --cert/--key, the ClientHello read as needed), then send only its
                    first N bytes: a server that vanishes in the middle of the handshake
  --reset           close at once with RST (SO_LINGER 0): the connection is gone
  --fin             shut the write side (FIN), then read until the other side closes
  --stall           read and drop everything until the other side closes (never answer)

A connection whose steps end without --reset or --fin is closed with a FIN after the other
side closed (or --max-seconds passed). --max-conns N: after N accepted connections the
listening socket is closed, so that later connects are refused (a server that went away). --no-accept instead listens with a backlog of 0 and
fills that queue with one connection of its own: every later SYN is dropped by the kernel and
connects hang (a backend too busy to accept); nothing is ever accepted.

--log FILE gets one line per event, flushed at once (bytes escaped, \\xNN outside ASCII):
  [N] accept from HOST:PORT | [N] C: BYTES | [N] S: BYTES | [N] tls: sent K of M bytes of the
  server flight | [N] reset | [N] fin | [N] peer closed (REASON) | [N] done
N numbers the connections from 1. --max-seconds S (default 120) is a backstop: exit after S.
Exit status 0 on SIGTERM/SIGINT or --max-seconds, 2 bad usage, 1 if it cannot listen.
"""

import argparse
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time


class Append(argparse.Action):
    """Collects the steps into one ordered list."""

    def __call__(self, parser, ns, values, option_string=None):
        steps = getattr(ns, "steps", None) or []
        steps.append((self.dest, values))
        ns.steps = steps


def escape(data):
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", encoding="ascii", buffering=1)
        self.lock = threading.Lock()

    def __call__(self, n, text):
        with self.lock:
            self.f.write(f"[{n}] {text}\n")


class Closed(Exception):
    pass


class Conn:
    def __init__(self, args, log, n, sock):
        self.a, self.log, self.n, self.s = args, log, n, sock
        self.buf = b""
        self.deadline = time.monotonic() + args.max_seconds

    def recv(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Closed("backstop")
        self.s.settimeout(left)
        try:
            data = self.s.recv(65536)
        except socket.timeout as exc:
            raise Closed("backstop") from exc
        except OSError as exc:
            raise Closed(str(exc)) from exc
        if not data:
            raise Closed("EOF")
        self.log(self.n, "C: " + escape(data))
        self.buf += data
        return data

    def send(self, data):
        self.log(self.n, "S: " + escape(data))
        self.s.sendall(data)

    def tls_partial(self, keep):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.a.cert, self.a.key)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_side=True)
        start = self.buf.find(b"\x16")  # what came before the ClientHello was plaintext
        inc.write(self.buf[start:] if start >= 0 else b"")
        self.buf = b""
        while True:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                flight = out.read()
                if flight:
                    break
                inc.write(self.recv())
                self.buf = b""
                continue
            raise Closed("TLS handshake finished early")
        part = flight[:keep]
        self.log(self.n, f"tls: sent {len(part)} of {len(flight)} bytes of the server flight")
        self.s.sendall(part)

    def run(self, steps):
        for kind, value in steps:
            if kind == "send":
                self.send(os.fsencode(value))
            elif kind == "send_hex":
                self.send(bytes.fromhex(value))
            elif kind == "wait":
                text = os.fsencode(value)
                while text not in self.buf:
                    self.recv()
                self.buf = self.buf[self.buf.index(text) + len(text):]
            elif kind == "wait_bytes":
                while len(self.buf) < value:
                    self.recv()
                self.buf = self.buf[value:]
            elif kind == "sleep":
                time.sleep(value)
            elif kind == "tls_partial":
                self.tls_partial(value)
            elif kind == "reset":
                self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.s.close()
                self.log(self.n, "reset")
                return
            elif kind == "fin":
                self.s.shutdown(socket.SHUT_WR)
                self.log(self.n, "fin")
                break
            elif kind == "stall":
                break
        while True:  # --fin, --stall or the end of the steps: until the other side closes
            self.recv()


def serve(args, log, n, sock):
    c = Conn(args, log, n, sock)
    try:
        c.run(args.steps)
    except Closed as exc:
        log(n, f"peer closed ({exc})")
    except (OSError, ssl.SSLError) as exc:
        log(n, f"peer closed ({exc})")
    finally:
        try:
            sock.close()
        except OSError:
            pass
        log(n, "done")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--no-accept", action="store_true")
    p.add_argument("--max-conns", type=int, default=0, metavar="N")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--send", dest="send", action=Append, metavar="DATA")
    p.add_argument("--send-hex", dest="send_hex", action=Append, metavar="HEX")
    p.add_argument("--wait", dest="wait", action=Append, metavar="TEXT")
    p.add_argument("--wait-bytes", dest="wait_bytes", action=Append, type=int, metavar="N")
    p.add_argument("--sleep", dest="sleep", action=Append, type=float, metavar="SECONDS")
    p.add_argument("--tls-partial", dest="tls_partial", action=Append, type=int, metavar="N")
    p.add_argument("--reset", dest="reset", action=Append, nargs=0)
    p.add_argument("--fin", dest="fin", action=Append, nargs=0)
    p.add_argument("--stall", dest="stall", action=Append, nargs=0)
    args = p.parse_args()
    args.steps = getattr(args, "steps", None) or []
    if any(k == "tls_partial" for k, _ in args.steps) and not (args.cert and args.key):
        p.error("--tls-partial needs --cert and --key")

    host, _, port = args.listen.rpartition(":")
    log = Log(args.log)
    try:
        ls = socket.create_server((host, int(port)), backlog=0 if args.no_accept else 64)
    except OSError as exc:
        print(f"fakepeer: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    filler = None
    if args.no_accept:  # one connection fills the queue of a backlog-0 listener
        filler = socket.create_connection(ls.getsockname()[:2], timeout=5)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.replace(tmp, args.port_file)

    end = time.monotonic() + args.max_seconds
    if args.no_accept:
        time.sleep(args.max_seconds)
        filler.close()
        return 0
    n = 0
    while time.monotonic() < end:
        ls.settimeout(max(0.1, end - time.monotonic()))
        try:
            sock, peer = ls.accept()
        except socket.timeout:
            break
        n += 1
        log(n, f"accept from {peer[0]}:{peer[1]}")
        threading.Thread(target=serve, args=(args, log, n, sock), daemon=True).start()
        if n == args.max_conns:
            ls.close()
            log(n, "no longer listening (--max-conns)")
            time.sleep(max(0.0, end - time.monotonic()))
            break
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
