#!/usr/bin/env bash
# t44-s2s-out-remote-reset: s2s-out when the remote vanishes before the stream is ready.
# (conn.c hands a remote lost before the stream is ready to s2s_out.c, which tries the next one.)
#
# example.test's SRV records list two targets, priority 0 a fakepeer.py that fails (restarted
# for each case on the same port), priority 1 a real Prosody. The "backend" is rawxmpp.py on the
# s2s-out listener, speaking as jabberd2 does (t17). The remote fails:
#   header:     resets (RST) as soon as our stream header arrives;
#   starttls:   offers <starttls><required/>, resets when our <starttls/> arrives;
#   hello:      answers <proceed/>, resets when the first bytes of our ClientHello arrive;
#   flight:     answers <proceed/>, sends the first 60 bytes of a real TLS server flight (a
#               ServerHello cut short), then resets;
#   flight-fin: the same, closing with FIN instead of RST;
#   alert:      answers our ClientHello with a fatal handshake_failure alert.
# Expected (RFC 6120 §3.2.1, and what s2s_out.c already does for a refused connect): the
# attempt fails, the next candidate is tried, the backend gets type='valid' for example.test
# through Prosody, and the session closes cleanly (reason=done) when the backend leaves.
# With the failing peer as the only candidate (reset.test), the backend gets
# <remote-connection-failed/> and the close line says reason=remote-failed and names the peer
# and what it did. opp.test (s2s.remotes: tls: opportunistic) answers <starttls/> with
# <failure/> and then refuses connections: the plaintext retry fails, and the backend gets
# <remote-connection-failed/> within 5 s. Throughout, a held stream to other.test (a second
# Prosody) stays up.
#
# Bugs (seen with this test):
# 1. conn_peer_read_cb() closes an s2s-out session whose remote resets or closes before the
#    stream is ready with conn_close(PEER_IO / PEER_EOF): no next candidate is tried, the
#    backend gets no stream error (a bare TCP close after our header), and the close line
#    says reason=peer-io-error error=ECONNRESET (or peer-eof) without naming the remote's
#    address. handshake_step() and fail_later_cb() do the same for a TLS handshake failure or a
#    failed write (reason=remote-failed error=ECONNRESET "send callback failed", no address).
# 2. remote_failed() never advances s->cur once s->retry_plain is set: after an opportunistic
#    remote refused STARTTLS, a failed plaintext connect to it is retried on the same address
#    at once, for ever (a busy loop; the backend never hears back).
# Fix: conn.c hands these failures to a new s2s_out_remote_lost() (s2s_out.c), which calls
# remote_failed() in CONN_OUT_CONNECT/STREAM/AUTH; remote_failed() advances unless retry_same
# (which the two STARTTLS refusals set with retry_plain) and clears retry_plain when it
# advances; retry_timer_cb() clears peer.failed and fail_pending; write_cb() ignores
# UV_ECANCELED (our own close). The report has the diff.
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=faults.sh
. "$LIB_DIR/faults.sh"

need_cmd ss
S2S=$(free_port)
OUT=$(free_port)
FAKE=$(free_port) # the failing remote, restarted on this port for each case
P1=$(free_port)   # Prosody example.test, the second candidate
P2=$(free_port)   # Prosody other.test, the held stream
printf 'test-secret-%s\n' "$$" >"$T/secret"
chmod 600 "$T/secret"

start_dnsmasq "" --srv-host="_xmpp-server._tcp.example.test,bad.example.test,$FAKE,0,0" \
    --srv-host="_xmpp-server._tcp.example.test,xmpp.example.test,$P1,1,0" \
    --host-record=bad.example.test,127.0.0.1 --host-record=xmpp.example.test,127.0.0.1 \
    --srv-host="_xmpp-server._tcp.reset.test,bad.reset.test,$FAKE,0,0" \
    --host-record=bad.reset.test,127.0.0.1 \
    --srv-host="_xmpp-server._tcp.other.test,xmpp.other.test,$P2,0,0" \
    --host-record=xmpp.other.test,127.0.0.1 \
    --srv-host="_xmpp-server._tcp.opp.test,bad.opp.test,$FAKE,0,0" \
    --host-record=bad.opp.test,127.0.0.1 \
    --srv-host="_xmpp-server._tcp.example.org,xmpp.example.org,$S2S,0,0" \
    --host-record=xmpp.example.org,127.0.0.1
