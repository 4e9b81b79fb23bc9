#!/usr/bin/python3
"""s2s_chat.py: two accounts on two servers exchange numbered messages over s2s.

Account A (e.g. alice@example.test on jabberd2's c2s) and account B (e.g. bob@other.test on
Prosody's c2s) log in, each on its own server; then A sends B --count numbered chat messages and
B sends A --count (interleaved, each direction in order), and both wait until every message has
arrived. Each body carries a random run token, the direction and the sequence number, so a stale
or duplicated message is recognised.

    s2s_chat.py --a alice@example.test --a-addr 127.0.0.1:15222 \\
                --b bob@other.test     --b-addr 127.0.0.1:25222 --b-tls starttls --ca ca.crt

Exit status:
  0  both logged in and every message arrived exactly once and in order (in each direction)
  1  a login failed (connection refused, authentication, TLS policy, stream error)
  3  logged in, but messages were missing, duplicated, out of order, or bounced with an error
     (the first error condition per direction is printed, e.g. remote-server-not-found)
  2  bad usage
The whole run is bounded by --timeout (default 30 s); --wait (default 20 s) bounds the wait for
the messages once both accounts are logged in. With --direction a2b (or b2a) only one direction
is exercised.

TLS per account (--a-tls / --b-tls):
  plain     no TLS at all; SASL PLAIN in the clear (for jabberd2's plaintext c2s on loopback, or
            a Prosody configured with c2s_require_encryption = false)
  starttls  STARTTLS is required: an outgoing filter refuses to send anything but <starttls/>
            before TLS (slixmpp's own force_starttls is not enforced); the certificate must chain
            to --ca only and match the account's domain; TLS 1.2 at least
  direct    XEP-0368 Direct TLS (ALPN xmpp-client), same certificate rules

Output: one line per login, one line per direction with the number of messages that arrived and
the time from the first send to the first and the last arrival (the first arrival includes
setting up the s2s stream: "time to federate"), and OK or FAIL.

Run it with /usr/bin/python3: that is where Debian's python3-slixmpp lives.
"""

import argparse
import asyncio
import logging
import secrets
import signal
import ssl
import sys
import time

logging.getLogger("slixmpp").setLevel(logging.ERROR)  # no import-time notes on stderr
try:
    import slixmpp
except ImportError as exc:  # pragma: no cover - environment problem, reported clearly
    print(f"s2s_chat: cannot import slixmpp ({exc}); run with /usr/bin/python3 "
          "and install python3-slixmpp", file=sys.stderr)
    sys.exit(2)

NS_STREAMS = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

EXIT_OK, EXIT_LOGIN, EXIT_USAGE, EXIT_MESSAGES = 0, 1, 2, 3


class LoginFailure(Exception):
    """The account could not log in; the message says why."""


