#!/usr/bin/python3
"""s2s_peer.py: a scripted plaintext s2s peer, used to learn how jabberd2's s2s behaves.

Not a test: the tool behind the jabberd2 facts in docs/testing-s2s.md (regex-level XML, enough
for dialback; never use it as a model of a parser). Two roles, together or alone:

  --listen PORT   play the remote domain(s) for jabberd2's OUTBOUND s2s (point DNS at PORT):
                  answer its stream header (--version adds version='1.0', --features sends
                  --features-xml after it, --header-delay S waits first), answer each
                  <db:result> by --result (valid | invalid | error | none | close |
                  stream-error[:CONDITION]; --bad-conns N applies it to the first N connections
                  only; --dedupe answers a repeated from/to pair once) and each <db:verify> by
                  --verify (valid | invalid).
  --connect PORT  play a remote server on jabberd2's INBOUND s2s: header (from = the first
                  pair's originating domain, to = --to), one <db:result> per --pairs FROM:TO
                  (the key is a dummy), then --msgs FROM:TO:BODY, </stream:stream> with --end.

Every byte read and written goes to stdout and --log, one line each, "+SECONDS [sN|c] < or >".
Example (jabberd2 inbound, two pairs on one stream, this peer answering the callbacks):
  s2s_peer.py --listen 5270 --connect 15269 --version \
      --pairs other.test:example.test other2.test:example.test --end
"""
import argparse
import asyncio
import hashlib
import re
import time
import uuid

T0 = time.monotonic()
LOG = None


def log(s):
    line = f"+{time.monotonic() - T0:7.3f} {s}"
    print(line, flush=True)
    if LOG:
        LOG.write(line + "\n"); LOG.flush()


def attrs(tag):
    return dict(re.findall(r"([\w:]+)=['\"]([^'\"]*)['\"]", tag))


