#!/usr/bin/env bash
# t36-fault-dns: s2s-out when DNS fails. The proxy serves example.org and resolves remotes
# through libunbound (resolve.nameservers, dnssec: false, "local-zone: test. transparent" so
# that names under .test are asked at all), forwarding to a private dnsmasq; the "backend" is
# rawxmpp.py on the s2s-out listener, speaking as jabberd2 does (t17). For each remote the
# backend must get <remote-connection-failed/> and a close, and the proxy exactly one close
# line reason=remote-failed whose error and detail name the DNS failure:
#   nx.test        NXDOMAIN for everything (dnsmasq --local=/test/): error=ENXDOMAIN, "no SRV
#                  records and no address for nx.test";
#   noservice.test _xmpp-server SRV target "." (RFC 2782 / RFC 6120 §3.2.1 "no service"):
#                  error=ENXDOMAIN, "no XMPP service";
#   servfail.test  dnsmasq forwards the zone to dnsfake.py, which answers SERVFAIL:
#                  error=EDNS, "SERVFAIL";
#   example.net    dnsmasq REFUSES names outside .test: error=EDNS (libunbound reports a
#                  forwarder that refuses as SERVFAIL);
#   slow.test      (a second proxy: its only nameserver is dnsfake.py --mode silent, which never
#                  answers; resolve.timeout 1500ms) error=EDNS, "timeout after 1500 ms", and the
#                  backend hears it within the resolve timeout plus a margin, not at
#                  handshake_timeout (8 s);
#   cancel         the backend gives up (closes its stream) while that lookup is pending: one
#                  close line (reason=done, from=OUT_RESOLVE), nothing logged for the session
#                  when the lookup would have timed out, no crash.
# Meanwhile a good stream (held) to example.test, a real Prosody found through SRV records in
# the same dnsmasq, stays up across the failures (a burst of 12 failing streams at once
# included) and still carries a message afterwards: a DNS failure of one remote does not touch
# the streams of another.
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=faults.sh
. "$LIB_DIR/faults.sh"

need_cmd ss
S2S=$(free_port) # the proxy's s2s listener (Prosody's inbound streams, if it dials back)
OUT=$(free_port) # its s2s-out listener, where the fake backend connects
printf 'test-secret-%s\n' "$$" >"$T/secret"
chmod 600 "$T/secret"

# dnsfake.py NAME MODE: sets FAKEDNS_PORT.
start_dnsfake() {
    local i
    rm -f "$T/dnsfake-$1.port"
    bg "$PY" "$LIB_DIR/dnsfake.py" --mode "$2" --port-file "$T/dnsfake-$1.port" \
        --log "$T/dnsfake-$1.log" --max-seconds 100
    for ((i = 0; i < 50; i++)); do
        [ -s "$T/dnsfake-$1.port" ] && break
        sleep 0.1
    done
    FAKEDNS_PORT=$(cat "$T/dnsfake-$1.port" 2>/dev/null) || fail "dnsfake.py $1 did not start"
}
start_dnsfake servfail servfail
SERVFAIL_PORT=$FAKEDNS_PORT
start_dnsfake silent silent
SILENT_PORT=$FAKEDNS_PORT

PS2S=$(free_port) # Prosody's s2s port (example.test), in the SRV record
# shellcheck disable=SC2046 # dns_xmpp_server prints words meant to be split
start_dnsmasq "" $(dns_xmpp_server example.test "$PS2S") $(dns_xmpp_server example.org "$S2S") \
    --srv-host=_xmpp-server._tcp.noservice.test "--server=/servfail.test/127.0.0.1#$SERVFAIL_PORT"
start_prosody example.test tls "" "$PS2S"