start_prosody example.test tls "" "$P1"
start_prosody other.test tls "" "$P2"

cat >"$T/proxy.yaml" <<EOF
log: { level: info }
tls: { ca_file: $CA, min_version: "1.2" }
domains:
  example.org:
    cert: $XTP_CERTS/example.org.crt
    key: $XTP_CERTS/example.org.key
    backend: { s2s: "127.0.0.1:$(free_port)" }
listeners:
  - { name: s2s, listen: "127.0.0.1:$S2S", kind: s2s }
  - { name: s2s-out, listen: "127.0.0.1:$OUT", kind: s2s-out }
resolve:
  nameservers: [ "127.0.0.1:$DNS_PORT" ]
  timeout: 3s
  dnssec: false
  unbound_options: [ "local-zone: test. transparent" ]
limits: { handshake_timeout: 8s, drain_timeout: 0s }
s2s:
  verify: required
  tls: required
  connect_timeout: 3s
  remotes:
    opp.test: { tls: opportunistic }
  state_file: $T/state
  dialback_secret_file: $T/secret
EOF
PROXY_STARTTLS_PORT=$S2S PROXY_DIRECT_PORT=$OUT start_proxy "$T/proxy.yaml"

JHDR="<?xml version='1.0'?><stream:stream xmlns:stream='$NS_STREAMS' xmlns='jabber:server' xmlns:db='jabber:server:dialback'>"
# backend NAME REMOTE RAWXMPP_ARGS...: the fake jabberd2 asks for example.org -> REMOTE.
backend() {
    local name=$1 remote=$2
    shift 2
    "$PY" "$LIB_DIR/rawxmpp.py" --port "$OUT" --timeout 12 --send "$JHDR" --wait "id=" \
        --send "<db:result from='example.org' to='$remote'>0123456789abcdef</db:result>" \
        "$@" >"$T/$name.out" 2>&1
}
valid() { printf "<db:result from='%s' to='example.org' type='valid'/>" "$1"; }

# The held stream.
bg "$PY" "$LIB_DIR/rawxmpp.py" --port "$OUT" --timeout 90 --send "$JHDR" --wait "id=" \
    --send "<db:result from='example.org' to='other.test'>0123456789abcdef</db:result>" \
    --wait "$(valid other.test)" --ready "$T/held.ready" --wait 'NEVER-SENT-BY-ANYONE' \
    >"$T/held.out" 2>&1
HELD=$BG_PID
wait_until 20 test -e "$T/held.ready" || {
    cat "$T/held.out"
    fail "held: no stream to other.test"
}
log "held: example.org -> other.test up"

SHDR="<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='$NS_STREAMS' xmlns:db='jabber:server:dialback' from='example.test' to='example.org' id='fake1' version='1.0'>"
SFEAT="<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
PROCEED="<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
FAKE_PID=
# fake_case NAME FAKEPEER_STEPS...: a new fakepeer.py on $FAKE for this case.
fake_case() {
    local name=$1
    shift
    [ -z "$FAKE_PID" ] || stop_pid "$FAKE_PID" 2
    start_fake "$name" --listen "127.0.0.1:$FAKE" --cert "$XTP_CERTS/example.test.crt" \
        --key "$XTP_CERTS/example.test.key" "$@"
    FAKE_PID=$BG_PID
}

