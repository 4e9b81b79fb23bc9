#!/usr/bin/python3
"""capture.py PORT DOMAIN OUTPREFIX [USER PASSWORD]

Connects to a plaintext c2s port on 127.0.0.1, sends a version='1.0' stream header and saves
every byte the server sends up to </stream:features> (OUTPREFIX-pre.xml). With a user, it then
authenticates with SASL PLAIN, restarts the stream and saves the second block
(OUTPREFIX-post.xml). The whole exchange goes to OUTPREFIX-transcript.txt, one line per read
or write, prefixed "C: " (client) or "S: " (server). See README.md for the servers' setup."""
import socket, sys, base64, time
port, domain, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
user = sys.argv[4] if len(sys.argv) > 4 else None
pw = sys.argv[5] if len(sys.argv) > 5 else None
s = socket.create_connection(("127.0.0.1", port), timeout=5)
transcript = []
def send(b):
    transcript.append(b"C: " + b)
    s.sendall(b)
def read_until(marker):
    buf = b""
    while marker not in buf:
        d = s.recv(65536)
        if not d:
            raise SystemExit("EOF after %r" % buf)
        buf += d
    transcript.append(b"S: " + buf)
    return buf
hdr = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
       "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % domain).encode()
send(hdr)
pre = read_until(b"</stream:features>")
open(out + "-pre.xml", "wb").write(pre)
if user:
    tok = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()
    send(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % tok).encode())
    r = read_until(b">")
    while b"success" not in r and b"failure" not in r:
        r += read_until(b">")
    if b"success" not in r:
        raise SystemExit("auth failed: %r" % r)
    # read the rest of <success .../> if split
    send(hdr)
    post = read_until(b"</stream:features>")
    open(out + "-post.xml", "wb").write(post)
send(b"</stream:stream>")
try:
    time.sleep(0.3)
    transcript.append(b"S: " + s.recv(65536))
except Exception:
    pass
s.close()
open(out + "-transcript.txt", "wb").write(b"\n".join(transcript) + b"\n")
print(pre.decode()); print(post.decode() if user else "")