# proxy_config NAME NAMESERVER_PORT: (re)starts the proxy, log $T/NAME.log.
CASE=
proxy_config() {
    local name=$1 ns=$2
    if [ -n "$PROXY_PID" ]; then
        proxy_alive || fail "$CASE: the proxy died"
        stop_proxy
        [ -z "$PROXY_VERDICT" ] || fail "$CASE: $PROXY_VERDICT"
        "$PY" "$LIB_DIR/s2s_sessions.py" "$PROXY_LOG" >"$T/$CASE.sessions" ||
            fail "$CASE: session lines: $(cat "$T/$CASE.sessions")"
    fi
    CASE=$name
    PROXY_LOG=$T/$name.log
    PROXY_LOG_MARK=0
    cat >"$T/$name.yaml" <<EOF
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
  nameservers: [ "127.0.0.1:$ns" ]
  timeout: 1500ms
  dnssec: false
  unbound_options: [ "local-zone: test. transparent" ]
limits: { handshake_timeout: 8s, drain_timeout: 0s }
s2s:
  verify: required
  tls: required
  state_file: $T/$name.state
  dialback_secret_file: $T/secret
EOF
    PROXY_STARTTLS_PORT=$S2S PROXY_DIRECT_PORT=$OUT start_proxy "$T/$name.yaml"
}

JHDR="<?xml version='1.0'?><stream:stream xmlns:stream='$NS_STREAMS' xmlns='jabber:server' xmlns:db='jabber:server:dialback'>"
# backend NAME REMOTE RAWXMPP_ARGS...: the fake jabberd2 asks for example.org -> REMOTE.
backend() {
    local name=$1 remote=$2
    shift 2
    "$PY" "$LIB_DIR/rawxmpp.py" --port "$OUT" --timeout 10 --send "$JHDR" --wait "id=" \
        --send "<db:result from='example.org' to='$remote'>0123456789abcdef</db:result>" \
        "$@" >"$T/$name.out" 2>&1
}
elapsed() { sed -n 's/^rawxmpp: .* after \([0-9.]*\) s$/\1/p' "$1"; }

# dns_fails NAME REMOTE ERROR DETAIL_RE: the backend hears <remote-connection-failed/>, one
# close line says reason=remote-failed error=ERROR and the detail.
dns_fails() {
    local name=$1 remote=$2 err=$3 re=$4
    proxy_mark
    backend "$name" "$remote" --expect-stream-error remote-connection-failed \
        --expect-not "type='valid'" --expect-closed || {
        cat "$T/$name.out"
        fail "$name: the backend did not get <remote-connection-failed/> and a close"
    }
    expect_sessions s2s-out=1 || fail "$name: session lines"
    close_line_has "listener=s2s-out .*close reason=remote-failed error=$err .*detail=\"$re" ||
        fail "$name: the close line does not name the DNS failure: $(close_lines)"
    close_line_has "from=OUT_RESOLVE .*remote=$remote " ||
        fail "$name: the close line does not say it ended in the lookup for $remote: $(close_lines)"
    proxy_alive || fail "$name: the proxy died"
    log "$name: $(close_lines | grep -o 'error=.*detail=".*"') after $(elapsed "$T/$name.out") s"
}

# ---- 1. one resolver that answers, badly for some names -----------------------------------
proxy_config dns "$DNS_PORT"
VALID="<db:result from='example.test' to='example.org' type='valid'/>"
bg "$PY" "$LIB_DIR/rawxmpp.py" --port "$OUT" --timeout 30 --send "$JHDR" --wait "id=" \
    --send "<db:result from='example.org' to='example.test'>0123456789abcdef</db:result>" \
    --wait "$VALID" --ready "$T/held.ready" --sleep 6 \
    --send "<message from='alice@example.org' to='bob@example.test' id='held-after-faults'><body>still here</body></message>" \
    --sleep 1 --send '</stream:stream>' --expect-not '<stream:error' --expect-closed \
    >"$T/held.out" 2>&1
HELD=$BG_PID
wait_until 20 test -e "$T/held.ready" || {
    cat "$T/held.out"
    fail "held: no stream to example.test through SRV (the positive control)"
}
proxy_log_has 'listener=s2s-out .* open domain=example\.org remote=example\.test auth=pkix ' ||
    fail "held: the stream to example.test did not open with a verified certificate"
log "held: example.org -> example.test up, found through SRV"