# ---- s2s-out: the first candidate fails, the second one works --------------------------------
for c in header starttls hello flight flight-fin alert; do
    case $c in
    header) fake_case "$c" --wait '<stream:stream' --reset ;;
    starttls) fake_case "$c" --wait '<stream:stream' --send "$SHDR$SFEAT" --wait '<starttls' --reset ;;
    hello) fake_case "$c" --wait '<stream:stream' --send "$SHDR$SFEAT" --wait '<starttls' \
        --send "$PROCEED" --wait-bytes 5 --reset ;;
    flight) fake_case "$c" --wait '<stream:stream' --send "$SHDR$SFEAT" --wait '<starttls' \
        --send "$PROCEED" --tls-partial 60 --sleep 0.2 --reset ;;
    flight-fin) fake_case "$c" --wait '<stream:stream' --send "$SHDR$SFEAT" --wait '<starttls' \
        --send "$PROCEED" --tls-partial 60 --sleep 0.2 --fin ;;
    alert) fake_case "$c" --wait '<stream:stream' --send "$SHDR$SFEAT" --wait '<starttls' \
        --send "$PROCEED" --wait-bytes 5 --send-hex 15030300020228 --sleep 0.2 --fin ;;
    esac
    proxy_mark
    backend "$c" example.test --wait "$(valid example.test)" --send '</stream:stream>' \
        --expect-not '<stream:error' --expect-closed || {
        cat "$T/$c.out"
        proxy_log_new
        fail "$c: the backend did not get a stream to example.test through the next candidate"
    }
    wait_until 3 fake_log_has "$c" '^\[1\] (reset|fin)$' || fail "$c: the fake remote did not fail as scripted"
    # A TLS failure after offering a ticket is retried once without it (s2s_out_tls_failed).
    max=1
    [ "$c" = alert ] && max=2
    fake_log_has "$c" "^\[$((max + 1))\]" && fail "$c: the proxy connected to the failing remote more than $max times"
    expect_sessions s2s-out=1 || fail "$c: session lines"
    close_line_has 'listener=s2s-out .*close reason=done .*remote=example\.test auth=pkix' ||
        fail "$c: no clean close line: $(close_lines)"
    proxy_alive || fail "$c: the proxy died"
    log "$c: the failing candidate was left for the next one; $(close_lines | grep -o 'close reason=[^ ]*')"
done

# ---- s2s-out: the failing peer is the only candidate ----------------------------------------
for c in hello flight; do
    case $c in
    hello) fake_case "only-$c" --wait '<stream:stream' --send "$SHDR$SFEAT" --wait '<starttls' \
        --send "$PROCEED" --wait-bytes 5 --reset ;;
    flight) fake_case "only-$c" --wait '<stream:stream' --send "$SHDR$SFEAT" \
        --wait '<starttls' --send "$PROCEED" --tls-partial 60 --sleep 0.2 --reset ;;
    esac
    proxy_mark
    backend "only-$c" reset.test --expect-stream-error remote-connection-failed \
        --expect-not "type='valid'" --expect-closed || {
        cat "$T/only-$c.out"
        fail "only-$c: the backend did not get <remote-connection-failed/> and a close"
    }
    expect_sessions s2s-out=1 || fail "only-$c: session lines"
    close_line_has 'listener=s2s-out .*close reason=remote-failed .*reset\.test.*127\.0\.0\.1.*(ECONNRESET|reset)' ||
        fail "only-$c: the close line does not name the peer and the reset: $(close_lines)"
    close_line_has 'tls-error' && fail "only-$c: a peer that left was logged as a TLS failure"
    proxy_alive || fail "only-$c: the proxy died"
    log "only-$c: $(close_lines | grep -o 'close reason=.*detail="[^"]*"')"
done

# ---- an opportunistic remote that refuses STARTTLS, then refuses connections --------------------
fake_case opp --max-conns 1 --wait '<stream:stream' \
    --send "${SHDR//example.test/opp.test}$SFEAT" --wait '<starttls' \
    --send "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" --fin
proxy_mark
backend opp opp.test --expect-stream-error remote-connection-failed --expect-closed || {
    cat "$T/opp.out"
    fail "opp: the backend did not get <remote-connection-failed/> (the plaintext retry loops?)"
}
t=$(sed -n 's/^rawxmpp: .* after \([0-9.]*\) s$/\1/p' "$T/opp.out")
awk -v t="$t" 'BEGIN { exit !(t <= 5) }' || fail "opp: the stream error came after $t s"
expect_sessions s2s-out=1 || fail "opp: session lines"
close_line_has 'close reason=remote-failed .*refused STARTTLS.*ECONNREFUSED' ||
    fail "opp: the close line does not say what happened: $(close_lines)"
log "opp: $(close_lines | grep -o 'close reason=.*detail="[^"]*"')"
proxy_alive || fail "opp: the proxy died"

# ---- the held stream is still there ------------------------------------------------------------
kill -0 "$HELD" 2>/dev/null || {
    cat "$T/held.out"
    fail "held: the stream to other.test ended during the faults"
}
stop_pid "$HELD" 2
pass
