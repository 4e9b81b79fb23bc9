#!/usr/bin/env bash
# t16: jabberd2 behind the proxy federates with a native Prosody that requires TLS (issue 3,
# test 2): no proxy on Prosody's side.
#
#   alice@example.test ─ jabberd2 ─(plaintext, loopback)─ proxy ══TLS══ Prosody (tls) ─ bob@other.test
#
# Prosody runs in tls mode: mod_tls with other.test's certificate from the test CA, only that CA
# trusted, s2s_require_encryption and s2s_secure_auth, so it accepts nothing but a TLS stream
# from a peer with a valid certificate. Its outbound s2s finds the proxy's s2s listener through
# dnsmasq (_xmpp-server._tcp.example.test SRV); jabberd2's outbound s2s finds the proxy's
# s2s-out listener the same way (_xmpp-server._tcp.other.test). The proxy reaches Prosody through
# resolve.static: the proxy's libunbound would refuse names under .test (RFC 6761 locally
# served zone) unless told otherwise, and a static route is what an operator with a private
# federation would write.
#
# Checks: messages both ways (slixmpp); the proxy's log shows TLS 1.3 and certificate
# authentication (auth=pkix) on its s2s-in stream from other.test and on its s2s-out stream to
# it (SASL EXTERNAL, as Prosody offers it to a peer with a valid certificate); Prosody's log
# shows it accepted example.test by certificate on its inbound stream (SASL EXTERNAL) and on
# its outbound one (the proxy's certificate trusted); jabberd2 never saw TLS (a tap on its s2s
# port); every proxy session has one close line, and the log holds no sanitizer report.
. "$(dirname "$0")/lib.sh"

need_cmd openssl ss
PA=$(free_port) # the proxy's s2s listener (example.test)
OA=$(free_port) # the proxy's s2s-out listener
# shellcheck disable=SC2046 # dns_xmpp_server prints words meant to be split
start_dnsmasq "" $(dns_xmpp_server other.test "$OA" out.example.test) \
    $(dns_xmpp_server example.test "$PA" xmpp.example.test)
start_jabberd2_s2s example.test
JA_C2S=$BACKEND_C2S_PORT
start_prosody other.test tls
start_tap jabberd2 "$BACKEND_S2S_PORT"

cat >"$T/proxy.yaml" <<EOF
log: { level: debug }
tls: { ca_file: $CA, min_version: "1.2" }
domains:
  example.test:
    cert: $CERT
    key: $KEY
    backend: { s2s: "127.0.0.1:$TAP_PORT" }
listeners:
  - { name: s2s, listen: "127.0.0.1:$PA", kind: s2s }
  - { name: s2s-out, listen: "127.0.0.1:$OA", kind: s2s-out }
s2s: { verify: required, tls: required, state_file: $T/state, dialback_secret_file: $T/secret }
resolve: { static: { other.test: "127.0.0.1:$PROSODY_S2S_PORT" } }
limits: { drain_timeout: 0s }
EOF
PROXY_STARTTLS_PORT=$PA PROXY_DIRECT_PORT=$OA start_proxy "$T/proxy.yaml"

s2s_chat --a alice@example.test --a-addr "127.0.0.1:$JA_C2S" --a-tls plain \
    --b bob@other.test --b-addr "127.0.0.1:$PROSODY_C2S_PORT" --b-tls starttls \
    --count 5 --timeout 40 --wait 30 >"$T/chat.out" 2>&1 || {
    cat "$T/chat.out"
    fail "messages did not arrive both ways"
}
cat "$T/chat.out"

# The proxy: both directions over TLS 1.3, the remote proven by its certificate.
proxy_log_has 'listener=s2s .* open domain=example\.test remote=other\.test auth=pkix tls=TLSv1\.3 ' ||
    fail "no s2s-in stream from other.test authenticated by certificate over TLS 1.3"
proxy_log_has 'listener=s2s-out .* open domain=example\.test remote=other\.test auth=pkix as=sasl-external tls=TLSv1\.3 ' ||
    fail "no s2s-out stream to other.test with pkix and SASL EXTERNAL over TLS 1.3"
proxy_log_has 'listener=s2s .*s2s stream from other\.test: certificate valid' ||
    fail "the s2s-in stream does not say why other.test's certificate is valid"
proxy_log_has 'answered the backend.s dialback check other\.test->example\.test: valid' ||
    fail "jabberd2's dialback check was not answered by the proxy"
proxy_log_has 'plaintext|certificate not valid' && fail "the proxy logged a plaintext or unverified stream"

# Prosody: example.test's certificate (the proxy's) validated once on its inbound and once on
# its outbound stream (one stream each way), SASL EXTERNAL in both directions (accepted from
# the proxy, used towards it), and no dialback element between them. Waited for: once in CI
# the check ran before Prosody's line about accepting EXTERNAL was in its log, although the
# stanzas it then let through had arrived.
prosody_log_count 's2sin[0-9a-f]+\s+debug\s+certificate identity validation result: valid' | grep -qx 1 ||
    fail "Prosody did not validate example.test's certificate exactly once on its inbound stream"
prosody_log_count 's2sout[0-9a-f]+\s+debug\s+certificate identity validation result: valid' | grep -qx 1 ||
    fail "Prosody did not validate example.test's certificate exactly once on its outbound stream"
wait_prosody_log 'Accepting SASL EXTERNAL identity from example\.test' ||
    fail "Prosody did not accept example.test by SASL EXTERNAL"
wait_prosody_log 'SASL EXTERNAL with example\.test succeeded' ||
    fail "Prosody did not authenticate to example.test by SASL EXTERNAL"
wait_prosody_log 'Incoming s2s connection example\.test->other\.test complete' ||
    fail "Prosody's inbound stream from example.test did not complete"
wait_prosody_log 'Outgoing s2s connection other\.test->example\.test complete' ||
    fail "Prosody's outbound stream to example.test did not complete"
prosody_log_has "(Received|Sending)\[s2s[a-z_]*\]: <(db:)?(result|verify)[ >]" &&
    fail "Prosody and the proxy exchanged dialback"

# jabberd2 saw plaintext XMPP only, and the proxy's dialback key.
grep -q '\\x16\\x03' "$T/tap-jabberd2.log" && fail "jabberd2 received TLS bytes"
tap_log_has jabberd2 "C: .*<db:result from='other.test' to='example.test'>[0-9a-f]{64}</db:result>" ||
    fail "jabberd2 did not get the proxy's dialback key for other.test"
grep -q '^other.test ' "$T/state" || fail "the proxy did not remember other.test's certificate"

proxy_alive || fail "the proxy died"
prosody_mark
stop_proxy
[ -z "$PROXY_VERDICT" ] || fail "$PROXY_VERDICT"
# The proxy's shutdown reached Prosody as a proper stream error on both streams (a second
# stream header before it would make it not-well-formed).
wait_prosody_log 'Incoming s2s stream example\.test->other\.test closed: system-shutdown' ||
    fail "Prosody's inbound stream did not end with <system-shutdown/>: $(prosody_log_new | grep -E 'closed|invalid' | head -3)"
wait_prosody_log 'Outgoing s2s stream other\.test->example\.test closed: system-shutdown' ||
    fail "Prosody's outbound stream did not end with <system-shutdown/>"
"$PY" "$LIB_DIR/s2s_sessions.py" "$PROXY_LOG" --open s2s=1 --open s2s-out=1 ||
    fail "the proxy's session lines are not one close line per session"
pass