class Server:
    def __init__(self, a):
        self.a = a
        self.n = 0

    async def handle(self, r, w):
        self.n += 1
        n = self.n
        a = self.a
        log(f"[s{n}] accept")
        buf = b""
        sid = uuid.uuid4().hex
        sent_header = False

        async def send(data):
            log(f"[s{n}] > {data}")
            w.write(data.encode()); await w.drain()

        async def header():
            nonlocal sent_header
            if sent_header: return
            sent_header = True
            if a.header_delay: await asyncio.sleep(a.header_delay)
            ver = " version='1.0'" if a.version else ""
            await send(f"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                       f"xmlns='jabber:server' xmlns:db='jabber:server:dialback' id='{sid}'{ver}>")
            if a.features:
                await send(a.features_xml)

        if a.header_first:
            asyncio.ensure_future(header())
        bad_conns = a.bad_conns
        answered = set()
        try:
            while True:
                d = await asyncio.wait_for(r.read(65536), a.idle)
                if not d:
                    log(f"[s{n}] < EOF"); break
                log(f"[s{n}] < {d.decode(errors='replace')}")
                buf += d
                if b"<stream:stream" in buf and not sent_header:
                    await header()
                for m in re.finditer(rb"<db:(result|verify)\b([^>]*)>([^<]*)</db:\1>|<db:(result|verify)\b([^>]*)/>", buf):
                    kind = (m.group(1) or m.group(4)).decode()
                    at = attrs((m.group(2) or m.group(5)).decode())
                    key = (m.group(3) or b"").decode()
                    frm, to = at.get("from"), at.get("to")
                    if kind == "result" and a.dedupe and (frm, to) in answered:
                        log(f"[s{n}] (duplicate db:result ignored)")
                        continue
                    if kind == "result":
                        answered.add((frm, to))
                        mode = a.result if (bad_conns < 0 or n <= bad_conns) else "valid"
                        if a.result_delay: await asyncio.sleep(a.result_delay)
                        if mode == "valid":
                            await send(f"<db:result from='{to}' to='{frm}' type='valid'/>")
                        elif mode == "invalid":
                            await send(f"<db:result from='{to}' to='{frm}' type='invalid'/>")
                        elif mode == "error":
                            await send(f"<db:result from='{to}' to='{frm}' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>")
                        elif mode.startswith("stream-error"):
                            cond = mode.split(":", 1)[1] if ":" in mode else "host-unknown"
                            await send(f"<stream:error><{cond} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
                            w.close(); return
                        elif mode == "close":
                            w.close(); log(f"[s{n}] closed by us"); return
                        elif mode == "none":
                            pass
                    else:
                        await send(f"<db:verify from='{to}' to='{frm}' id='{at.get('id')}' type='{a.verify}'/>")
                buf = re.sub(rb"<db:(result|verify)\b[^>]*>[^<]*</db:\1>|<db:(result|verify)\b[^>]*/>", b"", buf)
                if b"</stream:stream>" in buf:
                    await send("</stream:stream>"); break
        except asyncio.TimeoutError:
            log(f"[s{n}] idle timeout")
        except ConnectionError as e:
            log(f"[s{n}] {e}")
        w.close()
        log(f"[s{n}] closed")


async def client(a):
    r, w = await asyncio.open_connection("127.0.0.1", a.connect)
    log("[c] connected")

    async def send(d):
        log(f"[c] > {d}"); w.write(d.encode()); await w.drain()

    async def reader():
        while True:
            d = await r.read(65536)
            if not d:
                log("[c] < EOF"); return
            log(f"[c] < {d.decode(errors='replace')}")
    rt = asyncio.ensure_future(reader())
    frm = a.pairs[0].split(":")[0]
    ver = " version='1.0'" if a.version else ""
    await send(f"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
               f"xmlns='jabber:server' xmlns:db='jabber:server:dialback' from='{frm}' to='{a.to}'{ver}>")
    await asyncio.sleep(0.3)
    for p in a.pairs:
        f, t = p.split(":")
        await send(f"<db:result from='{f}' to='{t}'>{hashlib.sha256(p.encode()).hexdigest()}</db:result>")
        if a.pair_gap: await asyncio.sleep(a.pair_gap)
    await asyncio.sleep(a.settle)
    for m in a.msgs:
        f, t, body = m.split(":", 2)
        await send(f"<message from='{f}' to='{t}' type='chat' id='{uuid.uuid4().hex[:8]}'><body>{body}</body></message>")
    await asyncio.sleep(a.settle)
    if a.end:
        await send("</stream:stream>")
        await asyncio.sleep(0.5)
    rt.cancel()
    w.close()


async def main(a):
    server = None
    if a.listen:
        server = await asyncio.start_server(Server(a).handle, "127.0.0.1", a.listen)
        log(f"listening on {a.listen}")
    if a.connect:
        await asyncio.sleep(a.client_delay)
        await client(a)
    await asyncio.sleep(a.run)
    if server:
        server.close()


p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--listen", type=int)
p.add_argument("--connect", type=int)
p.add_argument("--log")
p.add_argument("--version", action="store_true")
p.add_argument("--features", action="store_true")
p.add_argument("--features-xml", default="<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>")
p.add_argument("--dedupe", action="store_true")
p.add_argument("--header-first", action="store_true")
p.add_argument("--header-delay", type=float, default=0)
p.add_argument("--result", default="valid")
p.add_argument("--result-delay", type=float, default=0)
p.add_argument("--bad-conns", type=int, default=-1, help="apply --result to the first N conns only")
p.add_argument("--verify", default="valid")
p.add_argument("--idle", type=float, default=120)
p.add_argument("--to", default="example.test")
p.add_argument("--pairs", nargs="*", default=[])
p.add_argument("--pair-gap", type=float, default=0)
p.add_argument("--msgs", nargs="*", default=[])
p.add_argument("--settle", type=float, default=1.0)
p.add_argument("--client-delay", type=float, default=0)
p.add_argument("--end", action="store_true")
p.add_argument("--run", type=float, default=5)
a = p.parse_args()
if a.log:
    LOG = open(a.log, "w")
asyncio.run(main(a))
