#!/usr/bin/python3
"""tap.py: a logging TCP relay, to see what two servers say to each other.

    tap.py --listen 127.0.0.1:PORT --connect 127.0.0.1:PORT --log FILE [--port-file FILE]

Accepts any number of connections on --listen; for each it connects to --connect and relays
bytes both ways unchanged (half-closes are passed on: a FIN from one side becomes a shutdown of
the write side towards the other). Every chunk read, and every connection event, is one line in
--log, written and flushed at once:

    [N +SECONDS] open from HOST:PORT
    [N +SECONDS] connected to HOST:PORT          (or: connect to HOST:PORT failed: ERROR)
    [N +SECONDS] C: BYTES      what the connecting side (the client of this TCP connection) sent
    [N +SECONDS] S: BYTES      what the side tap.py connected to (the server) sent
    [N +SECONDS] C: <EOF>      that side closed its write direction (FIN)
    [N +SECONDS] closed (C->S BYTES bytes, S->C BYTES bytes)

N numbers the connections from 1; SECONDS counts from the accept of connection N (and, in the
"open" line, the absolute time since tap.py started is given as "at +T"). BYTES are the chunk's
bytes as text with backslash escapes: \\\\ for a backslash, \\n \\r \\t, \\xNN for any other byte
outside printable ASCII (XMPP is UTF-8: non-ASCII shows escaped). One read is one line, so the
lines also show how the sender split its writes.

--port-file FILE: with --listen HOST:0, the chosen port is written to FILE once listening.
--delay-accept SECONDS: wait before connecting onwards (a slow network); default 0.
--refuse N: close the first N accepted connections at once without connecting onwards (to see
how a peer retries); they are logged as "refused".
--raw-dir DIR: also write each direction's exact bytes to DIR/N.C and DIR/N.S (unescaped), e.g.
to feed a captured stream to a parser in a unit test.
--max-seconds S: exit after S seconds (a backstop for tests; default: run until SIGTERM/SIGINT).
Exit status 0 on SIGTERM/SIGINT or --max-seconds, 2 on bad usage, 1 if it cannot listen.
"""

import argparse
import asyncio
import os
import signal
import sys
import time


def escape(data):
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x09:
            out.append("\\t")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


class Tap:
    def __init__(self, args):
        self.args = args
        self.log = open(args.log, "a", encoding="ascii", buffering=1)
        self.n = 0
        self.t_start = time.monotonic()
        self.refused = 0

    def line(self, n, t0, text):
        self.log.write(f"[{n} +{time.monotonic() - t0:.3f}] {text}\n")

    async def pump(self, n, t0, label, reader, writer, counter):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    self.line(n, t0, f"{label}: <EOF>")
                    break
                counter[label] += len(data)
                self.line(n, t0, f"{label}: {escape(data)}")
                if self.args.raw_dir:
                    with open(os.path.join(self.args.raw_dir, f"{n}.{label}"), "ab") as f:
                        f.write(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            # A reset: pass it on as a close of the other connection, whole.
            self.line(n, t0, f"{label}: <error {exc.__class__.__name__}: {exc}>")
            writer.close()
            return
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    async def handle(self, c_reader, c_writer):
        self.n += 1
        n, t0 = self.n, time.monotonic()
        peer = c_writer.get_extra_info("peername")
        self.line(n, t0, f"open from {peer[0]}:{peer[1]} at +{t0 - self.t_start:.3f}")
        if self.refused < self.args.refuse:
            self.refused += 1
            self.line(n, t0, f"refused ({self.refused}/{self.args.refuse})")
            c_writer.close()
            return
        if self.args.delay_accept:
            await asyncio.sleep(self.args.delay_accept)
        host, port = self.args.connect
        try:
            s_reader, s_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, asyncio.TimeoutError) as exc:
            self.line(n, t0, f"connect to {host}:{port} failed: {exc or 'timeout'}")
            c_writer.close()
            return
        self.line(n, t0, f"connected to {host}:{port}")
        counter = {"C": 0, "S": 0}
        await asyncio.gather(self.pump(n, t0, "C", c_reader, s_writer, counter),
                             self.pump(n, t0, "S", s_reader, c_writer, counter))
        for w in (c_writer, s_writer):
            w.close()
        self.line(n, t0, f"closed (C->S {counter['C']} bytes, S->C {counter['S']} bytes)")


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


async def main_async(args):
    if args.raw_dir:
        os.makedirs(args.raw_dir, exist_ok=True)
    tap = Tap(args)
    host, port = args.listen
    try:
        server = await asyncio.start_server(tap.handle, host, port, reuse_address=True)
    except OSError as exc:
        print(f"tap: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    real_port = server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w", encoding="ascii") as f:
            f.write(f"{real_port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    except asyncio.TimeoutError:
        pass
    server.close()
    tap.log.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--listen", required=True, type=host_port, metavar="HOST:PORT")
    p.add_argument("--connect", required=True, type=host_port, metavar="HOST:PORT")
    p.add_argument("--log", required=True, metavar="FILE")
    p.add_argument("--port-file", metavar="FILE")
    p.add_argument("--delay-accept", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--refuse", type=int, default=0, metavar="N")
    p.add_argument("--raw-dir", metavar="DIR")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S")
    args = p.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
