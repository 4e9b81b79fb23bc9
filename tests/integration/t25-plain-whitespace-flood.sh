#!/bin/bash
# t25-plain-whitespace-flood: whitespace after the pre-TLS stream header must not pile up.
# A regression test from the attack suite (the fix is in relay.c: pre-TLS input is consumed)
# so that whitespace cannot make the proxy hold memory before TLS.
#
# Bug: in PLAIN_STREAM, relay_input() keeps every byte from c->peer.fwd on for "the next
# round"; conn.c advances fwd (relay_skip) past the header and <starttls/>, but nothing
# advances it past whitespace between top-level elements, which xmpp_in accepts without limit
# (each space is a complete unit, RFC 6120 §4.6.1 keepalives). So an unauthenticated client
# that sends a header and then spaces makes the proxy buffer all of them until
# handshake_timeout (10 s by default; ~100 MB per second per connection on loopback).
# Measured: 100 MB of spaces -> RSS 14 MB -> 117 MB, connection still open.
#
# Expected: the proxy's RSS grows by less than 4 MiB while 100 MB of spaces arrive, and the
# session still ends with one close line (timeout, or the peer's EOF).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"

LOG_LEVEL=info HANDSHAKE_TIMEOUT=5s attack_setup direct
"$PY" -c "open('$T/spaces', 'wb').write(b' ' * (100 * 1024 * 1024))"
rss0=$(rss_kib)
attack_mark
bg "$PY" "$LIB_DIR/xmlattack.py" --port "$PROXY_STARTTLS_PORT" --mode plain --ca "$CA" \
    --domain "$ORG" --wait-features --payload-file "$T/spaces" --timeout 8 >"$T/ws.out" 2>&1
pid=$BG_PID
peak=$rss0
for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    r=$(rss_kib)
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.1
done
wait "$pid" || true
log "$(tail -1 "$T/ws.out"); RSS $rss0 -> peak $peak KiB"
[ $((peak - rss0)) -le 4096 ] ||
    fail "100 MB of whitespace before TLS grew the proxy by $((peak - rss0)) KiB (allowed 4096)"
expect_closes 1 'timeout|peer-eof'
[ "$(recorder_conns)" = 0 ] || fail "the backend saw a connection"
stop_guard
pass