dns_fails nxdomain nx.test ENXDOMAIN 'nx\.test: no SRV records and no address for nx\.test'
dns_fails noservice noservice.test ENXDOMAIN 'noservice\.test: .*no XMPP service'
dns_fails servfail servfail.test EDNS 'servfail\.test: .*SERVFAIL'
grep -q 'SRV _xmpp-server._tcp.servfail.test. -> SERVFAIL' "$T/dnsfake-servfail.log" ||
    fail "servfail: dnsfake.py was never asked (dnsmasq did not forward the zone)"
dns_fails refused example.net EDNS 'example\.net: .*(SERVFAIL|rcode 5)'

# A burst: 12 failing streams at once, 3 of each kind, each with its own close line.
proxy_mark
pids=()
for i in 1 2 3; do
    for r in nx.test noservice.test servfail.test example.net; do
        bg backend "burst-$r-$i" "$r" --expect-stream-error remote-connection-failed --expect-closed
        pids+=("$BG_PID")
    done
done
for p in "${pids[@]}"; do wait "$p" || fail "burst: a backend stream did not get its stream error"; done
expect_sessions s2s-out=12 || fail "burst: session lines"
[ "$(close_lines | grep -c 'reason=remote-failed error=E\(NXDOMAIN\|DNS\) ')" = 12 ] ||
    fail "burst: not 12 DNS close lines: $(close_lines)"
proxy_alive || fail "burst: the proxy died"
log "burst: 12 failing lookups at once, 12 close lines"

kill -0 "$HELD" 2>/dev/null || fail "held: the good stream ended during the DNS failures"
wait "$HELD" || {
    cat "$T/held.out"
    fail "held: the good stream did not end cleanly"
}
wait_prosody_log "Received\[s2sin[^]]*\]: <message [^>]*id='held-after-faults'" 5 ||
    fail "held: Prosody did not get the message sent after the failures"
wait_until 5 grep -Eq 'listener=s2s-out .*close reason=done .*remote=example\.test ' "$PROXY_LOG" ||
    fail "held: no clean close line for the good stream"
log "held: the good stream carried a message after the failures and closed cleanly"

# ---- 2. a resolver that never answers ---------------------------------------------------------
proxy_config dnstimeout "$SILENT_PORT"
dns_fails timeout slow.test EDNS 'slow\.test: .*timeout after 1500 ms'
t=$(elapsed "$T/timeout.out")
awk -v t="$t" 'BEGIN { exit !(t >= 1.2 && t <= 4) }' ||
    fail "timeout: <remote-connection-failed/> after $t s, expected about resolve.timeout=1.5s"
grep -q '_xmpp-server._tcp.slow.test. -> (no answer)' "$T/dnsfake-silent.log" ||
    fail "timeout: the silent nameserver was never asked"

# The backend leaves while the lookup is pending: the lookup is cancelled with the session.
proxy_mark
backend cancel slow.test --sleep 0.3 --send '</stream:stream>' --expect-closed ||
    fail "cancel: the proxy did not close the backend's stream: $(cat "$T/cancel.out")"
expect_sessions s2s-out=1 || fail "cancel: session lines"
close_line_has 'listener=s2s-out .*close reason=done .*from=OUT_RESOLVE' ||
    fail "cancel: no clean close line in the lookup: $(close_lines)"
sleep 2 # past resolve.timeout: a lookup not cancelled would report now
"$PY" "$LIB_DIR/s2s_sessions.py" "$PROXY_LOG" --since "$PROXY_LOG_MARK" >"$T/cancel.sessions" ||
    fail "cancel: the session logged after its close: $(cat "$T/cancel.sessions")"
proxy_alive || fail "cancel: the proxy died"
log "cancel: the backend left during the lookup; one close line, nothing after it"

proxy_alive || fail "the proxy died"
stop_proxy
[ -z "$PROXY_VERDICT" ] || fail "dnstimeout: $PROXY_VERDICT"
"$PY" "$LIB_DIR/s2s_sessions.py" "$PROXY_LOG" >"$T/dnstimeout.sessions" ||
    fail "dnstimeout: session lines: $(cat "$T/dnstimeout.sessions")"
pass