class Account(slixmpp.ClientXMPP):
    """One logged-in account. Records the first failure instead of retrying as slixmpp would."""

    def __init__(self, label, jid, password, host, port, tls, ca):
        super().__init__(jid, password)
        self.label, self.host, self.port, self.tls = label, host, port, tls
        self.failure = None
        self.tls_info = "plaintext"
        self.session = asyncio.get_event_loop().create_future()
        self.inbox = []      # (monotonic time, sender bare JID, body) for every chat message
        self.errors = []     # (to, condition) of every message bounced to us with type=error
        self.arrived = asyncio.Event()
        self.whitespace_keepalive = False
        if tls == "plain":
            self["feature_mechanisms"].unencrypted_plain = True
        else:
            self.ssl_context = make_ssl_context(ca, tls)
        self.add_filter("in", self._check_in)
        self.add_filter("out", self._check_out)
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("message", self._message)
        self.add_event_handler("message_error", self._message_error)
        self.add_event_handler("connection_failed",
                               lambda e: self.fail(f"cannot connect to {host}:{port}: {e}"))
        self.add_event_handler("failed_auth", lambda _: self.fail("authentication failed"))
        self.add_event_handler("no_auth", lambda _: self.fail("no usable SASL mechanism"))
        self.add_event_handler("stream_error", self._stream_error)
        self.add_event_handler("ssl_invalid_chain",
                               lambda e: self.fail(f"TLS certificate check failed: {e}"))
        self.add_event_handler("disconnected", self._disconnected)

    async def _pick_dns_answer(self, domain, port=None):
        """No DNS at all: always the address given on the command line."""
        return None

    def is_tls(self):
        return self.transport is not None and \
            self.transport.get_extra_info("ssl_object") is not None

    def fail(self, msg):
        if self.failure is None:
            self.failure = f"{self.label}: {msg}"
        if not self.session.done():
            self.session.set_exception(LoginFailure(self.failure))
            self.session.exception()  # retrieved here; run() reports self.failure
        self.arrived.set()
        self.abort()

    def start(self):
        if self.tls == "plain":
            self.connect((self.host, self.port), use_ssl=False, force_starttls=False,
                         disable_starttls=True)
        else:
            self.connect((self.host, self.port), use_ssl=self.tls == "direct",
                         force_starttls=self.tls == "starttls", disable_starttls=False)
        # slixmpp takes SNI and the certificate name from default_domain, which it leaves empty
        # for a numeric address: set it (it is read when the TLS handshake starts).
        self.default_domain = self.boundjid.domain

    def _check_in(self, stanza):
        """STARTTLS mode: the first features must offer <starttls/>."""
        if self.tls != "starttls" or self.is_tls():
            return stanza
        if stanza.xml.tag == f"{{{NS_STREAMS}}}features" and \
                stanza.xml.find(f"{{{NS_TLS}}}starttls") is None:
            self.fail("the server did not offer <starttls/>: refusing to go on in plaintext")
            return None
        return stanza

    def _check_out(self, stanza):
        """STARTTLS mode: nothing but <starttls/> may leave before TLS."""
        if self.tls != "starttls" or self.is_tls():
            return stanza
        tag = stanza.xml.tag
        if tag in (f"{{{NS_TLS}}}starttls", f"{{{NS_STREAMS}}}stream"):
            return stanza
        self.fail(f"refusing to send {tag} before TLS (was <starttls/> offered?)")
        return None

    def _stream_error(self, err):
        cond = err["condition"] if "condition" in err.interfaces else str(err)
        self.fail(f"stream error from the server: <{cond}/> {err['text'] or ''}".rstrip())

    def _disconnected(self, reason):
        if not self.session.done():
            self.fail(f"disconnected before the session started ({reason or 'no reason'})")
        elif self.failure is None and not getattr(self, "leaving", False):
            self.fail(f"disconnected during the exchange ({reason or 'no reason'})")

    def _session_start(self, _event):
        if self.tls != "plain":
            if not self.is_tls():
                self.fail("session started without TLS")
                return
            obj = self.transport.get_extra_info("ssl_object")
            name, _proto, bits = obj.cipher()
            self.tls_info = f"{obj.version()} {name} ({bits} bits)"
        self.send_presence()
        if not self.session.done():
            self.session.set_result(True)

    def _message_error(self, msg):
        cond = msg["error"]["condition"] or "undefined-condition"
        self.errors.append((str(msg["from"]), cond))
        self.arrived.set()

    def _message(self, msg):
        if msg["type"] in ("chat", "normal"):
            self.inbox.append((time.monotonic(), msg["from"].bare, msg["body"]))
            self.arrived.set()


