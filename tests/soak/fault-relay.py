#!/usr/bin/python3
"""fault-relay.py: a TCP relay that breaks xtp-soak's messages on purpose, so that a run proves
the soak's checker sees every kind of fault (scripts/soak.sh with XTP_SOAK_FAULTS=1, which
tests/integration/t40-soak-short.sh runs before the soak itself).

    fault-relay.py --listen 127.0.0.1:0 --connect 127.0.0.1:PORT --port-file F --stats F
                   [--every N] [--max-seconds S]

Sits between xtp-soak --plain-port and jabberd2's c2s. What the clients send passes unchanged.
In what the server sends, every complete <message>...</message> whose body starts with "soak "
is counted (one counter for all connections), and of every N of them (--every, default 40):
  number 7 is dropped                                   -> the checker must count it lost;
  number 17 is sent twice                               -> one dup;
  number 27 is held and sent right after the next message on the same connection (one
            sender per connection, so the receiver sees a lower N after a higher one)
                                                        -> one reordered; if no message follows
            within 1 s, or the connection ends, it is sent alone, in order, and not counted;
  number 37 has the first payload character changed     -> one bad checksum, and lost (a
            corrupted message is not received).
Everything else is relayed in order, and half-closes are passed on.

--stats FILE is rewritten after every fault: "dropped=A duplicated=B reordered=C corrupted=D".
--port-file FILE gets the chosen port once listening. --max-seconds S: exit after S seconds (a
backstop; default 300). Exit status 0 on SIGTERM/SIGINT or --max-seconds, 2 on bad usage, 1 if
it cannot listen. Loopback only.
"""

import argparse
import asyncio
import ipaddress
import os
import signal
import sys

MSG_START = b"<message"
MSG_END = b"</message>"
HOLD_SECONDS = 1.0


class Faults:
    def __init__(self, every, stats_path):
        self.every = every
        self.stats_path = stats_path
        self.n = 0
        self.dropped = self.duplicated = self.reordered = self.corrupted = 0
        self.write()

    def write(self):
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"dropped={self.dropped} duplicated={self.duplicated} "
                    f"reordered={self.reordered} corrupted={self.corrupted}\n")
        os.replace(tmp, self.stats_path)


def corrupt(msg):
    """The message with the first payload character changed (a letter or digit, so that the
    XML stays well-formed and only the checksum can tell)."""
    i = msg.find(b" P=")
    if i < 0 or i + 3 >= len(msg):
        return None
    i += 3
    old = msg[i:i + 1]
    new = b"B" if old == b"A" else b"A"
    return msg[:i] + new + msg[i + 1:]


async def pump_plain(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def pump_faulty(reader, writer, faults):
    buf = b""
    held = None
    try:
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536),
                                              HOLD_SECONDS if held is not None else None)
            except asyncio.TimeoutError:
                writer.write(held)  # nothing followed: in order after all, not counted
                held = None
                await writer.drain()
                continue
            if not data:
                break
            buf += data
            out = []
            while True:
                i = buf.find(MSG_START)
                if i < 0:
                    # Keep only what may be the start of "<message" split across reads.
                    cut = len(buf)
                    lt = buf.rfind(b"<", max(0, len(buf) - len(MSG_START) + 1))
                    if lt >= 0 and MSG_START.startswith(buf[lt:]):
                        cut = lt
                    out.append(buf[:cut])
                    buf = buf[cut:]
                    break
                out.append(buf[:i])
                buf = buf[i:]
                j = buf.find(MSG_END)
                if j < 0:
                    break
                msg = buf[:j + len(MSG_END)]
                buf = buf[j + len(MSG_END):]
                if b"<body>soak " not in msg:
                    out.append(msg)
                    continue
                if held is not None:
                    out.append(msg)
                    out.append(held)
                    held = None
                    faults.reordered += 1
                    faults.write()
                    continue
                k = faults.n % faults.every
                faults.n += 1
                if k == 7:
                    faults.dropped += 1
                    faults.write()
                elif k == 17:
                    out.append(msg)
                    out.append(msg)
                    faults.duplicated += 1
                    faults.write()
                elif k == 27:
                    held = msg
                elif k == 37 and corrupt(msg) is not None:
                    out.append(corrupt(msg))
                    faults.corrupted += 1
                    faults.write()
                else:
                    out.append(msg)
            writer.write(b"".join(out))
            await writer.drain()
        if held is not None:
            writer.write(held)
        writer.write(buf)
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def handle(creader, cwriter, target, faults):
    try:
        sreader, swriter = await asyncio.open_connection(*target)
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pump_plain(creader, swriter), pump_faulty(sreader, cwriter, faults))
    for w in (cwriter, swriter):
        w.close()


def hostport(s):
    host, _, port = s.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{s}: loopback addresses only")
    return host, int(port)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=hostport, required=True)
    ap.add_argument("--connect", type=hostport, required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--every", type=int, default=40)
    ap.add_argument("--max-seconds", type=float, default=300)
    a = ap.parse_args()
    if a.every < 40:
        ap.error("--every must be at least 40")
    faults = Faults(a.every, a.stats)
    try:
        server = await asyncio.start_server(
            lambda r, w: handle(r, w, a.connect, faults), *a.listen)
    except OSError as e:
        print(f"fault-relay: cannot listen on {a.listen}: {e}", file=sys.stderr)
        return 1
    port = server.sockets[0].getsockname()[1]
    with open(a.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.replace(a.port_file + ".tmp", a.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), a.max_seconds)
    except asyncio.TimeoutError:
        pass
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
