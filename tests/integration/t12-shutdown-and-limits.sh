#!/bin/bash
# t12-shutdown-and-limits: limits.max_connections refuses new connections at once while the
# established ones keep working; a pre-1.0 stream is welcome over Direct TLS (jabberd 1.4-era
# clients, XEP-0368) although a STARTTLS listener refuses it; SIGTERM ends live sessions with
# <system-shutdown/> and the proxy exits 0.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HDR=$(stream_header "$DOMAIN")
start_jabberd2 "$DOMAIN"
MAX_CONNECTIONS=2 write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

# 1. Two sessions fill the limit; a third connection is closed at once with nothing sent.
for n in 1 2; do
    bg raw --port "$PROXY_DIRECT_PORT" --timeout 8 --tls --send "$HDR" --wait '</stream:features>' \
        --ready "$T/ready$n" --sleep 3 --send '</stream:stream>' --expect '<mechanisms' \
        --expect-closed >"$T/held$n.out" 2>&1
    eval "held$n=\$BG_PID"
done
wait_until 10 test -e "$T/ready1" -a -e "$T/ready2" || fail "the two sessions did not start"
raw --port "$PROXY_STARTTLS_PORT" --timeout 2 --send "$HDR" --expect-closed \
    --expect-not '<stream:features' >"$T/third.out" 2>&1 || {
    cat "$T/third.out"
    fail "a third connection over limits.max_connections=2 was not refused"
}
log "max_connections=2: a third connection was closed at once"
for n in 1 2; do
    pid=held$n
    wait "${!pid}" || {
        cat "$T/held$n.out"
        fail "held session $n did not end cleanly"
    }
done
log "the two established sessions kept working and ended cleanly"
wait_proxy_log 'refusing connections: at the limit' || fail "no log line for the refusal"

# 2. Pre-1.0 streams: refused on STARTTLS (they cannot negotiate TLS), relayed over Direct TLS.
sleep 2.5 # let the two closed sessions linger out of the connection count
raw --port "$PROXY_STARTTLS_PORT" --timeout 5 --send "$(stream_header "$DOMAIN" jabber:client '')" \
    --expect-stream-error unsupported-version --expect-closed >"$T/old-starttls.out" 2>&1 || {
    cat "$T/old-starttls.out"
    fail "a pre-1.0 stream on the STARTTLS listener was not refused"
}
raw --port "$PROXY_DIRECT_PORT" --timeout 3 --tls --send "$(stream_header "$DOMAIN" jabber:client '')" \
    --wait "id=" --expect-not '<stream:error' --expect-not '<stream:features' \
    >"$T/old-direct.out" 2>&1 || {
    cat "$T/old-direct.out"
    fail "a pre-1.0 stream over Direct TLS did not get jabberd2's header"
}
log "pre-1.0: <unsupported-version/> on STARTTLS, jabberd2's pre-1.0 header over Direct TLS"

# 3. SIGTERM with a live session: <system-shutdown/>, then a clean exit.
bg raw --port "$PROXY_DIRECT_PORT" --timeout 8 --tls --send "$HDR" --wait '</stream:features>' \
    --ready "$T/ready3" --expect-stream-error system-shutdown --expect-closed \
    >"$T/shutdown.out" 2>&1
client=$BG_PID
wait_until 10 test -e "$T/ready3" || fail "the session for the shutdown did not start"
stop_proxy
wait "$client" || {
    cat "$T/shutdown.out"
    fail "SIGTERM: the live session did not get <system-shutdown/>"
}
[ -z "$PROXY_VERDICT" ] || fail "$PROXY_VERDICT"
log "SIGTERM: the live session got <system-shutdown/>, the proxy exited 0"
pass
