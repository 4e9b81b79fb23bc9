#!/bin/bash
# t23-flood: a connection flood past limits.max_connections (50 here). A logged-in session and
# 49 idle connections fill the limit; then 2,000 more connections arrive, 100 at a time, on both
# listeners: each is closed at once (within 1 s, p99 reported) without a byte sent to it, no
# session line is logged for any of them (only the rate-limited "refusing connections" line, at
# most one a second), the 49 held connections stay open, the logged-in session keeps answering
# and the proxy does not grow. When the held ones leave, new sessions are accepted again and a
# full login works. No backend sees any of the refused connections. (t12 covers the limit
# itself with two sessions.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"

FLOOD=${FLOOD:-2000}
ulimit -n 4096 2>/dev/null || skip "cannot raise the open-files limit to 4096"
LOG_LEVEL=info HANDSHAKE_TIMEOUT=60s MAX_CONNECTIONS=50 attack_setup direct

# Fill the limit: the guard plus 49 silent connections, held until $T/release appears.
bg "$PY" "$LIB_DIR/connflood.py" hold --count 49 --target "$PROXY_STARTTLS_PORT:silent" \
    --target "$PROXY_DIRECT_PORT:silent" --ready "$T/held.ready" --until "$T/release" \
    --max-hold 80 --expect-none-closed >"$T/held.out" 2>&1
held=$BG_PID
wait_until 10 test -e "$T/held.ready" || fail "the 49 held connections were not made"
flood() { # COUNT
    "$PY" "$LIB_DIR/connflood.py" flood --count "$1" --batch 100 --wait 2 --max-close 1 \
        --target "$PROXY_STARTTLS_PORT:xml" --target "$PROXY_DIRECT_PORT:tls5" --expect-refused \
        >"$T/flood.out" 2>&1 || {
        cat "$T/flood.out"
        fail "the flood was not refused at once"
    }
}
# A first, smaller flood warms the allocator up (and fills ASan's small quarantine).
flood 500
sleep 1.2 # past the refusal line's one-second rate limit
rss0=$(rss_kib)

attack_mark
t0=$(date +%s)
flood "$FLOOD"
secs=$(($(date +%s) - t0 + 1))
log "$(cat "$T/flood.out")"
n=$(proxy_log_new | grep -c 'conn=' || true)
[ "$n" = 0 ] || fail "$n session lines were logged for refused connections: $(proxy_log_new | grep 'conn=' | head -3)"
r=$(proxy_log_new | grep -c 'refusing connections: at the limit' || true)
if [ "$r" -lt 1 ] || [ "$r" -gt $((2 * secs)) ]; then
    fail "$r 'refusing connections' lines over a ${secs} s flood on two listeners (expected 1..$((2 * secs)))"
fi
log "log: $r rate-limited refusal lines in ${secs} s, no session line"
rss_check "after $FLOOD refused connections" "$rss0" 1024

touch "$T/release"
wait "$held" || {
    cat "$T/held.out"
    fail "a held connection was closed during the flood"
}
log "held connections: $(cat "$T/held.out")"
stop_guard # the guard's own session ended cleanly: the limit has room again

# Room again: once the held sessions have gone (their close lines), a full login works.
expect_closes 50 'peer-eof|done' . # the 49 held ones and the guard; each one close line
sleep 0.5
xmpp_client direct "$PROXY_DIRECT_PORT" >"$T/client.out" 2>&1 || {
    cat "$T/client.out"
    fail "no new session after the flood"
}
proxy_alive || fail "the proxy died"
[ "$(recorder_conns)" = 0 ] || fail "the backend of $ORG saw $(recorder_conns) connections"
[ "$(jabberd2_connects)" = 3 ] ||
    fail "jabberd2 saw $(jabberd2_connects) connections, expected 3 (the guard, alice and bob)"
pass