def make_ssl_context(ca, mode):
    """Only --ca is trusted; the name checked is the account's domain (also the SNI)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca)
    if mode == "direct":
        ctx.set_alpn_protocols(["xmpp-client"])  # XEP-0368
    return ctx


def judge(receiver, sender_jid, tag, count, t0):
    """(ok, line): did every message tagged TAG arrive at RECEIVER once and in order?"""
    got = [(t, body) for t, frm, body in receiver.inbox
           if frm == sender_jid and body.startswith(tag)]
    seqs = []
    for _t, body in got:
        try:
            seqs.append(int(body[len(tag):]))
        except ValueError:
            seqs.append(-1)
    want = list(range(1, count + 1))
    times = ""
    if got:
        times = f", first after {got[0][0] - t0:.3f} s, last after {got[-1][0] - t0:.3f} s"
    line = f"{len(got)}/{count} arrived{times}"
    if seqs == want:
        return True, line
    if sorted(seqs) == want:
        return False, line + f", OUT OF ORDER: {seqs}"
    missing = [n for n in want if n not in seqs]
    dups = sorted({n for n in seqs if seqs.count(n) > 1})
    extra = [n for n in seqs if n not in want]
    detail = []
    if missing:
        detail.append(f"missing {missing}")
    if dups:
        detail.append(f"duplicated {dups}")
    if extra:
        detail.append(f"unexpected {extra}")
    return False, line + ", " + ", ".join(detail)


async def run(args):
    token = secrets.token_hex(6)
    a = Account("A", args.a, args.a_password, *args.a_addr, args.a_tls, args.ca)
    b = Account("B", args.b, args.b_password, *args.b_addr, args.b_tls, args.ca)
    accounts = (a, b)
    directions = []
    if args.direction in ("both", "a2b"):
        directions.append((a, b, f"{token} A->B #"))
    if args.direction in ("both", "b2a"):
        directions.append((b, a, f"{token} B->A #"))
    try:
        for acc in accounts:
            acc.start()
        for acc in accounts:
            try:
                await acc.session
            except LoginFailure:
                return EXIT_LOGIN, acc.failure
            print(f"s2s_chat: {acc.label} logged in as {acc.boundjid.full} over {acc.tls_info}")

        args.phase = "exchange"
        t0 = time.monotonic()
        for i in range(1, args.count + 1):
            for sender, receiver, tag in directions:
                sender.send_message(mto=receiver.boundjid.bare, mbody=f"{tag}{i}", mtype="chat")
            if args.gap:
                await asyncio.sleep(args.gap)

        deadline = t0 + args.wait

        def done():
            for sender, receiver, tag in directions:
                if sender.errors or sender.failure or receiver.failure:
                    return True
                n = sum(1 for _t, frm, body in receiver.inbox
                        if frm == sender.boundjid.bare and body.startswith(tag))
                if n < args.count:
                    return False
            return True

        while not done() and time.monotonic() < deadline:
            for acc in accounts:
                acc.arrived.clear()
            waits = [asyncio.ensure_future(acc.arrived.wait()) for acc in accounts]
            try:
                await asyncio.wait(waits, timeout=max(0.0, deadline - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        if args.linger and done():
            await asyncio.sleep(args.linger)  # a late duplicate would show now

        ok = True
        for sender, receiver, tag in directions:
            good, line = judge(receiver, sender.boundjid.bare, tag, args.count, t0)
            if sender.errors:
                good = False
                to, cond = sender.errors[0]
                line += f"; {len(sender.errors)} bounced to the sender, first <{cond}/> from {to}"
            print(f"s2s_chat: {sender.label}->{receiver.label} "
                  f"({sender.boundjid.bare} -> {receiver.boundjid.bare}): {line}")
            ok = ok and good
        for acc in accounts:
            if acc.failure:
                return EXIT_MESSAGES, acc.failure
        if not ok:
            return EXIT_MESSAGES, "messages missing, out of order or bounced"
        return EXIT_OK, None
    finally:
        for acc in accounts:
            acc.leaving = True
            if acc.transport is not None:
                acc.disconnect(wait=1)
        await asyncio.sleep(0)
        for acc in accounts:
            if acc.transport is not None:
                try:
                    await asyncio.wait_for(acc.disconnected, 3)
                except asyncio.TimeoutError:
                    acc.abort()


def host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--a", required=True, metavar="JID", help="account A (bare JID)")
    p.add_argument("--a-addr", required=True, type=host_port, metavar="HOST:PORT",
                   help="A's server c2s address")
    p.add_argument("--a-tls", choices=("plain", "starttls", "direct"), default="plain")
    p.add_argument("--a-password", default="secret")
    p.add_argument("--b", required=True, metavar="JID", help="account B (bare JID)")
    p.add_argument("--b-addr", required=True, type=host_port, metavar="HOST:PORT",
                   help="B's server c2s address")
    p.add_argument("--b-tls", choices=("plain", "starttls", "direct"), default="plain")
    p.add_argument("--b-password", default="secret")
    p.add_argument("--ca", help="the only CA trusted for c2s certificates (TLS modes)")
    p.add_argument("--count", "-n", type=int, default=5, help="messages per direction (5)")
    p.add_argument("--direction", choices=("both", "a2b", "b2a"), default="both")
    p.add_argument("--gap", type=float, default=0.0, help="seconds between rounds (0)")
    p.add_argument("--wait", type=float, default=20.0,
                   help="seconds to wait for the messages after login (20)")
    p.add_argument("--linger", type=float, default=0.3,
                   help="seconds to keep listening after the last message, for duplicates")
    p.add_argument("--timeout", type=float, default=30.0, help="bound on the whole run (30)")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log on stderr")
    args = p.parse_args()
    args.phase = "login"
    if (args.a_tls != "plain" or args.b_tls != "plain") and not args.ca:
        p.error("--ca is required with --a-tls/--b-tls starttls or direct")
    if args.count < 1:
        p.error("--count must be at least 1")
    if args.a == args.b:
        p.error("A and B must be different accounts")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("slixmpp").setLevel(logging.DEBUG if args.debug else logging.CRITICAL)

    def alarm(_sig, _frm):  # a backstop if the event loop itself wedges
        print(f"s2s_chat: FAIL: global timeout ({args.timeout + 5:.0f} s, loop stuck)",
              file=sys.stderr)
        sys.exit(EXIT_MESSAGES)

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(args.timeout) + 5)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        status, why = loop.run_until_complete(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        status = EXIT_MESSAGES if args.phase == "exchange" else EXIT_LOGIN
        why = f"timed out after {args.timeout:.0f} s ({args.phase})"
    except (OSError, ssl.SSLError) as exc:
        status, why = EXIT_LOGIN, str(exc)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
    if status == EXIT_OK:
        print(f"s2s_chat: OK ({args.count} per direction, {args.direction})")
    else:
        print(f"s2s_chat: FAIL: {why}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
