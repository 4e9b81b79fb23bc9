#!/usr/bin/env bash
# t18: transparent mode (issue 3, test 4). jabberd2 does not know the proxy exists: it resolves
# other.test through DNS and connects to the address it finds, and an iptables REDIRECT in the
# nat OUTPUT chain sends that connection to the proxy's s2s-out listener, which recovers the
# address jabberd2 wanted (SO_ORIGINAL_DST) and makes the TLS connection there itself.
#
#   network namespace xtp-t18-PID (made here, loopback only, deleted on exit):
#   alice@example.test ─ jabberd2 (outbound from 127.0.0.3) ─→ 127.0.0.1:5269 ─REDIRECT→ proxy
#     s2s-out ══TLS 1.3, SASL EXTERNAL══→ 127.0.0.1:5269 = Prosody (tls mode) ─ bob@other.test
#   Prosody's outbound: dnsmasq SRV for example.test → the proxy's s2s listener → jabberd2.
#
# The REDIRECT rule matches only what comes from 127.0.0.3 (jabberd2's <origins>), so the
# proxy's own connection to 127.0.0.1:5269 goes through untouched. The proxy has no
# resolve.static and no resolver of its own for other.test: the address can only come from
# SO_ORIGINAL_DST. Checks: messages both ways; the rule counted packets; the proxy logged the
# original destination, connected there with STARTTLS and opened TLS 1.3 with auth=pkix;
# jabberd2 believes it talked to 127.0.0.1:5269; Prosody accepted example.test by SASL EXTERNAL;
# one close line per session; no sanitizer report.
#
# Without root, ip(8), iptables, network namespaces or the nat REDIRECT target the test is
# skipped (exit 77) and says why.

if [ -z "${XTP_T18_NS:-}" ]; then
    # The outer run: make the namespace, run this script again inside it, delete it.
    name=$(basename "$0" .sh)
    skip77() {
        printf '[%s] SKIP: %s\n' "$name" "$*"
        exit 77
    }
    [ "$(id -u)" = 0 ] || skip77 "needs root for a network namespace and iptables"
    command -v ip >/dev/null || skip77 "ip (iproute2) not installed"
    command -v iptables >/dev/null || skip77 "iptables not installed"
    NS=xtp-t18-$$
    err=$(ip netns add "$NS" 2>&1) || skip77 "cannot create a network namespace: $err"
    trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    err=$(ip netns exec "$NS" ip link set lo up 2>&1) || skip77 "cannot use namespace $NS: $err"
    XTP_T18_NS=$NS ip netns exec "$NS" bash "$0" "$@"
    exit $? # the EXIT trap deletes the namespace; what ran inside is gone with it
fi

. "$(dirname "$0")/lib.sh"
need_cmd openssl ss
NS=$XTP_T18_NS
# In a fresh namespace nothing listens yet: Prosody can have the standard port.
port_listening 5269 && fail "something already listens on 5269 in namespace $NS"

PA=$(free_port) # the proxy's s2s listener (example.test)
OA=$(free_port) # its s2s-out listener: only the REDIRECT leads there
err=$(iptables -t nat -A OUTPUT -p tcp -s 127.0.0.3 --dport 5269 -j REDIRECT --to-ports "$OA" 2>&1) ||
    skip "iptables nat REDIRECT unavailable in a namespace: $err"
# shellcheck disable=SC2046 # dns_xmpp_server prints words meant to be split
start_dnsmasq "" $(dns_xmpp_server other.test 5269 xmpp.other.test) \
    $(dns_xmpp_server example.test "$PA" xmpp.example.test)
JABBERD2_S2S_SET="local/origins/ip=127.0.0.3" start_jabberd2_s2s example.test
JA_C2S=$BACKEND_C2S_PORT
start_prosody other.test tls "" 5269

cat >"$T/proxy.yaml" <<EOF
log: { level: debug }
tls: { ca_file: $CA, min_version: "1.2" }
domains:
  example.test:
    cert: $CERT
    key: $KEY
    backend: { s2s: "127.0.0.1:$BACKEND_S2S_PORT" }
listeners:
  - { name: s2s, listen: "127.0.0.1:$PA", kind: s2s }
  - { name: s2s-out, listen: "127.0.0.1:$OA", kind: s2s-out }
s2s: { verify: required, tls: required, state_file: $T/state, dialback_secret_file: $T/secret }
resolve: { nameservers: [ "127.0.0.9:53" ], timeout: 1s } # nobody there: no DNS for the proxy
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

# The rule redirected jabberd2's connections (and only those: the proxy's went through).
pkts=$(iptables -t nat -L OUTPUT -v -x -n | awk '/REDIRECT/ { print $1; exit }')
[ "${pkts:-0}" -gt 0 ] || fail "the REDIRECT rule matched no packet"
log "REDIRECT rule: $pkts packets"
# jabberd2 believes it reached other.test at 127.0.0.1:5269.
jabberd2_s2s_log_has "\[127\.0\.0\.1, port=5269\] outgoing connection for 'other\.test'" ||
    fail "jabberd2 did not connect to other.test at 127.0.0.1:5269"
# The proxy: the session came from 127.0.0.3, it recovered 127.0.0.1:5269 and went there.
proxy_log_has 'listener=s2s-out peer=127\.0\.0\.3:[0-9]+ .*transparent: the backend connected to 127\.0\.0\.1 port 5269 \(SO_ORIGINAL_DST\)' ||
    fail "the proxy did not log the original destination of a redirected session"
proxy_log_has 'listener=s2s-out .*connecting to original destination \(STARTTLS\) for other\.test' ||
    fail "the proxy did not connect to the original destination"
proxy_log_has 'listener=s2s-out peer=127\.0\.0\.3:[0-9]+ .* open domain=example\.test remote=other\.test auth=pkix as=sasl-external tls=TLSv1\.3 ' ||
    fail "no s2s-out stream to other.test with TLS 1.3, pkix and SASL EXTERNAL"
proxy_log_has 'listener=s2s .* open domain=example\.test remote=other\.test auth=pkix tls=TLSv1\.3 ' ||
    fail "no s2s-in stream from other.test with TLS 1.3 and pkix"
proxy_log_has 'no resolver|ENXDOMAIN|EDNS' && fail "the proxy tried DNS for a redirected session"
# Prosody: example.test came over TLS and authenticated by certificate.
prosody_log_has 'Accepting SASL EXTERNAL identity from example\.test' ||
    fail "Prosody did not accept example.test by SASL EXTERNAL"

proxy_alive || fail "the proxy died"
stop_proxy
[ -z "$PROXY_VERDICT" ] || fail "$PROXY_VERDICT"
"$PY" "$LIB_DIR/s2s_sessions.py" "$PROXY_LOG" --open s2s-out=1 --open s2s=1 ||
    fail "the proxy's session lines are not one close line per session"
pass
