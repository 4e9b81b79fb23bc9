#!/usr/bin/python3
"""xmpp_client.py: a real XMPP client session through the proxy, for the integration tests.

Logs in alice and bob (password "secret" unless --password), alice sends bob a message with a
random token, bob must receive it within 10 s. Exit status 0 on success, 1 on any failure (with
a message on stderr saying what went wrong), 2 on bad usage. The whole run is bounded by
--timeout (30 s).

    xmpp_client.py --mode starttls|direct --host 127.0.0.1 --port N --ca ca.crt \
                   --domain example.test

TLS is enforced here rather than trusted to slixmpp (its force_starttls is not enforced):
  * --mode starttls: the first <stream:features> must offer <starttls> with <required/>
    (RFC 6120 §5.3.1, what the proxy promises); an outgoing filter drops and fails on every
    stanza other than <starttls/> while the transport is not TLS, so no SASL exchange (PLAIN or
    any other) can ever leave in plaintext.
  * --mode direct: XEP-0368 Direct TLS to --port (ALPN "xmpp-client", SNI = --domain).
  * Both: the server certificate must chain to --ca only (the system store is not used) and
    match --domain (RFC 6125 DNS-ID via Python's ssl hostname check); TLS 1.2 is the minimum.
    After TLS the features must not offer <starttls/> again (the proxy strips jabberd2's).
It prints the TLS version and cipher each account saw.

--plaintext-for-selftest: no TLS at all. Harness self-test only (checks this script against
jabberd2 directly, before there is a proxy); never used by the proxy tests.

Run it with /usr/bin/python3: that is where Debian's python3-slixmpp lives.
"""

import argparse
import asyncio
import logging
import secrets
import signal
import ssl
import sys
from pathlib import Path

logging.getLogger("slixmpp").setLevel(logging.ERROR)  # no import-time notes on stderr
try:
    import slixmpp
except ImportError as exc:  # pragma: no cover - environment problem, reported clearly
    print(f"xmpp_client: cannot import slixmpp ({exc}); run with /usr/bin/python3 "
          "and install python3-slixmpp", file=sys.stderr)
    sys.exit(2)

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


class Failure(Exception):
    """A test failure with a message for the log."""


class Client(slixmpp.ClientXMPP):
    """One account. Records why it failed instead of retrying forever as slixmpp would."""

    def __init__(self, jid, password, args):
        super().__init__(jid, password)
        self.args = args
        self.label = jid.split("@", 1)[0]
        self.failure = None
        self.tls_info = None
        self.features_seen = 0
        self.session = asyncio.get_event_loop().create_future()
        self.received = asyncio.get_event_loop().create_future()
        self.whitespace_keepalive = False
        if args.plaintext_for_selftest:
            self["feature_mechanisms"].unencrypted_plain = True
        else:
            self.ssl_context = make_ssl_context(args)
            self.ca_certs = Path(args.ca)
        self.add_filter("in", self._check_in)
        self.add_filter("out", self._check_out)
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("message", self._message)
        self.add_event_handler("connection_failed", self._connection_failed)
        self.add_event_handler("failed_auth", lambda _: self.fail("authentication failed"))
        self.add_event_handler("no_auth",
                               lambda _: self.fail("no usable SASL mechanism was offered"))
        self.add_event_handler("stream_error", self._stream_error)
        self.add_event_handler("ssl_invalid_chain",
                               lambda e: self.fail(f"TLS handshake or certificate check failed: {e}"))
        self.add_event_handler("disconnected", self._disconnected)

    async def _pick_dns_answer(self, domain, port=None):
        """No DNS at all: always the --host/--port given (tests never query outside loopback)."""
        return None

    # -- helpers ---------------------------------------------------------------------------

    def is_tls(self):
        return self.transport is not None and \
            self.transport.get_extra_info("ssl_object") is not None

    def fail(self, msg):
        if self.failure is None:
            self.failure = f"{self.label}: {msg}"
        for fut in (self.session, self.received):
            if not fut.done():
                fut.set_exception(Failure(self.failure))
                fut.exception()  # retrieved here: run() reports self.failure itself
        self.abort()

    # -- filters: the TLS policy ------------------------------------------------------------

    def _check_in(self, stanza):
        xml = stanza.xml
        if xml.tag != f"{{{NS_STREAMS}}}features":
            return stanza
        self.features_seen += 1
        starttls = xml.find(f"{{{NS_TLS}}}starttls")
        if self.args.plaintext_for_selftest:
            return stanza
        if not self.is_tls():
            if starttls is None:
                self.fail("the server did not offer <starttls/> before TLS: refusing to continue "
                          "in plaintext")
                return None
            if starttls.find(f"{{{NS_TLS}}}required") is None:
                self.fail("<starttls/> is offered without <required/>")
                return None
        elif starttls is not None:
            self.fail("<starttls/> offered again after TLS (backend features not rewritten?)")
            return None
        return stanza

    def _check_out(self, stanza):
        if self.args.plaintext_for_selftest or self.is_tls():
            return stanza
        if stanza.xml.tag == f"{{{NS_TLS}}}starttls":
            return stanza
        what = stanza.xml.tag
        if stanza.xml.tag == f"{{{NS_SASL}}}auth":
            what += f" mechanism={stanza.xml.get('mechanism')}"
        self.fail(f"refusing to send {what} before TLS")
        return None

    # -- events ----------------------------------------------------------------------------

    def _connection_failed(self, err):
        self.fail(f"cannot connect to {self.args.host}:{self.args.port}: {err}")

    def _stream_error(self, err):
        cond = err["condition"] if "condition" in err.interfaces else str(err)
        self.fail(f"stream error from the server: <{cond}/> {err['text'] or ''}".rstrip())

    def _disconnected(self, reason):
        if not self.session.done():
            self.fail(f"disconnected before the session started ({reason or 'no reason'}; "
                      f"{self.features_seen} <stream:features> seen)")

    def _session_start(self, _event):
        if not self.args.plaintext_for_selftest:
            if not self.is_tls():
                self.fail("session started without TLS")
                return
            obj = self.transport.get_extra_info("ssl_object")
            name, _proto, bits = obj.cipher()
            self.tls_info = f"{obj.version()} {name} ({bits} bits)"
            alpn = obj.selected_alpn_protocol()
            if alpn:
                self.tls_info += f" alpn={alpn}"
        self.send_presence()
        if not self.session.done():
            self.session.set_result(True)

    def _message(self, msg):
        if msg["type"] in ("chat", "normal") and not self.received.done():
            self.received.set_result((str(msg["from"]), msg["body"]))


