#!/usr/bin/python3
"""recorder.py: a stand-in c2s backend that records every byte the proxy sends it.

Listens on 127.0.0.1:PORT. Each accepted connection N gets the file DIR/conn-N.in, to which
every byte received is appended as it arrives, so that a test can prove what the backend saw
(and, by the absence of a file, that it saw no connection at all). Once a stream header has
arrived it answers like a minimal XMPP server: its own header and a features block with SASL
PLAIN, so that the proxy reaches its relay state; on </stream:stream> it answers in kind and
closes. Nothing else is interpreted. Runs until killed; DIR/ready appears once it listens.
"""
import argparse
import os
import socket
import threading

HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams' from='%s' id='rec%d' "
          b"version='1.0'><stream:features><mechanisms "
          b"xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
          b"</stream:features>")


def serve(conn, n, args):
    path = os.path.join(args.dir, f"conn-{n}.in")
    seen = b""
    answered = closed = False
    with conn, open(path, "ab", buffering=0) as out:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                break
            if not data:
                break
            out.write(data)
            seen = (seen + data)[-4096:]
            try:
                if not answered and b"<stream:stream" in seen and b">" in seen.split(
                        b"<stream:stream", 1)[1]:
                    answered = True
                    conn.sendall(HEADER % (args.domain.encode(), n))
                if answered and not closed and b"</stream:stream>" in seen:
                    closed = True
                    conn.sendall(b"</stream:stream>")
                    conn.shutdown(socket.SHUT_WR)
            except OSError:
                break


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--domain", default="example.org")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    with open(os.path.join(args.dir, "ready"), "w", encoding="ascii") as f:
        f.write("ready\n")
    n = 0
    while True:
        conn, _ = srv.accept()
        n += 1
        threading.Thread(target=serve, args=(conn, n, args), daemon=True).start()


if __name__ == "__main__":
    main()
