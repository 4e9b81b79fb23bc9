#!/bin/bash
# t42-c2s-backend-stall: a c2s backend that accepts the TCP connection and then says
# nothing (or only its stream header, never its features).
# (conn.c keeps limits.handshake_timeout running until the backend's features.)
#
# Bug: connect_cb() (conn.c) stops the session timer as soon as the TCP connect to the backend
# succeeds and logs the session open. From then on nothing bounds the wait for the backend's
# stream header and features: the client, already through TLS, waits for ever (here: rawxmpp
# gives up after 10 s, the proxy then logs close reason=peer-eof from=RELAY, which blames the
# client). A jabberd2 c2s that is wedged (router gone, sqlite locked) holds every new client
# like this, and the proxy never says why.
#
# Expected: limits.handshake_timeout (counted from accept, 3 s here) also covers the wait for
# the backend's first <stream:features>; the client gets a stream error
# (<remote-connection-failed/>, as for a backend that cannot be reached, or
# <connection-timeout/>) and the close line says the backend timed out:
#   close reason=backend-io-error error=ETIMEDOUT detail="backend 127.0.0.1:N sent no stream
#   features within limits.handshake_timeout=3000ms"
# (reason=timeout with that detail would do as well). A guard session next to it is unaffected.
#
# Fix (conn.c): keep the timer running in connect_cb() for c2s, stop it on the backend's first
# <stream:features> (back_element), and name the backend in timeout_cb() when the session is
# in CONN_RELAY without features yet. The report has the diff.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=faults.sh
. "$LIB_DIR/faults.sh"

HS=3
ORG=example.org
start_jabberd2 "$DOMAIN"
start_fake silent --stall
SILENT=$FAKE_PORT
start_fake header --wait '<stream:stream' \
    --send "<?xml version='1.0'?><stream:stream xmlns:stream='$NS_STREAMS' xmlns='jabber:client' from='header.$ORG' id='fake1' version='1.0'>" \
    --stall
HEADER=$FAKE_PORT
LOG_LEVEL=info HANDSHAKE_TIMEOUT=${HS}s write_proxy_config "$T/proxy.yaml"
"$PY" - "$T/proxy.yaml" "$XTP_CERTS/$ORG.crt" "$XTP_CERTS/$ORG.key" "silent=$SILENT" \
    "header=$HEADER" <<'EOF'
import sys
path, crt, key, *pairs = sys.argv[1:]
lines = open(path).read().splitlines(True)
i = next(n for n, l in enumerate(lines) if l.startswith("listeners:"))
add = []
for p in pairs:
    name, port = p.split("=")
    add += [f"  {name}.example.org:\n", f"    cert: {crt}\n", f"    key: {key}\n",
            f"    backend: {{ c2s: \"127.0.0.1:{port}\" }}\n"]
lines[i:i] = add
open(path, "w").writelines(lines)
EOF
start_proxy "$T/proxy.yaml"

rm -f "$T/guard.ready" "$T/guard.stop"
bg "$PY" "$LIB_DIR/guard.py" --mode direct --port "$PROXY_DIRECT_PORT" --ca "$CA" \
    --domain "$DOMAIN" --ready "$T/guard.ready" --stop "$T/guard.stop" --max-latency 5 \
    >"$T/guard.out" 2>&1
GUARD=$BG_PID
wait_until 15 test -e "$T/guard.ready" || fail "the guard session did not log in"

for name in silent header; do
    d=$name.$ORG
    h=$(stream_header "$d")
    proxy_mark
    raw --port "$PROXY_STARTTLS_PORT" --timeout 10 --domain "$d" --send "$h" \
        --wait '</stream:features>' --send "$STARTTLS" --starttls --send "$h" \
        --expect '<stream:error' --expect-closed >"$T/$name.out" 2>&1 || {
        cat "$T/$name.out"
        fail "$name: a stalled backend kept the client waiting (no stream error, no close in 10 s)"
    }
    t=$(sed -n 's/^rawxmpp: .* after \([0-9.]*\) s$/\1/p' "$T/$name.out")
    awk -v t="$t" 'BEGIN { exit !(t >= 2.5 && t <= 5) }' ||
        fail "$name: the stream error came after $t s, not at limits.handshake_timeout=${HS}s"
    grep -Eq '<stream:error><(remote-connection-failed|connection-timeout) ' "$T/$name.out" ||
        fail "$name: unexpected condition: $(grep -o '<stream:error><[a-z-]*' "$T/$name.out")"
    stream_well_formed "$T/$name.out" || fail "$name: the client's stream is not well-formed"
    expect_sessions c2s=1 || fail "$name: session lines"
    close_line_has "listener=c2s .*close reason=(timeout|backend-[a-z-]+) error=ETIMEDOUT .*handshake_timeout=${HS}000ms" ||
        fail "$name: the close line does not say the backend timed out: $(close_lines)"
    wait_until 3 fake_log_has "$name" '^\[1\] peer closed' ||
        fail "$name: the proxy left the backend connection open"
    proxy_alive || fail "the proxy died"
    log "$name: $(grep -o '<stream:error><[a-z-]*' "$T/$name.out") after $t s"
done

touch "$T/guard.stop"
wait "$GUARD" || fail "the guard session broke: $(cat "$T/guard.out")"
pass