def make_ssl_context(args):
    """Only --ca is trusted; the name checked is --domain (passed by slixmpp as SNI too)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cafile=args.ca)
    except (OSError, ssl.SSLError) as exc:
        raise Failure(f"cannot load CA file {args.ca}: {exc}") from exc
    if args.mode == "direct":
        ctx.set_alpn_protocols(["xmpp-client"])  # XEP-0368
    return ctx


async def run(args):
    token = secrets.token_hex(16)
    alice = Client(f"alice@{args.domain}/xtp-test", args.password, args)
    bob = Client(f"bob@{args.domain}/xtp-test", args.password, args)
    clients = (alice, bob)
    try:
        for c in clients:
            if args.plaintext_for_selftest:
                c.connect((args.host, args.port), use_ssl=False, force_starttls=False,
                          disable_starttls=True)
            else:
                c.connect((args.host, args.port), use_ssl=args.mode == "direct",
                          force_starttls=args.mode == "starttls", disable_starttls=False)
            # slixmpp takes SNI and the certificate name from default_domain, which it leaves
            # empty for a numeric address: set it (it is read when the TLS handshake starts).
            c.default_domain = args.domain
        for c in clients:
            await c.session
            print(f"xmpp_client: {c.label} logged in as {c.boundjid.full}"
                  + (f" over {c.tls_info}" if c.tls_info else " (plaintext self-test)"))
        alice.send_message(mto=bob.boundjid.full, mbody=token, mtype="chat")
        try:
            sender, body = await asyncio.wait_for(bob.received, 10)
        except asyncio.TimeoutError as exc:
            raise Failure("bob did not receive alice's message within 10 s") from exc
        if body != token:
            raise Failure(f"bob received {body!r} from {sender}, expected the token {token}")
        if not sender.startswith(f"alice@{args.domain}"):
            raise Failure(f"the message came from {sender}, expected alice@{args.domain}")
        print(f"xmpp_client: bob received alice's token {token}")
    finally:
        for c in clients:
            if c.transport is not None:
                c.disconnect(wait=1)
        await asyncio.sleep(0)
        for c in clients:
            if c.transport is not None:
                try:
                    await asyncio.wait_for(c.disconnected, 3)
                except asyncio.TimeoutError:
                    c.abort()
    for c in clients:
        if c.failure:
            raise Failure(c.failure)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("starttls", "direct"), default="starttls")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", help="the only CA trusted for the server certificate")
    p.add_argument("--domain", default="example.test")
    p.add_argument("--password", default="secret")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--plaintext-for-selftest", action="store_true",
                   help="no TLS: harness self-test against jabberd2 directly only")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log on stderr")
    args = p.parse_args()
    if not args.plaintext_for_selftest and not args.ca:
        p.error("--ca is required")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("slixmpp").setLevel(logging.DEBUG if args.debug else logging.CRITICAL)

    # A backstop if the event loop itself wedges: SIGALRM kills us with a message.
    def alarm(_sig, _frm):
        print(f"xmpp_client: FAIL: global timeout ({args.timeout + 5:.0f} s, loop stuck)",
              file=sys.stderr)
        sys.exit(1)

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(args.timeout) + 5)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        print(f"xmpp_client: FAIL: timed out after {args.timeout:.0f} s", file=sys.stderr)
        return 1
    except Failure as exc:
        print(f"xmpp_client: FAIL: {exc}", file=sys.stderr)
        return 1
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    print(f"xmpp_client: OK ({args.mode if not args.plaintext_for_selftest else 'plaintext'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
